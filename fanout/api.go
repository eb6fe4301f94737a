package fanout

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// NodeID names an SE (its configured node_id, smEngineIndex).
type NodeID = rmtp.NodeID

// Op and Status are the wire enums (see package fanout/wire).
type (
	Op     = wire.Op
	Status = wire.Status
)

// Operations and statuses, re-exported for callers.
const (
	OpGet        = wire.OpGet
	OpGetNext    = wire.OpGetNext
	OpWalk       = wire.OpWalk
	OpSetTest    = wire.OpSetTest
	OpSetCommit  = wire.OpSetCommit
	OpSetUndo    = wire.OpSetUndo
	OpSetCleanup = wire.OpSetCleanup

	StatusOK         = wire.StatusOK
	StatusSNMPError  = wire.StatusSNMPError
	StatusStaleTerm  = wire.StatusStaleTerm
	StatusBadRequest = wire.StatusBadRequest
	StatusBusy       = wire.StatusBusy
	StatusUnknownTx  = wire.StatusUnknownTx
	StatusNoAnswer   = wire.StatusNoAnswer
)

// Defaults (DESIGN.md §5), in one place.
const (
	// DefaultDeadline bounds a read: under net-snmp's 1 s agentXTimeout.
	DefaultDeadline = 800 * time.Millisecond
	// DefaultPhaseDeadline bounds each SET phase: snmpd is frozen meanwhile.
	DefaultPhaseDeadline = 250 * time.Millisecond
	// DefaultSnapshotTTL is how long a walk snapshot serves GetNexts.
	DefaultSnapshotTTL = 2 * time.Second
	// DefaultWalkCap is the most varbinds one SE returns per walked root.
	DefaultWalkCap = 2000
	// DefaultSnapshotMemory caps the varbinds held by all cached snapshots.
	DefaultSnapshotMemory = 100000
	// DefaultMaxVarBinds caps the varbinds of one transaction.
	DefaultMaxVarBinds = 1024
	// DefaultPollInterval is how often engine states are compared for
	// up/down events.
	DefaultPollInterval = 100 * time.Millisecond
	// MaxSets bounds the SET transactions a coordinator holds between
	// phases, and those a Responder holds reservations for (as many as
	// the agent.Tree it serves holds); SetTTL drops one abandoned by its
	// caller.
	MaxSets = 256
	SetTTL  = 30 * time.Second
	// maxRounds bounds the re-requests of one transaction.
	maxRounds = 3
)

// Errors.
var (
	// ErrNotActive refuses a SET on a manager that does not own the view
	// (a backup): only the active manager may SET.
	ErrNotActive = errors.New("fanout: not the active manager")
	// ErrNoEngines is returned when a transaction has nobody to ask.
	ErrNoEngines = errors.New("fanout: no engines to ask")
	// ErrTooMany is returned for a transaction over MaxVarBinds.
	ErrTooMany = errors.New("fanout: too many varbinds")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("fanout: closed")
)

// CoordinatorConfig configures a Coordinator. Zero fields take the
// defaults above.
type CoordinatorConfig struct {
	Channel uint8
	// Deadline bounds GET, GETNEXT and walks (a shorter ctx deadline wins).
	Deadline time.Duration
	// RetryAfter is the internal point at which SEs that answered nothing
	// are asked again (answered from their reply cache if they had the
	// request); default 40 % of the deadline.
	RetryAfter time.Duration
	// PhaseDeadline bounds each SET phase.
	PhaseDeadline time.Duration
	// SnapshotTTL and SnapshotMemory bound the walk snapshot cache;
	// WalkCap is the per-root, per-SE cap of one walk.
	SnapshotTTL    time.Duration
	SnapshotMemory int
	WalkCap        int
	MaxVarBinds    int
	PollInterval   time.Duration
	// OnEngineEvent, if set, is called (from one goroutine, in order) when
	// an engine comes up, restarts or goes down: the smEngineUp and
	// smEngineDown notifications. It must not block for long.
	OnEngineEvent func(EngineEvent)
	Logger        logrus.FieldLogger
}

