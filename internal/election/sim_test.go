package election

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// The simulated farm: managers with rmtp's view semantics (Activate,
// adopting a higher term, stepping down), heartbeats every Heartbeat with a
// per-node phase, a directional cut matrix for partitions and lost
// heartbeats, and a fake clock advanced in 5 ms steps. No goroutines: each
// Elector's step runs when its poll is due, so every run is reproducible.

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const simStep = 5 * time.Millisecond

type fakeClock struct{ now *time.Time }

func (c fakeClock) Now() time.Time      { return *c.now }
func (c fakeClock) Mono() time.Duration { return c.now.Sub(epoch) }

type simNode struct {
	s     *sim
	id    rmtp.NodeID
	prio  uint8
	alive bool
	since time.Time // start of this incarnation
	phase time.Duration
	el    *Elector
	saved uint64 // last term SaveTerm persisted

	// rmtp-like state
	active      bool
	viewTerm    uint64
	owner       rmtp.NodeID
	heard       map[rmtp.NodeID]time.Time
	terms       map[rmtp.NodeID]uint64 // from heartbeats: the term each peer holds
	gone        map[rmtp.NodeID]bool
	activateErr error
	saveErr     error

	changes []Change
}

func (n *simNode) Observe() Observation {
	o := Observation{Self: Candidate{ID: n.id, Priority: n.prio}, ViewTerm: n.viewTerm, Owner: n.owner, Active: n.active}
	for _, p := range n.s.order {
		if p.id == n.id {
			continue
		}
		at, ok := n.heard[p.id]
		if !ok {
			continue
		}
		c := Candidate{ID: p.id, Priority: p.prio, Term: n.terms[p.id], LastHeard: at, Gone: n.gone[p.id]}
		if p.id == n.owner {
			c.Active = true
		}
		o.Managers = append(o.Managers, c)
	}
	return o
}

func (n *simNode) Activate(term uint64) error {
	if n.activateErr != nil {
		return n.activateErr
	}
	if term <= n.viewTerm && n.owner != n.id {
		return fmt.Errorf("term %d not above %d", term, n.viewTerm)
	}
	n.active, n.viewTerm, n.owner = true, term, n.id
	n.s.activations++
	n.s.announce(n) // rmtp announces the view at once
	return nil
}

// onView is rmtp's Endpoint.onView.
func (n *simNode) onView(from rmtp.NodeID, term uint64) {
	switch {
	case term < n.viewTerm:
		return
	case term == n.viewTerm && n.owner != 0 && from != n.owner && from > n.owner:
		return
	}
	if n.active && from != n.id {
		n.active = false
	}
	n.viewTerm, n.owner = term, from
}

type sim struct {
	t           *testing.T
	now         time.Time
	cfg         Config
	nodes       map[rmtp.NodeID]*simNode
	order       []*simNode
	cut         map[[2]rmtp.NodeID]bool // {from, to}: to does not hear from
	activations int
}

func newSim(t *testing.T) *sim {
	s := &sim{t: t, now: epoch, nodes: map[rmtp.NodeID]*simNode{}, cut: map[[2]rmtp.NodeID]bool{}}
	s.cfg = Config{Clock: fakeClock{&s.now}}
	return s
}

// start starts (or restarts) a manager with a fresh Elector.
func (s *sim) start(id rmtp.NodeID, prio uint8, floor uint64) *simNode {
	s.t.Helper()
	n := &simNode{s: s, id: id, prio: prio, alive: true, since: s.now, heard: map[rmtp.NodeID]time.Time{},
		terms: map[rmtp.NodeID]uint64{}, gone: map[rmtp.NodeID]bool{}, phase: time.Duration(id) * 35 * time.Millisecond % DefaultHeartbeat}
	if old := s.nodes[id]; old != nil {
		*old = *n // keep the slice order
		n = old
	} else {
		s.nodes[id] = n
		s.order = append(s.order, n)
	}
	cfg := s.cfg
	cfg.TermFloor = floor
	cfg.SaveTerm = func(term uint64) error {
		if n.saveErr != nil {
			return n.saveErr
		}
		n.saved = term
		return nil
	}
	cfg.OnChange = func(c Change) { n.changes = append(n.changes, c) }
	el, err := New(n, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	n.el = el
	s.heartbeat(n)
	el.begin(s.now)
	return n
}

func (s *sim) kill(id rmtp.NodeID) { s.nodes[id].alive = false }

// leave is a graceful Close: a goodbye, then silence.
func (s *sim) leave(id rmtp.NodeID) {
	s.nodes[id].alive = false
	for _, r := range s.order {
		if r.alive && !s.cut[[2]rmtp.NodeID{id, r.id}] {
			r.gone[id] = true
		}
	}
}

func (s *sim) partition(a, b []rmtp.NodeID, cut bool) {
	for _, x := range a {
		for _, y := range b {
			s.cut[[2]rmtp.NodeID{x, y}] = cut
			s.cut[[2]rmtp.NodeID{y, x}] = cut
		}
	}
}

func (s *sim) heartbeat(n *simNode) {
	for _, r := range s.order {
		if r == n || !r.alive || s.cut[[2]rmtp.NodeID{n.id, r.id}] {
			continue
		}
		r.heard[n.id] = s.now
		r.terms[n.id] = n.viewTerm
		delete(r.gone, n.id)
	}
	if n.active {
		s.announce(n)
	}
}

func (s *sim) announce(n *simNode) {
	for _, r := range s.order {
		if r != n && r.alive && !s.cut[[2]rmtp.NodeID{n.id, r.id}] {
			r.onView(n.id, n.viewTerm)
		}
	}
}

// run advances the clock by d. beat, if set, decides whether a node's
// heartbeat goes out (flapping); nil sends every one.
func (s *sim) run(d time.Duration, beat func(n *simNode) bool) {
	end := s.now.Add(d)
	for s.now.Before(end) {
		s.now = s.now.Add(simStep)
		for _, n := range s.order {
			if !n.alive {
				continue
			}
			age := s.now.Sub(n.since)
			if (age+n.phase)%DefaultHeartbeat == 0 && (beat == nil || beat(n)) {
				s.heartbeat(n)
			}
			if age%n.el.cfg.Poll == 0 {
				n.el.step(s.now)
			}
		}
	}
}

// actives lists the live managers that own the view.
func (s *sim) actives() []rmtp.NodeID {
	var ids []rmtp.NodeID
	for _, n := range s.order {
		if n.alive && n.active {
			ids = append(ids, n.id)
		}
	}
	return ids
}

// settled checks one active manager, its Elector agreeing, and every live
// manager following it in the same term.
func (s *sim) settled(want rmtp.NodeID) uint64 {
	s.t.Helper()
	if a := s.actives(); len(a) != 1 || a[0] != want {
		s.t.Fatalf("actives %v, want [%d]", a, want)
	}
	term := s.nodes[want].viewTerm
	for _, n := range s.order {
		if !n.alive {
			continue
		}
		st := n.el.Status()
		wantRole := Backup
		if n.id == want {
			wantRole = Active
		}
		if st.Role != wantRole || n.el.Role() != wantRole || st.Owner != want || st.Term != term {
			s.t.Fatalf("node %d: elector %v owner %d term %d, want %v owner %d term %d", n.id, st.Role, st.Owner, st.Term, wantRole, want, term)
		}
	}
	return term
}

func roles(cs []Change) string {
	var out string
	for _, c := range cs {
		out += fmt.Sprintf("[%v %v t%d o%d] ", c.Role, c.Cause, c.Term, c.Owner)
	}
	return out
}

var errDisk = errors.New("disk full")
