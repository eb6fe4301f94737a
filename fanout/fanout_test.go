package fanout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// names128 is a 128-varbind GET as Zabbix sends: scalars and table cells.
func names128() []smi.OID {
	var names []smi.OID
	names = append(names, agenttest.ScalarInt.Append(0), agenttest.ScalarC64.Append(0), agenttest.Base.Append(77, 0))
	for i := 0; len(names) < 128; i++ {
		names = append(names, agenttest.SparseTable.Append(3, agenttest.SparseIndex(i)))
	}
	return names
}

// A GET of 128 varbinds over a lossy farm is one transaction and every
// engine answers every varbind.
func TestGet128IsOneTransaction(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 6, farmOpts{faults: memnet.Faults{Loss: 0.05, Dup: 0.02, Reorder: 0.05},
		coord: fanout.CoordinatorConfig{Deadline: 3 * time.Second}})
	before := f.coord.Counters()
	names := names128()
	res, err := f.coord.Get(ctxT(t), nil, names)
	if err != nil {
		t.Fatal(err)
	}
	after := f.coord.Counters()
	if d := after.Transactions - before.Transactions; d != 1 {
		t.Errorf("%d transactions for one GET, want 1", d)
	}
	if !res.Complete() || res.Responders() != 6 {
		t.Fatalf("responders %d, missing %v", res.Responders(), res.Missing)
	}
	for _, r := range res.Replies {
		if r.Status != fanout.StatusOK || len(r.VarBinds) != 128 {
			t.Fatalf("engine %d: %s, %d varbinds", r.Engine, r.Status, len(r.VarBinds))
		}
		if v := r.VarBinds[1].Value; v.Type != smi.TypeCounter64 || v.Uint != agenttest.C64Base {
			t.Errorf("engine %d: Counter64 came back as %v", r.Engine, v)
		}
		if v := r.VarBinds[2].Value; v.Type != smi.TypeNoSuchObject {
			t.Errorf("engine %d: unknown object came back as %v", r.Engine, v)
		}
		for i, vb := range r.VarBinds {
			if !vb.Name.Equal(names[i]) {
				t.Fatalf("engine %d varbind %d named %s, want %s", r.Engine, i, vb.Name, names[i])
			}
		}
	}
}

