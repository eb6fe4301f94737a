package fanout

import (
	"context"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

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

// janitor expires reservations and cached replies.
func (r *Responder) janitor() {
	defer r.wg.Done()
	iv := min(r.cfg.ReservationTTL/4, 250*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			var expired []*seSet
			for k, st := range r.sets {
				if now.After(st.expires) {
					expired = append(expired, st)
					delete(r.sets, k)
				}
			}
			r.cnt.ReservationsExpired += uint64(len(expired))
			r.evictLocked(now)
			r.ends.expire(now)
			r.mu.Unlock()
			for _, st := range expired {
				r.log.WithField("tx", st.id).Info("fanout: set reservation expired")
				r.tree.CleanupSet(context.Background(), st.id)
			}
		}
	}
}

// evictLocked drops the cached replies that expired and, while the cache
// is over its size, the oldest finished ones. Replies are kept for the
// same TTL from the moment they finish, so both come off the front of
// r.done in order: the cost is the replies dropped, not the cache's size
// (scanning every entry four times a second was 3.5 % of the SEs' CPU
// with 256 SEs in the benchmark's one process). Entries still executing
// are not in r.done and stay: dropping one would let a repeat execute the
// request a second time. Caller holds r.mu.
func (r *Responder) evictLocked(now time.Time) {
	for r.doneHead < len(r.done) {
		d := r.done[r.doneHead]
		if r.cache[d.key] == d.entry { // else dropped already
			if !now.After(d.entry.expires) && len(r.cache) <= r.cfg.ReplyCacheSize {
				break
			}
			delete(r.cache, d.key)
		}
		r.done[r.doneHead] = finished{}
		r.doneHead++
	}
	if r.doneHead > len(r.done)/2 { // reuse the front once half of it is spent
		n := copy(r.done, r.done[r.doneHead:])
		clear(r.done[n:])
		r.done, r.doneHead = r.done[:n], 0
	}
}
