package fanout_test

import (
	"context"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
)

// Replies lost until after the re-request point: the engines are asked
// again, answer from their reply cache, and execute nothing twice.
func TestReRequestAnsweredFromCache(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 3, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 800 * time.Millisecond, RetryAfter: 25 * time.Millisecond}})
	f.mnode.SetFaults(memnet.Faults{Loss: 1})
	restored := make(chan struct{})
	go func() {
		defer close(restored)
		// Far shorter than the 500 ms after which the manager would
		// declare the silent engines down.
		time.Sleep(50 * time.Millisecond)
		f.mnode.SetFaults(memnet.Faults{})
	}()
	res, err := f.coord.Get(ctxT(t), nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	<-restored
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete() {
		t.Fatalf("missing %v after %d rounds", res.Missing, res.Rounds)
	}
	if res.Rounds < 2 {
		t.Fatalf("%d rounds: the engines were never asked again", res.Rounds)
	}
	for _, s := range f.ses {
		if c := s.resp.Counters(); c.Executed != 1 || c.CacheHits == 0 {
			t.Errorf("engine %d executed the GET %d times, %d cache hits", s.id, c.Executed, c.CacheHits)
		}
	}
	if c := f.coord.Counters(); c.ReRequests == 0 {
		t.Error("re-request not counted")
	}
}

// A slow engine does not hold the answer: at the deadline the coordinator
// answers with the others and marks it.
func TestSlowEngineMarkedAtDeadline(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 2, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 150 * time.Millisecond}})
	slow := agenttest.New(agenttest.Options{SlowDelay: 2 * time.Second})
	s := f.ses[1]
	// Swap engine 2's responder for one over a tree with a slow object.
	s.resp.Close()
	var err error
	s.resp, err = fanout.NewResponder(s.ep, fanout.ResponderConfig{Tree: slow.Tree})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.coord.Get(ctxT(t), nil, []smi.OID{agenttest.SlowScalar.Append(0)})
	if err != nil {
		t.Fatal(err)
	}
	fast := res.Reply(f.ses[0].id)
	if fast == nil || fast.Status != fanout.StatusOK || fast.VarBinds[0].Value.Type != smi.TypeNoSuchObject {
		t.Fatalf("fast engine: %+v", fast)
	}
	// The slow engine either gave up within its budget and said so, or
	// stayed silent and is marked: never a value, never a wait for it.
	if r := res.Reply(s.id); r != nil && r.Status == fanout.StatusOK {
		t.Fatalf("slow engine answered %+v", r)
	}
	if e, _ := f.coord.Engine(s.id); e.LastStatus == fanout.StatusOK {
		t.Errorf("slow engine's last status %s", e.LastStatus)
	}
}

