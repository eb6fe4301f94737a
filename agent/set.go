package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// setTx is the state of one SET between its phases.
type setTx struct {
	started time.Time
	vbs     []smi.VarBind
	groups  []*setGroup
}

type setGroup struct {
	batch
	setter    Setter
	vbs       []smi.VarBind
	tested    bool // TestSet was called, so CleanupSet is owed
	committed bool // CommitSet was called, so UndoSet may be owed
}

// TestSet runs the test phase of transaction tx: every varbind is checked
// by the handler owning it, which reserves what COMMIT will need. On
// failure the error is a *smi.Error naming the varbind; the caller must
// still call CleanupSet.
func (t *Tree) TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) error {
	st := &setTx{started: t.now(), vbs: vbs}
	if err := t.addSet(tx, st); err != nil {
		return err
	}
	regs := make([]*registration, len(vbs))
	for i, vb := range vbs {
		reg := t.lookup(vb.Name)
		if reg == nil {
			return &smi.Error{Status: smi.NotWritable, Index: i, Err: fmt.Errorf("set %s: no such object", vb.Name)}
		}
		if _, ok := reg.h.(Setter); !ok {
			return &smi.Error{Status: smi.NotWritable, Index: i, Err: fmt.Errorf("set %s: read-only subtree", vb.Name)}
		}
		regs[i] = reg
	}
	for _, b := range groupBy(len(vbs), func(i int) *registration { return regs[i] }) {
		g := &setGroup{batch: b, setter: b.reg.h.(Setter)}
		for _, i := range b.idx {
			g.vbs = append(g.vbs, vbs[i])
		}
		st.groups = append(st.groups, g)
	}
	for _, g := range st.groups {
		// Refused before the handler saw it: nothing to clean up there.
		if err := waitFor(ctx, g.reg, g.idx[0], smi.ResourceUnavailable); err != nil {
			return err
		}
		g.tested = true
		if j, err := g.setter.TestSet(ctx, tx, g.vbs); err != nil {
			return g.fail(j, err, smi.GenErr, "test")
		}
	}
	return nil
}

// CommitSet runs the commit phase of a transaction that passed TestSet.
// Every group is committed even after a failure, so that UndoSet has one
// consistent notion of what was attempted.
func (t *Tree) CommitSet(ctx context.Context, tx smi.TxID) error {
	st, err := t.getSet(tx)
	if err != nil {
		return &smi.Error{Status: smi.CommitFailed, Err: err}
	}
	for _, g := range st.groups {
		if err := waitFor(ctx, g.reg, g.idx[0], smi.CommitFailed); err != nil {
			return err
		}
		g.committed = true
		if j, err := g.setter.CommitSet(ctx, tx, g.vbs); err != nil {
			return g.fail(j, err, smi.CommitFailed, "commit")
		}
	}
	return nil
}

// UndoSet reverts every group that was committed.
func (t *Tree) UndoSet(ctx context.Context, tx smi.TxID) error {
	st, err := t.getSet(tx)
	if err != nil {
		return &smi.Error{Status: smi.UndoFailed, Err: err}
	}
	var first error
	for _, g := range st.groups {
		if !g.committed {
			continue
		}
		if err := waitFor(ctx, g.reg, g.idx[0], smi.UndoFailed); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if j, err := g.setter.UndoSet(ctx, tx, g.vbs); err != nil && first == nil {
			first = g.fail(j, err, smi.UndoFailed, "undo")
		}
	}
	return first
}

// CleanupSet ends the transaction: every handler that saw TestSet releases
// its reservations. It has no answer, as in AgentX.
func (t *Tree) CleanupSet(ctx context.Context, tx smi.TxID) {
	t.setMu.Lock()
	st := t.sets[tx]
	delete(t.sets, tx)
	t.setMu.Unlock()
	if st == nil {
		return
	}
	for _, g := range st.groups {
		if g.tested {
			// Reservations are released whatever the hook says.
			_ = waitFor(ctx, g.reg, g.idx[0], smi.GenErr)
			g.setter.CleanupSet(ctx, tx, g.vbs)
		}
	}
}

// Set runs all phases for a frontend that has no phases of its own (the UDP
// agent): test, commit, undo on a failed commit, cleanup. Per RFC 3416
// §4.2.5 a failed commit answers commitFailed when the undo worked and
// undoFailed when it did not.
func (t *Tree) Set(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) error {
	defer t.CleanupSet(context.WithoutCancel(ctx), tx)
	if err := t.TestSet(ctx, tx, vbs); err != nil {
		return err
	}
	if err := t.CommitSet(ctx, tx); err != nil {
		// Undo must run even when the request's context is done: a
		// half-applied SET is worse than a late answer.
		uctx := context.WithoutCancel(ctx)
		_, idx := smi.StatusOf(err)
		if uerr := t.UndoSet(uctx, tx); uerr != nil {
			return &smi.Error{Status: smi.UndoFailed, Index: idx, Err: fmt.Errorf("%w (after %v)", uerr, err)}
		}
		return &smi.Error{Status: smi.CommitFailed, Index: idx, Err: err}
	}
	return nil
}

func (g *setGroup) fail(j int, err error, def smi.ErrorStatus, phase string) error {
	idx := g.idx[0]
	if j >= 0 && j < len(g.idx) {
		idx = g.idx[j]
	}
	return &smi.Error{Status: statusFor(err, def), Index: idx, Err: fmt.Errorf("%s %s: %w", phase, g.reg.root, err)}
}

// addSet records a new transaction. When the table is full, transactions
// abandoned for longer than PendingSetTTL are cleaned up first, so handlers
// release what they reserved for a master that went away mid-SET.
func (t *Tree) addSet(tx smi.TxID, st *setTx) error {
	var expired []smi.TxID
	defer func() {
		for _, id := range expired {
			t.CleanupSet(context.Background(), id)
		}
	}()
	t.setMu.Lock()
	defer t.setMu.Unlock()
	if _, dup := t.sets[tx]; dup {
		return &smi.Error{Status: smi.GenErr, Err: fmt.Errorf("set transaction %v already in progress", tx)}
	}
	if len(t.sets) >= MaxPendingSets {
		cutoff := t.now().Add(-PendingSetTTL)
		for id, old := range t.sets {
			if old.started.Before(cutoff) {
				expired = append(expired, id)
			}
		}
		if len(t.sets)-len(expired) >= MaxPendingSets {
			return &smi.Error{Status: smi.ResourceUnavailable, Err: fmt.Errorf("%d set transactions in progress", len(t.sets))}
		}
	}
	t.sets[tx] = st
	return nil
}

func (t *Tree) getSet(tx smi.TxID) (*setTx, error) {
	t.setMu.Lock()
	defer t.setMu.Unlock()
	st := t.sets[tx]
	if st == nil {
		return nil, fmt.Errorf("%w: %v", smi.ErrUnknownTx, tx)
	}
	return st, nil
}
