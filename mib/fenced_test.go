package mib_test

import (
	"context"
	"errors"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// staleFarm is a fakeFarm whose engines in stale refuse every read with
// staleTerm, as SEs refuse a manager whose term they have left.
type staleFarm struct {
	*fakeFarm
	stale map[fanout.NodeID]bool
}

func (f *staleFarm) refuse(res *fanout.Result) {
	if res == nil {
		return
	}
	for i := range res.Replies {
		if f.stale[res.Replies[i].Engine] {
			res.Replies[i] = fanout.EngineResult{Engine: res.Replies[i].Engine, Status: fanout.StatusStaleTerm}
		}
	}
}

func (f *staleFarm) Get(ctx context.Context, targets []fanout.NodeID, names []smi.OID) (*fanout.Result, error) {
	res, err := f.fakeFarm.Get(ctx, targets, names)
	f.refuse(res)
	return res, err
}

func (f *staleFarm) Snapshot(ctx context.Context, targets []fanout.NodeID, root smi.OID) (*fanout.Snapshot, error) {
	s, err := f.fakeFarm.Snapshot(ctx, targets, root)
	if s != nil {
		f.refuse(s.Result)
	}
	return s, err
}

// A manager the SEs refuse (staleTerm) answers aggregates with genErr,
// never with a count of 0 or of the few SEs that still took its term; a
// walk of smAggregate fails the same way. With no SE refusing, the same
// objects answer as usual.
func TestAggregateOfAFencedManagerIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale []fanout.NodeID
	}{{"every SE refuses", []fanout.NodeID{1, 2, 3}}, {"some SEs refuse", []fanout.NodeID{2}}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &tick{t: epoch}
			ff := newFakeFarm(clk.Now)
			for i := 1; i <= 3; i++ {
				ff.add(fanout.NodeID(i), engineVBs(uint32(i), 7, uint64(1000*i))...)
			}
			f := &staleFarm{fakeFarm: ff, stale: map[fanout.NodeID]bool{}}
			tree := agent.NewTree()
			if _, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f, Start: epoch, Now: clk.Now, EngineTableTTL: -1}); err != nil {
				t.Fatal(err)
			}
			names := []smi.OID{agg(mib.FuncCount, seWeight), agg(mib.FuncSum, seWeight), agg(mib.FuncSum, seRequests)}
			if got := get(t, tree, names...); !got[0].Equal(smi.Gauge32(3)) || !got[1].Equal(smi.Gauge32(21)) {
				t.Fatalf("before fencing: %v", got)
			}
			for _, id := range tc.stale {
				f.stale[id] = true
			}
			vbs, err := tree.Get(context.Background(), names)
			if st, _ := smi.StatusOf(err); err == nil || st != smi.GenErr || !errors.Is(err, mib.ErrFenced) {
				t.Fatalf("GET on a fenced manager: %v, %v; want genErr (mib.ErrFenced)", vbs, err)
			}
			_, err = tree.GetNext(context.Background(), []smi.Range{{Start: aggRoot, End: aggRoot.SubtreeEnd()}})
			if st, _ := smi.StatusOf(err); err == nil || st != smi.GenErr || !errors.Is(err, mib.ErrFenced) {
				t.Fatalf("GETNEXT on a fenced manager: %v; want genErr (mib.ErrFenced)", err)
			}
			clear(f.stale)
			if got := get(t, tree, names...); !got[0].Equal(smi.Gauge32(3)) {
				t.Errorf("after fencing ended: %v", got)
			}
		})
	}
}
