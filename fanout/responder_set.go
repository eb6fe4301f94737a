package fanout

import (
	"context"
	"errors"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// setKey names a reservation on this SE: the manager, its incarnation and
// its transaction.
type setKey struct {
	mgr NodeID
	inc uint64
	tx  uint64
}

// seSet is one SET transaction on this SE between its phases.
type seSet struct {
	id        smi.TxID
	n         int   // request varbinds
	treeIdx   []int // request index of each tree varbind
	proxyVbs  []smi.VarBind
	proxyIdx  []int
	proxyOld  []smi.VarBind // values before, for UNDO
	committed bool          // proxy part written
	expires   time.Time
}

// txID derives the tree's transaction id from (manager, incarnation,
// transaction): distinct managers, and one manager's restarts, never share
// a key for long enough to matter (a clash is refused by the tree as a
// transaction already in progress, never merged).
func txID(k setKey) smi.TxID {
	return smi.TxID{
		Session:     uint32(k.mgr) ^ uint32(k.inc>>32) ^ uint32(k.inc),
		Transaction: uint32(k.tx) ^ uint32(k.tx>>32),
	}
}

// maxBefore bounds the values a TEST answer reports (see setTest): an
// answer must not grow past what a reply may carry because an object held
// a large value.
const maxBefore = 32 << 10

// setPhase runs one SET phase on this SE. A TEST that passes answers
// with this engine's values of the SET's objects before the SET, in the
// request's order: what the manager puts back if this engine ends up
// holding the SET's values while the others undid it (a commit
// interrupted by its death).
func (r *Responder) setPhase(ctx context.Context, k setKey, req *wire.Request) ([]smi.VarBind, error) {
	switch req.Op {
	case wire.OpSetTest:
		return r.setTest(ctx, k, req.VarBinds)
	case wire.OpSetCommit:
		return nil, r.setCommit(ctx, k)
	case wire.OpSetUndo:
		return nil, r.setUndo(ctx, k)
	case wire.OpSetCleanup:
		r.setCleanup(ctx, k)
		return nil, nil
	}
	return nil, &badRequestError{"op " + req.Op.String()}
}

func (r *Responder) takeSet(k setKey) *seSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sets[k]
}

func (r *Responder) setTest(ctx context.Context, k setKey, vbs []smi.VarBind) ([]smi.VarBind, error) {
	r.mu.Lock()
	r.cnt.SetsTested++
	if len(r.sets) >= MaxSets {
		r.mu.Unlock()
		return nil, &smi.Error{Status: smi.ResourceUnavailable, Err: errTooManySets}
	}
	if r.sets[k] != nil {
		r.mu.Unlock()
		return nil, &smi.Error{Status: smi.GenErr, Err: errSetInProgress}
	}
	st := &seSet{id: txID(k), n: len(vbs)}
	r.sets[k] = st // reserved now, so the janitor releases it if we stall
	st.expires = time.Now().Add(r.cfg.ReservationTTL)
	r.mu.Unlock()

	// The tree owns its subtrees; with a local agent, everything else is
	// written there at COMMIT (SNMP has no remote TEST), after reading the
	// old values now so UNDO can put them back.
	var treeVbs []smi.VarBind
	if r.proxy == nil {
		treeVbs = vbs
		for i := range vbs {
			st.treeIdx = append(st.treeIdx, i)
		}
	} else {
		roots := r.tree.Roots()
		for i, vb := range vbs {
			if owned(roots, vb.Name) {
				treeVbs = append(treeVbs, vb)
				st.treeIdx = append(st.treeIdx, i)
			} else {
				st.proxyVbs = append(st.proxyVbs, vb)
				st.proxyIdx = append(st.proxyIdx, i)
			}
		}
	}
	fail := func(err error) ([]smi.VarBind, error) {
		r.tree.CleanupSet(context.WithoutCancel(ctx), st.id)
		r.mu.Lock()
		delete(r.sets, k)
		r.mu.Unlock()
		return nil, err
	}
	if err := r.tree.TestSet(ctx, st.id, treeVbs); err != nil {
		status, idx := smi.StatusOf(err)
		if idx >= 0 && idx < len(st.treeIdx) {
			idx = st.treeIdx[idx]
		}
		return fail(&smi.Error{Status: status, Index: idx, Err: err})
	}
	if len(st.proxyVbs) > 0 {
		names := make([]smi.OID, len(st.proxyVbs))
		for i, vb := range st.proxyVbs {
			names[i] = vb.Name
		}
		old, err := r.proxy.get(ctx, names)
		r.countProxy(err)
		if err != nil {
			return fail(&smi.Error{Status: smi.ResourceUnavailable, Index: st.proxyIdx[0], Err: err})
		}
		for i, v := range old {
			if v.Type.IsException() {
				return fail(&smi.Error{Status: smi.NotWritable, Index: st.proxyIdx[i], Err: errNoSuchProxied})
			}
			st.proxyOld = append(st.proxyOld, smi.VarBind{Name: names[i], Value: v})
		}
	}
	return r.before(ctx, st, vbs), nil
}

