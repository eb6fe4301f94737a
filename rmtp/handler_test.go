package rmtp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// recorder is a Handler.Func that keeps what it was given.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(m *rmtp.Message) {
	r.mu.Lock()
	r.got = append(r.got, string(m.Payload))
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func send(t *testing.T, e *rmtp.Endpoint, ch uint8, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Send(ctx, ch, rmtp.Down, []byte(payload)); err != nil {
		t.Fatalf("send %q: %v", payload, err)
	}
}

// A handled channel's messages reach the handler in order, exactly once;
// the messages an inbox held before go first; other channels still go to
// Receive; removing the handler sends the channel back to its inbox.
func TestHandlerDelivery(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 1, memnet.Faults{}, nil)
	se := c.engines[0]
	in := se.Channel(5)
	send(t, c.mgr, 5, "queued")
	var rec recorder
	in.Handle(rmtp.Handler{Func: rec.add})
	for i := range 50 {
		send(t, c.mgr, 5, fmt.Sprint(i))
	}
	send(t, c.mgr, 6, "other")
	waitfor.True(t, 5*time.Second, "51 handled", func() bool { return len(rec.list()) == 51 })
	got := rec.list()
	if got[0] != "queued" {
		t.Fatalf("the inbox's message came %q first, want it before the rest", got[0])
	}
	for i, s := range got[1:] {
		if s != fmt.Sprint(i) {
			t.Fatalf("handled %q at %d, want %d", s, i, i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m, err := se.Receive(ctx); err != nil || string(m.Payload) != "other" {
		t.Fatalf("channel 6 through Receive: %v %v", m, err)
	}
	in.Handle(rmtp.Handler{})
	send(t, c.mgr, 5, "back")
	if m, err := in.Receive(ctx); err != nil || string(m.Payload) != "back" {
		t.Fatalf("after the handler's removal, the inbox: %v %v", m, err)
	}
	if n := len(rec.list()); n != 51 {
		t.Fatalf("the removed handler got %d messages, want 51", n)
	}
}

// A handler call that outlasts its budget does not hold the endpoint up:
// another receive goroutine takes over, later messages are handled and
// acknowledged meanwhile, Slow is called once, and Close waits for the
// slow call to end.
func TestHandlerTakeover(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 1, memnet.Faults{}, nil)
	se := c.engines[0]
	var rec recorder
	entered, release := make(chan struct{}), make(chan struct{})
	var slow sync.WaitGroup
	slow.Add(1)
	se.Handle(5, rmtp.Handler{
		Budget: 10 * time.Millisecond,
		Func: func(m *rmtp.Message) {
			if string(m.Payload) == "slow" {
				close(entered)
				<-release
			}
			rec.add(m)
		},
		Slow: slow.Done,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := c.mgr.Start(ctx, 5, rmtp.Down, []byte("slow"))
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	slow.Wait() // Slow was called: another goroutine receives
	for i := range 5 {
		send(t, c.mgr, 5, fmt.Sprint(i)) // each acknowledged while "slow" is held
	}
	waitfor.True(t, 5*time.Second, "the later messages handled", func() bool { return len(rec.list()) == 5 })
	if _, err := first.Wait(); err != nil {
		t.Fatalf("the slow message was not acknowledged: %v", err)
	}
	closed := make(chan struct{})
	go func() {
		se.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a handler call was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if got := rec.list(); len(got) != 6 || got[5] != "slow" {
		t.Fatalf("handled %q", got)
	}
}
