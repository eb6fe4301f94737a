package agentx

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Defaults, applied by New to zero fields.
const (
	DefaultPriority       = 127 // net-snmp's default registration priority
	DefaultReconnectMax   = time.Second
	DefaultMasterTimeout  = 5 * time.Second
	DefaultHandlerTimeout = 30 * time.Second
	DefaultMaxInFlight    = config.DefaultMaxInFlight
	DefaultDescription    = "smsnmpd"
	// reconnectMin is the first backoff step after a session is lost: short,
	// because a master that closed one session (after agentXRetries) is
	// usually still there.
	reconnectMin = 10 * time.Millisecond
	// maxBulkVarBinds bounds the varbinds one GetBulk may produce, whatever
	// non_repeaters and max_repetitions (16-bit each) ask for.
	maxBulkVarBinds = 2048
	// resendCacheEntries and resendCacheBytes bound the responses kept to
	// answer a re-sent PDU. The master re-sends within agentXTimeout ×
	// agentXRetries (seconds), far fewer requests than this.
	resendCacheEntries = 1024
	resendCacheBytes   = 4 << 20
)

// Config configures a Subagent. The zero value of every field but Socket
// means its default.
type Config struct {
	// Socket is the master's address: "tcp:host:port" or "unix:/path"
	// (net-snmp's agentXSocket syntax; a bare "host:port" is TCP).
	Socket string
	// Timeout is o.timeout of the Open PDU, the seconds the master waits
	// for each answer (rounded to whole seconds, at most 255); 0 leaves the
	// master's agentXTimeout in force.
	Timeout time.Duration
	// Priority is the registration priority, 1..255, lower wins (a backup
	// manager registers with a larger number). 0 means DefaultPriority.
	Priority uint8
	// ReconnectMax caps the backoff between connection attempts.
	ReconnectMax time.Duration
	// PingInterval is the keepalive period; 0 sends no Ping.
	PingInterval time.Duration
	// MasterTimeout bounds the wait for the master's answer to our own PDUs
	// (Open, Register, Ping, Notify, Close) and for a dial.
	MasterTimeout time.Duration
	// HandlerTimeout bounds one request's run through the handler tree.
	HandlerTimeout time.Duration
	// MaxInFlight bounds the requests waiting on the farm (on handlers
	// that are not agent.Local) at once: beyond it a new one is answered
	// at once with genErr (resourceUnavailable for a TestSet) and counted
	// (Stats.Busy), since a PDU left unanswered makes snmpd re-send it and
	// then close the session. It bounds as well the requests slow on the
	// CPU served beside the reader; past that, the master's PDUs wait in
	// the socket. Local requests are never refused. 0 means
	// DefaultMaxInFlight (snmp.max_inflight's default).
	MaxInFlight int
	// Description and ID are o.descr and o.id of the Open PDU.
	Description string
	ID          smi.OID
}

// ErrConfig is returned by Run for an unusable Config.
var ErrConfig = errors.New("agentx: bad config")

func (c Config) withDefaults() Config {
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.MasterTimeout <= 0 {
		c.MasterTimeout = DefaultMasterTimeout
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Description == "" {
		c.Description = DefaultDescription
	}
	return c
}

// ParseSocket splits an agentXSocket address into what net.Dial takes.
func ParseSocket(s string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if !filepath.IsAbs(p) {
			return "", "", fmt.Errorf("%w: socket %q: unix path must be absolute", ErrConfig, s)
		}
		return "unix", p, nil
	case strings.HasPrefix(s, "tcp:"):
		s = strings.TrimPrefix(s, "tcp:")
	case strings.HasPrefix(s, "/"):
		return "unix", s, nil
	}
	if !strings.Contains(s, ":") {
		return "", "", fmt.Errorf("%w: socket %q: want tcp:host:port or unix:/path", ErrConfig, s)
	}
	return "tcp", s, nil
}

func (c Config) openTimeout() uint8 {
	s := (c.Timeout + time.Second/2) / time.Second
	return uint8(min(max(s, 0), 255))
}

// FromConfig builds a Config from the [agentx] section of the process
// config (validated there: priority 1..255, timeout whole seconds).
func FromConfig(c config.AgentX) Config {
	return Config{
		Socket:       c.Socket.String(),
		Timeout:      c.Timeout.Duration,
		Priority:     uint8(min(max(c.Priority, 0), 255)),
		ReconnectMax: c.ReconnectMax.Duration,
		PingInterval: c.PingInterval.Duration,
	}
}
