package mib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Farm is what the manager-side objects need of the fan-out: the engine
// rows and one transaction per request. *fanout.Coordinator implements
// it; tests use a fake.
type Farm interface {
	// Engines returns every engine ever seen, by id.
	Engines() []fanout.Engine
	// Get reads names on targets (nil: every engine of the view) in one
	// transaction.
	Get(ctx context.Context, targets []fanout.NodeID, names []smi.OID) (*fanout.Result, error)
	// Snapshot walks root on targets (nil: every engine), from a cache
	// for the following GetNexts of the same walk.
	Snapshot(ctx context.Context, targets []fanout.NodeID, root smi.OID) (*fanout.Snapshot, error)
	// The SET phases across engines, keyed by transaction.
	TestSet(ctx context.Context, key smi.TxID, targets []fanout.NodeID, vbs []smi.VarBind) (*fanout.Result, error)
	CommitSet(ctx context.Context, key smi.TxID) (*fanout.Result, error)
	UndoSet(ctx context.Context, key smi.TxID) (*fanout.Result, error)
	CleanupSet(ctx context.Context, key smi.TxID)
}

var _ Farm = (*fanout.Coordinator)(nil)

// DefaultEngineTableTTL is how long one read of the engine rows serves
// smEngineTable: a bulk walk through snmpd arrives as one AgentX GetNext
// per varbind, and 2,000 of them must not copy the rows 2,000 times.
const DefaultEngineTableTTL = 250 * time.Millisecond

// ManagerConfig configures the manager-side objects.
type ManagerConfig struct {
	// Farm is the fan-out. Required.
	Farm Farm
	// Start is when sysUpTime counts from, for the TimeStamp objects
	// (smEngineLastSeen, smAggregateDiscontinuityTime); zero = when
	// RegisterManager runs. Give the system group's start when there is
	// one.
	Start time.Time
	// EngineTableTTL: see DefaultEngineTableTTL; negative = no caching.
	EngineTableTTL time.Duration
	// MaxTrackedCounters: see DefaultMaxTrackedCounters (ignored with
	// State).
	MaxTrackedCounters int
	// State is the farm state the node's frontends share and the active
	// manager replicates: counter sums and reconciliations. nil = one of
	// this Manager's own, whose reconciliations run only when its
	// Reconcile is called.
	State *FarmState
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Logger gets one line per failed fan-out; nil = discard.
	Logger logrus.FieldLogger
}

// Manager is the registered manager-side objects: smEngineCount,
// smEngineTable, smAggregateDiscontinuityTime, smAggregate,
// smEngineProxy, smAllEngines and smReconcile.
type Manager struct {
	farm    Farm
	start   time.Time
	now     func() time.Time
	log     logrus.FieldLogger
	state   *FarmState
	tracker *counterTracker // state's

	engines *engineTable
	setSeq  atomic.Uint32 // farm SET keys (see setSession)

	// The last view of the engines' own objects, rebuilt only when the
	// farm hands out new snapshots.
	nativeMu   sync.Mutex
	nativeLast *nativeView
}

// The roots of the SE-native subtrees: what GETNEXT lists under
// smAggregate and smEngineProxy.
var nativeRoots = []smi.OID{oidSystem, SmSe.OID()}

// RegisterManager puts the manager-side objects on tree. Nothing is
// registered when it fails.
func RegisterManager(tree *agent.Tree, cfg ManagerConfig) (*Manager, error) {
	if cfg.Farm == nil {
		return nil, fmt.Errorf("%w: RegisterManager needs a Farm", ErrInvalid)
	}
	m := &Manager{farm: cfg.Farm, start: cfg.Start, now: cfg.Now, log: cfg.Logger}
	if m.now == nil {
		m.now = time.Now
	}
	if m.start.IsZero() {
		m.start = m.now()
	}
	if m.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		m.log = l
	}
	m.state = cfg.State
	if m.state == nil {
		st, err := NewFarmState(FarmStateConfig{Farm: cfg.Farm, MaxTrackedCounters: cfg.MaxTrackedCounters, Now: m.now, Logger: m.log})
		if err != nil {
			return nil, err
		}
		m.state = st
	}
	m.tracker = m.state.tracker
	ttl := cfg.EngineTableTTL
	if ttl == 0 {
		ttl = DefaultEngineTableTTL
	}
	m.engines = newEngineTable(m, ttl)

	r := registrar{tree: tree}
	r.scalar(SmEngineCount.OID(), &agent.Scalar{Value: func(context.Context) (smi.Value, error) {
		return smi.Gauge32(uint32(m.engines.refresh())), nil
	}})
	r.handler(SmEngineEntry.OID(), m.engines)
	r.scalar(SmAggregateDiscontinuityTime.OID(), agent.Func(func() smi.Value {
		return smi.TimeTicks(m.timeStamp(m.tracker.lastDiscontinuity()))
	}))
	r.handler(SmAggregate.OID(), &aggregateHandler{m: m})
	r.handler(SmEngineProxy.OID(), newProxyHandler(m))
	r.handler(SmAllEngines.OID(), newAllEnginesHandler(m))
	r.scalar(SmReconcilePending.OID(), agent.Func(func() smi.Value {
		return smi.Gauge32(latch32(uint64(m.state.Pending())))
	}))
	r.handler(SmReconcileEntry.OID(), newReconcileTable(m))
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// State returns the farm state the Manager's objects read.
func (m *Manager) State() *FarmState { return m.state }

