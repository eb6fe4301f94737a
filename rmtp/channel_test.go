package rmtp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestChannelInbox: a channel with an inbox of its own gets its messages
// there, in order; the other channels keep flowing through Receive while
// that inbox is full and unread, and its messages are all delivered once
// it is read.
func TestChannelInbox(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 1, memnet.Faults{}, func(cfg *rmtp.Config) { cfg.DeliveryQueue = 4 })
	if err := c.mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	eng := c.engines[0]
	in := eng.Channel(5)
	if eng.Channel(5) == nil {
		t.Fatal("no inbox")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 10 // more than the inbox holds
	for i := range n {
		if _, err := c.mgr.Start(ctx, 5, rmtp.Down, []byte(fmt.Sprintf("five-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := c.mgr.Start(ctx, 6, rmtp.Down, []byte(fmt.Sprintf("six-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		m, err := eng.Receive(ctx)
		if err != nil {
			t.Fatalf("channel 6 held up by channel 5's full inbox: %v", err)
		}
		if m.Channel != 6 || string(m.Payload) != fmt.Sprintf("six-%d", i) {
			t.Fatalf("Receive got channel %d %q, want six-%d", m.Channel, m.Payload, i)
		}
	}
	for i := range n {
		m, err := in.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Channel != 5 || string(m.Payload) != fmt.Sprintf("five-%d", i) {
			t.Fatalf("inbox got channel %d %q, want five-%d", m.Channel, m.Payload, i)
		}
	}
}

// TestDropUnclaimed: with DropUnclaimed, the messages of a channel nobody
// reads are acknowledged and dropped (counted), so their sender is done
// with them, while a claimed channel's are delivered. Without it they
// would wait for Receive, and a sender's stream would stall once the
// delivery queue is full.
func TestDropUnclaimed(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 1, memnet.Faults{}, func(cfg *rmtp.Config) { cfg.DeliveryQueue = 4; cfg.DropUnclaimed = true })
	if err := c.mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	eng := c.engines[0]
	in := eng.Channel(5)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 10 // more than the delivery queue holds
	for i := range n {
		tr, err := c.mgr.Start(ctx, 6, rmtp.Down, []byte(fmt.Sprintf("six-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Wait(); err != nil {
			t.Fatalf("message %d of an unclaimed channel not acknowledged: %v", i, err)
		}
	}
	if _, err := c.mgr.Send(ctx, 5, rmtp.Down, []byte("five")); err != nil {
		t.Fatal(err)
	}
	m, err := in.Receive(ctx)
	if err != nil || m.Channel != 5 || string(m.Payload) != "five" {
		t.Fatalf("claimed channel got %v, %v", m, err)
	}
	if got := eng.Stats().Counters.Unclaimed; got != n {
		t.Errorf("Unclaimed = %d, want %d", got, n)
	}
}