// The management protocol shares an endpoint with another channel's
// reader.
func TestSharesEndpoint(t *testing.T) {
	checkNoLeak(t)
	net := memnet.New(0)
	mgr, err := rmtp.New(net.Attach(true, memnet.Faults{}, 1), fastRMTP(1, rmtp.Manager))
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	eng, err := rmtp.New(net.Attach(false, memnet.Faults{}, 2), fastRMTP(2, rmtp.Engine))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	other := eng.Channel(rmtp.ChannelDirectory)
	tree := agenttest.New(agenttest.Options{})
	r, err := fanout.NewResponder(eng, fanout.ResponderConfig{Tree: tree.Tree})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := fanout.NewCoordinator(mgr, fanout.CoordinatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitfor.True(t, 5*time.Second, "engine in view", func() bool { return len(mgr.View().Members) == 2 })
	ctx := ctxT(t)
	if _, err := mgr.Send(ctx, rmtp.ChannelDirectory, rmtp.Down, []byte("directory update")); err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(ctx, nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	if err != nil || !res.Complete() || res.Replies[0].VarBinds[0].Value.Int != 42 {
		t.Fatalf("%v %+v", err, res)
	}
	m, err := other.Receive(ctx)
	if err != nil || string(m.Payload) != "directory update" {
		t.Fatalf("other channel got %v, %v", m, err)
	}
}

// The same protocol over real UDP multicast on loopback, authenticated.
func TestOverUDPMulticast(t *testing.T) {
	checkNoLeak(t)
	const n = 8
	down, up := rmtptest.Groups(t)
	keys := rmtptest.Keys(t)
	mcfg := rmtp.MulticastConfig{Interface: "lo", Down: down, Up: up, JoinUp: true}
	mtr, err := rmtp.ListenMulticast(mcfg)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no multicast on lo, and CI=true forbids skipping: %v", err)
		}
		t.Skipf("no multicast on lo: %v", err)
	}
	mgr, err := rmtp.New(mtr, rmtp.Config{Node: 1, Role: rmtp.Manager, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	// Timing is not the subject here: a loaded machine must not fail it.
	c, err := fanout.NewCoordinator(mgr, fanout.CoordinatorConfig{Deadline: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mcfg.JoinUp = false
	for i := range n {
		tr, err := rmtp.ListenMulticast(mcfg)
		if err != nil {
			t.Fatal(err)
		}
		e, err := rmtp.New(tr, rmtp.Config{Node: rmtp.NodeID(101 + i), Role: rmtp.Engine, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		r, err := fanout.NewResponder(e, fanout.ResponderConfig{Tree: agenttest.New(agenttest.Options{}).Tree})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
	}
	waitfor.True(t, 10*time.Second, "engines in view", func() bool { return len(mgr.View().Members) == n+1 })
	names := names128()
	for range 20 {
		res, err := c.Get(ctxT(t), nil, names)
		if err != nil || !res.Complete() {
			t.Fatalf("%v, missing %v", err, res.Missing)
		}
		for _, r := range res.Replies {
			if len(r.VarBinds) != 128 || r.VarBinds[0].Value.Int != 42 {
				t.Fatalf("engine %d: %d varbinds", r.Engine, len(r.VarBinds))
			}
		}
	}
	if c := c.Counters(); c.Transactions != 20 {
		t.Errorf("%d transactions for 20 GETs", c.Transactions)
	}
}

// The local agent: a real snmpd answers what the SE's tree does not hold,
// for GET, GETNEXT, walks and SET (with undo).
func TestProxyToLocalSnmpd(t *testing.T) {
	d := snmpdtest.Start(t, snmpdtest.Options{})
	checkNoLeak(t)
	ap := netip.MustParseAddrPort(d.Addr)
	f := newFarm(t, 1, farmOpts{resp: fanout.ResponderConfig{LocalAgent: &fanout.LocalAgent{Address: ap, Community: config.NewSecret("private")}}})
	ctx := ctxT(t)
	sysDescr := smi.MustParseOID("1.3.6.1.2.1.1.1.0")
	sysLocation := smi.MustParseOID("1.3.6.1.2.1.1.6.0")
	res, err := f.coord.Get(ctx, nil, []smi.OID{sysDescr, agenttest.ScalarInt.Append(0)})
	if err != nil || !res.Complete() {
		t.Fatal(err, res)
	}
	vbs := res.Replies[0].VarBinds
	if vbs[0].Value.Type != smi.TypeOctetString || len(vbs[0].Value.Bytes) == 0 || vbs[1].Value.Int != 42 {
		t.Fatalf("proxied get: %v", vbs)
	}
	res, err = f.coord.GetNext(ctx, nil, []smi.OID{smi.MustParseOID("1.3.6.1.2.1.1")})
	if err != nil || !res.Replies[0].VarBinds[0].Name.Equal(sysDescr) {
		t.Fatalf("proxied getnext: %v %v", err, res.Replies)
	}
	// The tree's own subtree sits in the middle of the local agent's
	// space: a GETNEXT just before it lands in the tree.
	res, err = f.coord.GetNext(ctx, nil, []smi.OID{smi.MustParseOID("1.3.6.1.4.1.8072.9999")})
	if err != nil || !res.Replies[0].VarBinds[0].Name.HasPrefix(agenttest.Base) {
		t.Fatalf("getnext into the tree: %v %v", err, res.Replies)
	}
	wres, err := f.coord.Walk(ctx, nil, []smi.OID{smi.MustParseOID("1.3.6.1.2.1.1")}, 100)
	if err != nil || len(wres.Replies[0].VarBinds) < 7 {
		t.Fatalf("proxied walk: %v %+v", err, wres)
	}
	for i, vb := range wres.Replies[0].VarBinds[1:] {
		if vb.Name.Compare(wres.Replies[0].VarBinds[i].Name) <= 0 {
			t.Fatalf("walk not increasing at %d", i)
		}
	}
	if _, err := f.coord.Set(ctx, nil, []smi.VarBind{{Name: sysLocation, Value: smi.String("rack 7")}}); err != nil {
		t.Fatalf("proxied set: %v", err)
	}
	res, _ = f.coord.Get(ctx, nil, []smi.OID{sysLocation})
	if got := string(res.Replies[0].VarBinds[0].Value.Bytes); got != "rack 7" {
		t.Fatalf("sysLocation reads %q", got)
	}
	// A SET mixing a proxied object and a failing commit on the tree is
	// undone on both sides.
	_, err = f.coord.Set(ctx, nil, []smi.VarBind{{Name: sysLocation, Value: smi.String("rack 9")}, {Name: agenttest.CommitFails.Append(0), Value: smi.Integer(13)}})
	if err == nil {
		t.Fatal("a failing commit succeeded")
	}
	res, _ = f.coord.Get(ctx, nil, []smi.OID{sysLocation})
	if got := string(res.Replies[0].VarBinds[0].Value.Bytes); got != "rack 7" {
		t.Fatalf("after undo sysLocation reads %q", got)
	}
	if c := f.ses[0].resp.Counters(); c.Proxied == 0 || c.ProxyErrors != 0 {
		t.Errorf("proxy counters %+v", c)
	}
}

// 5 % loss (and some duplication and reordering) on every engine: many
// aggregate GETs in a row, each answered by every engine within the
// default deadline, each one transaction.
func TestLossyGets(t *testing.T) {
	checkNoLeak(t)
	const n, gets = 5, 100
	f := newFarm(t, n, farmOpts{faults: memnet.Faults{Loss: 0.05, Dup: 0.01, Reorder: 0.02}})
	names := names128()[:16]
	incomplete := 0
	for range gets {
		res, err := f.coord.Get(ctxT(t), nil, names)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete() {
			incomplete++
			t.Logf("tx %d: missing %v after %d rounds", res.Tx, res.Missing, res.Rounds)
		}
	}
	if incomplete > 0 {
		t.Fatalf("%d of %d GETs incomplete under 5 %% loss", incomplete, gets)
	}
	if c := f.coord.Counters(); c.Transactions != gets {
		t.Fatalf("%d transactions for %d GETs", c.Transactions, gets)
	}
}

// Two-phase SET over a lossy farm: all or nothing still holds.
func TestLossySet(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 4, farmOpts{faults: memnet.Faults{Loss: 0.05, Reorder: 0.02}, maxW: map[int]uint32{3: 5},
		coord: fanout.CoordinatorConfig{PhaseDeadline: 2 * time.Second}})
	ctx := ctxT(t)
	for i := range 10 {
		w := uint32(i%2*6 + 1) // 1 works everywhere, 7 is refused by engine 104
		_, err := f.coord.Set(ctx, nil, []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(w)}})
		if (err == nil) != (w <= 5) {
			t.Fatalf("set %d to %d: %v", i, w, err)
		}
		for _, s := range f.ses {
			if got, _ := s.weight(); got != 1 {
				t.Fatalf("engine %d holds %d after set %d of %d", s.id, got, i, w)
			}
		}
	}
}

// Concurrent walkers of one subtree share one snapshot transaction, and a
// committed SET drops the snapshots it may have made stale.
func TestSnapshotSharedAndInvalidated(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 2, farmOpts{})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	snaps := make([]*fanout.Snapshot, 8)
	for i := range snaps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snaps[i], _ = f.coord.Snapshot(ctx, nil, weightOID)
		}()
	}
	wg.Wait()
	for i, s := range snaps {
		if s == nil || s != snaps[0] {
			t.Fatalf("walker %d got a different snapshot", i)
		}
	}
	if c := f.coord.Counters(); c.Transactions != 1 || c.SnapshotMisses != 1 || c.SnapshotHits != 7 {
		t.Fatalf("counters %+v", c)
	}
	if vb, ok := snaps[0].Next(f.ses[0].id, smi.Range{Start: weightOID}); !ok || vb.Value.Uint != 0 {
		t.Fatalf("weight before: %v %v", vb, ok)
	}
	if _, err := f.coord.Set(ctx, nil, []smi.VarBind{{Name: weightOID.Append(0), Value: smi.Gauge32(4)}}); err != nil {
		t.Fatal(err)
	}
	s, err := f.coord.Snapshot(ctx, nil, weightOID)
	if err != nil {
		t.Fatal(err)
	}
	if vb, ok := s.Next(f.ses[1].id, smi.Range{Start: weightOID}); !ok || vb.Value.Uint != 4 {
		t.Fatalf("weight after the SET served from a stale snapshot: %v %v", vb, ok)
	}
}

