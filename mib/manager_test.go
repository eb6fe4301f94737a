package mib_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// tick is a clock that moves 10 ms (one TimeTicks) at every reading, so
// fan-outs never overlap.
type tick struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tick) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(10 * time.Millisecond)
	return c.t
}

var (
	oidSysName  = smi.MustParseOID("1.3.6.1.2.1.1.5.0")
	oidSysUp    = smi.MustParseOID("1.3.6.1.2.1.1.3.0")
	oidIfInOct  = smi.MustParseOID("1.3.6.1.2.1.2.2.1.10.1") // proxied Counter32
	oidHrProcs  = smi.MustParseOID("1.3.6.1.2.1.25.1.6.0")   // proxied Gauge32
	seWeight    = inst(mib.SmSeWeight)
	seRequests  = inst(mib.SmSeRequests)
	seAdmin     = inst(mib.SmSeAdminState)
	seLoad      = inst(mib.SmSeLoad)
	aggRoot     = mib.SmAggregate.OID()
	proxyRoot   = mib.SmEngineProxy.OID()
	allRoot     = mib.SmAllEngines.OID()
	discontTime = inst(mib.SmAggregateDiscontinuityTime)
)

func agg(fn mib.Func, o smi.OID) smi.OID { return aggRoot.Append(uint32(fn)).Append(o...) }
func proxy(id uint32, o smi.OID) smi.OID { return proxyRoot.Append(id).Append(o...) }

// engineVBs are the native objects of a test engine.
func engineVBs(id uint32, weight uint32, requests uint64) []smi.VarBind {
	return []smi.VarBind{
		{Name: oidSysName, Value: smi.String("se" + string(rune('0'+id)))},
		{Name: oidSysUp, Value: smi.TimeTicks(100 * id)},
		{Name: seAdmin, Value: smi.Integer(1)},
		{Name: seWeight, Value: smi.Gauge32(weight)},
		{Name: seLoad, Value: smi.Gauge32(10 * id)},
		{Name: seRequests, Value: smi.Counter64(requests)},
	}
}

// newFarm returns a manager tree over a fake farm of engines 1..n.
func newFarm(t *testing.T, n int) (*agent.Tree, *fakeFarm, *mib.Manager) {
	t.Helper()
	clk := &tick{t: epoch}
	f := newFakeFarm(clk.Now)
	for i := 1; i <= n; i++ {
		f.add(fanout.NodeID(i), engineVBs(uint32(i), 7, uint64(1000*i))...)
	}
	tree := agent.NewTree()
	m, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f, Start: epoch, Now: clk.Now, EngineTableTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return tree, f, m
}