// EngineResult is one SE's answer within a Result.
type EngineResult struct {
	Engine      NodeID
	Incarnation uint64 // the SE's incarnation when it answered: detects restarts (monotonic sums)
	Status      Status
	ErrStatus   smi.ErrorStatus // with StatusSNMPError
	ErrIndex    int             // 0-based varbind of the request at fault
	Truncated   bool            // a walk root hit the walk cap
	VarBinds    []smi.VarBind
}

// Result is what one transaction collected.
type Result struct {
	Op       Op
	Tx       uint64
	Expected []NodeID       // engines asked, sorted
	Replies  []EngineResult // engines that answered, by id
	Missing  []NodeID       // asked and silent at the deadline, sorted
	Rounds   int            // rmtp requests sent (1 + re-requests)
	Elapsed  time.Duration
}

// Responders is the number of engines that answered (the responder count
// beside every aggregate).
func (r *Result) Responders() int { return len(r.Replies) }

// Complete reports whether every engine asked answered.
func (r *Result) Complete() bool { return len(r.Missing) == 0 }

// Reply returns the answer of one engine, or nil.
func (r *Result) Reply(id NodeID) *EngineResult {
	i, ok := slices.BinarySearchFunc(r.Replies, id, func(e EngineResult, id NodeID) int { return cmpNode(e.Engine, id) })
	if !ok {
		return nil
	}
	return &r.Replies[i]
}

// EngineState is the state column of smEngineTable. Append-only (MIB enum).
type EngineState uint8

// Engine states.
const (
	EngineUp      EngineState = 1
	EngineSuspect EngineState = 2
	EngineDown    EngineState = 3
)

func (s EngineState) String() string {
	switch s {
	case EngineUp:
		return "up"
	case EngineSuspect:
		return "suspect"
	case EngineDown:
		return "down"
	}
	return "EngineState(?)"
}

// Engine is one row of smEngineTable: what the coordinator knows of an SE.
// A row, once seen, stays (down) after the SE goes away, so its index is
// stable across restarts.
type Engine struct {
	ID          NodeID // smEngineIndex
	Incarnation uint64
	Addr        netip.AddrPort // advertised unicast address
	State       EngineState
	RTT         time.Duration // 0 until measured
	LastSeen    time.Time     // last datagram heard
	LastStatus  Status        // outcome of the last transaction it was asked in
	LastReply   time.Time
	Replies     uint64 // transactions it answered
	NoAnswers   uint64 // transactions it missed
	Restarts    uint64 // incarnation changes seen
	Info        wire.EngineInfo
	HasInfo     bool // Info came in its HELLO
}

// EngineEvent reports an engine coming up (first seen, back from down, or
// restarted) or going down (silent or left).
type EngineEvent struct {
	Engine    Engine
	Up        bool
	Restarted bool // up with a new incarnation
	At        time.Time
}

// CoordinatorCounters are the coordinator's totals (they only grow).
type CoordinatorCounters struct {
	Transactions   uint64 // northbound operations fanned out (one per Get/GetNext/Walk/SET phase)
	Rounds         uint64 // rmtp requests sent
	ReRequests     uint64 // rounds after the first
	Complete       uint64 // transactions every engine answered
	Partial        uint64 // transactions answered at the deadline with engines missing
	LateReplies    uint64 // replies merged after their round ended
	BadReplies     uint64 // undecodable or mismatched replies
	SnapshotHits   uint64
	SnapshotMisses uint64
	SetsRefused    uint64 // SETs refused because this manager is not active
	TestFailed     uint64
	CommitFailed   uint64
	UndoFailed     uint64
	SetsExpired    uint64 // SET transactions dropped after SetTTL without cleanup
}

func cmpNode(a, b NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