// An SE out of workers sheds a request unanswered; the coordinator's
// re-request gets it served once a worker is free.
func TestBusyShedThenReRequested(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 1, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 3 * time.Second, RetryAfter: 400 * time.Millisecond}})
	slow := agenttest.New(agenttest.Options{SlowDelay: 150 * time.Millisecond})
	s := f.ses[0]
	s.resp.Close()
	var err error
	s.resp, err = fanout.NewResponder(s.ep, fanout.ResponderConfig{Tree: slow.Tree, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	results := make([]*fanout.Result, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[0], _ = f.coord.Get(ctx, nil, []smi.OID{agenttest.SlowScalar.Append(0)})
	}()
	waitfor.True(t, 5*time.Second, "slow request executing", func() bool { return slow.SlowCalls.Load() == 1 })
	results[1], err = f.coord.Get(ctx, nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r == nil || !r.Complete() || r.Replies[0].Status != fanout.StatusOK {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if results[1].Rounds < 2 {
		t.Errorf("the shed request was served in %d round(s)", results[1].Rounds)
	}
	if c := s.resp.Counters(); c.Busy == 0 || c.Executed != 2 {
		t.Errorf("busy %d executed %d", c.Busy, c.Executed)
	}
}

// An engine whose answer does not parse: the reply is counted bad once
// (filed as it arrives and looked at again at the round's end),
// the engine is reported missing, and the transaction ends at once:
// every target answered, and asking again would get the same bytes from
// the engine's reply cache.
func TestBadReplyCountedOnce(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 2, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 800 * time.Millisecond}})
	// A rogue engine speaking rmtp but not fanout's wire.
	nd := f.net.Attach(false, memnet.Faults{}, 201)
	ep, err := rmtp.New(nd, fastRMTP(201, rmtp.Engine))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := ep.Receive(ctx)
			if err != nil {
				return
			}
			if m.Kind == rmtp.KindRequest {
				_, _ = ep.StartReply(ctx, m, []byte("not a reply"))
			}
		}
	}()
	defer func() { cancel(); <-done }()
	f.waitEngines(3)
	for i := range 3 {
		before := f.coord.Counters()
		res, err := f.coord.Get(ctxT(t), nil, []smi.OID{agenttest.ScalarInt.Append(0)})
		if err != nil {
			t.Fatal(err)
		}
		if bad := f.coord.Counters().BadReplies - before.BadReplies; bad != 1 {
			t.Errorf("GET %d: %d bad replies counted, want 1", i, bad)
		}
		if res.Rounds != 1 || res.Responders() != 2 || len(res.Missing) != 1 || res.Missing[0] != 201 {
			t.Errorf("GET %d: %d rounds, %d responders, missing %v; want 1, 2, [201]", i, res.Rounds, res.Responders(), res.Missing)
		}
	}
}

