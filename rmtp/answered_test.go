package rmtp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
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
	waitfor.True(t, 5*time.Second, "both engines in the view", func() bool { return len(mgr.View().Members) >= 3 })
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
	waitfor.True(t, 5*time.Second, "every response handed over", func() bool {
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

// TestAnswerAckDelay: a manager holds its acknowledgement of engines'
// answers up to AnswerAckDelay (here an hour: the engine's answer stays
// unacknowledged), but acknowledges a manager's answer within AckDelay,
// so a manager replying synchronously (a directory snapshot chunk) is
// not held up.
func TestAnswerAckDelay(t *testing.T) {
	checkNoLeak(t)
	net := memnet.New(1472)
	mk := func(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
		cfg := fastConfig(id, role)
		// A long MinRTO: an answer acknowledged only after its sender
		// re-sent it shows in the sender's Retransmits.
		cfg.DownAfter, cfg.AnswerAckDelay, cfg.MaxRTO, cfg.MinRTO = lenientDown, time.Hour, time.Hour, time.Second
		e, err := rmtp.New(net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	sm, bsm, se := mk(1, rmtp.Manager), mk(2, rmtp.Manager), mk(101, rmtp.Engine)
	if err := sm.Activate(1); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "a view of three", func() bool { return len(sm.View().Members) == 3 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replied := make(chan error, 1)
	answers := make(chan *rmtp.Transfer, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(2)
	// Every member hears every request; each answers only its own.
	next := func(e *rmtp.Endpoint, want string) *rmtp.Message {
		for {
			m, err := e.Receive(ctx)
			if err != nil {
				return nil
			}
			if m.Kind == rmtp.KindRequest && string(m.Payload) == want {
				return m
			}
		}
	}
	go func() { // the backup manager answers synchronously
		defer wg.Done()
		m := next(bsm, "chunk please")
		if m == nil {
			return
		}
		_, err := bsm.Reply(ctx, m, []byte("chunk"))
		replied <- err
	}()
	go func() {
		defer wg.Done()
		m := next(se, "q")
		if m == nil {
			return
		}
		tr, err := se.StartReply(ctx, m, []byte("answer"))
		if err != nil {
			t.Error(err)
			return
		}
		answers <- tr
	}()

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if r, err := sm.Request(rctx, 9, []byte("chunk please"), []rmtp.NodeID{2}); err != nil || len(r.Responses) != 1 {
		t.Fatalf("request to the backup manager: %+v, %v", r, err)
	}
	select {
	case err := <-replied:
		if err != nil {
			t.Fatalf("the backup manager's Reply: %v", err)
		}
		if n := bsm.Stats().Retransmits; n != 0 {
			t.Fatalf("the backup manager re-sent its answer %d times before it was acknowledged", n)
		}
	case <-rctx.Done():
		t.Fatal("the backup manager's Reply was not acknowledged: held as if an engine's")
	}

	// Any vector a manager sends carries every stream's position, the
	// engine's answers included: the backup's acknowledgement of the
	// next request would release the answer too. Without it, and once
	// the last vector is past, only AnswerAckDelay could.
	bsm.Close()
	waitfor.True(t, 5*time.Second, "the backup gone from the view", func() bool { return len(sm.View().Members) == 2 })
	time.Sleep(20 * time.Millisecond)
	tr, err := sm.StartRequest(rctx, 9, []byte("q"), []rmtp.NodeID{101})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Answered()
	answer := <-answers
	// Time for a vector within AckDelay to come and go, many times over.
	time.Sleep(50 * time.Millisecond)
	select {
	case <-answer.Done():
		t.Fatalf("the engine's answer was acknowledged within 50 ms with AnswerAckDelay an hour: %+v", answer.Progress())
	default:
	}
}

// TestCanceledBeforeDeadline: a transfer whose context has a deadline is
// ended by the timer loop, not by a callback registered per message; a
// cancel before the deadline still ends it: Wait returns at once with
// the silent member missing, and Done closes.
func TestCanceledBeforeDeadline(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 1, memnet.Faults{}, nil)
	c.nodes[1].SetFaults(memnet.Faults{Loss: 1}) // the engine hears nothing from now on
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	tr, err := c.mgr.Start(ctx, 3, rmtp.Down, []byte("never acknowledged"))
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan rmtp.Report, 1)
	go func() {
		r, _ := tr.Wait()
		waited <- r
	}()
	select {
	case r := <-waited:
		t.Fatalf("Wait returned before the cancel: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case r := <-waited:
		if len(r.Missing) != 1 || r.Missing[0] != 101 {
			t.Fatalf("report %+v, want engine 101 missing", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the cancel")
	}
	select {
	case <-tr.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close after the cancel")
	}
}
