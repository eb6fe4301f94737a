package mib

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// setSession is the session of the farm SET keys of this package. One
// northbound SET may write through smEngineProxy (one farm transaction
// per engine written), smAllEngines and engine contexts at once, while the
// farm keys its transactions by smi.TxID; the Manager therefore numbers
// its farm transactions itself, under a session id that no AgentX session
// uses (the master numbers sessions from 0 upwards) and that differs from
// the Coordinator's own Set (^0).
const setSession = ^uint32(0) - 1

// farmSet is one farm transaction of a northbound SET.
type farmSet struct {
	key       smi.TxID
	targets   []fanout.NodeID // nil: every engine
	vbs       []smi.VarBind   // as the engines see them
	idx       []int           // position of each in the handler's varbinds
	committed bool            // COMMIT attempted
	wrote     []fanout.NodeID // the engines whose COMMIT was confirmed, when all were
	undone    bool            // UNDO attempted
}

// setKeys holds the farm transactions of each northbound SET a handler is
// part of, between the phases.
type setKeys struct {
	seq *atomic.Uint32 // the Manager's, shared by its handlers

	mu   sync.Mutex
	byTx map[smi.TxID][]*farmSet
}

func (k *setKeys) add(tx smi.TxID, fs *farmSet) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byTx == nil {
		k.byTx = make(map[smi.TxID][]*farmSet)
	}
	fs.key = smi.TxID{Session: setSession, Transaction: k.seq.Add(1)}
	k.byTx[tx] = append(k.byTx[tx], fs)
}

func (k *setKeys) get(tx smi.TxID) []*farmSet {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.byTx[tx]
}

func (k *setKeys) take(tx smi.TxID) []*farmSet {
	k.mu.Lock()
	defer k.mu.Unlock()
	fs := k.byTx[tx]
	delete(k.byTx, tx)
	return fs
}

// farmError maps a farm phase error onto the handler's varbinds: the
// *smi.Error carries the farm's status to the Tree, and its per-engine
// detail (*fanout.PhaseError) to whoever asks with errors.As.
func farmError(err error, fs *farmSet) (int, error) {
	_, j := smi.StatusOf(err)
	i := fs.idx[0]
	if j >= 0 && j < len(fs.idx) {
		i = fs.idx[j]
	}
	return i, err
}

// testAll runs TEST for every farm transaction; the first failure fails
// the SET (CleanupSet releases them all).
func testAll(ctx context.Context, m *Manager, keys *setKeys, tx smi.TxID, sets []*farmSet) (int, error) {
	for _, fs := range sets {
		keys.add(tx, fs)
	}
	for _, fs := range sets {
		if _, err := m.farm.TestSet(ctx, fs.key, fs.targets, fs.vbs); err != nil {
			return farmError(err, fs)
		}
	}
	return 0, nil
}

func commitAll(ctx context.Context, m *Manager, keys *setKeys, tx smi.TxID) (int, error) {
	for _, fs := range keys.get(tx) {
		fs.committed = true
		res, err := m.farm.CommitSet(ctx, fs.key)
		if err != nil {
			return farmError(err, fs)
		}
		if res != nil {
			fs.wrote = res.Expected
		}
	}
	return 0, nil
}

// undoAll undoes every farm transaction whose commit was attempted, even
// after one fails, and reports the first failure. The engines an UNDO
// could not confirm go to the farm state, which puts them back later.
func undoAll(ctx context.Context, m *Manager, keys *setKeys, tx smi.TxID) (int, error) {
	first, firstErr := 0, error(nil)
	for _, fs := range keys.get(tx) {
		if !fs.committed {
			continue
		}
		fs.undone = true
		if _, err := m.farm.UndoSet(ctx, fs.key); err != nil {
			m.state.Diverged(err)
			if firstErr == nil {
				first, firstErr = farmError(err, fs)
			}
		}
	}
	return first, firstErr
}

// cleanupAll ends the farm transactions. One that committed everywhere
// and was not undone wrote its objects for good: engines still to be put
// back to older values of them no longer are.
func cleanupAll(ctx context.Context, m *Manager, keys *setKeys, tx smi.TxID) {
	for _, fs := range keys.take(tx) {
		if fs.committed && !fs.undone && len(fs.wrote) > 0 {
			names := make([]smi.OID, len(fs.vbs))
			for i, vb := range fs.vbs {
				names[i] = vb.Name
			}
			m.state.Superseded(fs.wrote, names)
		}
		m.farm.CleanupSet(ctx, fs.key)
	}
}

