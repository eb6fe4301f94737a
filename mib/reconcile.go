package mib

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Bounds of smReconcileTable (its DESCRIPTION states them).
const (
	// MaxReconcilePending bounds the engines waiting to be put back; a
	// divergence beyond it is logged and not kept.
	MaxReconcilePending = 256
	// MaxReconcileResolved is how many resolved rows stay for the record.
	MaxReconcileResolved = 32
)

// Timing of the attempts to put an engine back.
const (
	// reconcileFirst is how long after the undoFailed answer the first
	// attempt waits for an engine that looks up: one that died during the
	// SET is declared down within about a second, and an attempt on it
	// before that would only wait for the phase deadline.
	reconcileFirst = time.Second
	// reconcileBackoffMax caps the doubling wait after failed attempts.
	reconcileBackoffMax = 30 * time.Second
	// ReconcileInterval is how often Run looks for engines to put back
	// (an engine coming up is also a reason to look at once).
	ReconcileInterval = 500 * time.Millisecond
)

// reconcileSession is the farm SET session of reconciliations: distinct
// from the Coordinator's own Set (^0) and the handlers' (setSession).
const reconcileSession = ^uint32(0) - 2

// reconcileEntry is one row of smReconcileTable.
type reconcileEntry struct {
	wire.Reconcile
	next    time.Time // next attempt, on this manager's clock
	backoff time.Duration
}

// reconciler remembers the engines an undoFailed SET may have left
// holding the SET's values (fanout.Diverged) and, while this manager is
// the active one, writes their values from before the SET back once they
// are up: the outcome the NMS was told.
type reconciler struct {
	farm    Farm
	active  func() bool
	now     func() time.Time
	log     logrus.FieldLogger
	changed func()
	seq     atomic.Uint32 // farm SET keys

	mu      sync.Mutex
	nextID  uint32
	entries []*reconcileEntry // by id
	passing sync.Mutex        // one pass at a time
}

func (rc *reconciler) notify() {
	if rc.changed != nil {
		rc.changed()
	}
}

// writable is the part of vbs a SET can write back: values, not the
// exceptions an engine answers for an object it lacks.
func writable(vbs []smi.VarBind) []smi.VarBind {
	var out []smi.VarBind
	for _, vb := range vbs {
		if hasValue(vb.Value) {
			out = append(out, vb)
		}
	}
	return out
}

// add records the engines of an undoFailed SET.
func (rc *reconciler) add(ds []fanout.Diverged) {
	if len(ds) == 0 {
		return
	}
	now := rc.now()
	rc.mu.Lock()
	for _, d := range ds {
		before := writable(d.Before)
		state := wire.ReconcilePending
		if d.Before == nil || len(before) == 0 {
			// Only the names, to show which objects the SET wrote.
			state, before = wire.ReconcileImpossible, make([]smi.VarBind, len(d.After))
			for i, vb := range d.After {
				before[i] = smi.VarBind{Name: vb.Name, Value: smi.Null()}
			}
		} else {
			// An object already waiting to be put back on this engine
			// keeps its older value: that one is from before the first
			// SET that failed, and the NMS was told both failed.
			before = slices.DeleteFunc(before, func(vb smi.VarBind) bool { return rc.pendingLocked(d.Engine, vb.Name) })
			if len(before) == 0 {
				continue
			}
		}
		if state == wire.ReconcilePending && rc.countLocked(wire.ReconcilePending) >= MaxReconcilePending {
			rc.log.WithField("engine", d.Engine).Warn("mib: too many engines to reconcile; this one is not kept")
			continue
		}
		rc.nextID++
		if rc.nextID == 0 {
			rc.nextID = 1
		}
		e := &reconcileEntry{Reconcile: wire.Reconcile{ID: rc.nextID, Engine: uint32(d.Engine), Incarnation: d.Incarnation,
			State: state, Created: now.UnixNano(), Before: before}, next: now.Add(reconcileFirst)}
		if state != wire.ReconcilePending {
			e.Resolved = now.UnixNano()
		}
		rc.entries = append(rc.entries, e)
		l := rc.log.WithFields(logrus.Fields{"engine": d.Engine, "row": e.ID, "objects": len(before)})
		if state == wire.ReconcilePending {
			l.Warn("mib: SET answered undoFailed; the engine is put back to its values before the SET once it is up")
		} else {
			l.Warn("mib: SET answered undoFailed; the engine did not report its values before the SET, it cannot be put back")
		}
	}
	rc.trimLocked()
	rc.mu.Unlock()
	rc.notify()
}