// Reconcile makes one attempt on the engines to put back (see
// FarmState.Reconcile).
func (m *Manager) Reconcile(ctx context.Context) { m.state.Reconcile(ctx) }

// timeStamp is a TimeStamp (RFC 2579): sysUpTime at t, 0 for a zero t or
// one before the start.
func (m *Manager) timeStamp(t time.Time) uint32 {
	if t.IsZero() || t.Before(m.start) {
		return 0
	}
	return uint32(t.Sub(m.start) / (10 * time.Millisecond)) // wraps as TimeTicks do
}

// fanoutWindow runs f and reports when it was in flight.
func (m *Manager) fanoutWindow(f func() error) (window, error) {
	w := window{start: m.now()}
	err := f()
	w.done = m.now()
	return w, err
}

// engineIndex returns the engine rows by id.
func (m *Manager) engineIndex() map[fanout.NodeID]fanout.Engine {
	rows := m.engines.rows()
	out := make(map[fanout.NodeID]fanout.Engine, len(rows))
	for _, e := range rows {
		out[e.ID] = e
	}
	return out
}

// noEngines reports whether err says there was nobody to ask, which is an
// answer (zero responders), not a failure.
func noEngines(err error) bool { return errors.Is(err, fanout.ErrNoEngines) }

// --- smEngineTable ---

// Columns of smEngineEntry.
const (
	colEngineAddressType  = 2
	colEngineAddress      = 3
	colEngineState        = 4
	colEngineRttMicros    = 5
	colEngineLastSeen     = 6
	colEngineLastStatus   = 7
	colEngineLoad         = 8
	colEngineRequests     = 9
	colEngineBytesOut     = 10
	colEngineContentCount = 11
	colEngineName         = 12
)

// LastStatus is smEngineLastStatus. The numbers are the MIB's: append-only.
type LastStatus int32

// Last statuses.
const (
	LastNone      LastStatus = 1
	LastOK        LastStatus = 2
	LastTimeout   LastStatus = 3
	LastError     LastStatus = 4
	LastStaleTerm LastStatus = 5
)

// LastStatusOf maps an engine row's last outcome onto the MIB.
func LastStatusOf(e fanout.Engine) LastStatus {
	switch {
	case e.LastStatus == fanout.StatusOK:
		return LastOK
	case e.LastStatus == fanout.StatusStaleTerm:
		return LastStaleTerm
	case e.LastStatus == fanout.StatusNoAnswer && e.Replies == 0 && e.NoAnswers == 0:
		return LastNone
	case e.LastStatus == fanout.StatusNoAnswer:
		return LastTimeout
	}
	return LastError
}

// InetAddressType values (RFC 4001).
const (
	inetUnknown = 0
	inetIPv4    = 1
	inetIPv6    = 2
)

// inetAddress is the (InetAddressType, InetAddress) pair of an address.
func inetAddress(a netip.Addr) (int32, []byte) {
	switch {
	case a.Is4():
		b := a.As4()
		return inetIPv4, b[:]
	case a.Is4In6():
		b := a.Unmap().As4()
		return inetIPv4, b[:]
	case a.Is6() && a.Zone() == "":
		b := a.As16()
		return inetIPv6, b[:]
	}
	return inetUnknown, []byte{}
}

// rowCounters makes one engine's HELLO counters monotonic across its
// restarts, as smEngineRequests and smEngineBytesOut promise.
type rowCounters struct {
	restarts        uint64
	requests, bytes monotonic
}

type monotonic struct{ last, offset uint64 }

// update takes a new value; restarted says the engine restarted since the
// last one (its counters began again from zero).
func (c *monotonic) update(v uint64, restarted bool) uint64 {
	// An unchanged value after a restart is the old incarnation's numbers
	// still in the row, not a new count.
	if v < c.last || (restarted && v != c.last) {
		c.offset += c.last
	}
	c.last = v
	return c.offset + c.last
}

// engineTable serves smEngineTable from the farm's rows, read at most
// once per TTL.
type engineTable struct {
	m   *Manager
	ttl time.Duration
	t   *agent.Table

	mu       sync.Mutex
	read     time.Time
	cache    []fanout.Engine
	counters map[fanout.NodeID]*rowCounters
}