// An engine that dies: the next GET answers at the deadline with what it
// has, marks the silent engine, and the engine shows down with an event.
func TestEngineKilled(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 3, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 300 * time.Millisecond}})
	waitfor.True(t, 5*time.Second, "up events", func() bool { return len(f.events()) == 3 })
	f.ses[2].kill()
	res, err := f.coord.Get(ctxT(t), nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Responders() != 2 || len(res.Missing) != 1 || res.Missing[0] != f.ses[2].id {
		t.Fatalf("responders %d, missing %v", res.Responders(), res.Missing)
	}
	if e, _ := f.coord.Engine(f.ses[2].id); e.LastStatus != fanout.StatusNoAnswer || e.NoAnswers == 0 {
		t.Errorf("dead engine row: %+v", e)
	}
	waitfor.True(t, 5*time.Second, "down event", func() bool {
		for _, ev := range f.events() {
			if !ev.Up && ev.Engine.ID == f.ses[2].id {
				return true
			}
		}
		return false
	})
	e, ok := f.coord.Engine(f.ses[2].id)
	if !ok || e.State != fanout.EngineDown {
		t.Fatalf("dead engine row %+v", e)
	}
	// Once the view dropped it, reads no longer wait for it.
	f.waitEngines(2)
	res, err = f.coord.Get(ctxT(t), nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	if err != nil || !res.Complete() || res.Responders() != 2 {
		t.Fatalf("after the view change: %+v, %v", res, err)
	}
	if rows := f.coord.Engines(); len(rows) != 3 {
		t.Errorf("the dead engine's row must stay: %d rows", len(rows))
	}
}

// request sends a raw request on the management channel from the manager.
func request(t *testing.T, f *farm, req wire.Request, targets []rmtp.NodeID) []wire.Reply {
	t.Helper()
	b, err := wire.AppendRequest(nil, &req)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.mgr.Request(ctxT(t), rmtp.ChannelManagement, b, targets)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Reply
	for _, r := range rep.Responses {
		p, err := wire.ParseReply(r.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// A repeated request (same manager, incarnation, transaction) is answered
// from the cache: a SET is never executed twice.
func TestRepeatedRequestAnsweredFromCache(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 1, farmOpts{})
	s := f.ses[0]
	term := f.mgr.View().Term
	ids := []rmtp.NodeID{s.id}
	test := wire.Request{Op: wire.OpSetTest, Tx: 4242, Term: term, Targets: []uint32{uint32(s.id)},
		VarBinds: []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(9)}}}
	commit := wire.Request{Op: wire.OpSetCommit, Tx: 4242, Term: term, Targets: []uint32{uint32(s.id)}}
	for range 2 {
		if r := request(t, f, test, ids); len(r) != 1 || r[0].Status != wire.StatusOK {
			t.Fatalf("test: %+v", r)
		}
	}
	for range 3 {
		if r := request(t, f, commit, ids); len(r) != 1 || r[0].Status != wire.StatusOK {
			t.Fatalf("commit: %+v", r)
		}
	}
	if w, n := s.weight(); w != 9 || n != 1 {
		t.Fatalf("weight %d after %d commits, want 9 after 1", w, n)
	}
	c := s.resp.Counters()
	if c.Executed != 2 || c.CacheHits != 3 {
		t.Fatalf("executed %d, cache hits %d; want 2 and 3", c.Executed, c.CacheHits)
	}
	request(t, f, wire.Request{Op: wire.OpSetCleanup, Tx: 4242, Term: term}, ids)
	if n := s.resp.Reservations(); n != 0 {
		t.Fatalf("%d reservations after cleanup", n)
	}
}

// One engine refusing TEST fails the whole SET with its error and index,
// and nothing changes anywhere.
func TestSetOneRefuses(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 4, farmOpts{maxW: map[int]uint32{2: 5}})
	ctx := ctxT(t)
	vbs := []smi.VarBind{
		{Name: agenttest.WritableStr.Append(0), Value: smi.String("x")},
		{Name: weightOID.Append(0), Value: smi.Gauge32(6)},
	}
	_, err := f.coord.Set(ctx, nil, vbs)
	st, idx := smi.StatusOf(err)
	if st != smi.WrongValue || idx != 1 {
		t.Fatalf("got %v (status %s index %d), want wrongValue at 1", err, st, idx)
	}
	var pe *fanout.PhaseError
	if !errors.As(err, &pe) || pe.Engine != f.ses[2].id || pe.Phase != fanout.OpSetTest {
		t.Fatalf("phase error %+v", pe)
	}
	for _, s := range f.ses {
		if w, n := s.weight(); w != 0 || n != 0 {
			t.Errorf("engine %d changed: weight %d, %d commits", s.id, w, n)
		}
		if v := s.tree.WritableStrValue(); v != "initial" {
			t.Errorf("engine %d changed its string to %q", s.id, v)
		}
	}
	waitfor.True(t, 5*time.Second, "reservations released", func() bool {
		for _, s := range f.ses {
			if s.resp.Reservations() != 0 {
				return false
			}
		}
		return true
	})
	// Within every engine's limit it works everywhere.
	vbs[1].Value = smi.Gauge32(5)
	res, err := f.coord.Set(ctx, nil, vbs)
	if err != nil || !res.Complete() {
		t.Fatalf("set: %v %+v", err, res)
	}
	for _, s := range f.ses {
		if w, n := s.weight(); w != 5 || n != 1 {
			t.Errorf("engine %d: weight %d after %d commits", s.id, w, n)
		}
	}
}

// A failing COMMIT on one engine is undone on the others and reported as
// commitFailed.
func TestCommitFailedUndone(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 3, farmOpts{})
	ctx := ctxT(t)
	vbs := []smi.VarBind{{Name: agenttest.WritableInt.Append(0), Value: smi.Integer(500)}, {Name: agenttest.CommitFails.Append(0), Value: smi.Integer(13)}}
	_, err := f.coord.Set(ctx, nil, vbs)
	if st, _ := smi.StatusOf(err); st != smi.CommitFailed {
		t.Fatalf("got %v, want commitFailed", err)
	}
	for _, s := range f.ses {
		if v := s.tree.WritableIntValue(); v != 7 {
			t.Errorf("engine %d kept %d after the undo", s.id, v)
		}
	}
}

