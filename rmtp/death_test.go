package rmtp_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// A receiver that dies mid-stream is declared down and named in the
// report; the others get everything and the sender never waits past the
// deadline.
func TestReceiverKilledMidStream(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 4, memnet.Faults{Loss: 0.05}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const total = 100
	var wg sync.WaitGroup
	got := make([]int, 4)
	for i, e := range c.engines[:3] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got[i] < total {
				m, err := e.Receive(ctx)
				if err != nil {
					return
				}
				if m.ID != uint64(got[i]+1) {
					t.Errorf("engine %d: id %d at %d", e.Node(), m.ID, got[i])
					return
				}
				got[i]++
			}
		}()
	}
	go func() { // the victim reads until it dies
		for {
			if _, err := c.engines[3].Receive(ctx); err != nil {
				return
			}
		}
	}()
	victim := c.engines[3].Node()
	var named bool
	for i := range total {
		if i == 30 {
			c.nodes[4].Close() // the victim's network: it vanishes without a goodbye
		}
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.mgr.Send(sctx, 1, rmtp.Down, make([]byte, 3000))
		scancel()
		if slices.Contains(r.Missing, victim) {
			named = true
			if !slices.Contains(r.Down, victim) {
				t.Errorf("message %d: victim missing but not declared down: %+v", i, r)
			}
		} else if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if i > 30 && slices.Contains(r.Members, victim) && !slices.Contains(r.Missing, victim) {
			t.Errorf("message %d: dead victim counted as acknowledged", i)
		}
	}
	if !named {
		t.Error("no report named the dead receiver")
	}
	wg.Wait()
	for i, n := range got[:3] {
		if n != total {
			t.Errorf("engine %d got %d of %d", c.engines[i].Node(), n, total)
		}
	}
}

// With slow failure detection the deadline bounds the wait: the send
// returns ErrIncomplete naming the silent member.
func TestDeadlineBoundsSilentMember(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 2, memnet.Faults{}, func(cfg *rmtp.Config) { cfg.DownAfter = 1000 })
	c.nodes[2].SetFaults(memnet.Faults{Loss: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	go func() {
		for {
			if _, err := c.engines[0].Receive(ctx); err != nil {
				return
			}
		}
	}()
	r, err := c.mgr.Send(ctx, 1, rmtp.Down, []byte("x"))
	if !errors.Is(err, rmtp.ErrIncomplete) {
		t.Fatalf("got %v", err)
	}
	if !slices.Equal(r.Missing, []rmtp.NodeID{102}) || !slices.Equal(r.Acked, []rmtp.NodeID{101}) {
		t.Fatalf("report %+v", r)
	}
}