// before is what the SET's objects hold now, in the request's order, or
// nil when that cannot be told whole (a read failing, over maxBefore): a
// TEST's answer is only ever a hint for the manager, never a reason to
// refuse the SET.
func (r *Responder) before(ctx context.Context, st *seSet, vbs []smi.VarBind) []smi.VarBind {
	out := make([]smi.VarBind, len(vbs))
	if len(st.treeIdx) > 0 {
		names := make([]smi.OID, len(st.treeIdx))
		for j, i := range st.treeIdx {
			names[j] = vbs[i].Name
		}
		got, err := r.tree.Get(ctx, names)
		if err != nil || len(got) != len(names) {
			return nil
		}
		for j, i := range st.treeIdx {
			out[i] = smi.VarBind{Name: vbs[i].Name, Value: got[j].Value}
		}
	}
	for j, i := range st.proxyIdx {
		out[i] = st.proxyOld[j]
	}
	if n, err := ber.VarBindsLen(out); err != nil || n > maxBefore {
		return nil
	}
	return out
}

func (r *Responder) setCommit(ctx context.Context, k setKey) error {
	st := r.takeSet(k)
	if st == nil {
		return smi.ErrUnknownTx // expired, or TEST never arrived
	}
	// A commit must finish even if the budget ran out: half-applied is
	// worse than late.
	ctx = context.WithoutCancel(ctx)
	r.mu.Lock()
	r.cnt.SetsCommitted++
	st.expires = time.Now().Add(r.cfg.ReservationTTL)
	r.mu.Unlock()
	if err := r.tree.CommitSet(ctx, st.id); err != nil {
		status, idx := smi.StatusOf(err)
		if idx >= 0 && idx < len(st.treeIdx) {
			idx = st.treeIdx[idx]
		}
		return &smi.Error{Status: status, Index: idx, Err: err}
	}
	if len(st.proxyVbs) > 0 {
		pctx, cancel := context.WithTimeout(ctx, DefaultBudget)
		defer cancel()
		refused, idx, err := r.proxy.set(pctx, st.proxyVbs)
		r.countProxy(err)
		r.mu.Lock()
		st.committed = !refused // a refusal wrote nothing; a timeout may have written
		r.mu.Unlock()
		if err != nil {
			if idx < len(st.proxyIdx) {
				idx = st.proxyIdx[idx]
			}
			return &smi.Error{Status: smi.CommitFailed, Index: idx, Err: err}
		}
	}
	return nil
}

func (r *Responder) setUndo(ctx context.Context, k setKey) error {
	st := r.takeSet(k)
	if st == nil {
		return smi.ErrUnknownTx
	}
	ctx = context.WithoutCancel(ctx)
	r.mu.Lock()
	r.cnt.SetsUndone++
	r.mu.Unlock()
	var first error
	if err := r.tree.UndoSet(ctx, st.id); err != nil {
		status, idx := smi.StatusOf(err)
		if idx >= 0 && idx < len(st.treeIdx) {
			idx = st.treeIdx[idx]
		}
		first = &smi.Error{Status: status, Index: idx, Err: err}
	}
	if st.committed && len(st.proxyOld) > 0 {
		pctx, cancel := context.WithTimeout(ctx, DefaultBudget)
		defer cancel()
		_, idx, err := r.proxy.set(pctx, st.proxyOld)
		r.countProxy(err)
		if err != nil && first == nil {
			if idx < len(st.proxyIdx) {
				idx = st.proxyIdx[idx]
			}
			first = &smi.Error{Status: smi.UndoFailed, Index: idx, Err: err}
		}
	}
	return first
}

func (r *Responder) setCleanup(ctx context.Context, k setKey) {
	r.mu.Lock()
	st := r.sets[k]
	delete(r.sets, k)
	r.mu.Unlock()
	if st != nil {
		r.tree.CleanupSet(context.WithoutCancel(ctx), st.id)
	}
}

var (
	errTooManySets   = errors.New("fanout: too many set transactions in progress")
	errSetInProgress = errors.New("fanout: set transaction already in progress")
	errNoSuchProxied = errors.New("fanout: the local agent has no such object to set")
)
