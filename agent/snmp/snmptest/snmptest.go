// Package snmptest helps tests and benchmarks serve an existing agent.Tree
// (such as agenttest's) through the built-in SNMP agent: agent.Contexts always makes
// its own default Tree, so Mount registers the whole of another Tree in it
// as one handler. It adds one level of dispatch, which benchmarks pay too.
package snmptest

import (
	"context"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Contexts returns a Contexts whose default tree serves inner under root.
func Contexts(root smi.OID, inner *agent.Tree) (*agent.Contexts, error) {
	c := agent.NewContexts()
	if err := c.Default().Register(root, &Mount{Inner: inner}); err != nil {
		return nil, err
	}
	return c, nil
}

// Mount is an agent.Handler and agent.Setter answering from a whole Tree.
type Mount struct{ Inner *agent.Tree }

// AnswersFromMemory makes Mount agent.Local: it only dispatches, and the
// inner Tree calls the request's wait hook itself before any of its own
// handlers that may block.
func (*Mount) AnswersFromMemory() {}

// Get implements agent.Handler.
func (m *Mount) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	vbs, err := m.Inner.Get(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]smi.Value, len(vbs))
	for i, vb := range vbs {
		out[i] = vb.Value
	}
	return out, nil
}

// GetNext implements agent.Handler.
func (m *Mount) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	return m.Inner.GetNext(ctx, ranges)
}

// setErr is a phase result of the inner Tree: the varbind its error
// names; the *smi.Error carries its status on to the outer Tree.
func setErr(err error) (int, error) {
	_, idx := smi.StatusOf(err)
	return idx, err
}

// TestSet implements agent.Setter.
func (m *Mount) TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error) {
	return setErr(m.Inner.TestSet(ctx, tx, vbs))
}

// CommitSet implements agent.Setter.
func (m *Mount) CommitSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return setErr(m.Inner.CommitSet(ctx, tx))
}

// UndoSet implements agent.Setter.
func (m *Mount) UndoSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return setErr(m.Inner.UndoSet(ctx, tx))
}

// CleanupSet implements agent.Setter.
func (m *Mount) CleanupSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) {
	m.Inner.CleanupSet(ctx, tx)
}