func (rc *reconciler) pendingLocked(engine fanout.NodeID, name smi.OID) bool {
	for _, e := range rc.entries {
		if e.State != wire.ReconcilePending || e.Engine != uint32(engine) {
			continue
		}
		for _, vb := range e.Before {
			if vb.Name.Equal(name) {
				return true
			}
		}
	}
	return false
}

func (rc *reconciler) countLocked(s wire.ReconcileState) int {
	n := 0
	for _, e := range rc.entries {
		if e.State == s {
			n++
		}
	}
	return n
}

// trimLocked drops the oldest resolved rows beyond MaxReconcileResolved.
func (rc *reconciler) trimLocked() {
	extra := len(rc.entries) - rc.countLocked(wire.ReconcilePending) - MaxReconcileResolved
	if extra <= 0 {
		return
	}
	rc.entries = slices.DeleteFunc(rc.entries, func(e *reconcileEntry) bool {
		if extra > 0 && e.State != wire.ReconcilePending {
			extra--
			return true
		}
		return false
	})
}

// supersede takes names off the pending rows of engines: a SET through
// this manager wrote them there and succeeded, so the values to put back
// are no longer the farm's.
func (rc *reconciler) supersede(engines []fanout.NodeID, names []smi.OID) {
	now := rc.now()
	rc.mu.Lock()
	moved := false
	for _, e := range rc.entries {
		if e.State != wire.ReconcilePending || !slices.Contains(engines, fanout.NodeID(e.Engine)) {
			continue
		}
		n := len(e.Before)
		e.Before = slices.DeleteFunc(slices.Clone(e.Before), func(vb smi.VarBind) bool {
			return slices.ContainsFunc(names, vb.Name.Equal)
		})
		if len(e.Before) == n {
			continue
		}
		moved = true
		if len(e.Before) == 0 {
			e.State, e.Resolved = wire.ReconcileSuperseded, now.UnixNano()
			rc.log.WithFields(logrus.Fields{"engine": e.Engine, "row": e.ID}).Info("mib: reconciliation superseded by a later SET")
		}
	}
	if moved {
		rc.trimLocked()
	}
	rc.mu.Unlock()
	if moved {
		rc.notify()
	}
}

// engineUp makes the pending rows of an engine that came up due now.
func (rc *reconciler) engineUp(id fanout.NodeID) bool {
	now := rc.now()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	due := false
	for _, e := range rc.entries {
		if e.State == wire.ReconcilePending && e.Engine == uint32(id) {
			e.next, due = now, true
		}
	}
	return due
}

// pass tries once every pending row whose engine is up and whose time
// has come, one after the other.
func (rc *reconciler) pass(ctx context.Context) {
	rc.passing.Lock()
	defer rc.passing.Unlock()
	if rc.active != nil && !rc.active() {
		return
	}
	now := rc.now()
	rc.mu.Lock()
	var due []*reconcileEntry
	for _, e := range rc.entries {
		if e.State == wire.ReconcilePending && !now.Before(e.next) {
			due = append(due, e)
		}
	}
	rc.mu.Unlock()
	if len(due) == 0 {
		return
	}
	up := make(map[fanout.NodeID]fanout.Engine)
	for _, row := range rc.farm.Engines() {
		if row.State == fanout.EngineUp {
			up[row.ID] = row
		}
	}
	for _, e := range due {
		if ctx.Err() != nil {
			return
		}
		rc.mu.Lock()
		id, before := fanout.NodeID(e.Engine), e.Before
		pending := e.State == wire.ReconcilePending
		rc.mu.Unlock()
		if _, ok := up[id]; !ok || !pending {
			continue
		}
		err := rc.attempt(ctx, id, before)
		if errors.Is(err, fanout.ErrNotActive) {
			return // a backup again: nothing to count
		}
		rc.resolve(e, err)
	}
}

