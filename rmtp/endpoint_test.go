package rmtp_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

func TestSendLossless(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 3, memnet.Faults{}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var want [][]byte
	for i, size := range []int{0, 1, 1400, 1472, 5000, 100000} {
		want = append(want, payload(rng, i, size))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(c.engines))
	for _, e := range c.engines {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- collect(ctx, e, 1, want) }()
	}
	for _, p := range want {
		r, err := c.mgr.Send(ctx, 5, rmtp.Down, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Acked) != 3 || !r.Complete() {
			t.Fatalf("report %+v", r)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestSendLossy(t *testing.T) {
	checkNoLeak(t)
	f := memnet.Faults{Loss: 0.1, Dup: 0.1, Reorder: 0.1}
	c := newCluster(t, 8, f, func(cfg *rmtp.Config) { cfg.DownAfter = lenientDown })
	rng := rand.New(rand.NewPCG(3, 4))
	var want [][]byte
	for i := range 200 {
		size := 1 + rng.IntN(20000)
		if i%50 == 7 {
			size = 200000 + rng.IntN(100000)
		}
		want = append(want, payload(rng, i, size))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(c.engines))
	for _, e := range c.engines {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- collect(ctx, e, 1, want) }()
	}
	for i, p := range want {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.mgr.Send(sctx, 5, rmtp.Down, p)
		scancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var sup, retx, naks uint64
	for _, e := range c.engines {
		s := e.Stats()
		sup += s.NaksSuppressed
		naks += s.NaksSent
	}
	retx = c.mgr.Stats().Retransmits
	t.Logf("naks sent %d, suppressed %d, retransmits %d", naks, sup, retx)
	if naks == 0 || retx == 0 {
		t.Errorf("10%% loss produced no NAK (%d) or no repair (%d)", naks, retx)
	}
}

func TestRequestResponse(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 4, memnet.Faults{Loss: 0.1, Dup: 0.05, Reorder: 0.05}, func(cfg *rmtp.Config) { cfg.DownAfter = lenientDown })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range c.engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := e.Receive(ctx)
				if err != nil {
					return
				}
				if m.Kind != rmtp.KindRequest {
					continue
				}
				ans := append([]byte("from "), byte('0'+e.Node()-100))
				ans = append(ans, m.Payload...)
				if _, err := e.Reply(ctx, m, ans); err != nil && ctx.Err() == nil {
					t.Errorf("reply: %v", err)
				}
			}
		}()
	}
	for i := range 50 {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.mgr.Request(rctx, 2, []byte{byte(i)}, nil)
		rcancel()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if len(r.Responses) != 4 {
			t.Fatalf("request %d: %d responses", i, len(r.Responses))
		}
		for _, resp := range r.Responses {
			want := string(append([]byte("from "), byte('0'+resp.From-100), byte(i)))
			if string(resp.Payload) != want {
				t.Fatalf("request %d: response %q from %d", i, resp.Payload, resp.From)
			}
		}
	}
	cancel()
	wg.Wait()
}