// proxyHandler serves smEngineProxy.<smEngineIndex>.<OID>.
type proxyHandler struct {
	m    *Manager
	keys setKeys
	warn logging.Limit
}

func newProxyHandler(m *Manager) *proxyHandler {
	return &proxyHandler{m: m, keys: setKeys{seq: &m.setSeq}}
}

// reachable says whether engine id can be asked: a row the farm knows
// that is not down (asking a down engine would only wait for the
// deadline).
func reachable(rows map[fanout.NodeID]fanout.Engine, id uint32) (known, up bool) {
	if id < MinNodeID || id > MaxNodeID {
		return false, false
	}
	e, ok := rows[fanout.NodeID(id)]
	return ok, ok && e.State != fanout.EngineDown
}

// Get answers every varbind from one fan-out to the engines named, asking
// each for the union of the OIDs.
func (h *proxyHandler) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	root := SmEngineProxy.OID()
	out := make([]smi.Value, len(names))
	rows := h.m.engineIndex()
	type ask struct {
		engine fanout.NodeID
		idx    int
	}
	asks := make([]ask, len(names))
	var targets []fanout.NodeID
	var uniq oidList
	for i, n := range names {
		asks[i].idx = -1
		id, inner, ok := splitName(n, root)
		if !ok {
			out[i] = smi.NoSuchObject()
			continue
		}
		if _, up := reachable(rows, id); !up || !innerOK(inner) {
			out[i] = smi.NoSuchInstance()
			continue
		}
		j := uniq.add(inner)
		asks[i] = ask{engine: fanout.NodeID(id), idx: j}
		if !slices.Contains(targets, fanout.NodeID(id)) {
			targets = append(targets, fanout.NodeID(id))
		}
	}
	if len(targets) == 0 {
		return out, nil
	}
	slices.Sort(targets)
	res, err := h.m.farm.Get(ctx, targets, uniq.oids)
	if err != nil && !noEngines(err) {
		farmFailed(&h.warn, h.m, err, "mib: smEngineProxy fan-out failed", nil)
		return nil, err
	}
	for i, a := range asks {
		if a.idx < 0 {
			continue
		}
		out[i] = smi.NoSuchInstance()
		if res == nil {
			continue
		}
		if r := res.Reply(a.engine); r != nil && r.Status == fanout.StatusOK && len(r.VarBinds) == len(uniq.oids) {
			if v := r.VarBinds[a.idx].Value; v.Type.Valid() {
				out[i] = v
			}
		}
	}
	return out, nil
}

// GetNext lists the engines' own objects, engine after engine, from the
// walk snapshots of the native subtrees.
func (h *proxyHandler) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	root := SmEngineProxy.OID()
	return h.m.nextFromNative(ctx, &h.warn, root, ranges, func(nv *nativeView, r smi.Range, startID uint32, startInner smi.OID, before bool) (smi.VarBind, bool) {
		e := 0
		if !before {
			e, _ = slices.BinarySearch(nv.engines, fanout.NodeID(startID))
		}
		for ; e < len(nv.engines); e++ {
			id := nv.engines[e]
			vbs := nv.vbs[id]
			k := 0
			if !before && uint32(id) == startID {
				k = searchAfterVB(vbs, startInner, r.Include)
			}
			for ; k < len(vbs); k++ {
				name := root.Append(uint32(id)).Append(vbs[k].Name...)
				if len(r.End) > 0 && name.Compare(r.End) >= 0 {
					return smi.VarBind{}, false
				}
				if r.Contains(name) && hasValue(vbs[k].Value) {
					return smi.VarBind{Name: name, Value: vbs[k].Value}, true
				}
			}
		}
		return smi.VarBind{}, false
	})
}

func searchAfterVB(vbs []smi.VarBind, start smi.OID, include bool) int {
	k, found := slices.BinarySearchFunc(vbs, start, func(vb smi.VarBind, o smi.OID) int { return vb.Name.Compare(o) })
	if found && !include {
		k++
	}
	return k
}

