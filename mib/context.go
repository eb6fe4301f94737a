package mib

import (
	"context"
	"fmt"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// EngineContextName is the SNMP context under which a manager serves one
// engine in AgentX mode: "se<id>".
func EngineContextName(id fanout.NodeID) string { return "se" + strconv.FormatUint(uint64(id), 10) }

// RegisterEngineContext makes tree serve one engine as if it were the
// agent: a GET or SET of any OID goes to that engine alone, a walk lists
// the engine's own objects (as under smEngineProxy). It registers at internet
// (1.3.6.1), so tree must be the engine's own, typically
//
//	m.RegisterEngineContext(contexts.Ensure(mib.EngineContextName(id)), id)
//
// when the engine first comes up, so that an NMS reaches an engine with its
// usual OIDs (SNMPv3 contexts, or a v2c community mapped to the context in
// snmpd.conf).
func (m *Manager) RegisterEngineContext(tree *agent.Tree, id fanout.NodeID) error {
	if id < MinNodeID || id > MaxNodeID {
		return fmt.Errorf("%w: engine id %d outside %d..%d", ErrInvalid, id, MinNodeID, MaxNodeID)
	}
	// Every OID an engine may answer lies under internet (1.3.6.1).
	// Not iso (1): net-snmp 5.9.3 accepts an AgentX registration of the
	// one-arc subtree "1" but never routes a request to it (measured).
	return tree.Register(smi.OID{1, 3, 6, 1}, &engineContext{m: m, id: id, keys: setKeys{seq: &m.setSeq}})
}

// EngineTree returns a new tree serving engine id as RegisterEngineContext
// describes, for a frontend that takes a context's tree whole.
func (m *Manager) EngineTree(id fanout.NodeID) (*agent.Tree, error) {
	t := agent.NewTree()
	if err := m.RegisterEngineContext(t, id); err != nil {
		return nil, err
	}
	return t, nil
}

// engineContext is the handler behind EngineTree.
type engineContext struct {
	m    *Manager
	id   fanout.NodeID
	keys setKeys
	warn logging.Limit
}

func (h *engineContext) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, len(names))
	for i := range out {
		out[i] = smi.NoSuchInstance()
	}
	if _, up := reachable(h.m.engineIndex(), uint32(h.id)); !up {
		return out, nil
	}
	res, err := h.m.farm.Get(ctx, []fanout.NodeID{h.id}, names)
	if err != nil && !noEngines(err) {
		farmFailed(&h.warn, h.m, err, "mib: engine context fan-out failed", logrus.Fields{"engine": h.id})
		return nil, err
	}
	if res == nil {
		return out, nil
	}
	if r := res.Reply(h.id); r != nil && r.Status == fanout.StatusOK && len(r.VarBinds) == len(names) {
		for i, vb := range r.VarBinds {
			if vb.Value.Type.Valid() {
				out[i] = vb.Value
			}
		}
	}
	return out, nil
}

func (h *engineContext) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	nv, err := h.m.native(ctx)
	if err != nil {
		farmFailed(&h.warn, h.m, err, "mib: snapshot of the engines' objects failed", logrus.Fields{"engine": h.id})
		return nil, err
	}
	vbs := nv.vbs[h.id]
	for i, r := range ranges {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
		for k := searchAfterVB(vbs, r.Start, r.Include); k < len(vbs); k++ {
			if len(r.End) > 0 && vbs[k].Name.Compare(r.End) >= 0 {
				break
			}
			if hasValue(vbs[k].Value) {
				out[i] = vbs[k]
				break
			}
		}
	}
	return out, nil
}

func (h *engineContext) TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error) {
	known, up := reachable(h.m.engineIndex(), uint32(h.id))
	switch {
	case !known:
		return 0, smi.Errorf(smi.NoCreation, fmt.Sprintf("no engine %d in smEngineTable", h.id))
	case !up:
		return 0, smi.Errorf(smi.ResourceUnavailable, fmt.Sprintf("engine %d is down", h.id))
	}
	fs := &farmSet{targets: []fanout.NodeID{h.id}, vbs: vbs}
	for i := range vbs {
		fs.idx = append(fs.idx, i)
	}
	return testAll(ctx, h.m, &h.keys, tx, []*farmSet{fs})
}

func (h *engineContext) CommitSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return commitAll(ctx, h.m, &h.keys, tx)
}

func (h *engineContext) UndoSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return undoAll(ctx, h.m, &h.keys, tx)
}

func (h *engineContext) CleanupSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) {
	cleanupAll(ctx, h.m, &h.keys, tx)
}