func newEngineTable(m *Manager, ttl time.Duration) *engineTable {
	return &engineTable{
		m: m, ttl: ttl,
		t: agent.NewTable(SmEngineEntry.OID(), colEngineAddressType, colEngineAddress, colEngineState,
			colEngineRttMicros, colEngineLastSeen, colEngineLastStatus, colEngineLoad, colEngineRequests,
			colEngineBytesOut, colEngineContentCount, colEngineName),
		counters: make(map[fanout.NodeID]*rowCounters),
	}
}

// rows returns the engine rows, refreshed if older than the TTL.
func (et *engineTable) rows() []fanout.Engine {
	et.refresh()
	et.mu.Lock()
	defer et.mu.Unlock()
	return et.cache
}

// refresh re-reads the rows when the TTL passed and returns their number.
// Reading under mu keeps the counters' readings in order.
func (et *engineTable) refresh() int {
	et.mu.Lock()
	defer et.mu.Unlock()
	now := et.m.now()
	if et.cache != nil && et.ttl > 0 && now.Sub(et.read) < et.ttl {
		return len(et.cache)
	}
	rows := et.m.farm.Engines()
	et.read, et.cache = now, rows
	for _, e := range rows {
		if e.ID < MinNodeID || e.ID > MaxNodeID {
			continue // not an index the MIB allows
		}
		rc := et.counters[e.ID]
		if rc == nil {
			rc = &rowCounters{restarts: e.Restarts}
			et.counters[e.ID] = rc
		}
		restarted := e.Restarts != rc.restarts
		rc.restarts = e.Restarts
		typ, addr := inetAddress(e.Addr.Addr())
		cols := agent.Columns{
			colEngineAddressType: smi.Integer(typ),
			colEngineAddress:     smi.OctetString(addr),
			colEngineState:       smi.Integer(int32(e.State)),
			colEngineRttMicros:   smi.Gauge32(latch32(uint64(max(e.RTT, 0) / time.Microsecond))),
			colEngineLastSeen:    smi.TimeTicks(et.m.timeStamp(e.LastSeen)),
			colEngineLastStatus:  smi.Integer(int32(LastStatusOf(e))),
			// Every row has a name, empty until the engine sent one: a
			// discovery walking smEngineName finds every engine.
			colEngineName: smi.String(engineName(e)),
		}
		if e.HasInfo {
			cols[colEngineLoad] = smi.Gauge32(e.Info.Load)
			cols[colEngineRequests] = smi.Counter64(rc.requests.update(e.Info.Requests, restarted))
			cols[colEngineBytesOut] = smi.Counter64(rc.bytes.update(e.Info.BytesOut, restarted))
			cols[colEngineContentCount] = smi.Gauge32(latch32(e.Info.ContentCount))
		}
		et.t.SetRow(smi.OID{uint32(e.ID)}, cols)
	}
	return len(rows)
}

func (et *engineTable) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	et.refresh()
	return et.t.Get(ctx, names)
}

func (et *engineTable) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	et.refresh()
	return et.t.GetNext(ctx, ranges)
}

// --- smReconcileTable ---

// Columns of smReconcileEntry.
const (
	colReconcileEngine   = 2
	colReconcileState    = 3
	colReconcileObject   = 4
	colReconcileObjects  = 5
	colReconcileAttempts = 6
	colReconcileCreated  = 7
	colReconcileResolved = 8
)

// reconcileTable serves smReconcileTable from the farm state, rebuilt on
// every request: it holds at most a few hundred rows.
type reconcileTable struct{ m *Manager }

func newReconcileTable(m *Manager) *reconcileTable { return &reconcileTable{m: m} }

func (rt *reconcileTable) table() *agent.Table {
	t := agent.NewTable(SmReconcileEntry.OID(), colReconcileEngine, colReconcileState, colReconcileObject,
		colReconcileObjects, colReconcileAttempts, colReconcileCreated, colReconcileResolved)
	stamp := func(ns int64) smi.Value {
		if ns == 0 {
			return smi.TimeTicks(0)
		}
		return smi.TimeTicks(rt.m.timeStamp(time.Unix(0, ns)))
	}
	for _, r := range rt.m.state.Reconciles() {
		if r.ID == 0 || r.Engine < MinNodeID || r.Engine > MaxNodeID {
			continue
		}
		first := smi.OID{0, 0}
		if len(r.Before) > 0 {
			first = r.Before[0].Name
		}
		t.SetRow(smi.OID{r.ID}, agent.Columns{
			colReconcileEngine:   smi.Gauge32(r.Engine),
			colReconcileState:    smi.Integer(int32(r.State)),
			colReconcileObject:   smi.ObjectID(first),
			colReconcileObjects:  smi.Gauge32(latch32(uint64(len(r.Before)))),
			colReconcileAttempts: smi.Gauge32(r.Attempts),
			colReconcileCreated:  stamp(r.Created),
			colReconcileResolved: stamp(r.Resolved),
		})
	}
	return t
}

func (rt *reconcileTable) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	return rt.table().Get(ctx, names)
}

func (rt *reconcileTable) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	return rt.table().GetNext(ctx, ranges)
}
