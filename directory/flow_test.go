package directory_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// limits gives the i-th manager started its own limit.
func limits(l ...[2]float64) func(*directory.StoreConfig) {
	var mu sync.Mutex
	i := 0
	return func(c *directory.StoreConfig) {
		mu.Lock()
		defer mu.Unlock()
		c.Rate, c.Burst = l[i%len(l)][0], l[i%len(l)][1]
		i++
	}
}

// holdsAll fails unless every manager holds exactly the SEs' entries (by
// digest: keys, versions, sizes) and n of them, with no waiting: callers
// have just seen Flush return, which means every manager accepted
// everything.
func holdsAll(t *testing.T, f *farmNet, n int, mgrs ...*directory.Manager) {
	t.Helper()
	now := time.Now()
	want := f.sesDigest(now)
	for _, m := range mgrs {
		if got := m.Store().Count(); got != n {
			t.Fatalf("a manager holds %d of %d entries right after Flush (store %+v, manager %+v)", got, n, m.Store().Counters(), m.Counters())
		}
		if m.Store().Digest(now) != want {
			t.Fatalf("a manager's digest differs from the SEs' right after Flush")
		}
	}
}

// runFlowControl is issue 14's first defect in miniature, on any
// transport: the managers admit 2,000 (SM) and 3,000 (BSM) operations per
// second per SE, the SE's publisher is configured ten times faster (as cmd
// left it: the library default against directory.publish_rate). Once
// Flush returns every entry is at both managers: the publisher follows the
// limit the managers announce in their verdicts, and a group over a
// manager's limit is refused back to it and sent again, never
// acknowledged and dropped.
func runFlowControl(t *testing.T, f *farmNet) {
	f.mutStore = limits([2]float64{2000, 2000}, [2]float64{3000, 1500})
	f.mutPub = func(c *directory.PublisherConfig) { c.Rate, c.Burst = 20000, 20000 }
	sm, bsm := f.addManager(1), f.addManager(2)
	f.addEngines(1)
	f.waitPeers()
	const n = 8000
	publishAll(t, f, n)
	f.flush(120 * time.Second)
	holdsAll(t, f, n, sm, bsm)
	for _, m := range []*directory.Manager{sm, bsm} {
		if h := m.Lookup(key(0, n-1), farmUnit); len(h) != 1 || h[0].Location.Engine != 101 {
			t.Fatalf("lookup of the last key: %+v", h)
		}
	}
	s := f.pubs[0].Stats()
	if s.Ops != n || s.Pending != 0 || s.Rejected != 0 || s.Rate != 2000 || s.Burst != 1500 || len(s.Managers) != 2 {
		t.Fatalf("publisher %+v: want %d operations accepted, following the lower limit of each (2000/s, burst 1500)", s, n)
	}
}

func TestFlowControlMemnet(t *testing.T) {
	checkNoLeak(t)
	runFlowControl(t, memFarm(t, memnet.Faults{Loss: 0.01, Dup: 0.01, Reorder: 0.01}))
}

func TestFlowControlMulticastLoopback(t *testing.T) {
	checkNoLeak(t)
	runFlowControl(t, udpFarm(t))
}

// logHook counts the lines logged with a message containing s.
func logCount(h *test.Hook, s string) int {
	n := 0
	for _, e := range h.AllEntries() {
		if strings.Contains(e.Message, s) {
			n++
		}
	}
	return n
}

