package rmtp_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// farm is a memnet farm with several managers and engines, for the
// membership and abort tests.
type farm struct {
	t     *testing.T
	net   *memnet.Network
	eps   map[rmtp.NodeID]*rmtp.Endpoint
	nodes map[rmtp.NodeID]*memnet.Node

	mu    sync.Mutex
	trace []traced // every datagram sent to a group, in send order
}

type traced struct {
	from netip.AddrPort
	h    wire.Header
	body []byte
}

func newFarm(t *testing.T) *farm {
	f := &farm{t: t, net: memnet.New(1472), eps: map[rmtp.NodeID]*rmtp.Endpoint{}, nodes: map[rmtp.NodeID]*memnet.Node{}}
	f.net.SetTap(func(from netip.AddrPort, _ rmtp.Dest, b []byte) {
		p, err := wire.ParsePacket(b)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.trace = append(f.trace, traced{from, p.Header, append([]byte(nil), p.Payload...)})
		f.mu.Unlock()
	})
	return f
}

func (f *farm) add(id rmtp.NodeID, role rmtp.Role, mutate func(*rmtp.Config)) *rmtp.Endpoint {
	f.t.Helper()
	cfg := fastConfig(id, role)
	if mutate != nil {
		mutate(&cfg)
	}
	nd := f.net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id))
	e, err := rmtp.New(nd, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { e.Close() })
	f.eps[id], f.nodes[id] = e, nd
	return e
}

// kill makes a node vanish without a goodbye, as a crash would.
func (f *farm) kill(id rmtp.NodeID) { f.nodes[id].Close() }

func (f *farm) datagrams(typ wire.Type) []traced {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []traced
	for _, d := range f.trace {
		if d.h.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

func viewHas(v rmtp.View, ids ...rmtp.NodeID) bool {
	in := map[rmtp.NodeID]bool{}
	for _, m := range v.Members {
		in[m.Node] = true
	}
	for _, id := range ids {
		if !in[id] {
			return false
		}
	}
	return true
}

func viewSize(e *rmtp.Endpoint) int { return len(e.View().Members) }

func TestMembershipJoinLeaveDeathRejoin(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t)
	sm := f.add(1, rmtp.Manager, nil)
	bsm := f.add(2, rmtp.Manager, nil)
	if err := sm.Activate(1); err != nil {
		t.Fatal(err)
	}
	for id := rmtp.NodeID(101); id <= 103; id++ {
		f.add(id, rmtp.Engine, nil)
	}
	// join: everyone converges on the SM's view
	waitfor.True(t, 5*time.Second, "view of 5 everywhere", func() bool {
		for _, e := range f.eps {
			if v := e.View(); v.Term != 1 || v.Owner != 1 || !viewHas(v, 1, 2, 101, 102, 103) {
				return false
			}
		}
		return true
	})
	// graceful leave: dropped at once, state left
	f.eps[103].Close()
	waitfor.True(t, 5*time.Second, "103 left the view", func() bool { return viewSize(sm) == 4 && viewSize(f.eps[101]) == 4 })
	if st := peerState(sm, 103); st != rmtp.PeerLeft {
		t.Errorf("103 is %v, want left", st)
	}
	// death: suspect, then down, then out of the view
	f.kill(102)
	waitfor.True(t, 5*time.Second, "102 down", func() bool { return peerState(sm, 102) == rmtp.PeerDown })
	waitfor.True(t, 5*time.Second, "102 out of the view", func() bool { return viewSize(f.eps[101]) == 3 })

	// rejoin with a new incarnation; the old incarnation's datagrams are ignored
	old := f.datagrams(wire.TypeHello)
	var oldHello []byte
	for _, d := range old {
		if d.h.Node == 102 {
			b, _ := wire.AppendPacket(nil, d.h, d.body)
			var nokey *rmtp.Keyring
			nokey.Sign(b)
			oldHello = b
		}
	}
	re := f.add(102, rmtp.Engine, func(c *rmtp.Config) { c.Incarnation = uint64(time.Now().UnixNano()) + 1 })
	waitfor.True(t, 5*time.Second, "102 back in the view", func() bool {
		return viewHas(sm.View(), 102) && peerState(sm, 102) == rmtp.PeerAlive && peerInc(sm, 102) == re.Incarnation()
	})
	raw := f.net.Attach(true, memnet.Faults{}, 999)
	defer raw.Close()
	staleBefore := sm.Stats().Stale
	raw.Send(rmtp.Up, oldHello)
	waitfor.True(t, 5*time.Second, "stale datagram counted", func() bool { return sm.Stats().Stale > staleBefore })
	if peerInc(sm, 102) != re.Incarnation() {
		t.Error("an old incarnation's datagram replaced the new one")
	}

	// takeover: the BSM activates with a higher term, the SM steps down
	if err := bsm.Activate(2); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "SM steps down, engines follow term 2", func() bool {
		v := f.eps[101].View()
		return !sm.Active() && v.Term == 2 && v.Owner == 2
	})

	// the same story as events, for the MIB's notifications
	seen := map[string]bool{}
	for len(sm.Events()) > 0 {
		ev := <-sm.Events()
		seen[fmt.Sprintf("%v %d", ev.Kind, ev.Node)] = true
	}
	for _, want := range []string{"joined 101", "joined 2", "left 103", "down 102", "restarted 102", "view 0", "stepped-down 0"} {
		if !seen[want] {
			t.Errorf("no %q event; got %v", want, seen)
		}
	}
}