// attempt writes before back on engine id with a SET of its own.
func (rc *reconciler) attempt(ctx context.Context, id fanout.NodeID, before []smi.VarBind) error {
	key := smi.TxID{Session: reconcileSession, Transaction: rc.seq.Add(1)}
	defer rc.farm.CleanupSet(context.WithoutCancel(ctx), key)
	if _, err := rc.farm.TestSet(ctx, key, []fanout.NodeID{id}, before); err != nil {
		return err
	}
	// A COMMIT that fails leaves the engine as unknown as before: the row
	// stays pending and the next attempt writes the same values again.
	_, err := rc.farm.CommitSet(ctx, key)
	return err
}

func (rc *reconciler) resolve(e *reconcileEntry, err error) {
	now := rc.now()
	rc.mu.Lock()
	if e.State != wire.ReconcilePending {
		rc.mu.Unlock()
		return // superseded meanwhile
	}
	e.Attempts++
	l := rc.log.WithFields(logrus.Fields{"engine": e.Engine, "row": e.ID, "attempt": e.Attempts})
	if err == nil {
		e.State, e.Resolved = wire.ReconcileDone, now.UnixNano()
		rc.trimLocked()
		l.Info("mib: engine put back to its values before the interrupted SET")
	} else {
		e.backoff = min(max(2*e.backoff, reconcileFirst), reconcileBackoffMax)
		e.next = now.Add(e.backoff)
		if e.Attempts == 1 {
			l.WithError(err).Warn("mib: putting the engine back failed; retrying")
		}
	}
	rc.mu.Unlock()
	rc.notify()
}

// rows returns the table, by id.
func (rc *reconciler) rows() []wire.Reconcile {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]wire.Reconcile, len(rc.entries))
	for i, e := range rc.entries {
		out[i] = e.Reconcile
	}
	return out
}

// export is the table for the backups and the id of the next row.
func (rc *reconciler) export() ([]wire.Reconcile, uint32) {
	rows := rc.rows()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rows, rc.nextID
}

// adopt replaces the table with the active manager's. A row this manager
// had as well keeps its timer, so a takeover does not make every engine
// due at once.
func (rc *reconciler) adopt(rows []wire.Reconcile, nextID uint32) {
	now := rc.now()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	old := make(map[uint32]*reconcileEntry, len(rc.entries))
	for _, e := range rc.entries {
		old[e.ID] = e
	}
	entries := make([]*reconcileEntry, 0, len(rows))
	for _, r := range rows {
		if !r.State.Valid() {
			continue
		}
		e := &reconcileEntry{Reconcile: r, next: now}
		if o := old[r.ID]; o != nil {
			e.next, e.backoff = o.next, o.backoff
		} else if created := time.Unix(0, r.Created); now.Sub(created) < reconcileFirst {
			e.next = created.Add(reconcileFirst)
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *reconcileEntry) int { return int(int64(a.ID) - int64(b.ID)) })
	rc.entries = entries
	rc.nextID = max(rc.nextID, nextID)
	for _, e := range entries {
		rc.nextID = max(rc.nextID, e.ID)
	}
	rc.trimLocked()
}

// pending is smReconcilePending.
func (rc *reconciler) pending() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.countLocked(wire.ReconcilePending)
}