// TestFlowControlReannounceAfterRestart: an SE that restarts re-announces
// 8,000 entries at once (its start-up burst far over the managers' 2,000
// per second): groups are refused, sent again, and the re-announcement
// completes at both managers under the new incarnation; the SYNC_END that
// sweeps the old incarnation waits for every refused group, so nothing
// re-announced is swept. Each side logs the refusals once, not per group.
func TestFlowControlReannounceAfterRestart(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{Loss: 0.01, Reorder: 0.01})
	mlog, mhook := test.NewNullLogger()
	mlog.SetLevel(logrus.InfoLevel)
	plog, phook := test.NewNullLogger()
	plog.SetLevel(logrus.InfoLevel)
	f.mutStore = func(c *directory.StoreConfig) { c.Rate, c.Burst = 2000, 2000 }
	f.mutPub = func(c *directory.PublisherConfig) { c.Rate, c.Burst = 2000, 2000; c.Logger = plog }
	var mgrs []*directory.Manager
	for id := rmtp.NodeID(1); id <= 2; id++ {
		ep := f.endpoint(id, rmtp.Manager)
		if id == 1 {
			if err := ep.Activate(1); err != nil {
				t.Fatal(err)
			}
		}
		m, err := directory.NewManager(ep, directory.ManagerConfig{Store: directory.StoreConfig{Unit: farmUnit, Rate: 2000, Burst: 2000},
			MaintainInterval: 50 * time.Millisecond, RefusalQuiet: 2 * time.Second, Logger: mlog}, ep)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		f.mgrEPs, f.mgrs = append(f.mgrEPs, ep), append(f.mgrs, m)
		mgrs = append(mgrs, m)
	}
	f.addEngines(1)
	f.waitPeers()
	publishAll(t, f, 3000)
	f.flush(60 * time.Second)
	holdsAll(t, f, 3000, mgrs...)

	// SE 101 restarts holding the first 2,000 of them and 6,000 new ones,
	// configured without a limit of its own: it sends them at once.
	f.pubs[0].Close()
	f.engEPs[0].Close()
	f.mutPub = func(c *directory.PublisherConfig) { c.Rate, c.Burst = -1, 0; c.Logger = plog }
	waitfor.True(t, 10*time.Second, "the first phase's refusal episodes, if any, are over", func() bool {
		return logCount(mhook, "episode over") == logCount(mhook, "over directory.publish_rate")
	})
	phook.Reset()
	mhook.Reset()
	var episodes uint64
	for _, m := range mgrs {
		episodes += m.Counters().RefusalEpisodes
	}
	var initial []directory.Entry
	for j := range 8000 {
		initial = append(initial, directory.Entry{Key: key(0, 1000+j), Size: uint64(j)})
	}
	ep := f.endpoint(101, rmtp.Engine)
	f.engEPs[0] = ep
	f.pubs[0] = f.publisher(ep, initial)
	f.waitPeers()
	f.flush(120 * time.Second)
	holdsAll(t, f, 8000, mgrs...)
	for _, m := range mgrs {
		for _, k := range []string{key(0, 999), key(0, 1000), key(0, 8999)} {
			h := m.Lookup(k, farmUnit)
			if want := k != key(0, 999); (len(h) == 1) != want || want && h[0].Version.Incarnation != ep.Incarnation() {
				t.Fatalf("lookup %s after the re-announcement: %+v", k, h)
			}
		}
	}
	s := f.pubs[0].Stats()
	var limited uint64
	for _, m := range mgrs {
		limited += m.Store().Counters().RateLimited
	}
	if limited == 0 || s.Refused == 0 || s.Resent == 0 || s.Ops < 8000 {
		t.Fatalf("the start-up burst was not refused and sent again: managers refused %d, publisher %+v", limited, s)
	}
	if n := logCount(phook, "slowing down"); n != 1 {
		t.Errorf("the publisher logged %d refusal lines, want one per episode", n)
	}
	waitfor.True(t, 10*time.Second, "the managers log the end of the episode", func() bool {
		return logCount(mhook, "episode over") == 2
	})
	if n := logCount(mhook, "over directory.publish_rate"); n != 2 {
		t.Errorf("the managers logged %d refusal lines, want one each", n)
	}
	var after uint64
	for _, m := range mgrs {
		after += m.Counters().RefusalEpisodes
	}
	if after-episodes != 2 {
		t.Errorf("%d refusal episodes counted for the re-announcement, want one per manager", after-episodes)
	}
}

// muteManager is a member of the managers' group that acknowledges
// updates at the transport level and never judges them: an old smsnmpd,
// or a manager hung between receiving and applying.
func muteManager(t *testing.T, f *farmNet, id rmtp.NodeID) *rmtp.Endpoint {
	ep := f.endpoint(id, rmtp.Manager)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := ep.Receive(ctx)
			if err != nil {
				return
			}
			m.Release()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ep
}

