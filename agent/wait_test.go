package agent_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// slowHandler is a handler that is not agent.Local (it stands for the
// farm), recording every phase it sees.
type slowHandler struct {
	gets, nexts, tests, cleanups atomic.Int32
}

func (h *slowHandler) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	h.gets.Add(1)
	out := make([]smi.Value, len(names))
	for i := range out {
		out[i] = smi.Integer(1)
	}
	return out, nil
}

func (h *slowHandler) GetNext(_ context.Context, rs []smi.Range) ([]smi.VarBind, error) {
	h.nexts.Add(1)
	out := make([]smi.VarBind, len(rs))
	for i, r := range rs {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
	}
	return out, nil
}

func (h *slowHandler) TestSet(context.Context, smi.TxID, []smi.VarBind) (int, error) {
	h.tests.Add(1)
	return 0, nil
}
func (h *slowHandler) CommitSet(context.Context, smi.TxID, []smi.VarBind) (int, error) {
	return 0, nil
}
func (h *slowHandler) UndoSet(context.Context, smi.TxID, []smi.VarBind) (int, error) {
	return 0, nil
}
func (h *slowHandler) CleanupSet(context.Context, smi.TxID, []smi.VarBind) { h.cleanups.Add(1) }

// hook is a frontend's wait hook: it counts its calls and answers err.
type hook struct {
	calls atomic.Int32
	err   error
}

func (k *hook) wait() error {
	k.calls.Add(1)
	return k.err
}

func waitTree(t *testing.T) (*agent.Tree, *slowHandler, smi.OID, smi.OID) {
	t.Helper()
	tr := agent.NewTree()
	slow := &slowHandler{}
	slowRoot, local := smi.OID{1, 3, 6, 1, 4, 1, 9, 1}, smi.OID{1, 3, 6, 1, 4, 1, 9, 2}
	if err := tr.Register(slowRoot, slow); err != nil {
		t.Fatal(err)
	}
	if err := tr.RegisterScalar(local, &agent.Scalar{Type: smi.TypeInteger,
		Value: func(context.Context) (smi.Value, error) { return smi.Integer(5), nil },
		Set:   func(context.Context, smi.Value) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	return tr, slow, slowRoot.Append(1, 0), local.Append(0)
}

// The Tree calls the wait hook before a handler that may block, never
// for a request that only reaches Local ones.
func TestWaitHookOnlyBeforeBlockingHandlers(t *testing.T) {
	tr, slow, slowInst, localInst := waitTree(t)
	k := &hook{}
	ctx := agent.WithWait(context.Background(), k.wait)
	if _, err := tr.Get(ctx, []smi.OID{localInst, localInst}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.GetNext(ctx, []smi.Range{{Start: localInst[:len(localInst)-1], End: localInst.Append(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Set(ctx, smi.TxID{Transaction: 1}, []smi.VarBind{{Name: localInst, Value: smi.Integer(3)}}); err != nil {
		t.Fatal(err)
	}
	if n := k.calls.Load(); n != 0 {
		t.Fatalf("hook called %d times for Local handlers only", n)
	}
	if _, err := tr.Get(ctx, []smi.OID{localInst, slowInst}); err != nil {
		t.Fatal(err)
	}
	if k.calls.Load() == 0 || slow.gets.Load() != 1 {
		t.Fatalf("hook %d calls, handler %d gets: want the hook before the handler", k.calls.Load(), slow.gets.Load())
	}
	k.calls.Store(0)
	// One range starting before both subtrees: the slow one comes first.
	if _, err := tr.GetNext(ctx, []smi.Range{{Start: localInst[:len(localInst)-2]}}); err != nil {
		t.Fatal(err)
	}
	if k.calls.Load() == 0 {
		t.Error("GetNext reached the slow handler without the hook")
	}
}

// A refusal fails the request before any blocking handler sees it:
// genErr for reads, resourceUnavailable for a SET (whose reservations on
// Local handlers are still released), ErrBusy for errors.Is.
func TestWaitHookRefusal(t *testing.T) {
	tr, slow, slowInst, localInst := waitTree(t)
	k := &hook{err: agent.ErrBusy}
	ctx := agent.WithWait(context.Background(), k.wait)

	_, err := tr.Get(ctx, []smi.OID{localInst, slowInst})
	if st, idx := smi.StatusOf(err); !errors.Is(err, agent.ErrBusy) || st != smi.GenErr || idx != 1 {
		t.Errorf("Get refused: %v (status %v index %d), want ErrBusy as genErr at index 1", err, st, idx)
	}
	_, err = tr.GetNext(ctx, []smi.Range{{Start: slowInst}, {Start: localInst[:len(localInst)-1]}})
	if !errors.Is(err, agent.ErrBusy) {
		t.Errorf("GetNext refused: %v", err)
	}
	_, err = tr.GetBulk(ctx, 0, 5, []smi.Range{{Start: slowInst[:len(slowInst)-2]}}, 0)
	if !errors.Is(err, agent.ErrBusy) {
		t.Errorf("GetBulk refused: %v", err)
	}
	if slow.gets.Load()+slow.nexts.Load() != 0 {
		t.Errorf("the blocking handler ran %d times after a refusal", slow.gets.Load()+slow.nexts.Load())
	}

	err = tr.Set(ctx, smi.TxID{Transaction: 2}, []smi.VarBind{
		{Name: localInst, Value: smi.Integer(4)},
		{Name: slowInst, Value: smi.Integer(4)},
	})
	if st, idx := smi.StatusOf(err); !errors.Is(err, agent.ErrBusy) || st != smi.ResourceUnavailable || idx != 1 {
		t.Errorf("SET refused: %v (status %v index %d), want ErrBusy as resourceUnavailable at index 1", err, st, idx)
	}
	if slow.tests.Load() != 0 || slow.cleanups.Load() != 0 {
		t.Errorf("refused SET: %d tests, %d cleanups on the blocking handler, want none", slow.tests.Load(), slow.cleanups.Load())
	}
	// The transaction is gone: the same id can be tested again.
	k.err = nil
	if err := tr.Set(ctx, smi.TxID{Transaction: 2}, []smi.VarBind{{Name: slowInst, Value: smi.Integer(4)}}); err != nil {
		t.Errorf("SET after the refusal: %v", err)
	}
	if slow.tests.Load() != 1 || slow.cleanups.Load() != 1 {
		t.Errorf("admitted SET: %d tests, %d cleanups, want 1 and 1", slow.tests.Load(), slow.cleanups.Load())
	}
}
