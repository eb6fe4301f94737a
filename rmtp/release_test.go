package rmtp_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// A released message's buffer carries the next message of a fitting size,
// which arrives intact; one not released is left alone.
func TestReleaseReusesBuffer(t *testing.T) {
	checkNoLeak(t)
	net := memnet.New(1472)
	mk := func(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
		e, err := rmtp.New(net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id)), fastConfig(id, role))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	sm, se := mk(1, rmtp.Manager), mk(101, rmtp.Engine)
	if err := sm.Activate(1); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "a view of two", func() bool { return len(sm.View().Members) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(5, 6))
	deliver := func(i, size int) *rmtp.Message {
		t.Helper()
		want := payload(rng, i, size)
		tr, err := sm.Start(ctx, 3, rmtp.Down, want)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Wait(); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := se.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Channel != 3 {
				continue
			}
			if !bytes.Equal(m.Payload, want) {
				t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(m.Payload), size)
			}
			return m
		}
	}
	m := deliver(1, 100_000)
	first := &m.Payload[0]
	m.Release()
	m.Release() // a second call does nothing
	if m.Payload != nil {
		t.Fatal("Payload still set after Release")
	}
	m = deliver(2, 90_000) // fits the released buffer
	if &m.Payload[0] != first {
		t.Fatal("the released buffer was not reused")
	}
	// Kept, not released: the next message needs a buffer of its own.
	kept := bytes.Clone(m.Payload)
	m2 := deliver(3, 90_000)
	if &m2.Payload[0] == &m.Payload[0] || !bytes.Equal(m.Payload, kept) {
		t.Fatal("a message not released was overwritten")
	}
	// One segment: Payload is the datagram's own copy, nothing to pool.
	small := deliver(4, 100)
	small.Release()
	if small.Payload != nil {
		t.Fatal("Payload still set after Release")
	}
}
