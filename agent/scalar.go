package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Scalar is a handler for one scalar object: registered at the object's
// OID, it has the single instance OID.0. It is read-write when Set is
// non-nil.
type Scalar struct {
	// Value returns the current value. Required. It must answer from
	// memory, without blocking on I/O: a Scalar is Local.
	Value func(ctx context.Context) (smi.Value, error)

	// Type is the object's syntax type; a SET of another type is wrongType.
	Type smi.Type
	// Check validates a new value in the test phase (range, length,
	// enumeration); return a *smi.Error such as wrongValue. Optional.
	Check func(v smi.Value) error
	// Set applies a value in the commit phase, and the old value again in
	// the undo phase. nil makes the object read-only.
	Set func(ctx context.Context, v smi.Value) error

	mu  sync.Mutex
	old map[smi.TxID]smi.Value // value before commit, per transaction, for undo
}

// Const is a read-only scalar with a fixed value.
func Const(v smi.Value) *Scalar {
	return &Scalar{Value: func(context.Context) (smi.Value, error) { return v, nil }, Type: v.Type}
}

// Func is a read-only scalar computed on every read.
func Func(f func() smi.Value) *Scalar {
	return &Scalar{Value: func(context.Context) (smi.Value, error) { return f(), nil }}
}

// RegisterScalar registers s at the object OID oid (its instance is oid.0).
func (t *Tree) RegisterScalar(oid smi.OID, s *Scalar) error {
	return t.Register(oid, &scalarHandler{oid: oid.Clone(), inst: oid.Append(0), s: s})
}

type scalarHandler struct {
	oid, inst smi.OID
	s         *Scalar
}

// AnswersFromMemory implements Local: a Scalar's Value must not block.
func (*scalarHandler) AnswersFromMemory() {}

func (h *scalarHandler) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, len(names))
	for i, n := range names {
		if !n.Equal(h.inst) {
			out[i] = smi.NoSuchInstance()
			continue
		}
		v, err := h.s.Value(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (h *scalarHandler) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	for i, r := range ranges {
		if !r.Contains(h.inst) {
			out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
			continue
		}
		v, err := h.s.Value(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = smi.VarBind{Name: h.inst, Value: v}
	}
	return out, nil
}

func (h *scalarHandler) TestSet(_ context.Context, _ smi.TxID, vbs []smi.VarBind) (int, error) {
	for i, vb := range vbs {
		switch {
		case h.s.Set == nil:
			return i, smi.Errorf(smi.NotWritable, h.oid.String()+" is read-only")
		case !vb.Name.Equal(h.inst):
			return i, smi.Errorf(smi.NoCreation, "no instance "+vb.Name.String())
		case i > 0:
			return i, smi.Errorf(smi.InconsistentName, "set twice in one request")
		case h.s.Type != 0 && vb.Value.Type != h.s.Type:
			return i, smi.Errorf(smi.WrongType, fmt.Sprintf("%s wants %s, got %s", h.oid, h.s.Type, vb.Value.Type))
		}
		if h.s.Check != nil {
			if err := h.s.Check(vb.Value); err != nil {
				return i, err
			}
		}
	}
	return 0, nil
}

func (h *scalarHandler) CommitSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error) {
	old, err := h.s.Value(ctx)
	if err != nil {
		return 0, err
	}
	h.s.mu.Lock()
	if h.s.old == nil {
		h.s.old = make(map[smi.TxID]smi.Value)
	}
	h.s.old[tx] = old
	h.s.mu.Unlock()
	if err := h.s.Set(ctx, vbs[0].Value); err != nil {
		// Nothing was applied, so there is nothing to undo: calling Set(old)
		// again would repeat a side effect and turn commitFailed into
		// undoFailed.
		h.s.mu.Lock()
		delete(h.s.old, tx)
		h.s.mu.Unlock()
		return 0, err
	}
	return 0, nil
}

func (h *scalarHandler) UndoSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	h.s.mu.Lock()
	old, ok := h.s.old[tx]
	h.s.mu.Unlock()
	if !ok {
		return 0, nil
	}
	return 0, h.s.Set(ctx, old)
}

func (h *scalarHandler) CleanupSet(_ context.Context, tx smi.TxID, _ []smi.VarBind) {
	h.s.mu.Lock()
	delete(h.s.old, tx)
	h.s.mu.Unlock()
}
