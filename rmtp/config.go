package rmtp

import (
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// NodeID identifies a member of the farm; 0 is never valid.
type NodeID uint32

// Role is a member's role.
type Role = wire.Role

// Roles.
const (
	Engine  = wire.RoleEngine  // SE
	Manager = wire.RoleManager // SM or BSM
)

// Defaults (DESIGN.md §4).
const (
	DefaultMaxMessage    = 1 << 20
	DefaultHello         = 200 * time.Millisecond
	DefaultSuspectAfter  = 3
	DefaultDownAfter     = 5
	DefaultAckDelay      = 2 * time.Millisecond
	DefaultAnswerAck     = 20 * time.Millisecond
	DefaultNakDelay      = time.Millisecond
	DefaultMinRTO        = 2 * time.Millisecond
	DefaultMaxRTO        = 200 * time.Millisecond
	DefaultRepairRate    = 64 << 20
	DefaultAbortWait     = 500 * time.Millisecond
	DefaultDeliveryQueue = 1024
	DefaultMaxClockSkew  = 30 * time.Second
	// MaxMessageCap bounds Config.MaxMessage.
	MaxMessageCap = 64 << 20
	// minSegment is the smallest segment payload an MTU may leave.
	minSegment = 64
	// reorderWindow is how far ahead of the next undelivered message a
	// receiver buffers; a message id further out is dropped as bogus.
	reorderWindow = 4096
	// drainRate is the receive rate (bytes/s) assumed for a slow member
	// when sizing the first retransmission timeout of a big message.
	drainRate = 32 << 20
	// maxAbortMemory bounds the aborted ids a stream remembers.
	maxAbortMemory = 64
	// minFanInSample is the fewest answers to one transfer that say
	// something about fan-in spacing.
	minFanInSample = 4
	// maxSpacing caps one fan-in spacing sample, so a straggler cannot
	// inflate every later timer (256 × 500 µs is already above MaxRTO).
	maxSpacing = 500 * time.Microsecond
	// replayWindow is the control-sequence replay window (datagrams).
	replayWindow = 1024
)

// Config configures an Endpoint. Zero fields take the defaults above.
type Config struct {
	Node        NodeID
	Role        Role
	Priority    uint8  // election priority, carried in HELLO
	Level       uint8  // management level, carried in HELLO
	Incarnation uint64 // 0: the start time in nanoseconds (grows across restarts unless the clock stepped back)

	Keys     *Keyring // group keys; nil requires Insecure
	Insecure bool     // run without authentication (tests, demo)

	MaxMessage    int           // largest message, default 1 MiB
	PeerMemory    int           // reassembly bytes per peer, default 4 × MaxMessage
	MTU           int           // datagram size; 0 = the transport's
	HelloInterval time.Duration // heartbeat period, default 200 ms
	SuspectAfter  int           // missed heartbeats before suspect, default 3
	DownAfter     int           // missed heartbeats before down, default 5
	AckDelay      time.Duration // how long an ACK waits for a response to carry it
	// AnswerAckDelay is how long a manager may hold its acknowledgement
	// of answers (responses to requests), default 20 ms: the requester
	// has them and its own timer recovers a lost one, so the vector that
	// releases them at the engines need not wake the farm once per
	// request. Engines' timers for answers wait at least twice this (plus
	// AckDelay): give every member the same value.
	AnswerAckDelay time.Duration
	NakDelay       time.Duration // upper bound of the random NAK backoff
	MinRTO         time.Duration // floor of the retransmission timer
	MaxRTO         time.Duration // ceiling of the backed-off timer
	RepairRate     int           // repair bytes per second
	AbortWait      time.Duration // how long the SM waits for others' abort acks
	DeliveryQueue  int           // delivered messages waiting for Receive
	MaxClockSkew   time.Duration // HELLOs further off this host's clock are dropped as replays (hosts run NTP)

	// DropUnclaimed drops, and counts (Counters.Unclaimed), the messages
	// of channels with neither an inbox (Channel) nor a handler (Handle)
	// instead of queueing them for Receive: for a node whose protocols
	// each read a channel of their own and nothing reads Receive, so that
	// a channel nobody serves holds up no sender's stream.
	DropUnclaimed bool

	// HelloApp, if set, returns opaque bytes (at most wire.MaxHelloApp)
	// carried in each HELLO (the SE's own numbers for the MIB).
	HelloApp func() []byte
	Logger   logrus.FieldLogger
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("rmtp: config")

func (c *Config) fill() error {
	if c.Node == 0 {
		return fmt.Errorf("%w: node id 0", ErrConfig)
	}
	if c.Role != Engine && c.Role != Manager {
		return fmt.Errorf("%w: role %v", ErrConfig, c.Role)
	}
	if c.Keys == nil && !c.Insecure {
		return fmt.Errorf("%w: no key configured (set insecure = true only for tests and the demo)", ErrConfig)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Incarnation == 0 {
		c.Incarnation = uint64(time.Now().UnixNano())
	}
	d := DefaultConfig()
	defi(&c.MaxMessage, d.MaxMessage)
	if c.MaxMessage > MaxMessageCap {
		return fmt.Errorf("%w: max message %d over %d", ErrConfig, c.MaxMessage, MaxMessageCap)
	}
	defi(&c.PeerMemory, peerMemory(c.MaxMessage))
	if c.PeerMemory < c.MaxMessage {
		return fmt.Errorf("%w: peer memory %d below max message %d", ErrConfig, c.PeerMemory, c.MaxMessage)
	}
	def(&c.HelloInterval, d.HelloInterval)
	defi(&c.SuspectAfter, d.SuspectAfter)
	defi(&c.DownAfter, d.DownAfter)
	if c.DownAfter <= c.SuspectAfter {
		c.DownAfter = c.SuspectAfter + 1
	}
	def(&c.AckDelay, d.AckDelay)
	def(&c.AnswerAckDelay, d.AnswerAckDelay)
	def(&c.NakDelay, d.NakDelay)
	def(&c.MinRTO, d.MinRTO)
	def(&c.MaxRTO, d.MaxRTO)
	defi(&c.RepairRate, d.RepairRate)
	def(&c.AbortWait, d.AbortWait)
	defi(&c.DeliveryQueue, d.DeliveryQueue)
	def(&c.MaxClockSkew, d.MaxClockSkew)
	c.Logger = discard(c.Logger)
	return nil
}

// DefaultConfig is what New gives every field left zero (the member's
// identity, keys and hooks are the caller's): the one place rmtp's
// defaults are written, in memberlist's DefaultLANConfig manner. Package
// internal/config takes the operator's defaults from it.
func DefaultConfig() Config {
	return Config{
		MaxMessage:     DefaultMaxMessage,
		PeerMemory:     peerMemory(DefaultMaxMessage),
		HelloInterval:  DefaultHello,
		SuspectAfter:   DefaultSuspectAfter,
		DownAfter:      DefaultDownAfter,
		AckDelay:       DefaultAckDelay,
		AnswerAckDelay: DefaultAnswerAck,
		NakDelay:       DefaultNakDelay,
		MinRTO:         DefaultMinRTO,
		MaxRTO:         DefaultMaxRTO,
		RepairRate:     DefaultRepairRate,
		AbortWait:      DefaultAbortWait,
		DeliveryQueue:  DefaultDeliveryQueue,
		MaxClockSkew:   DefaultMaxClockSkew,
	}
}

// peerMemory is the default reassembly memory per peer: four messages of
// the largest size.
func peerMemory(maxMessage int) int { return 4 * maxMessage }