// An engine killed between TEST and COMMIT: the SET fails honestly, no
// engine changes, the others' reservations expire on their own (the
// manager never cleans up here), and the next SET works.
func TestEngineKilledBetweenTestAndCommit(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 3, farmOpts{resp: fanout.ResponderConfig{ReservationTTL: 200 * time.Millisecond}})
	ctx := ctxT(t)
	key := smi.TxID{Session: 1, Transaction: 1}
	vbs := []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(7)}}
	if _, err := f.coord.TestSet(ctx, key, nil, vbs); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.ses {
		if s.resp.Reservations() != 1 {
			t.Fatalf("engine %d holds %d reservations after TEST", s.id, s.resp.Reservations())
		}
	}
	f.ses[0].kill()
	f.waitEngines(2)
	_, err := f.coord.CommitSet(ctx, key)
	var pe *fanout.PhaseError
	if st, _ := smi.StatusOf(err); st != smi.CommitFailed || !errors.As(err, &pe) || len(pe.Missing) != 1 || pe.Missing[0] != f.ses[0].id {
		t.Fatalf("commit: %v", err)
	}
	if _, err := f.coord.UndoSet(ctx, key); err != nil {
		t.Fatalf("undo after a withheld commit: %v", err)
	}
	for _, s := range f.ses[1:] {
		if w, n := s.weight(); w != 0 || n != 0 {
			t.Errorf("engine %d changed: %d after %d commits", s.id, w, n)
		}
	}
	waitfor.True(t, 5*time.Second, "reservations expire", func() bool {
		return f.ses[1].resp.Reservations() == 0 && f.ses[2].resp.Reservations() == 0
	})
	if c := f.ses[1].resp.Counters(); c.ReservationsExpired != 1 {
		t.Errorf("expired %d reservations, want 1", c.ReservationsExpired)
	}
	f.coord.CleanupSet(ctx, key)
	if _, err := f.coord.Set(ctx, nil, vbs); err != nil {
		t.Fatalf("next set: %v", err)
	}
	for _, s := range f.ses[1:] {
		if w, _ := s.weight(); w != 7 {
			t.Errorf("engine %d: weight %d", s.id, w)
		}
	}
}

// A COMMIT that arrives after the engine's reservation expired is refused
// (unknownTx) and reported as commitFailed, not as success.
func TestCommitAfterExpiry(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 2, farmOpts{resp: fanout.ResponderConfig{ReservationTTL: 50 * time.Millisecond}})
	ctx := ctxT(t)
	key := smi.TxID{Session: 1, Transaction: 2}
	if _, err := f.coord.TestSet(ctx, key, nil, []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(3)}}); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "expiry", func() bool { return f.ses[0].resp.Reservations() == 0 && f.ses[1].resp.Reservations() == 0 })
	res, err := f.coord.CommitSet(ctx, key)
	if st, _ := smi.StatusOf(err); st != smi.CommitFailed {
		t.Fatalf("commit after expiry: %v", err)
	}
	for _, r := range res.Replies {
		if r.Status != fanout.StatusUnknownTx {
			t.Errorf("engine %d: %s, want unknownTx", r.Engine, r.Status)
		}
	}
	f.coord.CleanupSet(ctx, key)
}

// Fencing: an operation carrying an older term than the newest view is
// refused; a manager that is not active cannot SET.
func TestOlderTermRefused(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 2, farmOpts{term: 5})
	s := f.ses[0]
	r := request(t, f, wire.Request{Op: wire.OpGet, Tx: 1, Term: 4, Targets: []uint32{uint32(s.id)}, VarBinds: []smi.VarBind{{Name: agenttest.ScalarInt.Append(0), Value: smi.Null()}}}, []rmtp.NodeID{s.id})
	if len(r) != 1 || r[0].Status != wire.StatusStaleTerm || r[0].Term != 5 {
		t.Fatalf("old term: %+v", r)
	}
	r = request(t, f, wire.Request{Op: wire.OpSetTest, Tx: 2, Term: 4, Targets: []uint32{uint32(s.id)}, VarBinds: []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(1)}}}, []rmtp.NodeID{s.id})
	if len(r) != 1 || r[0].Status != wire.StatusStaleTerm {
		t.Fatalf("old term set: %+v", r)
	}
	if w, n := s.weight(); w != 0 || n != 0 || s.resp.Reservations() != 0 {
		t.Fatal("a fenced SET touched the engine")
	}
	if c := s.resp.Counters(); c.StaleTerm != 2 {
		t.Errorf("stale term counter %d", c.StaleTerm)
	}
	// A backup (not active) refuses to SET at all.
	f.mgr.Deactivate()
	_, err := f.coord.Set(ctxT(t), nil, []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(1)}})
	if !errors.Is(err, fanout.ErrNotActive) {
		t.Fatalf("backup set: %v", err)
	}
}