func TestTooLarge(t *testing.T) {
	c := newCluster(t, 1, memnet.Faults{}, func(cfg *rmtp.Config) { cfg.MaxMessage = 1000 })
	_, err := c.mgr.Send(context.Background(), 1, rmtp.Down, make([]byte, 1001))
	if !errors.Is(err, rmtp.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

// A receiver's reassembly memory per peer is capped: with eight 60 KB
// messages in flight and room for about one, segments are refused
// (Dropped) and repaired later, and everything still arrives in order.
func TestPeerMemoryCap(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 2, memnet.Faults{Reorder: 0.3}, func(cfg *rmtp.Config) {
		cfg.MaxMessage, cfg.PeerMemory, cfg.DownAfter = 64<<10, 64<<10, lenientDown
	})
	rng := rand.New(rand.NewPCG(5, 6))
	want := make([][]byte, 40)
	for i := range want {
		want[i] = payload(rng, i, 60<<10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range c.engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := collect(ctx, e, 1, want); err != nil {
				t.Error(err)
			}
		}()
	}
	var inflight []*rmtp.Transfer
	for _, p := range want {
		if len(inflight) == 8 {
			if _, err := inflight[0].Wait(); err != nil {
				t.Fatal(err)
			}
			inflight = inflight[1:]
		}
		tr, err := c.mgr.Start(ctx, 1, rmtp.Down, p)
		if err != nil {
			t.Fatal(err)
		}
		inflight = append(inflight, tr)
	}
	for _, tr := range inflight {
		if _, err := tr.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	var dropped uint64
	for _, e := range c.engines {
		s := e.Stats()
		dropped += s.Dropped
		for _, p := range s.Peers {
			if p.Memory != 0 {
				t.Errorf("engine %d still holds %d bytes for %d", e.Node(), p.Memory, p.Node)
			}
		}
	}
	if dropped == 0 {
		t.Error("the memory cap never refused a segment")
	}
}

func TestEngineSendsUpOnly(t *testing.T) {
	c := newCluster(t, 1, memnet.Faults{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.engines[0].Send(ctx, 1, rmtp.Down, []byte("x")); !errors.Is(err, rmtp.ErrDirection) {
		t.Fatalf("engine sending down: %v", err)
	}
	r, err := c.engines[0].Send(ctx, 1, rmtp.Up, []byte("up"))
	if err != nil || len(r.Acked) != 1 || r.Acked[0] != 1 {
		t.Fatalf("engine sending up: %+v %v", r, err)
	}
	m, err := c.mgr.Receive(ctx)
	if err != nil || string(m.Payload) != "up" || m.Dest != rmtp.Up || m.From != 101 {
		t.Fatalf("manager got %+v %v", m, err)
	}
}

// Targets narrow who must answer; the others only acknowledge. A member
// that answers after the deadline is a late reply: counted, and handed to
// Receive.
func TestRequestTargetsAndLateReply(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 3, memnet.Faults{}, func(cfg *rmtp.Config) { cfg.DownAfter = lenientDown })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hold := make(chan *rmtp.Message, 4)
	var wg sync.WaitGroup
	for _, e := range c.engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := e.Receive(ctx)
				if err != nil {
					return
				}
				if e.Node() == 103 {
					hold <- m // answers only when told
					continue
				}
				e.Reply(ctx, m, []byte("ok"))
			}
		}()
	}
	r, err := c.mgr.Request(ctx, 9, []byte("q1"), []rmtp.NodeID{101, 102})
	if err != nil || len(r.Responses) != 2 || len(r.Acked) != 3 {
		t.Fatalf("targeted: %+v %v", r, err)
	}
	<-hold
	short, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	r, err = c.mgr.Request(short, 9, []byte("q2"), nil)
	scancel()
	if !errors.Is(err, rmtp.ErrIncomplete) || len(r.Missing) != 1 || r.Missing[0] != 103 || len(r.Responses) != 2 {
		t.Fatalf("silent member: %+v %v", r, err)
	}
	late := <-hold
	if _, err := c.engines[2].Reply(ctx, late, []byte("late")); err != nil {
		t.Fatal(err)
	}
	m, err := c.mgr.Receive(ctx)
	if err != nil || m.Kind != rmtp.KindResponse || string(m.Payload) != "late" || m.RequestID != r.ID {
		t.Fatalf("late reply: %+v %v", m, err)
	}
	if n := c.mgr.Stats().LateReplies; n != 1 {
		t.Errorf("late replies %d", n)
	}
	cancel()
	wg.Wait()
}

// Repairs are rate-limited: with a tiny repair budget the limiter holds
// repairs back (counted) and delivery still completes, just slower.
func TestRepairRateLimit(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 3, memnet.Faults{Loss: 0.2}, func(cfg *rmtp.Config) {
		cfg.RepairRate, cfg.DownAfter = 50_000, lenientDown
	})
	rng := rand.New(rand.NewPCG(13, 14))
	want := make([][]byte, 30)
	for i := range want {
		want[i] = payload(rng, i, 2800)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range c.engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := collect(ctx, e, 1, want); err != nil {
				t.Error(err)
			}
		}()
	}
	for i, p := range want {
		if _, err := c.mgr.Send(ctx, 1, rmtp.Down, p); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	wg.Wait()
	if s := c.mgr.Stats(); s.RepairsThrottled == 0 {
		t.Errorf("no repair was throttled at 50 kB/s: %+v", s.Counters)
	}
}