// A reply to a round that has ended (its rmtp transfer is over, so rmtp
// delivers the reply to the coordinator's inbox) still counts for its
// transaction while that collects: an engine that answers the first
// round's request only after the re-request is in the answer, counted
// late, and the transaction ends with it.
func TestReplyAfterItsRoundFiled(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 1, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 5 * time.Second, RetryAfter: 50 * time.Millisecond}})
	// An engine that answers the first request once the second arrives.
	nd := f.net.Attach(false, memnet.Faults{}, 201)
	ep, err := rmtp.New(nd, fastRMTP(201, rmtp.Engine))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var first *rmtp.Message
		for {
			m, err := ep.Receive(ctx)
			if err != nil {
				return
			}
			if m.Kind != rmtp.KindRequest {
				continue
			}
			if first == nil {
				first = m
				continue
			}
			req, err := wire.ParseRequest(first.Payload)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			rep := wire.Reply{Op: req.Op, Tx: req.Tx, Engine: 201, Incarnation: ep.Incarnation(),
				VarBinds: []smi.VarBind{{Name: req.VarBinds[0].Name, Value: smi.Integer(7)}}}
			b, err := wire.AppendReply(nil, &rep)
			if err != nil {
				t.Errorf("reply: %v", err)
				return
			}
			_, _ = ep.StartReply(ctx, first, b)
		}
	}()
	defer func() { cancel(); <-done }()
	f.waitEngines(2)
	res, err := f.coord.Get(ctxT(t), nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Reply(201)
	if !res.Complete() || res.Rounds != 2 || r == nil || r.VarBinds[0].Value.Int != 7 {
		t.Fatalf("complete %v after %d rounds, engine 201 answered %+v; want complete after 2, 7", res.Complete(), res.Rounds, r)
	}
	if c := f.coord.Counters(); c.LateReplies != 1 {
		t.Errorf("%d late replies, want 1", c.LateReplies)
	}
}