// A bulk walk through snmpd is one GetNext per varbind: served from one
// snapshot, one transaction.
func TestSnapshotServesWalk(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 3, farmOpts{})
	ctx := ctxT(t)
	root := agenttest.SparseTable.Append(2)
	var got []smi.VarBind
	r := smi.Range{Start: root}
	for range agenttest.SparseRows + 1 {
		snap, err := f.coord.Snapshot(ctx, []rmtp.NodeID{f.ses[1].id}, root)
		if err != nil {
			t.Fatal(err)
		}
		vb, ok := snap.Next(f.ses[1].id, r)
		if !ok {
			break
		}
		got = append(got, vb)
		r = smi.Range{Start: vb.Name}
	}
	c := f.coord.Counters()
	if len(got) != fanout.DefaultWalkCap {
		t.Fatalf("walk returned %d instances, want the cap %d", len(got), fanout.DefaultWalkCap)
	}
	for i, vb := range got {
		if want := root.Append(agenttest.SparseIndex(i)); !vb.Name.Equal(want) {
			t.Fatalf("instance %d is %s, want %s", i, vb.Name, want)
		}
	}
	if c.Transactions != 1 || c.SnapshotMisses != 1 {
		t.Fatalf("%d transactions, %d misses for one walk", c.Transactions, c.SnapshotMisses)
	}
	snap, _ := f.coord.Snapshot(ctx, []rmtp.NodeID{f.ses[1].id}, root)
	if !snap.Truncated(f.ses[1].id) {
		t.Error("a walk cut at the cap must say so")
	}
	// A walk over several roots on every engine.
	res, err := f.coord.Walk(ctx, nil, []smi.OID{agenttest.TwoIndexTable, agenttest.CallbackRoot}, 0)
	if err != nil || !res.Complete() {
		t.Fatalf("walk: %v %+v", err, res)
	}
	for _, rep := range res.Replies {
		if len(rep.VarBinds) != 24+70 || rep.Truncated {
			t.Errorf("engine %d: %d varbinds (truncated %v), want 94", rep.Engine, len(rep.VarBinds), rep.Truncated)
		}
	}
}

// GETNEXT asks every engine for successors in one transaction.
func TestGetNext(t *testing.T) {
	f := newFarm(t, 2, farmOpts{})
	res, err := f.coord.GetNext(ctxT(t), nil, []smi.OID{agenttest.ScalarInt, agenttest.EmptyTable1, smi.MustParseOID("1.3.6.1.4.1.8072.9999.4243")})
	if err != nil || !res.Complete() {
		t.Fatal(err, res)
	}
	for _, r := range res.Replies {
		if !r.VarBinds[0].Name.Equal(agenttest.ScalarInt.Append(0)) || r.VarBinds[2].Value.Type != smi.TypeEndOfMibView {
			t.Errorf("engine %d: %v", r.Engine, r.VarBinds)
		}
		if !r.VarBinds[1].Name.HasPrefix(agenttest.SparseTable) {
			t.Errorf("getnext past an empty table gave %s", r.VarBinds[1].Name)
		}
	}
}

