package election

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// farm is managers with Electors and engines over rmtp's in-memory
// network or real UDP multicast on lo,
// network, with production timers (200 ms heartbeats, 700 ms takeover).
type farm struct {
	t       *testing.T
	attach  func(id rmtp.NodeID, manager bool) rmtp.Transport
	mu      sync.Mutex
	mgrs    map[rmtp.NodeID]*farmMgr
	prio    map[rmtp.NodeID]uint8
	engines []*rmtp.Endpoint
	changes chan nodeChange
}

type farmMgr struct {
	id     rmtp.NodeID
	gate   *gate
	ep     *rmtp.Endpoint
	el     *Elector
	cancel context.CancelFunc
	done   chan struct{}
	dead   bool
}

type nodeChange struct {
	id rmtp.NodeID
	Change
}

// memnetAttach puts members on one in-memory network.
func memnetAttach(t *testing.T) func(rmtp.NodeID, bool) rmtp.Transport {
	n := memnet.New(1472)
	return func(id rmtp.NodeID, manager bool) rmtp.Transport {
		return n.Attach(manager, memnet.Faults{}, uint64(id)<<8|uint64(time.Now().UnixNano()&0xff))
	}
}

// udpAttach puts members on real multicast over lo, on groups and a port
// no other test run uses.
func udpAttach(t *testing.T) func(rmtp.NodeID, bool) rmtp.Transport {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	x := byte(rand.IntN(200) + 10)
	down := netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, x, 1}), port)
	up := netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, x, 2}), port)
	return func(_ rmtp.NodeID, manager bool) rmtp.Transport {
		tr, err := rmtp.ListenMulticast(rmtp.MulticastConfig{Interface: "lo", Down: down, Up: up, JoinUp: manager})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
}

