package mib_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// rows is a settable engine table.
type rows struct {
	mu sync.Mutex
	m  map[fanout.NodeID]fanout.Engine
}

func newRows() *rows { return &rows{m: map[fanout.NodeID]fanout.Engine{}} }

func (r *rows) engines() []fanout.Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]fanout.Engine, 0, len(r.m))
	for _, e := range r.m {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b fanout.Engine) int { return int(a.ID) - int(b.ID) })
	return out
}

func (r *rows) set(id fanout.NodeID, f func(*fanout.Engine)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[id]
	if !ok {
		e = fanout.Engine{ID: id, State: fanout.EngineUp, HasInfo: true}
	}
	f(&e)
	r.m[id] = e
}

func newSubtree(t *testing.T, cfg mib.SubtreeConfig) *mib.Subtree {
	t.Helper()
	s, err := mib.NewSubtree(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// At level 1 the totals are the engines' own numbers: counters as
// smEngineRequests counts them (whole count when first seen, on from the
// last value across a restart, kept after a departure), gauges from the
// engines up or suspect.
func TestSubtreeLevel1(t *testing.T) {
	r := newRows()
	s := newSubtree(t, mib.SubtreeConfig{Level: 1, CDN: 1, DataCenter: 2, Farm: 3, Engines: r.engines,
		Active: func() bool { return true }, Term: func() uint64 { return 7 }})
	r.set(1, func(e *fanout.Engine) {
		e.Info = wire.EngineInfo{Load: 100, Requests: 1000, BytesOut: 5000, ContentCount: 10}
	})
	r.set(2, func(e *fanout.Engine) {
		e.State = fanout.EngineSuspect
		e.Info = wire.EngineInfo{Load: 301, Requests: 20, BytesOut: 30, ContentCount: 5}
	})
	r.set(3, func(e *fanout.Engine) { e.State, e.HasInfo = fanout.EngineDown, false })
	got := s.Update()
	want := wire.Subtree{Active: true, Level: 1, CDN: 1, DataCenter: 2, Farm: 3, Term: 7, Requests: 1020, BytesOut: 5030,
		ContentCount: 15, LoadSum: 401, LoadEngines: 2, Up: 1, Suspect: 1, Down: 1}
	if got != want {
		t.Fatalf("first update:\n got %+v\nwant %+v", got, want)
	}
	// Engine 1 restarts and counts from zero; engine 2 leaves; engine 4
	// joins with what it counted before.
	r.set(1, func(e *fanout.Engine) { e.Restarts, e.Info.Requests, e.Info.BytesOut = 1, 3, 40 })
	r.set(2, func(e *fanout.Engine) { e.State = fanout.EngineDown })
	r.set(4, func(e *fanout.Engine) {
		e.Info = wire.EngineInfo{Load: 50, Requests: 500, BytesOut: 1, ContentCount: 2}
	})
	got = s.Update()
	if got.Requests != 1000+3+20+500 || got.BytesOut != 5000+40+30+1 {
		t.Errorf("after a restart, a departure and a join: requests %d bytes %d, want %d %d", got.Requests, got.BytesOut, 1523, 5071)
	}
	if got.Up != 2 || got.Suspect != 0 || got.Down != 2 || got.ContentCount != 12 || got.LoadSum != 150 || got.LoadEngines != 2 {
		t.Errorf("gauges after the changes: %+v", got)
	}
	// A restart seen only as a smaller value (no incarnation change seen
	// yet) is a restart too.
	r.set(4, func(e *fanout.Engine) { e.Info.Requests = 10 })
	if got = s.Update(); got.Requests != 1523+10 {
		t.Errorf("value going back: requests %d, want %d", got.Requests, 1533)
	}
	if s.Report() != got {
		t.Errorf("Report %+v differs from the last Update %+v", s.Report(), got)
	}
}

// A random history of engines counting, restarting, leaving and joining:
// the counters never go back, and equal the sum of what each engine's row
// counts (computed here independently).
func TestSubtreeLevel1Monotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRows()
	s := newSubtree(t, mib.SubtreeConfig{Level: 1, Engines: r.engines})
	type model struct{ base, cur, restarts uint64 }
	ms := map[fanout.NodeID]*model{}
	var last uint64
	for step := 0; step < 2000; step++ {
		id := fanout.NodeID(rng.IntN(12) + 1)
		m := ms[id]
		switch {
		case m == nil:
			// It appears, with what it counted before.
			m = &model{cur: uint64(rng.IntN(1000))}
			ms[id] = m
		case rng.IntN(10) == 0:
			// It restarts: counts again from (near) zero. (Its row
			// takes a value equal to the last one after a restart for
			// the old incarnation's, still in the row: not here.)
			old := m.cur
			m.base += m.cur
			for m.cur = uint64(rng.IntN(3)); m.cur == old; m.cur = uint64(rng.IntN(3)) {
			}
			m.restarts++
		case rng.IntN(9) == 0:
			r.set(id, func(e *fanout.Engine) { e.State = fanout.EngineDown })
			continue
		default:
			m.cur += uint64(rng.IntN(50))
		}
		r.set(id, func(e *fanout.Engine) {
			e.State, e.Restarts, e.Info.Requests = fanout.EngineUp, m.restarts, m.cur
		})
		got := s.Update().Requests
		var want uint64
		for _, m := range ms {
			want += m.base + m.cur
		}
		if got < last {
			t.Fatalf("step %d: requests went back from %d to %d", step, last, got)
		}
		if got != want {
			t.Fatalf("step %d: requests %d, the engines' rows add up to %d", step, got, want)
		}
		last = got
	}
}

// The managers of a level keep their counters no lower than each other's,
// so a backup that knew less (it started after an engine's restart)
// answers as the active manager did, and keeps counting from there.
func TestSubtreeFollowsPeers(t *testing.T) {
	r := newRows()
	r.set(1, func(e *fanout.Engine) { e.Info.Requests, e.Info.BytesOut = 100, 1000 })
	var peers []wire.Subtree
	s := newSubtree(t, mib.SubtreeConfig{Level: 1, CDN: 1, DataCenter: 1, Farm: 1, Engines: r.engines,
		Peers: func() []wire.Subtree { return peers }})
	if got := s.Update(); got.Requests != 100 {
		t.Fatalf("alone: %d", got.Requests)
	}
	same := wire.Subtree{Level: 1, CDN: 1, DataCenter: 1, Farm: 1, Active: true, Requests: 5100, BytesOut: 900}
	other := wire.Subtree{Level: 1, CDN: 1, DataCenter: 2, Farm: 1, Active: true, Requests: 1 << 50, BytesOut: 1 << 50}
	peers = []wire.Subtree{same, other}
	got := s.Update()
	if got.Requests != 5100 || got.BytesOut != 1000 {
		t.Errorf("with a peer that knew more: requests %d bytes %d, want 5100 (the peer's) and 1000 (its own, higher)", got.Requests, got.BytesOut)
	}
	// The peer dies; this manager counts on from where it was.
	peers = nil
	r.set(1, func(e *fanout.Engine) { e.Info.Requests = 130 })
	if got := s.Update(); got.Requests != 5130 {
		t.Errorf("after the peer went: requests %d, want 5130", got.Requests)
	}
	// A peer that restarted and knows less changes nothing.
	peers = []wire.Subtree{{Level: 1, CDN: 1, DataCenter: 1, Farm: 1, Requests: 130}}
	if got := s.Update(); got.Requests != 5130 {
		t.Errorf("with a peer that knows less: %d, want 5130", got.Requests)
	}
}

// report is a child manager's heartbeat with its subtree.
func report(active bool, term uint64, dc uint32, req uint64, up, suspect, down uint32) wire.EngineInfo {
	return wire.EngineInfo{HasSubtree: true, Subtree: wire.Subtree{Active: active, Level: 1, CDN: 1, DataCenter: dc, Farm: 1,
		Term: term, Requests: req, BytesOut: 2 * req, ContentCount: uint64(up) * 10, LoadSum: uint64(up) * 100,
		LoadEngines: up, Up: up, Suspect: suspect, Down: down}}
}

// Above level 1 each child unit counts once, by the report of its active
// manager; a takeover there that reports less, or a unit nobody reports,
// takes nothing back.
func TestSubtreeAboveLevel1(t *testing.T) {
	r := newRows()
	s := newSubtree(t, mib.SubtreeConfig{Level: 2, CDN: 1, DataCenter: 1, Engines: r.engines})
	// Unit 1 has an SM (10) and a BSM (11) reporting the same; unit 2 an
	// SM (20) only.
	r.set(10, func(e *fanout.Engine) { e.Info = report(true, 3, 1, 1000, 4, 0, 1) })
	r.set(11, func(e *fanout.Engine) { e.Info = report(false, 3, 1, 1000, 4, 0, 1) })
	r.set(20, func(e *fanout.Engine) { e.Info = report(true, 1, 2, 50, 2, 1, 0) })
	got := s.Update()
	want := wire.Subtree{Level: 2, CDN: 1, DataCenter: 1, Requests: 1050, BytesOut: 2100, ContentCount: 60,
		LoadSum: 600, LoadEngines: 6, Up: 6, Suspect: 1, Down: 1}
	if got != want {
		t.Fatalf("two units:\n got %+v\nwant %+v", got, want)
	}
	// Unit 1's SM dies; its BSM takes over knowing less (no state carried
	// over): the unit adds nothing until its reports rise again.
	r.set(10, func(e *fanout.Engine) { e.State = fanout.EngineDown })
	r.set(11, func(e *fanout.Engine) { e.Info = report(true, 4, 1, 900, 4, 0, 1) })
	if got = s.Update(); got.Requests != 1050 {
		t.Errorf("takeover reporting less: requests %d, want 1050", got.Requests)
	}
	r.set(11, func(e *fanout.Engine) { e.Info = report(true, 4, 1, 925, 4, 0, 1) })
	r.set(20, func(e *fanout.Engine) { e.Info = report(true, 1, 2, 60, 2, 1, 0) })
	if got = s.Update(); got.Requests != 1050+25+10 {
		t.Errorf("after the takeover: requests %d, want 1085", got.Requests)
	}
	// Nobody reports unit 2 any more: its engines count as down, the
	// counters keep what it counted.
	r.set(20, func(e *fanout.Engine) { e.State = fanout.EngineDown })
	got = s.Update()
	if got.Requests != 1085 || got.Up != 4 || got.Suspect != 0 || got.Down != 1+3 || got.LoadEngines != 4 {
		t.Errorf("unit 2 unreported: %+v", got)
	}
	// It comes back (its manager restarted, counting from its engines'
	// values again): nothing is counted twice.
	r.set(20, func(e *fanout.Engine) { e.State, e.Info = fanout.EngineUp, report(true, 2, 2, 40, 3, 0, 0) })
	if got = s.Update(); got.Requests != 1085 || got.Up != 7 || got.Down != 1 {
		t.Errorf("unit 2 back: %+v", got)
	}
}

// Two managers both claiming a unit with the same term (a partition
// heals) take turns only if they must: the totals never count the
// difference between their reports over and over.
func TestSubtreeSticksToAReporter(t *testing.T) {
	r := newRows()
	s := newSubtree(t, mib.SubtreeConfig{Level: 2, Engines: r.engines})
	var total uint64
	for i := uint64(0); i < 50; i++ {
		// 10 reports 1000+i, 11 reports 990+i: alternating between them
		// would add 10 each time.
		r.set(10, func(e *fanout.Engine) { e.Info = report(true, 5, 1, 1000+i, 1, 0, 0) })
		r.set(11, func(e *fanout.Engine) { e.Info = report(true, 5, 1, 990+i, 1, 0, 0) })
		if i%2 == 1 {
			r.set(10, func(e *fanout.Engine) { e.State = fanout.EngineSuspect })
		} else {
			r.set(10, func(e *fanout.Engine) { e.State = fanout.EngineUp })
		}
		total = s.Update().Requests
	}
	if total != 1049 {
		t.Errorf("after 50 rounds: requests %d, want 1049 (one reporter's count)", total)
	}
}

func TestRegisterSubtree(t *testing.T) {
	r := newRows()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	s := newSubtree(t, mib.SubtreeConfig{Level: 1, Engines: r.engines, Now: clock, Interval: time.Second})
	r.set(1, func(e *fanout.Engine) {
		e.Info = wire.EngineInfo{Load: 101, Requests: 1 << 40, BytesOut: 9, ContentCount: 1 << 33}
	})
	r.set(2, func(e *fanout.Engine) { e.Info = wire.EngineInfo{Load: 102, Requests: 1} })
	tree := agent.NewTree()
	if err := mib.RegisterSubtree(tree, s); err != nil {
		t.Fatal(err)
	}
	ids := []mib.ID{mib.SmSubtreeRequests, mib.SmSubtreeBytesOut, mib.SmSubtreeContentCount, mib.SmSubtreeLoad,
		mib.SmSubtreeEnginesUp, mib.SmSubtreeEnginesSuspect, mib.SmSubtreeEnginesDown}
	var names []smi.OID
	for _, id := range ids {
		names = append(names, id.OID().Append(0))
	}
	want := []smi.Value{smi.Counter64(1<<40 + 1), smi.Counter64(9), smi.Gauge32(^uint32(0)), smi.Gauge32(102),
		smi.Gauge32(2), smi.Gauge32(0), smi.Gauge32(0)}
	vals := get(t, tree, names...)
	for i := range want {
		if !vals[i].Equal(want[i]) {
			t.Errorf("%s = %s, want %s", ids[i], vals[i], want[i])
		}
	}
	// Within the interval a read answers the same numbers; after it, new
	// ones.
	r.set(2, func(e *fanout.Engine) { e.Info.Requests = 5 })
	if v := get(t, tree, names[0]); !v[0].Equal(want[0]) {
		t.Errorf("within the interval: %s, want the cached %s", v[0], want[0])
	}
	now = now.Add(time.Second)
	if v := get(t, tree, names[0]); !v[0].Equal(smi.Counter64(1<<40 + 5)) {
		t.Errorf("after the interval: %s, want %d", v[0], uint64(1<<40+5))
	}
	// A walk lists the seven, in order.
	var got []smi.OID
	for _, vb := range walk(t, tree, mib.SmSubtree.OID(), 20) {
		got = append(got, vb.Name)
	}
	if !slices.EqualFunc(got, names, smi.OID.Equal) {
		t.Errorf("walk of smSubtree: %v, want %v", got, names)
	}
}

func TestSubtreeConfig(t *testing.T) {
	for _, c := range []mib.SubtreeConfig{{Level: 1}, {Level: 0, Engines: newRows().engines}, {Level: 5, Engines: newRows().engines}} {
		if _, err := mib.NewSubtree(c); err == nil {
			t.Errorf("NewSubtree(%+v) accepted", c)
		}
	}
	if err := mib.RegisterSubtree(agent.NewTree(), nil); err == nil {
		t.Error("RegisterSubtree(nil) accepted")
	}
}

func TestSubtreeRun(t *testing.T) {
	r := newRows()
	r.set(1, func(e *fanout.Engine) { e.Info.Requests = 3 })
	s := newSubtree(t, mib.SubtreeConfig{Level: 1, Engines: r.engines, Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan wire.Subtree, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(r wire.Subtree) {
			select {
			case got <- r:
			default:
			}
		})
	}()
	select {
	case rep := <-got:
		if rep.Requests != 3 || rep.Up != 1 {
			t.Errorf("published %+v", rep)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run published nothing")
	}
	cancel()
	<-done
}

func TestRegisterActivePeer(t *testing.T) {
	tree := agent.NewTree()
	id := uint32(0)
	if err := mib.RegisterActivePeer(tree, func() uint32 { return id }); err != nil {
		t.Fatal(err)
	}
	name := mib.SmNodeActivePeer.OID().Append(0)
	for _, c := range []struct{ id, want uint32 }{{0, 0}, {1001, 1001}, {mib.MaxNodeID, mib.MaxNodeID}, {mib.MaxNodeID + 1, 0}} {
		id = c.id
		if v := get(t, tree, name); !v[0].Equal(smi.Gauge32(c.want)) {
			t.Errorf("active peer %d: %v, want %d", c.id, v, c.want)
		}
	}
	if err := mib.RegisterActivePeer(agent.NewTree(), nil); err == nil {
		t.Error("RegisterActivePeer(nil) accepted")
	}
}

// Updates racing each other (the heartbeat loop and SNMP reads) apply the
// rows in the order they were read: rows applied out of order would look
// like an engine going back, a restart, and count it twice.
func TestSubtreeConcurrentUpdates(t *testing.T) {
	var mu sync.Mutex
	var n uint64
	engines := func() []fanout.Engine {
		mu.Lock()
		n++
		v := n
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // let readers overtake each other
		return []fanout.Engine{{ID: 1, State: fanout.EngineUp, HasInfo: true, Info: wire.EngineInfo{Requests: v}}}
	}
	s := newSubtree(t, mib.SubtreeConfig{Level: 1, Engines: engines})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				s.Update()
			}
		}()
	}
	wg.Wait()
	if got := s.Report().Requests; got != n {
		t.Errorf("after %d readings of a counter that only rose to %d, smSubtreeRequests %d", n, n, got)
	}
}