// TestFlowControlMissingVerdict: a manager that acknowledges an update but
// never says it applied it does not count as having it: Flush does not
// return, the update is sent again after VerdictTimeout; once that
// manager is gone, the update counts as accepted by the managers there are.
func TestFlowControlMissingVerdict(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	f.mutPub = func(c *directory.PublisherConfig) { c.VerdictTimeout = 100 * time.Millisecond }
	sm := f.addManager(1)
	mute := muteManager(t, f, 2)
	f.addEngines(1)
	f.waitPeers()
	waitfor.True(t, 10*time.Second, "the SE sees both managers", func() bool { return livePeers(f.engEPs[0]) >= 2 })
	publishAll(t, f, 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := f.pubs[0].Flush(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with a manager that sends no verdict = %v, want a deadline", err)
	}
	s := f.pubs[0].Stats()
	if s.Ops != 0 || s.Pending != 10 || s.VerdictTimeouts == 0 || s.Resent == 0 {
		t.Fatalf("publisher %+v: nothing may count as accepted, the update must be sent again", s)
	}
	if got := f.pubs[0].Outstanding(1, f.pubs[0].Seq()); got != 10 {
		t.Fatalf("outstanding %d, want 10", got)
	}
	mute.Close() // LEAVE: the view drops it
	f.flush(30 * time.Second)
	if s := f.pubs[0].Stats(); s.Ops != 10 || len(s.Managers) != 1 || s.Managers[0] != 1 {
		t.Fatalf("after the mute manager left: %+v", s)
	}
	holdsAll(t, f, 10, sm)
}

// TestFlowControlManagerRestart: the backup manager hangs (stops applying
// while its transport still acknowledges), dies and restarts in the middle
// of a publish at the managers' rate; the restarted one catches up by
// state transfer, and after Flush both hold everything.
func TestFlowControlManagerRestart(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{Loss: 0.01})
	f.mutStore = func(c *directory.StoreConfig) { c.Rate, c.Burst = 4000, 4000 }
	f.mutPub = func(c *directory.PublisherConfig) {
		c.Rate, c.Burst = 4000, 4000
		c.VerdictTimeout = 300 * time.Millisecond
	}
	sm, bsm := f.addManager(1), f.addManager(2)
	f.addEngines(1)
	f.waitPeers()
	const n = 12000
	published := make(chan error, 1)
	go func() {
		for j := range n {
			if err := f.pubs[0].Add(directory.Entry{Key: key(0, j), Size: uint64(j)}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	waitfor.True(t, 30*time.Second, "the backup holds some", func() bool { return bsm.Store().Count() > 3000 })
	bsm.Close() // hung: acknowledges, never judges
	time.Sleep(500 * time.Millisecond)
	f.mgrEPs[1].Close()
	f.mgrs, f.mgrEPs = f.mgrs[:1], f.mgrEPs[:1]
	late := f.addManager(2) // a new incarnation, empty
	f.waitPeers()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := late.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	f.flush(60 * time.Second)
	holdsAll(t, f, n, sm, late)
	if s := f.pubs[0].Stats(); s.VerdictTimeouts == 0 {
		t.Errorf("the hung manager's missing verdicts were not noticed: %+v", s)
	}
}

// TestPublisherBounds: what the publisher keeps is capped: operations
// waiting (ErrQueueFull, WaitQueue) and entries held (ErrFull).
func TestPublisherBounds(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	f.mutPub = func(c *directory.PublisherConfig) { c.MaxPending, c.MaxHeld, c.MaxAwaiting = 100, 600, 1 }
	f.addEngines(1)
	p := f.pubs[0]
	// With no manager nothing is accepted: at most one batch (<= 100) is
	// being sent, one waits for a delivery slot, 100 are queued.
	added, full := 0, 0
	for added < 1000 && full < 2 {
		err := p.Add(directory.Entry{Key: key(0, added)})
		switch {
		case errors.Is(err, directory.ErrQueueFull):
			full++ // the sender may still take a batch off the queue: look again a little later
			time.Sleep(50 * time.Millisecond)
		case err != nil:
			t.Fatal(err)
		default:
			added, full = added+1, 0
		}
	}
	if added < 100 || added > 300 {
		t.Fatalf("ErrQueueFull after %d operations, want it between 100 and 300", added)
	}
	if err := p.Add(directory.Entry{Key: key(0, added-1), Size: 1}); err != nil {
		t.Fatalf("replacing a waiting operation takes no room: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := p.WaitQueue(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitQueue on a full queue: %v", err)
	}
	cancel()
	if got := p.Outstanding(1, p.Seq()); got != added {
		t.Fatalf("outstanding %d, want %d", got, added)
	}
	m := f.addManager(1)
	f.waitPeers()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := added; i < 600; i++ {
		if err := p.WaitQueue(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.Add(directory.Entry{Key: key(0, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Add(directory.Entry{Key: key(0, 600)}); !errors.Is(err, directory.ErrFull) {
		t.Fatalf("entry 601 of 600: %v, want ErrFull", err)
	}
	f.flush(30 * time.Second)
	if got := p.Outstanding(1, p.Seq()); got != 0 {
		t.Fatalf("outstanding %d after Flush", got)
	}
	holdsAll(t, f, 600, m)
}

// rawVerdicts reads a raw engine's verdicts.
func rawVerdicts(t *testing.T, ep *rmtp.Endpoint) <-chan wire.VerdictEntry {
	out := make(chan wire.VerdictEntry, 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := ep.Receive(ctx)
			if err != nil {
				return
			}
			if v, err := wire.ParseVerdict(m.Payload); err == nil {
				for _, e := range v.Entries {
					if e.Engine == uint32(ep.Node()) {
						select {
						case out <- e:
						default:
						}
					}
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// TestVerdicts: what a manager answers, message by message: accepted
// (with operations refused for good counted), rate-limited with how long
// to wait, rate-limited for good when a group exceeds the burst (the
// publisher must split it), wrong origin; each carries the limit.
func TestVerdicts(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	f.mutStore = func(c *directory.StoreConfig) { c.Rate, c.Burst, c.MaxKey = 100, 100, 50 }
	f.addManager(1)
	raw := rawEngine{t, f.endpoint(201, rmtp.Engine)}
	verdicts := rawVerdicts(t, raw.ep)
	waitfor.True(t, 10*time.Second, "manager and raw engine see each other", func() bool {
		return livePeers(raw.ep) >= 1 && livePeers(f.mgrEPs[0]) >= 1
	})
	ops := func(from, n int) []wire.Op {
		var o []wire.Op
		for i := range n {
			o = append(o, wire.Op{Kind: wire.OpAdd, Seq: uint64(from + i), Key: key(9, from+i)})
		}
		return o
	}
	next := func() wire.VerdictEntry {
		t.Helper()
		select {
		case v := <-verdicts:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("no verdict")
		}
		return wire.VerdictEntry{}
	}
	check := func(what string, got wire.VerdictEntry, res wire.Result, rejected uint32, retry bool) {
		t.Helper()
		if got.Result != res || got.Rejected != rejected || (got.RetryAfter > 0) != retry || got.Rate != 100 || got.Burst != 100 ||
			got.Incarnation != raw.ep.Incarnation() || got.Message == 0 {
			t.Errorf("%s: verdict %+v, want %v, %d rejected, retry %v", what, got, res, rejected, retry)
		}
	}
	raw.send(raw.update(0, append(ops(1, 60), wire.Op{Kind: wire.OpAdd, Seq: 61, Key: strings.Repeat("k", 51)})...))
	check("60 good and one key over the cap", next(), wire.ResultAccepted, 1, false)
	raw.send(raw.update(0, ops(100, 80)...))
	check("80 more than the 39 tokens left", next(), wire.ResultRateLimited, 0, true)
	raw.send(raw.update(0, ops(200, 101)...))
	check("101, over the burst", next(), wire.ResultRateLimited, 0, false)
	forged, _ := wire.AppendUpdate(nil, &wire.Update{Level: 1, Groups: []wire.Group{{Origin: rmtpLoc(101),
		Incarnation: raw.ep.Incarnation(), Ops: ops(300, 1)}}})
	raw.send(forged)
	check("another engine's entries", next(), wire.ResultWrongOrigin, 1, false)
	wrong, _ := wire.AppendUpdate(nil, &wire.Update{Level: 2})
	raw.send(wrong)
	if v := next(); v.Result != wire.ResultWrongLevel {
		t.Errorf("an update for level 2: %+v", v)
	}
}

// TestVerdictsWedgedMember: a member that stops reading (a wedged SE
// process still sending heartbeats; its rmtp queue full, it acknowledges
// nothing) must not hold back the other SEs' verdicts: every VERDICT then
// waits for it until its send deadline, so the managers keep several in
// flight and give up on the acknowledgements soon. 200 publications one
// after the other, each waiting for both managers' verdicts, finish in a
// few seconds (with 4 sends of 2 s each in flight, as first written, they
// took about 100 s); the 60 s bound only separates the two.
func TestVerdictsWedgedMember(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	sm, bsm := f.addManager(1), f.addManager(2)
	cfg := rmtpConfig(300, rmtp.Engine)
	cfg.DeliveryQueue = 2
	wedged, err := rmtp.New(f.listen(false, 300), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wedged.Close() })
	f.addEngines(1)
	f.waitPeers()
	waitfor.True(t, 10*time.Second, "the managers see the wedged member", func() bool { return livePeers(f.mgrEPs[0]) >= 3 })
	start := time.Now()
	for i := range 200 {
		if err := f.pubs[0].Add(directory.Entry{Key: key(0, i)}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := f.pubs[0].Flush(ctx)
		cancel()
		if err != nil {
			t.Fatalf("publication %d: %v (%+v)", i, err, f.pubs[0].Stats())
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("only %d publications accepted in 60 s: the wedged member holds the verdicts back", i)
		}
	}
	t.Logf("200 publications accepted one by one in %v with a wedged member", time.Since(start).Round(time.Millisecond))
	holdsAll(t, f, 200, sm, bsm)
	if c := sm.Counters(); c.VerdictsUnacked == 0 {
		t.Errorf("the wedged member acknowledged every VERDICT? %+v", c)
	}
}