func newFarm(t *testing.T, attach func(rmtp.NodeID, bool) rmtp.Transport, prios []uint8, engines int) *farm {
	f := &farm{t: t, attach: attach, mgrs: map[rmtp.NodeID]*farmMgr{}, prio: map[rmtp.NodeID]uint8{}, changes: make(chan nodeChange, 256)}
	t.Cleanup(f.close)
	for i := range engines {
		ep, err := rmtp.New(f.attach(rmtp.NodeID(101+i), false), rmtp.Config{Node: rmtp.NodeID(101 + i), Role: rmtp.Engine, Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		f.engines = append(f.engines, ep)
	}
	for i, p := range prios {
		f.prio[rmtp.NodeID(1+i)] = p
		f.startMgr(rmtp.NodeID(1+i), p, 0)
	}
	return f
}

func (f *farm) startMgr(id rmtp.NodeID, prio uint8, floor uint64) *farmMgr {
	f.t.Helper()
	g := &gate{Transport: f.attach(id, true)}
	ep, err := rmtp.New(g, rmtp.Config{Node: id, Role: rmtp.Manager, Priority: prio, Insecure: true})
	if err != nil {
		f.t.Fatal(err)
	}
	el, err := New(FromEndpoint(ep, prio), Config{TermFloor: floor, OnChange: func(c Change) {
		select {
		case f.changes <- nodeChange{id, c}:
		default: // the test reads them; a full channel only loses history
		}
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &farmMgr{id: id, gate: g, ep: ep, el: el, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		el.Run(ctx)
	}()
	f.mu.Lock()
	f.mgrs[id] = m
	f.mu.Unlock()
	return m
}

// gate isolates a member completely while cut: nothing it sends leaves,
// nothing sent to it arrives (memnet's faults act on one receiver only,
// and real multicast has none).
type gate struct {
	rmtp.Transport
	cut atomic.Bool
}

func (g *gate) Send(to rmtp.Dest, b []byte) error {
	if g.cut.Load() {
		return nil
	}
	return g.Transport.Send(to, b)
}

func (g *gate) SendTo(to netip.AddrPort, b []byte) error {
	if g.cut.Load() {
		return nil
	}
	return g.Transport.SendTo(to, b)
}

func (g *gate) Recv() (rmtp.Datagram, error) {
	for {
		d, err := g.Transport.Recv()
		if err != nil || !g.cut.Load() {
			return d, err
		}
	}
}

// kill makes a manager vanish without a goodbye: its network goes, its
// Elector stops.
func (f *farm) kill(m *farmMgr) {
	m.gate.Transport.Close()
	m.cancel()
	<-m.done
	m.ep.Close()
	m.dead = true
}

func (f *farm) close() {
	for _, m := range f.mgrs {
		if !m.dead {
			m.cancel()
			<-m.done
			m.ep.Close()
		}
	}
	for _, e := range f.engines {
		e.Close()
	}
}

// best is the live manager with the highest priority, then lowest id.
func (f *farm) best() rmtp.NodeID {
	var id rmtp.NodeID
	for _, m := range f.live() {
		if id == 0 || f.prio[m.id] > f.prio[id] {
			id = m.id
		}
	}
	return id
}

func (f *farm) live() []*farmMgr {
	var ms []*farmMgr
	for _, m := range f.mgrs {
		if !m.dead {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b *farmMgr) int { return int(a.id) - int(b.id) })
	return ms
}

// agreed reports whether exactly one live manager is active (transport and
// Elector agreeing) and every live member follows its view and term.
func (f *farm) agreed() (rmtp.NodeID, uint64, bool) {
	var owner rmtp.NodeID
	for _, m := range f.live() {
		if m.ep.Active() != (m.el.Role() == Active) {
			return 0, 0, false
		}
		if m.ep.Active() {
			if owner != 0 {
				return 0, 0, false
			}
			owner = m.id
		} else if m.el.Role() != Backup {
			return 0, 0, false
		}
	}
	if owner == 0 {
		return 0, 0, false
	}
	term := f.mgrs[owner].ep.View().Term
	for _, m := range f.live() {
		if v := m.ep.View(); v.Owner != owner || v.Term != term || m.el.Status().Term != term {
			return 0, 0, false
		}
	}
	for _, e := range f.engines {
		if v := e.View(); v.Owner != owner || v.Term != term {
			return 0, 0, false
		}
	}
	return owner, term, true
}

func (f *farm) waitAgreed(limit time.Duration) (rmtp.NodeID, uint64, time.Time) {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if o, term, ok := f.agreed(); ok {
			return o, term, time.Now()
		}
		if time.Now().After(deadline) {
			for _, m := range f.live() {
				f.t.Logf("manager %d: active %v elector %+v view %+v", m.id, m.ep.Active(), m.el.Status(), m.ep.View())
			}
			f.t.Fatalf("no agreement within %v", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Four managers (priorities 5, 9, 7, 5) and four engines. The active
// manager is killed (no goodbye) again and again: each time the best live
// backup takes over and every member follows one term within 1 s of
// the dead manager's last heartbeat; the killed one comes back as a
// backup even when its priority is the best (non-preemptive). ELECTION_KILLS sets the number of kills (default 3).
func TestFarmTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of real heartbeats")
	}
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("ELECTION_KILLS")); err == nil && v > 0 {
		kills = v
	}
	t.Run("memnet", func(t *testing.T) { farmTakeover(t, memnetAttach(t), kills) })
	t.Run("multicast-lo", func(t *testing.T) { farmTakeover(t, udpAttach(t), kills) })
}

func farmTakeover(t *testing.T, attach func(rmtp.NodeID, bool) rmtp.Transport, kills int) {
	before := runtime.NumGoroutine()
	f := newFarm(t, attach, []uint8{5, 9, 7, 5}, 4)
	owner, term, _ := f.waitAgreed(10 * time.Second)
	if owner != 2 {
		t.Fatalf("first active %d, want 2 (highest priority)", owner)
	}
	drain(f.changes)

	var fromHeard, fromKill []time.Duration
	floor := map[rmtp.NodeID]uint64{}
	for k := range kills {
		f.waitMesh(10 * time.Second) // so that every backup ranks the same managers
		victim := f.mgrs[owner]
		killedAt := time.Now()
		f.kill(victim)
		want := f.best()
		wantTerm := max(term, floor[want]) + 1
		var won nodeChange
		for won.Role != Active {
			select {
			case c := <-f.changes:
				if c.Role == Active {
					if c.id != want || c.Cause != CauseTakeover || c.Previous != victim.id || c.Term != wantTerm {
						t.Fatalf("kill %d: %d activated %+v, want %d with term %d", k, c.id, c.Change, want, wantTerm)
					}
					won = c
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("kill %d: no takeover", k)
			}
		}
		newOwner, newTerm, doneAt := f.waitAgreed(10 * time.Second)
		if newOwner != want || newTerm != wantTerm {
			t.Fatalf("kill %d: agreed on %d term %d", k, newOwner, newTerm)
		}
		took := doneAt.Sub(won.PreviousHeard)
		fromHeard = append(fromHeard, took)
		fromKill = append(fromKill, doneAt.Sub(killedAt))
		t.Logf("kill %d: %d -> %d term %d: %v after the last heartbeat (activated at %v), %v after the kill",
			k, victim.id, want, newTerm, took.Round(time.Millisecond), won.At.Sub(won.PreviousHeard).Round(time.Millisecond), doneAt.Sub(killedAt).Round(time.Millisecond))
		if took >= time.Second {
			t.Errorf("kill %d: takeover took %v from the last heartbeat, want under 1 s", k, took)
		}

		// the old SM comes back with a floor above every term: it stays
		// backup, and uses the floor when it wins later
		floor[victim.id] = newTerm + 5
		f.startMgr(victim.id, f.prio[victim.id], floor[victim.id])
		time.Sleep(2 * DefaultTakeoverAfter) // its window and then some
		o, tm, _ := f.waitAgreed(10 * time.Second)
		if o != want || tm != newTerm {
			t.Fatalf("kill %d: after the revival %d term %d, want %d term %d", k, o, tm, want, newTerm)
		}
		drain(f.changes)
		owner, term = want, newTerm
	}
	t.Logf("takeover from the last heartbeat: %s", summary(fromHeard))
	t.Logf("takeover from the kill: %s", summary(fromKill))
	f.close()
	f.mgrs = nil
	f.engines = nil
	checkGoroutines(t, before)
}

// waitMesh waits until every live manager has heard every other one
// within the last 300 ms.
func (f *farm) waitMesh(limit time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok := true
		for _, m := range f.live() {
			heard := map[rmtp.NodeID]bool{}
			for _, p := range m.ep.Stats().Peers {
				if p.Role == rmtp.Manager && p.State == rmtp.PeerAlive && time.Since(p.LastHeard) < 300*time.Millisecond {
					heard[p.Node] = true
				}
			}
			for _, o := range f.live() {
				ok = ok && (o == m || heard[o.id])
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatal("managers do not hear each other")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func drain(ch chan nodeChange) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min %v p50 %v p90 %v max %v", len(s), s[0].Round(time.Millisecond), q(0.5), q(0.9), s[len(s)-1].Round(time.Millisecond))
}

// A partition isolates the active manager: the other side takes over with
// a higher term while the isolated one stays active in its old term. When
// the partition heals, the old one hears the higher term, steps down (its
// Elector reports it) and one term remains. Then the active manager shuts
// down gracefully: its goodbye lets the next one take over without waiting
// for TakeoverAfter.
func TestFarmPartitionAndLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of real heartbeats")
	}
	before := runtime.NumGoroutine()
	f := newFarm(t, memnetAttach(t), []uint8{1, 1, 1}, 3)
	owner, term, _ := f.waitAgreed(10 * time.Second)
	if owner != 1 {
		t.Fatalf("first active %d, want 1", owner)
	}
	iso := f.mgrs[1]
	iso.gate.cut.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for f.mgrs[2].el.Role() != Active {
		if time.Now().After(deadline) {
			t.Fatal("no takeover on the majority side")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !iso.ep.Active() || iso.el.Role() != Active {
		t.Fatal("the isolated manager should still think it is active")
	}
	drain(f.changes)
	iso.gate.cut.Store(false)
	o, tm, _ := f.waitAgreed(10 * time.Second)
	if o != 2 || tm != term+1 {
		t.Fatalf("after healing %d term %d, want 2 term %d", o, tm, term+1)
	}
	// It steps down on the VIEW of the higher term (rmtp), or, when an
	// SE's HELLO carrying that term arrives first, on the term (fenced),
	// and then follows manager 2.
	var stepped, follows bool
	for !follows {
		select {
		case c := <-f.changes:
			if c.id != iso.id {
				continue
			}
			if !stepped && c.Role == Backup && (c.Cause == CauseSteppedDown || c.Cause == CauseFenced) && c.Term == term+1 {
				stepped = true
			}
			follows = c.Role == Backup && c.Owner == 2 && c.Term == term+1
		case <-time.After(10 * time.Second):
			t.Fatalf("the healed manager does not follow manager 2: %+v", iso.el.Status())
		}
	}
	if !stepped {
		t.Errorf("the healed manager followed manager 2 without reporting its step-down first")
	}

	// Every manager must have heard the healed one again, or the rule
	// would rightly pass it over.
	f.waitMesh(10 * time.Second)
	drain(f.changes)
	closed := time.Now()
	m := f.mgrs[2]
	m.cancel()
	<-m.done
	m.ep.Close() // a goodbye
	m.dead = true
	var won nodeChange
	for won.Role != Active {
		select {
		case won = <-f.changes:
		case <-time.After(10 * time.Second):
			t.Fatal("no takeover after the goodbye")
		}
	}
	if won.id != 1 || won.Cause != CauseTakeover || won.Term != term+2 {
		t.Fatalf("after the goodbye: %d %+v", won.id, won.Change)
	}
	t.Logf("takeover %v after a graceful close", won.At.Sub(closed).Round(time.Millisecond))
	if d := won.At.Sub(closed); d >= DefaultTakeoverAfter {
		t.Errorf("takeover after a goodbye took %v: it waited for the heartbeats to stop", d)
	}
	f.waitAgreed(10 * time.Second)
	f.close()
	f.mgrs, f.engines = nil, nil
	checkGoroutines(t, before)
}