// Engine numbers travel in HELLO and show in the engine table.
func TestEngineInfoInHello(t *testing.T) {
	net := memnet.New(0)
	mgr, err := rmtp.New(net.Attach(true, memnet.Faults{}, 1), fastRMTP(1, rmtp.Manager))
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	c, err := fanout.NewCoordinator(mgr, fanout.CoordinatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := fastRMTP(7, rmtp.Engine)
	cfg.HelloApp = func() []byte {
		return wire.AppendEngineInfo(nil, wire.EngineInfo{Load: 150, Requests: 1 << 33, BytesOut: 5, ContentCount: 12})
	}
	e, err := rmtp.New(net.Attach(false, memnet.Faults{}, 7), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	waitfor.True(t, 5*time.Second, "engine row with info", func() bool {
		row, ok := c.Engine(7)
		return ok && row.HasInfo && row.State == fanout.EngineUp
	})
	row, _ := c.Engine(7)
	if row.Info.Requests != 1<<33 || row.Info.ContentCount != 12 || !row.Addr.IsValid() {
		t.Fatalf("row %+v", row)
	}
}

// Closing coordinator and responders while transactions are in flight
// stops every goroutine and fails nothing forever.
func TestCloseInFlight(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 2, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 2 * time.Second}})
	slow := agenttest.New(agenttest.Options{SlowDelay: time.Minute})
	s := f.ses[0]
	s.resp.Close()
	var err error
	s.resp, err = fanout.NewResponder(s.ep, fanout.ResponderConfig{Tree: slow.Tree})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fanout.Result, 1)
	go func() {
		res, _ := f.coord.Get(context.Background(), nil, []smi.OID{agenttest.SlowScalar.Append(0)})
		done <- res
	}()
	waitfor.True(t, 5*time.Second, "slow object executing", func() bool { return slow.SlowCalls.Load() == 1 })
	s.resp.Close()
	f.coord.Close()
	res := <-done
	if res == nil || res.Reply(s.id) != nil && res.Reply(s.id).Status == fanout.StatusOK {
		t.Fatalf("result %+v", res)
	}
	if _, err := f.coord.Get(context.Background(), nil, nil); !errors.Is(err, fanout.ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
}

// Asking an engine that never existed answers at once with it missing and
// invents no row.
func TestUnknownTarget(t *testing.T) {
	f := newFarm(t, 1, farmOpts{})
	res, err := f.coord.Get(ctxT(t), []rmtp.NodeID{f.ses[0].id, 999}, []smi.OID{agenttest.ScalarInt.Append(0)})
	if err != nil || res.Responders() != 1 || len(res.Missing) != 1 || res.Missing[0] != 999 {
		t.Fatalf("%v %+v", err, res)
	}
	if _, ok := f.coord.Engine(999); ok {
		t.Fatal("a row for an engine that never existed")
	}
	if len(f.coord.Engines()) != 1 {
		t.Fatalf("rows %+v", f.coord.Engines())
	}
}

// A TEST that passes answers with the engine's values before the SET; an
// UNDO that an engine does not confirm names it in PhaseError.Diverged,
// with those values, so the manager can put it back later.
func TestUndoUnconfirmedNamesDiverged(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 3, farmOpts{})
	ctx := ctxT(t)
	name := weightOID.Append(0)
	if _, err := f.coord.Set(ctx, nil, []smi.VarBind{{Name: name, Value: smi.Gauge32(4)}}); err != nil {
		t.Fatal(err)
	}
	key := smi.TxID{Session: 1, Transaction: 9}
	after := []smi.VarBind{{Name: name, Value: smi.Gauge32(7)}}
	res, err := f.coord.TestSet(ctx, key, nil, after)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Replies {
		if len(r.VarBinds) != 1 || !r.VarBinds[0].Name.Equal(name) || !r.VarBinds[0].Value.Equal(smi.Gauge32(4)) {
			t.Errorf("engine %d's TEST answer: %v, want its value before the SET", r.Engine, r.VarBinds)
		}
	}
	if _, err := f.coord.CommitSet(ctx, key); err != nil {
		t.Fatal(err)
	}
	victim := f.ses[1]
	victim.kill()
	_, err = f.coord.UndoSet(ctx, key)
	var pe *fanout.PhaseError
	if st, _ := smi.StatusOf(err); st != smi.UndoFailed || !errors.As(err, &pe) {
		t.Fatalf("undo with an engine dead: %v", err)
	}
	if len(pe.Diverged) != 1 {
		t.Fatalf("diverged %+v, want engine %d alone", pe.Diverged, victim.id)
	}
	d := pe.Diverged[0]
	if d.Engine != victim.id || d.Incarnation != victim.ep.Incarnation() || len(d.Before) != 1 || !d.Before[0].Value.Equal(smi.Gauge32(4)) ||
		len(d.After) != 1 || !d.After[0].Value.Equal(smi.Gauge32(7)) {
		t.Errorf("diverged %+v", d)
	}
	for _, s := range []*se{f.ses[0], f.ses[2]} {
		if w, _ := s.weight(); w != 4 {
			t.Errorf("engine %d: weight %d after the undo, want 4", s.id, w)
		}
	}
	f.coord.CleanupSet(ctx, key)
}