// TestSet sends one TEST per engine written, with that engine's varbinds.
func (h *proxyHandler) TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error) {
	root := SmEngineProxy.OID()
	rows := h.m.engineIndex()
	var sets []*farmSet
	byEngine := make(map[uint32]*farmSet)
	for i, vb := range vbs {
		id, inner, ok := splitName(vb.Name, root)
		if !ok {
			return i, smi.Errorf(smi.NotWritable, fmt.Sprintf("%s names no engine object", vb.Name))
		}
		known, up := reachable(rows, id)
		switch {
		case !innerOK(inner):
			return i, smi.Errorf(smi.NoCreation, fmt.Sprintf("no engine can hold %s: not a valid object identifier", inner))
		case !known:
			return i, smi.Errorf(smi.NoCreation, fmt.Sprintf("no engine %d in smEngineTable", id))
		case !up:
			return i, smi.Errorf(smi.ResourceUnavailable, fmt.Sprintf("engine %d is down", id))
		}
		fs := byEngine[id]
		if fs == nil {
			fs = &farmSet{targets: []fanout.NodeID{fanout.NodeID(id)}}
			byEngine[id] = fs
			sets = append(sets, fs)
		}
		fs.vbs = append(fs.vbs, smi.VarBind{Name: inner, Value: vb.Value})
		fs.idx = append(fs.idx, i)
	}
	return testAll(ctx, h.m, &h.keys, tx, sets)
}

func (h *proxyHandler) CommitSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return commitAll(ctx, h.m, &h.keys, tx)
}

func (h *proxyHandler) UndoSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return undoAll(ctx, h.m, &h.keys, tx)
}

func (h *proxyHandler) CleanupSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) {
	cleanupAll(ctx, h.m, &h.keys, tx)
}

// allEnginesHandler serves smAllEngines.<OID>.
type allEnginesHandler struct {
	m    *Manager
	keys setKeys
	warn logging.Limit
}

func newAllEnginesHandler(m *Manager) *allEnginesHandler {
	return &allEnginesHandler{m: m, keys: setKeys{seq: &m.setSeq}}
}

// Get answers the value every responding engine agrees on, from one
// fan-out.
func (h *allEnginesHandler) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	root := SmAllEngines.OID()
	out := make([]smi.Value, len(names))
	idx := make([]int, len(names))
	var uniq oidList
	for i, n := range names {
		idx[i] = -1
		if !n.HasPrefix(root) || len(n) == len(root) {
			out[i] = smi.NoSuchObject()
			continue
		}
		if !innerOK(n[len(root):]) {
			out[i] = smi.NoSuchInstance()
			continue
		}
		idx[i] = uniq.add(n[len(root):])
	}
	if len(uniq.oids) == 0 {
		return out, nil
	}
	res, err := h.m.farm.Get(ctx, nil, uniq.oids)
	if err != nil && !noEngines(err) {
		farmFailed(&h.warn, h.m, err, "mib: smAllEngines fan-out failed", nil)
		return nil, err
	}
	for i, j := range idx {
		if j < 0 {
			continue
		}
		out[i] = smi.NoSuchInstance()
		vals := valuesAt(res, j, len(uniq.oids))
		if len(vals) == 0 {
			continue
		}
		agree := true
		for _, ev := range vals[1:] {
			agree = agree && ev.v.Equal(vals[0].v)
		}
		if agree {
			out[i] = vals[0].v
		}
	}
	return out, nil
}

// GetNext lists nothing: smAllEngines is for writing, and a walk of it
// would repeat smEngineProxy.
func (h *allEnginesHandler) GetNext(_ context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	for i, r := range ranges {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
	}
	return out, nil
}

// TestSet sends one TEST with every varbind to every engine.
func (h *allEnginesHandler) TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error) {
	root := SmAllEngines.OID()
	fs := &farmSet{}
	for i, vb := range vbs {
		if !vb.Name.HasPrefix(root) || len(vb.Name) == len(root) {
			return i, smi.Errorf(smi.NotWritable, fmt.Sprintf("%s names no engine object", vb.Name))
		}
		if !innerOK(vb.Name[len(root):]) {
			return i, smi.Errorf(smi.NoCreation, fmt.Sprintf("no engine can hold %s: not a valid object identifier", vb.Name[len(root):]))
		}
		fs.vbs = append(fs.vbs, smi.VarBind{Name: vb.Name[len(root):], Value: vb.Value})
		fs.idx = append(fs.idx, i)
	}
	return testAll(ctx, h.m, &h.keys, tx, []*farmSet{fs})
}

func (h *allEnginesHandler) CommitSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return commitAll(ctx, h.m, &h.keys, tx)
}

func (h *allEnginesHandler) UndoSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) (int, error) {
	return undoAll(ctx, h.m, &h.keys, tx)
}

func (h *allEnginesHandler) CleanupSet(ctx context.Context, tx smi.TxID, _ []smi.VarBind) {
	cleanupAll(ctx, h.m, &h.keys, tx)
}
