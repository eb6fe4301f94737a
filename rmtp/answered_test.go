package rmtp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestAnsweredBeforeBystanders: a request's Answered closes once every
// target answered, while the transfer stays open for a member that only
// acknowledges and cannot hear it (all its datagrams lost); Done waits
// for that member until the context ends.
func TestAnsweredBeforeBystanders(t *testing.T) {
	checkNoLeak(t)
	net := memnet.New(1472)
	mk := func(id rmtp.NodeID, role rmtp.Role) (*rmtp.Endpoint, *memnet.Node) {
		cfg := fastConfig(id, role)
		cfg.DownAfter = lenientDown
		nd := net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id))
		e, err := rmtp.New(nd, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e, nd
	}
	mgr, _ := mk(1, rmtp.Manager)
	if err := mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	target, _ := mk(101, rmtp.Engine)
	_, deaf := mk(102, rmtp.Engine)
	waitFor(t, 5*time.Second, "both engines in the view", func() bool { return len(mgr.View().Members) >= 3 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	answerRequests(t, target, []byte("answer"))
	deaf.SetFaults(memnet.Faults{Loss: 1}) // engine 102 hears nothing from now on

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	tr, err := mgr.StartRequest(rctx, 9, []byte("q"), []rmtp.NodeID{101})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Answered():
	case <-rctx.Done():
		t.Fatal("the target's answer did not close Answered")
	}
	select {
	case <-tr.Done():
		t.Fatalf("done although member 102 never acknowledged: %+v", tr.Progress())
	default:
	}
	rep := tr.Progress()
	if len(rep.Responses) != 1 || rep.Responses[0].From != 101 || string(rep.Responses[0].Payload) != "answer" {
		t.Fatalf("progress %+v", rep)
	}
	rcancel()
	<-tr.Done()
	if rep, _ := tr.Wait(); len(rep.Missing) != 1 || rep.Missing[0] != 102 {
		t.Fatalf("final report %+v, want 102 missing", rep)
	}
}

// TestRequestEach: StartRequestEach hands every response to its callback
// once, with the payload the report has, over a lossy network (re-sent
// answers are not handed again), and plain StartRequest calls nothing.
func TestRequestEach(t *testing.T) {
	checkNoLeak(t)
	const n = 8
	c := newCluster(t, n, memnet.Faults{Loss: 0.1, Dup: 0.1}, nil)
	if err := c.mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	for i, e := range c.engines {
		answerRequests(t, e, []byte{byte(i)})
	}
	var mu sync.Mutex
	got := map[rmtp.NodeID][]int{}
	for round := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tr, err := c.mgr.StartRequestEach(ctx, 9, []byte("q"), nil, func(r rmtp.Response) {
			mu.Lock()
			defer mu.Unlock()
			if len(r.Payload) != 1 || r.Payload[0] != byte(r.From-101) {
				t.Errorf("round %d: %d answered %x", round, r.From, r.Payload)
			}
			got[r.From] = append(got[r.From], round)
		})
		if err != nil {
			t.Fatal(err)
		}
		<-tr.Answered()
		rep := tr.Progress()
		cancel()
		if len(rep.Responses) != n {
			t.Fatalf("round %d: %d responses", round, len(rep.Responses))
		}
	}
	// The last callbacks may still run after Answered.
	waitFor(t, 5*time.Second, "every response handed over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, rs := range got {
			total += len(rs)
		}
		return total >= 20*n
	})
	mu.Lock()
	defer mu.Unlock()
	for id, rounds := range got {
		for i, r := range rounds {
			if r != i {
				t.Fatalf("engine %d: handed over in rounds %v, want each round once", id, rounds)
			}
		}
	}
	tr, err := c.mgr.StartRequest(context.Background(), 9, []byte("q"), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Answered()
	time.Sleep(10 * time.Millisecond)
	for id, rounds := range got {
		if len(rounds) != 20 {
			t.Fatalf("engine %d: %d callbacks after a plain request, want 20", id, len(rounds))
		}
	}
}