func TestAggregateGet(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	f.set(2, smi.VarBind{Name: seWeight, Value: smi.Gauge32(9)})
	got := get(t, tree,
		agg(mib.FuncSum, seWeight), agg(mib.FuncMin, seWeight), agg(mib.FuncMax, seWeight),
		agg(mib.FuncAvg, seWeight), agg(mib.FuncCount, seWeight),
		agg(mib.FuncSum, seRequests), agg(mib.FuncMin, seRequests), agg(mib.FuncCount, seRequests),
		agg(mib.FuncSum, oidSysName), agg(mib.FuncCount, oidSysName),
		agg(mib.FuncSum, oidSysUp), agg(mib.FuncMax, oidSysUp),
		agg(mib.FuncSum, oidHrProcs), agg(mib.FuncCount, oidHrProcs),
		aggRoot.Append(6).Append(seWeight...), aggRoot.Append(1))
	want := []smi.Value{
		smi.Gauge32(23), smi.Gauge32(7), smi.Gauge32(9), smi.Gauge32(8), smi.Gauge32(3),
		smi.Counter64(6000), smi.NoSuchInstance(), smi.Gauge32(3),
		smi.NoSuchInstance(), smi.Gauge32(3),
		smi.NoSuchInstance(), smi.TimeTicks(300),
		smi.NoSuchInstance(), smi.Gauge32(0),
		smi.NoSuchObject(), smi.NoSuchObject(),
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
	// Every varbind of the request in one fan-out, each OID asked once.
	if n := f.getCount(); n != 1 {
		t.Fatalf("%d fan-outs for one request", n)
	}
	if names := f.gets[0]; len(names) != 5 {
		t.Errorf("fan-out asked %d OIDs, want the 5 distinct ones: %v", len(names), names)
	}
}

func TestAggregate128VarBindsOneTransaction(t *testing.T) {
	tree, f, _ := newFarm(t, 4)
	var names []smi.OID
	for i := range 128 {
		names = append(names, agg(mib.Funcs[i%5], smi.OID{1, 3, 6, 1, 4, 1, 99, uint32(i), 0}))
	}
	vbs, err := tree.Get(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	if len(vbs) != 128 {
		t.Fatalf("%d varbinds answered", len(vbs))
	}
	if n := f.getCount(); n != 1 {
		t.Errorf("%d fan-outs for one GET of 128 aggregates, want 1", n)
	}
}

func TestAggregateResultSyntax(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	i32 := smi.MustParseOID("1.3.6.1.4.1.99.1.0")
	g32 := smi.MustParseOID("1.3.6.1.4.1.99.2.0")
	mixed := smi.MustParseOID("1.3.6.1.4.1.99.3.0")
	neg := smi.MustParseOID("1.3.6.1.4.1.99.4.0")
	for id, v := range map[fanout.NodeID][4]smi.Value{
		1: {smi.Integer(2147483647), smi.Gauge32(4294967295), smi.Gauge32(1), smi.Integer(-1)},
		2: {smi.Integer(2147483647), smi.Gauge32(4294967295), smi.Integer(1), smi.Integer(-2)},
		3: {smi.Integer(1), smi.Gauge32(2), smi.Gauge32(1), smi.Integer(-2)},
	} {
		for k, o := range []smi.OID{i32, g32, mixed, neg} {
			f.set(id, smi.VarBind{Name: o, Value: v[k]})
		}
	}
	got := get(t, tree, agg(mib.FuncSum, i32), agg(mib.FuncAvg, i32), agg(mib.FuncSum, g32), agg(mib.FuncAvg, g32),
		agg(mib.FuncSum, mixed), agg(mib.FuncCount, mixed), agg(mib.FuncAvg, neg), agg(mib.FuncSum, neg))
	want := []smi.Value{
		smi.Integer(2147483647),              // saturated, not wrapped
		smi.Integer(1431655765),              // (2^31-1)*2+1 / 3
		smi.Gauge32(4294967295),              // latched
		smi.Gauge32(2863311531),              // rounded half up
		smi.NoSuchInstance(), smi.Gauge32(3), // engines disagree on the type
		smi.Integer(-2), smi.Integer(-5), // -5/3 = -1.67 rounds to -2
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestAggregateCounterMonotonic: a sum of counters never goes back when
// engines restart, go silent or leave, and a join is flagged.
func TestAggregateCounterMonotonic(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	sum := agg(mib.FuncSum, seRequests)
	read := func() (uint64, uint32, uint32) {
		got := get(t, tree, sum, agg(mib.FuncCount, seRequests), discontTime)
		if got[0].Type != smi.TypeCounter64 {
			t.Fatalf("sum of counters is %s", got[0])
		}
		return got[0].Uint, uint32(got[1].Uint), uint32(got[2].Uint)
	}
	s0, n, d := read()
	if s0 != 6000 || n != 3 || d != 0 {
		t.Fatalf("start: sum %d count %d discontinuity %d, want 6000 3 0", s0, n, d)
	}
	f.set(1, smi.VarBind{Name: seRequests, Value: smi.Counter64(1500)})
	if s, _, _ := read(); s != 6500 {
		t.Errorf("after +500 on engine 1: %d, want 6500", s)
	}
	// Engine 2 restarts and counts from zero.
	f.set(2, smi.VarBind{Name: seRequests, Value: smi.Counter64(10)})
	if s, _, d := read(); s != 6510 || d != 0 {
		t.Errorf("after engine 2 restarted at 10: %d (discontinuity %d), want 6510 and none", s, d)
	}
	// Engine 3 goes silent, then down: its last value stays in the sum.
	f.edit(3, func(e *fakeEngine) { e.silent = true })
	if s, n, _ := read(); s != 6510 || n != 2 {
		t.Errorf("engine 3 silent: sum %d count %d, want 6510 2", s, n)
	}
	f.edit(3, func(e *fakeEngine) { e.row.State = fanout.EngineDown })
	f.set(1, smi.VarBind{Name: seRequests, Value: smi.Counter64(1600)})
	if s, _, _ := read(); s != 6610 {
		t.Errorf("engine 3 down: %d, want 6610", s)
	}
	// Engine 4 joins with 5000: the sum grows only by what it counts
	// from now on, with no discontinuity.
	f.add(4, engineVBs(4, 7, 5000)...)
	s, n, d := read()
	if s != 6610 || n != 3 || d != 0 {
		t.Errorf("engine 4 joined: sum %d count %d discontinuity %d, want 6610 3 0", s, n, d)
	}
	f.set(4, smi.VarBind{Name: seRequests, Value: smi.Counter64(5100)})
	if s, _, _ := read(); s != 6710 {
		t.Errorf("engine 4 counted 100: %d, want 6710", s)
	}
	// Every engine silent: the sum keeps its value, min/max have none.
	for id := fanout.NodeID(1); id <= 4; id++ {
		f.edit(id, func(e *fakeEngine) { e.silent = true })
	}
	got := get(t, tree, sum, agg(mib.FuncCount, seRequests), agg(mib.FuncMax, seWeight))
	if !got[0].Equal(smi.Counter64(6710)) || !got[1].Equal(smi.Gauge32(0)) || got[2].Type != smi.TypeNoSuchInstance {
		t.Errorf("nobody answering: %v", got)
	}
}

func TestAggregateCounter32Wrap(t *testing.T) {
	tree, f, _ := newFarm(t, 1)
	f.set(1, smi.VarBind{Name: oidIfInOct, Value: smi.Counter32(4294967000)})
	if v := get(t, tree, agg(mib.FuncSum, oidIfInOct))[0]; !v.Equal(smi.Counter64(4294967000)) {
		t.Fatalf("sum = %s", v)
	}
	f.set(1, smi.VarBind{Name: oidIfInOct, Value: smi.Counter32(704)}) // wrapped: +1000
	if v := get(t, tree, agg(mib.FuncSum, oidIfInOct))[0]; !v.Equal(smi.Counter64(4294968000)) {
		t.Errorf("after a wrap sum = %s, want 4294968000", v)
	}
}

func TestAggregateNoEngines(t *testing.T) {
	tree, _, _ := newFarm(t, 0)
	got := get(t, tree, agg(mib.FuncCount, seWeight), agg(mib.FuncSum, seWeight))
	if !got[0].Equal(smi.Gauge32(0)) || got[1].Type != smi.TypeNoSuchInstance {
		t.Errorf("no engines: %v", got)
	}
	if vbs := walk(t, tree, aggRoot, 10); len(vbs) != 0 {
		t.Errorf("walk with no engines: %v", vbs)
	}
}

// TestAggregateWalk: GETNEXT lists the functions over the engines' own
// numeric objects only, each with a value, in order, and ends.
func TestAggregateWalk(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	f.set(1, smi.VarBind{Name: oidHrProcs, Value: smi.Gauge32(5)}) // proxied: not listed
	vbs := walk(t, tree, aggRoot, 100)
	if n := f.getCount(); n != 0 {
		t.Errorf("the walk made %d GET fan-outs; it is served from snapshots", n)
	}
	count := map[mib.Func]int{}
	for _, vb := range vbs {
		fn, inner := mib.Func(vb.Name[len(aggRoot)]), vb.Name[len(aggRoot)+1:]
		count[fn]++
		if inner.Equal(oidHrProcs) || inner.Equal(oidSysName) {
			t.Errorf("walk lists %s", vb.Name)
		}
		// The walk's value is the GET's.
		if g := get(t, tree, vb.Name)[0]; !g.Equal(vb.Value) {
			t.Errorf("%s: walk %s, get %s", vb.Name, vb.Value, g)
		}
	}
	// Numeric objects: sysUpTime (ticks), admin, weight, load (gauges and
	// integers), requests (counter).
	want := map[mib.Func]int{mib.FuncSum: 4, mib.FuncMin: 4, mib.FuncMax: 4, mib.FuncAvg: 4, mib.FuncCount: 5}
	for fn, n := range want {
		if count[fn] != n {
			t.Errorf("walk lists %d objects for %s, want %d", count[fn], fn, n)
		}
	}
	// A range that starts inside and ends early.
	r := smi.Range{Start: agg(mib.FuncSum, seAdmin), End: agg(mib.FuncSum, seLoad)}
	got, err := tree.GetNext(context.Background(), []smi.Range{r})
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Name.Equal(agg(mib.FuncSum, seWeight)) {
		t.Errorf("GetNext in range = %s, want sum of smSeWeight", got[0])
	}
}

func TestEngineTable(t *testing.T) {
	tree, f, _ := newFarm(t, 2)
	f.edit(1, func(e *fakeEngine) {
		e.row.RTT = 1500 * time.Microsecond
		e.row.LastSeen = epoch.Add(12 * time.Second)
		e.row.Info, e.row.HasInfo = wire.EngineInfo{Load: 150, Requests: 5000, BytesOut: 1 << 40, ContentCount: 12, Name: "farm1-se1"}, true
	})
	f.edit(2, func(e *fakeEngine) {
		e.row.State, e.row.LastStatus, e.row.NoAnswers = fanout.EngineDown, fanout.StatusNoAnswer, 3
	})
	col := func(c uint32, id uint32) smi.OID { return mib.SmEngineEntry.OID().Append(c, id) }
	got := get(t, tree, inst(mib.SmEngineCount), col(2, 1), col(3, 1), col(4, 1), col(5, 1), col(6, 1), col(7, 1),
		col(8, 1), col(9, 1), col(10, 1), col(11, 1), col(4, 2), col(7, 2), col(9, 2), col(4, 3), col(12, 1), col(12, 2))
	want := []smi.Value{smi.Gauge32(2), smi.Integer(1), smi.OctetString([]byte{10, 0, 0, 1}), smi.Integer(1),
		smi.Gauge32(1500), smi.TimeTicks(1200), smi.Integer(2), smi.Gauge32(150), smi.Counter64(5000),
		smi.Counter64(1 << 40), smi.Gauge32(12), smi.Integer(3), smi.Integer(3), smi.NoSuchInstance(), smi.NoSuchInstance(),
		// smEngineName: what the heartbeat carried; every row has one, so
		// a discovery walking the column finds every engine.
		smi.String("farm1-se1"), smi.String("")}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
	// The engine restarts: same row, counters keep growing.
	f.edit(1, func(e *fakeEngine) { e.row.Restarts, e.row.Info.Requests = 1, 7 })
	if v := get(t, tree, col(9, 1))[0]; !v.Equal(smi.Counter64(5007)) {
		t.Errorf("smEngineRequests after a restart = %s, want 5007", v)
	}
	vbs := walk(t, tree, mib.SmEngineTable.OID(), 100)
	if len(vbs) != 11+7 {
		t.Errorf("walk of smEngineTable: %d varbinds, want 18", len(vbs))
	}
	if f.getCount() != 0 {
		t.Errorf("smEngineTable made %d fan-outs; it is served from memory", f.getCount())
	}
}

func TestLastStatusMatchesMIB(t *testing.T) {
	enum := mib.SmEngineLastStatus.Object().Syntax.Enum
	want := map[string]mib.LastStatus{"none": mib.LastNone, "ok": mib.LastOK, "timeout": mib.LastTimeout,
		"error": mib.LastError, "staleTerm": mib.LastStaleTerm}
	if len(enum) != len(want) {
		t.Fatalf("%d labels", len(enum))
	}
	for _, e := range enum {
		if int64(want[e.Label]) != e.Value {
			t.Errorf("%s(%d): Go says %d", e.Label, e.Value, want[e.Label])
		}
	}
	states := mib.SmEngineState.Object().Syntax.Enum
	for _, s := range []fanout.EngineState{fanout.EngineUp, fanout.EngineSuspect, fanout.EngineDown} {
		if states[int(s)-1].Value != int64(s) || states[int(s)-1].Label != s.String() {
			t.Errorf("fanout state %s(%d) is %v in the MIB", s, s, states[int(s)-1])
		}
	}
}

func TestProxyGet(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	f.edit(3, func(e *fakeEngine) { e.row.State = fanout.EngineDown })
	got := get(t, tree, proxy(2, oidSysName), proxy(1, seWeight), proxy(2, oidHrProcs), proxy(3, oidSysName),
		proxy(9, oidSysName), proxy(0, oidSysName), proxyRoot.Append(1))
	want := []smi.Value{smi.String("se2"), smi.Gauge32(7), smi.NoSuchObject(), smi.NoSuchInstance(),
		smi.NoSuchInstance(), smi.NoSuchInstance(), smi.NoSuchObject()}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
	if f.getCount() != 1 {
		t.Fatalf("%d fan-outs, want 1", f.getCount())
	}
	if to := f.getTo[0]; len(to) != 2 || to[0] != 1 || to[1] != 2 {
		t.Errorf("fan-out to %v, want [1 2] (never the down engine)", to)
	}
	// A silent engine answers noSuchInstance.
	f.edit(1, func(e *fakeEngine) { e.silent = true })
	if v := get(t, tree, proxy(1, seWeight))[0]; v.Type != smi.TypeNoSuchInstance {
		t.Errorf("silent engine: %s", v)
	}
}

func TestProxyWalk(t *testing.T) {
	tree, f, _ := newFarm(t, 2)
	f.set(1, smi.VarBind{Name: oidHrProcs, Value: smi.Gauge32(5)})
	vbs := walk(t, tree, proxyRoot, 100)
	if len(vbs) != 12 {
		t.Fatalf("walk of smEngineProxy: %d varbinds, want 12: %v", len(vbs), vbs)
	}
	if !vbs[0].Name.Equal(proxy(1, oidSysUp)) || !vbs[6].Name.Equal(proxy(2, oidSysUp)) {
		t.Errorf("walk order: %s, %s", vbs[0].Name, vbs[6].Name)
	}
	// Starting inside one engine's objects continues there.
	got, err := tree.GetNext(context.Background(), []smi.Range{{Start: proxy(1, seRequests)}})
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Name.Equal(proxy(2, oidSysUp)) {
		t.Errorf("after engine 1's last object: %s", got[0].Name)
	}
}

func setVB(name smi.OID, v smi.Value) smi.VarBind { return smi.VarBind{Name: name, Value: v} }

func TestAllEnginesSet(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	if err := set(tree, setVB(allRoot.Append(seWeight...), smi.Gauge32(9))); err != nil {
		t.Fatal(err)
	}
	for id := fanout.NodeID(1); id <= 3; id++ {
		if v := f.value(id, seWeight); !v.Equal(smi.Gauge32(9)) {
			t.Errorf("engine %d weight %s after SET, want 9", id, v)
		}
	}
	got := get(t, tree, agg(mib.FuncSum, seWeight), agg(mib.FuncCount, seWeight), allRoot.Append(seWeight...),
		proxy(2, seWeight))
	want := []smi.Value{smi.Gauge32(27), smi.Gauge32(3), smi.Gauge32(9), smi.Gauge32(9)}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("after SET varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
	if f.pendingSets() != 0 {
		t.Errorf("%d farm transactions left after the SET", f.pendingSets())
	}

	// One engine with max_weight 5 refuses 6: the SET fails with its
	// error at the varbind's index, and no engine changes.
	f.edit(2, func(e *fakeEngine) {
		e.check = func(vb smi.VarBind) error {
			if vb.Name.Equal(seWeight) && vb.Value.Uint > 5 {
				return smi.Errorf(smi.WrongValue, "smSeWeight 6 above this engine's max_weight 5")
			}
			return nil
		}
	})
	err := set(tree, setVB(allRoot.Append(seAdmin...), smi.Integer(2)), setVB(allRoot.Append(seWeight...), smi.Gauge32(6)))
	if st, idx := smi.StatusOf(err); st != smi.WrongValue || idx != 1 {
		t.Errorf("SET above one engine's max = %v (%s at %d), want wrongValue at 1", err, st, idx)
	}
	if err == nil || !strings.Contains(err.Error(), "max_weight 5") {
		t.Errorf("error %v does not carry the engine's reason", err)
	}
	for id := fanout.NodeID(1); id <= 3; id++ {
		if v := f.value(id, seWeight); !v.Equal(smi.Gauge32(9)) {
			t.Errorf("engine %d weight %s after a refused SET, want 9", id, v)
		}
	}
	if f.pendingSets() != 0 {
		t.Errorf("%d farm transactions left after a refused SET", f.pendingSets())
	}

	// Engines disagree: GET of smAllEngines has no value.
	f.set(3, smi.VarBind{Name: seWeight, Value: smi.Gauge32(1)})
	if v := get(t, tree, allRoot.Append(seWeight...))[0]; v.Type != smi.TypeNoSuchInstance {
		t.Errorf("GET with disagreeing engines = %s", v)
	}
	if vbs := walk(t, tree, allRoot, 5); len(vbs) != 0 {
		t.Errorf("walk of smAllEngines lists %v", vbs)
	}
}

func TestAllEnginesCommitFailed(t *testing.T) {
	tree, f, _ := newFarm(t, 2)
	f.edit(2, func(e *fakeEngine) { e.failCommit = true })
	err := set(tree, setVB(allRoot.Append(seWeight...), smi.Gauge32(3)))
	if st, _ := smi.StatusOf(err); st != smi.CommitFailed {
		t.Errorf("SET with an engine not confirming = %v, want commitFailed", err)
	}
	if v := f.value(1, seWeight); !v.Equal(smi.Gauge32(7)) {
		t.Errorf("engine 1 weight %s after the undo, want 7", v)
	}
}

// TestProxyAndAllEnginesInOneSet: one northbound SET through both
// handlers and to two engines is several farm transactions with distinct
// keys, all cleaned up.
func TestProxyAndAllEnginesInOneSet(t *testing.T) {
	tree, f, _ := newFarm(t, 3)
	err := set(tree,
		setVB(proxy(1, seWeight), smi.Gauge32(1)),
		setVB(allRoot.Append(seAdmin...), smi.Integer(2)),
		setVB(proxy(3, seWeight), smi.Gauge32(3)))
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range map[fanout.NodeID]uint32{1: 1, 2: 7, 3: 3} {
		if v := f.value(id, seWeight); !v.Equal(smi.Gauge32(w)) {
			t.Errorf("engine %d weight %s, want %d", id, v, w)
		}
		if v := f.value(id, seAdmin); !v.Equal(smi.Integer(2)) {
			t.Errorf("engine %d admin %s, want 2", id, v)
		}
	}
	if len(f.cleaned) != 3 || f.pendingSets() != 0 {
		t.Errorf("cleaned %v, %d pending; want 3 cleaned", f.cleaned, f.pendingSets())
	}
	// Writing an engine that does not exist, or is down.
	f.edit(2, func(e *fakeEngine) { e.row.State = fanout.EngineDown })
	for _, c := range []struct {
		id   uint32
		want smi.ErrorStatus
	}{{9, smi.NoCreation}, {2, smi.ResourceUnavailable}} {
		if st, _ := smi.StatusOf(set(tree, setVB(proxy(c.id, seWeight), smi.Gauge32(1)))); st != c.want {
			t.Errorf("SET on engine %d: %s, want %s", c.id, st, c.want)
		}
	}
	if st, _ := smi.StatusOf(set(tree, setVB(proxyRoot.Append(1), smi.Gauge32(1)))); st != smi.NotWritable {
		t.Errorf("SET of smEngineProxy.1: %s, want notWritable", st)
	}
}

func TestRegisterManagerInvalid(t *testing.T) {
	if _, err := mib.RegisterManager(agent.NewTree(), mib.ManagerConfig{}); !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("RegisterManager without a farm = %v", err)
	}
	tree := agent.NewTree()
	if err := tree.RegisterScalar(mib.SmAllEngines.OID(), agent.Const(smi.Integer(1))); err != nil {
		t.Fatal(err)
	}
	_, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: newFakeFarm(time.Now)})
	if !errors.Is(err, agent.ErrOverlap) || len(tree.Roots()) != 1 {
		t.Errorf("RegisterManager over a taken OID = %v, roots %v", err, tree.Roots())
	}
}

func TestEngineNotification(t *testing.T) {
	ev := fanout.EngineEvent{Up: false, Engine: fanout.Engine{ID: 12, State: fanout.EngineDown,
		Addr: netipAddrPort("192.0.2.7:4000"), LastStatus: fanout.StatusNoAnswer, NoAnswers: 1}}
	trap, vbs := mib.EngineNotification(ev)
	if !trap.Equal(mib.SmEngineDown.OID()) {
		t.Errorf("trap OID %s", trap)
	}
	want := []smi.VarBind{
		{Name: mib.SmEngineAddressType.OID().Append(12), Value: smi.Integer(1)},
		{Name: mib.SmEngineAddress.OID().Append(12), Value: smi.OctetString([]byte{192, 0, 2, 7})},
		{Name: mib.SmEngineState.OID().Append(12), Value: smi.Integer(3)},
		{Name: mib.SmEngineLastStatus.OID().Append(12), Value: smi.Integer(3)},
	}
	if len(vbs) != len(want) {
		t.Fatalf("%d varbinds", len(vbs))
	}
	for i := range want {
		if !vbs[i].Name.Equal(want[i].Name) || !vbs[i].Value.Equal(want[i].Value) {
			t.Errorf("varbind %d = %s, want %s", i, vbs[i], want[i])
		}
	}
	ev.Up = true
	if trap, _ := mib.EngineNotification(ev); !trap.Equal(mib.SmEngineUp.OID()) {
		t.Errorf("up trap OID %s", trap)
	}
	trap, vbs = mib.TakeoverNotification(3, 9)
	if !trap.Equal(mib.SmManagerTakeover.OID()) || len(vbs) != 2 || !vbs[1].Value.Equal(smi.Counter64(9)) {
		t.Errorf("takeover: %s %v", trap, vbs)
	}
	trap, vbs = mib.TransferAbortedNotification(mib.TransferAborted{Sender: 4, MessageID: 77, Complete: false, Aborts: 2})
	if !trap.Equal(mib.SmTransferAborted.OID()) || len(vbs) != 4 || !vbs[2].Value.Equal(smi.Integer(2)) {
		t.Errorf("transfer aborted: %s %v", trap, vbs)
	}
}

func TestEngineContext(t *testing.T) {
	_, f, m := newFarm(t, 3)
	contexts := agent.NewContexts()
	for _, id := range []fanout.NodeID{2} {
		if err := m.RegisterEngineContext(contexts.Ensure(mib.EngineContextName(id)), id); err != nil {
			t.Fatal(err)
		}
	}
	t2 := contexts.Tree("se2")
	if t2 == nil {
		t.Fatalf("contexts %v", contexts.Names())
	}
	t3, err := m.EngineTree(3)
	if err != nil {
		t.Fatal(err)
	}
	if v := get(t, t2, oidSysName)[0]; !v.Equal(smi.String("se2")) {
		t.Errorf("sysName.0 in engine 2's context = %s", v)
	}
	if to := f.getTo[len(f.getTo)-1]; len(to) != 1 || to[0] != 2 {
		t.Errorf("fan-out to %v, want [2]", to)
	}
	if vbs := walk(t, t2, smi.OID{1}, 50); len(vbs) != 6 || !vbs[0].Name.Equal(oidSysUp) {
		t.Errorf("walk of engine 2's context: %v", vbs)
	}
	// The same northbound transaction id in two contexts: distinct farm
	// transactions.
	tx := smi.TxID{Session: 1, Transaction: 1}
	ctx := context.Background()
	if err := t2.TestSet(ctx, tx, []smi.VarBind{setVB(seWeight, smi.Gauge32(2))}); err != nil {
		t.Fatal(err)
	}
	if err := t3.TestSet(ctx, tx, []smi.VarBind{setVB(seWeight, smi.Gauge32(3))}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*agent.Tree{t2, t3} {
		if err := tr.CommitSet(ctx, tx); err != nil {
			t.Fatal(err)
		}
		tr.CleanupSet(ctx, tx)
	}
	for id, w := range map[fanout.NodeID]uint32{1: 7, 2: 2, 3: 3} {
		if v := f.value(id, seWeight); !v.Equal(smi.Gauge32(w)) {
			t.Errorf("engine %d weight %s, want %d", id, v, w)
		}
	}
	if f.pendingSets() != 0 {
		t.Errorf("%d farm transactions pending", f.pendingSets())
	}
	f.edit(3, func(e *fakeEngine) { e.row.State = fanout.EngineDown })
	if v := get(t, t3, oidSysName)[0]; v.Type != smi.TypeNoSuchInstance {
		t.Errorf("down engine's context answers %s", v)
	}
	if err := m.RegisterEngineContext(agent.NewTree(), 0); !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("RegisterEngineContext(0) = %v", err)
	}
	if _, err := m.EngineTree(1 << 31); !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("EngineTree(2^31) = %v", err)
	}
	if err := m.RegisterEngineContext(t2, 2); !errors.Is(err, agent.ErrOverlap) {
		t.Errorf("registering engine 2's context twice = %v", err)
	}
}

func TestLastStatusOf(t *testing.T) {
	for _, c := range []struct {
		e    fanout.Engine
		want mib.LastStatus
	}{
		{fanout.Engine{LastStatus: fanout.StatusNoAnswer}, mib.LastNone},
		{fanout.Engine{LastStatus: fanout.StatusNoAnswer, NoAnswers: 1}, mib.LastTimeout},
		{fanout.Engine{LastStatus: fanout.StatusOK, Replies: 1}, mib.LastOK},
		{fanout.Engine{LastStatus: fanout.StatusStaleTerm, Replies: 1}, mib.LastStaleTerm},
		{fanout.Engine{LastStatus: fanout.StatusSNMPError, Replies: 1}, mib.LastError},
		{fanout.Engine{LastStatus: fanout.StatusBusy, Replies: 1}, mib.LastError},
	} {
		if got := mib.LastStatusOf(c.e); got != c.want {
			t.Errorf("LastStatusOf(%v) = %d, want %d", c.e.LastStatus, got, c.want)
		}
	}
}

func TestEngineAddresses(t *testing.T) {
	for _, c := range []struct {
		addr string
		typ  int32
		b    []byte
	}{
		{"[2001:db8::1]:5", 2, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"[::ffff:192.0.2.1]:5", 1, []byte{192, 0, 2, 1}},
		{"[fe80::1%eth0]:5", 0, []byte{}},
	} {
		_, vbs := mib.EngineNotification(fanout.EngineEvent{Engine: fanout.Engine{ID: 1, Addr: netipAddrPort(c.addr)}})
		if !vbs[0].Value.Equal(smi.Integer(c.typ)) || !vbs[1].Value.Equal(smi.OctetString(c.b)) {
			t.Errorf("%s: %s %s", c.addr, vbs[0].Value, vbs[1].Value)
		}
	}
	_, vbs := mib.EngineNotification(fanout.EngineEvent{Engine: fanout.Engine{ID: 1}})
	if !vbs[0].Value.Equal(smi.Integer(0)) || len(vbs[1].Value.Bytes) != 0 {
		t.Errorf("no address: %s %s", vbs[0].Value, vbs[1].Value)
	}
}

func TestProxySetCommitFailed(t *testing.T) {
	tree, f, _ := newFarm(t, 2)
	f.edit(2, func(e *fakeEngine) { e.failCommit = true })
	err := set(tree, setVB(proxy(1, seWeight), smi.Gauge32(1)), setVB(proxy(2, seWeight), smi.Gauge32(2)))
	if st, idx := smi.StatusOf(err); st != smi.CommitFailed || idx != 1 {
		t.Errorf("SET = %v (%s at %d), want commitFailed at 1", err, st, idx)
	}
	if v := f.value(1, seWeight); !v.Equal(smi.Gauge32(7)) {
		t.Errorf("engine 1 weight %s after the undo, want 7", v)
	}
	if f.pendingSets() != 0 {
		t.Errorf("%d farm transactions pending", f.pendingSets())
	}
}

func TestFuncNames(t *testing.T) {
	for _, fn := range mib.Funcs {
		o, ok := mib.ByName("smAggregate" + strings.ToUpper(fn.String()[:1]) + fn.String()[1:])
		if !ok || !o.OID.Equal(mib.SmAggregate.OID().Append(uint32(fn))) || !fn.Valid() {
			t.Errorf("function %s(%d) is not smAggregate.%d in the MIB", fn, fn, fn)
		}
	}
	if mib.Func(6).Valid() || mib.Func(6).String() != "Func(6)" {
		t.Error("Func(6)")
	}
}