func peerState(e *rmtp.Endpoint, id rmtp.NodeID) rmtp.PeerState {
	for _, p := range e.Stats().Peers {
		if p.Node == id {
			return p.State
		}
	}
	return 0
}

func peerInc(e *rmtp.Endpoint, id rmtp.NodeID) uint64 {
	for _, p := range e.Stats().Peers {
		if p.Node == id {
			return p.Incarnation
		}
	}
	return 0
}

// blocker builds a member that never takes what it receives: its delivery
// queue holds one message, so after the first it stops acknowledging and
// keeps a transfer in flight for the abort tests.
func blocker(c *rmtp.Config) { c.DeliveryQueue = 1 }

// abortOrder checks Fig 6: the SM's ABORT_ACK for the message comes after
// the ABORT_ACK of every other receiver.
func abortOrder(t *testing.T, f *farm, sender rmtp.NodeID, sm uint32, others []uint32) {
	t.Helper()
	seen := map[uint32]int{}
	for i, d := range f.datagrams(wire.TypeAbortAck) {
		a, err := wire.ParseAbortAck(d.body)
		if err != nil || rmtp.NodeID(a.Stream.Node) != sender {
			continue
		}
		if _, ok := seen[d.h.Node]; !ok {
			seen[d.h.Node] = i
		}
	}
	smAt, ok := seen[sm]
	if !ok {
		t.Fatalf("no ABORT_ACK from the SM %d (got %v)", sm, seen)
	}
	for _, o := range others {
		at, ok := seen[o]
		if !ok {
			continue // a dead member
		}
		if at > smAt {
			t.Errorf("member %d acknowledged the abort after the SM", o)
		}
	}
}

func fill(t *testing.T, e *rmtp.Endpoint, ch uint8, d rmtp.Dest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Send(ctx, ch, d, []byte("first")); err != nil {
		t.Fatal(err)
	}
}

func TestAbortEngineSender(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t)
	sm := f.add(1, rmtp.Manager, nil)
	f.add(2, rmtp.Manager, nil)
	f.add(3, rmtp.Manager, blocker)
	se := f.add(101, rmtp.Engine, nil)
	if err := sm.Activate(1); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "engine sees the view", func() bool { return viewHas(se.View(), 1, 2, 3) })
	fill(t, se, 4, rmtp.Up) // fills 3's queue
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := se.Start(ctx, 4, rmtp.Up, make([]byte, 5000))
	if err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "2 has it", func() bool { return f.eps[2].Stats().Received >= 2 })
	r, err := tr.Abort(ctx)
	if err != nil {
		t.Fatalf("abort: %v (%+v)", err, r)
	}
	if !r.Complete || r.CompletedBy != 1 {
		t.Fatalf("report %+v", r)
	}
	rep, _ := tr.Wait()
	if !rep.Aborted {
		t.Error("transfer not marked aborted")
	}
	abortOrder(t, f, 101, 1, []uint32{2, 3})
	// 3 held the message undelivered: it must have dropped it
	waitfor.True(t, time.Second, "3 discarded", func() bool { return f.eps[3].Stats().AbortsReceived == 1 })
	m, err := f.eps[3].Receive(ctx)
	if err != nil || string(m.Payload) != "first" {
		t.Fatalf("3 got %v %v", m, err)
	}
	// and the stream goes on after the aborted message
	go func() {
		for {
			if _, err := f.eps[3].Receive(ctx); err != nil {
				return
			}
		}
	}()
	if _, err := se.Send(ctx, 4, rmtp.Up, []byte("after")); err != nil {
		t.Fatalf("send after abort: %v", err)
	}
}

func TestAbortManagerSenders(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t)
	sm := f.add(1, rmtp.Manager, nil)
	bsm := f.add(2, rmtp.Manager, nil)
	f.add(101, rmtp.Engine, nil)
	f.add(102, rmtp.Engine, blocker)
	f.add(103, rmtp.Engine, nil)
	if err := sm.Activate(1); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "view of 5", func() bool { return viewSize(bsm) == 5 && viewSize(f.eps[101]) == 5 })

	t.Run("BSM sender, SM acknowledges last", func(t *testing.T) {
		fill(t, bsm, 6, rmtp.Down)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr, err := bsm.Start(ctx, 6, rmtp.Down, make([]byte, 3000))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tr.Abort(ctx)
		if err != nil || !r.Complete || r.CompletedBy != 1 {
			t.Fatalf("abort: %v %+v", err, r)
		}
		abortOrder(t, f, 2, 1, []uint32{101, 102, 103})
	})
	t.Run("SM sender, complete when every member acknowledged", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr, err := sm.Start(ctx, 7, rmtp.Down, make([]byte, 3000))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tr.Abort(ctx)
		if err != nil || !r.Complete || r.CompletedBy != 0 || len(r.Missing) != 0 {
			t.Fatalf("abort: %v %+v", err, r)
		}
		if n := len(r.Discarded) + len(r.Delivered); n != 4 {
			t.Fatalf("%d acknowledgements, want 4: %+v", n, r)
		}
	})
	t.Run("dead member does not hang the abort", func(t *testing.T) {
		f.kill(103)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr, err := bsm.Start(ctx, 8, rmtp.Down, make([]byte, 3000))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tr.Abort(ctx)
		if err != nil || !r.Complete || r.CompletedBy != 1 {
			t.Fatalf("abort: %v %+v", err, r)
		}
	})
}
