package mib_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// fakeFarm is a Farm of engines held in memory: each engine has a map of
// OID -> value, answers or stays silent, and validates SETs with check.
type fakeFarm struct {
	mu      sync.Mutex
	now     func() time.Time
	engines map[fanout.NodeID]*fakeEngine
	tx      uint64

	gets      [][]smi.OID // names of every Get transaction
	getTo     [][]fanout.NodeID
	snapshots int
	sets      map[smi.TxID]*fakeSet
	cleaned   []smi.TxID
}

type fakeEngine struct {
	row        fanout.Engine
	values     map[string]smi.VarBind
	silent     bool                    // answers nothing
	check      func(smi.VarBind) error // TEST validation; nil accepts
	failCommit bool
}

type fakeSet struct {
	targets []fanout.NodeID
	vbs     []smi.VarBind
	old     map[fanout.NodeID][]smi.VarBind
}

func newFakeFarm(now func() time.Time) *fakeFarm {
	return &fakeFarm{now: now, engines: map[fanout.NodeID]*fakeEngine{}, sets: map[smi.TxID]*fakeSet{}}
}

// add creates an engine that is up, with values.
func (f *fakeFarm) add(id fanout.NodeID, vbs ...smi.VarBind) *fakeEngine {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := &fakeEngine{
		row: fanout.Engine{ID: id, Incarnation: 1, State: fanout.EngineUp, LastStatus: fanout.StatusOK, Replies: 1,
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(id >> 8), byte(id)}), 5000)},
		values: map[string]smi.VarBind{},
	}
	for _, vb := range vbs {
		e.values[vb.Name.String()] = vb
	}
	f.engines[id] = e
	return e
}

func (f *fakeFarm) set(id fanout.NodeID, vb smi.VarBind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.engines[id].values[vb.Name.String()] = vb
}

func (f *fakeFarm) value(id fanout.NodeID, o smi.OID) smi.Value {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.engines[id].values[o.String()].Value
}

func (f *fakeFarm) edit(id fanout.NodeID, fn func(e *fakeEngine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.engines[id])
}

func (f *fakeFarm) getCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.gets)
}

func (f *fakeFarm) Engines() []fanout.Engine {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fanout.Engine
	for _, e := range f.engines {
		out = append(out, e.row)
	}
	slices.SortFunc(out, func(a, b fanout.Engine) int { return int(a.ID) - int(b.ID) })
	return out
}

// targetsLocked is who "every engine" means: the engines not down.
func (f *fakeFarm) targetsLocked(targets []fanout.NodeID) []fanout.NodeID {
	if targets != nil {
		return targets
	}
	var out []fanout.NodeID
	for id, e := range f.engines {
		if e.row.State != fanout.EngineDown {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (f *fakeFarm) result(op fanout.Op, targets []fanout.NodeID, answer func(e *fakeEngine) fanout.EngineResult) (*fanout.Result, error) {
	f.tx++
	targets = f.targetsLocked(targets)
	if len(targets) == 0 {
		return nil, fanout.ErrNoEngines
	}
	res := &fanout.Result{Op: op, Tx: f.tx, Expected: targets, Rounds: 1, Elapsed: time.Millisecond}
	for _, id := range targets {
		e := f.engines[id]
		if e == nil || e.silent {
			res.Missing = append(res.Missing, id)
			continue
		}
		r := answer(e)
		r.Engine = id
		res.Replies = append(res.Replies, r)
	}
	return res, nil
}

func (f *fakeFarm) Get(_ context.Context, targets []fanout.NodeID, names []smi.OID) (*fanout.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, names)
	f.getTo = append(f.getTo, targets)
	return f.result(fanout.OpGet, targets, func(e *fakeEngine) fanout.EngineResult {
		r := fanout.EngineResult{Status: fanout.StatusOK}
		for _, n := range names {
			vb, ok := e.values[n.String()]
			if !ok {
				vb = smi.VarBind{Name: n, Value: smi.NoSuchObject()}
			}
			r.VarBinds = append(r.VarBinds, vb)
		}
		return r
	})
}

func (f *fakeFarm) Snapshot(_ context.Context, targets []fanout.NodeID, root smi.OID) (*fanout.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snapshots++
	taken := f.now()
	res, err := f.result(fanout.OpWalk, targets, func(e *fakeEngine) fanout.EngineResult {
		r := fanout.EngineResult{Status: fanout.StatusOK}
		for _, vb := range e.values {
			if vb.Name.HasPrefix(root) {
				r.VarBinds = append(r.VarBinds, vb)
			}
		}
		slices.SortFunc(r.VarBinds, func(a, b smi.VarBind) int { return a.Name.Compare(b.Name) })
		return r
	})
	if err != nil {
		return nil, err
	}
	return &fanout.Snapshot{Root: root, Taken: taken, Result: res}, nil
}

func (f *fakeFarm) TestSet(_ context.Context, key smi.TxID, targets []fanout.NodeID, vbs []smi.VarBind) (*fanout.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.sets[key]; dup {
		return nil, &smi.Error{Status: smi.GenErr, Err: fmt.Errorf("set transaction %v already in progress", key)}
	}
	targets = f.targetsLocked(targets)
	f.sets[key] = &fakeSet{targets: targets, vbs: vbs, old: map[fanout.NodeID][]smi.VarBind{}}
	for _, id := range targets {
		e := f.engines[id]
		for i, vb := range vbs {
			if e.check == nil {
				continue
			}
			if err := e.check(vb); err != nil {
				st := smi.GenErr
				var se *smi.Error
				if errors.As(err, &se) {
					st = se.Status
				}
				return nil, &smi.Error{Status: st, Index: i, Err: fmt.Errorf("engine %d: %w", id, err)}
			}
		}
	}
	return &fanout.Result{Op: fanout.OpSetTest}, nil
}

func (f *fakeFarm) CommitSet(_ context.Context, key smi.TxID) (*fanout.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sets[key]
	if s == nil {
		return nil, &smi.Error{Status: smi.CommitFailed, Err: smi.ErrUnknownTx}
	}
	var failed error
	for _, id := range s.targets {
		e := f.engines[id]
		if e.failCommit {
			failed = &smi.Error{Status: smi.CommitFailed, Err: fmt.Errorf("engine %d did not confirm", id)}
			continue
		}
		for _, vb := range s.vbs {
			s.old[id] = append(s.old[id], e.values[vb.Name.String()])
			e.values[vb.Name.String()] = vb
		}
	}
	return &fanout.Result{Op: fanout.OpSetCommit}, failed
}

func (f *fakeFarm) UndoSet(_ context.Context, key smi.TxID) (*fanout.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sets[key]
	if s == nil {
		return nil, &smi.Error{Status: smi.UndoFailed, Err: smi.ErrUnknownTx}
	}
	for id, olds := range s.old {
		for i, vb := range s.vbs {
			if olds[i].Name == nil {
				delete(f.engines[id].values, vb.Name.String())
			} else {
				f.engines[id].values[vb.Name.String()] = olds[i]
			}
		}
	}
	return &fanout.Result{Op: fanout.OpSetUndo}, nil
}

func (f *fakeFarm) CleanupSet(_ context.Context, key smi.TxID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sets, key)
	f.cleaned = append(f.cleaned, key)
}

func (f *fakeFarm) pendingSets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sets)
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
