package mib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// DefaultStateStaleAfter is how old the last state received from the
// active manager may be when this manager takes over for the sums to be
// continued without a discontinuity: longer than the replication interval
// (1 s) plus the takeover time (0.7 s by default), so only a replication
// that had stopped (or never started) makes it too old.
const DefaultStateStaleAfter = 3 * time.Second

// FarmStateConfig configures a FarmState.
type FarmStateConfig struct {
	// Farm is the fan-out the reconciliations SET through. Required.
	Farm Farm
	// Active says whether this manager may SET now (reconciliations run
	// only then); nil = always.
	Active func() bool
	// MaxTrackedCounters: see DefaultMaxTrackedCounters.
	MaxTrackedCounters int
	// StaleAfter: see DefaultStateStaleAfter.
	StaleAfter time.Duration
	// Changed, if set, is called when something the backups keep changed
	// (a sum moved, a reconciliation came or went). It must not block:
	// the replication coalesces.
	Changed func()
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Logger gets one line per reconciliation and per takeover verdict;
	// nil = discard.
	Logger logrus.FieldLogger
}

// FarmState is what a manager keeps of its farm beyond what the farm
// tells it, shared by the node's frontends (ManagerConfig.State): the
// counter sums that smAggregateSum keeps monotonic, and the engines that
// SETs answered undoFailed left behind (smReconcileTable). The active
// manager replicates it to its backups (Export, Adopt; package
// internal/replica carries it), so a backup that takes over continues the
// same sums and reconciliations.
type FarmState struct {
	cfg     FarmStateConfig
	now     func() time.Time
	log     logrus.FieldLogger
	tracker *counterTracker
	recon   *reconciler
	kick    chan struct{}

	mu         sync.Mutex
	adopted    time.Time // when a state from the active manager was last adopted
	partial    bool      // that state left sums out
	adoptedAny bool
}

// NewFarmState returns the state of a farm; Run reconciles.
func NewFarmState(cfg FarmStateConfig) (*FarmState, error) {
	if cfg.Farm == nil {
		return nil, fmt.Errorf("%w: FarmState needs a Farm", ErrInvalid)
	}
	s := &FarmState{cfg: cfg, now: cfg.Now, log: cfg.Logger, kick: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		s.log = l
	}
	if s.cfg.StaleAfter <= 0 {
		s.cfg.StaleAfter = DefaultStateStaleAfter
	}
	s.tracker = newCounterTracker(cfg.MaxTrackedCounters, s.now)
	s.tracker.changed = cfg.Changed
	s.recon = &reconciler{farm: cfg.Farm, active: cfg.Active, now: s.now, log: s.log, changed: cfg.Changed}
	return s, nil
}

// Run puts engines back (see smReconcileTable) until ctx is done: every
// ReconcileInterval, and at once when an engine with a pending row comes
// up (EngineUp).
func (s *FarmState) Run(ctx context.Context) {
	t := time.NewTicker(ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		s.Reconcile(ctx)
	}
}

// Reconcile makes one attempt on every pending row that is due and whose
// engine is up, if this manager is active.
func (s *FarmState) Reconcile(ctx context.Context) { s.recon.pass(ctx) }

// EngineUp tells the state that an engine came up (first seen, back, or
// restarted): its pending rows are tried now.
func (s *FarmState) EngineUp(id fanout.NodeID) {
	if s.recon.engineUp(id) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Diverged records the engines an undoFailed SET may have left behind:
// what the handlers call when err, from a farm UNDO, carries them.
func (s *FarmState) Diverged(err error) {
	var pe *fanout.PhaseError
	if errors.As(err, &pe) {
		s.recon.add(pe.Diverged)
	}
}

// Superseded takes objects that a SET wrote on engines, and succeeded,
// off the rows still to put back.
func (s *FarmState) Superseded(engines []fanout.NodeID, names []smi.OID) {
	s.recon.supersede(engines, names)
}

// Pending is smReconcilePending.
func (s *FarmState) Pending() int { return s.recon.pending() }

// Reconciles returns smReconcileTable, by index.
func (s *FarmState) Reconciles() []wire.Reconcile { return s.recon.rows() }

// Export fills st with what the backups keep: the sums (most recently
// used first), when a sum last jumped, and the reconciliations.
func (s *FarmState) Export(st *wire.State) {
	sums, disc := s.tracker.export()
	st.Sums = sums
	st.Discontinuity = 0
	if !disc.IsZero() {
		st.Discontinuity = disc.UnixNano()
	}
	st.Reconciles, st.NextReconcile = s.recon.export()
}

// Adopt takes a state received from the active manager.
func (s *FarmState) Adopt(st *wire.State) {
	var disc time.Time
	if st.Discontinuity != 0 {
		disc = time.Unix(0, st.Discontinuity)
	}
	s.tracker.adopt(st.Sums, disc)
	s.recon.adopt(st.Reconciles, st.NextReconcile)
	s.mu.Lock()
	s.adopted, s.partial, s.adoptedAny = s.now(), st.Flags&wire.FlagPartial != 0, true
	s.mu.Unlock()
}

// Activated is called when this manager becomes the active one (a
// takeover, or an election: after a restart of every manager, or one
// quick enough that no backup took over, the sums start again from the
// engines' values): unless the last state it received vouches for every
// sum (one was received, recently, whole), the sums may have jumped, and
// smAggregateDiscontinuityTime says so. takeover says whether a
// previous active manager stopped (logged as a warning then).
func (s *FarmState) Activated(takeover bool) {
	now := s.now()
	s.mu.Lock()
	why := ""
	switch {
	case !s.adoptedAny:
		why = "no state received from the previous manager"
	case now.Sub(s.adopted) > s.cfg.StaleAfter:
		why = fmt.Sprintf("the previous manager's last state is %v old", now.Sub(s.adopted).Round(time.Millisecond))
	case s.partial:
		why = "the previous manager's last state left sums out"
	}
	s.mu.Unlock()
	if why == "" {
		s.log.Info("mib: counter sums continue from the previous manager's state")
		return
	}
	s.tracker.markDiscontinuity(now)
	l := s.log.WithField("reason", why)
	if takeover {
		l.Warn("mib: counter sums may jump: smAggregateDiscontinuityTime moved")
	} else {
		l.Info("mib: active without a previous manager's state: smAggregateDiscontinuityTime moved")
	}
}
