package election

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// The simulated farm: managers with rmtp's view semantics (Activate,
// adopting a higher term, stepping down), engines that follow the views
// and tell the managers in their heartbeats which term they obey (0 once
// its owner is silent for rmtp's DownAfter), heartbeats every Heartbeat
// with a per-node phase, a directional cut matrix for partitions and lost
// heartbeats, optional requests by the active managers that the engines
// refuse below their term (the staleTerm replies, Config.ReportedTerm),
// and a fake clock advanced in 5 ms steps. No goroutines: each Elector's
// step runs when its poll is due, so every run is reproducible.

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
	engHeard    map[rmtp.NodeID]time.Time
	engTerms    map[rmtp.NodeID]uint64 // from engines' heartbeats: the term each obeys
	reported    uint64                 // highest term in a staleTerm reply to its requests
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
	for _, e := range n.s.engines {
		if at, ok := n.engHeard[e.id]; ok {
			o.Engines = append(o.Engines, Candidate{ID: e.id, Term: n.engTerms[e.id], LastHeard: at})
		}
	}
	return o
}

func (n *simNode) Deactivate() { n.active = false }

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

// simEngine is an SE as rmtp makes it: it adopts views like a manager
// (never owning one) and its heartbeat carries the term of its view while
// it hears that view's owner (rmtp's helloTerm).
type simEngine struct {
	id       rmtp.NodeID
	alive    bool
	phase    time.Duration
	viewTerm uint64
	owner    rmtp.NodeID
	heard    map[rmtp.NodeID]time.Time // managers' heartbeats
}

// simDownAfter is rmtp's default DownAfter (5 heartbeats).
const simDownAfter = 5 * DefaultHeartbeat

func (e *simEngine) onView(from rmtp.NodeID, term uint64) {
	switch {
	case term < e.viewTerm:
		return
	case term == e.viewTerm && e.owner != 0 && from != e.owner && from > e.owner:
		return
	}
	e.viewTerm, e.owner = term, from
}

func (e *simEngine) helloTerm(s *sim) uint64 {
	if !s.echo {
		return 0 // engines that say nothing: only staleTerm replies tell
	}
	if e.owner == 0 {
		return e.viewTerm
	}
	if at, ok := e.heard[e.owner]; !ok || s.now.Sub(at) >= simDownAfter {
		return 0
	}
	return e.viewTerm
}

type sim struct {
	t           *testing.T
	now         time.Time
	cfg         Config
	nodes       map[rmtp.NodeID]*simNode
	order       []*simNode
	engines     []*simEngine
	echo        bool                    // engines' heartbeats carry the term they obey
	requests    bool                    // every active manager sends a request to the engines every 100 ms
	cut         map[[2]rmtp.NodeID]bool // {from, to}: to does not hear from
	activations int
}

func newSim(t *testing.T) *sim {
	s := &sim{t: t, now: epoch, nodes: map[rmtp.NodeID]*simNode{}, cut: map[[2]rmtp.NodeID]bool{}, echo: true}
	s.cfg = Config{Clock: fakeClock{&s.now}}
	return s
}

// start starts (or restarts) a manager with a fresh Elector.
func (s *sim) start(id rmtp.NodeID, prio uint8, floor uint64) *simNode {
	s.t.Helper()
	n := &simNode{s: s, id: id, prio: prio, alive: true, since: s.now, heard: map[rmtp.NodeID]time.Time{},
		terms: map[rmtp.NodeID]uint64{}, gone: map[rmtp.NodeID]bool{}, phase: time.Duration(id) * 35 * time.Millisecond % DefaultHeartbeat,
		engHeard: map[rmtp.NodeID]time.Time{}, engTerms: map[rmtp.NodeID]uint64{}}
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
	cfg.ReportedTerm = func() uint64 { return n.reported }
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

// addEngines starts engines 101.. ; they hear every manager not cut off.
func (s *sim) addEngines(n int) {
	for i := range n {
		id := rmtp.NodeID(101 + i)
		s.engines = append(s.engines, &simEngine{id: id, alive: true, heard: map[rmtp.NodeID]time.Time{},
			phase: time.Duration(id) * 15 * time.Millisecond % DefaultHeartbeat})
	}
}

// engineHeartbeat is an engine's HELLO, heard by the managers only.
func (s *sim) engineHeartbeat(e *simEngine) {
	t := e.helloTerm(s)
	for _, r := range s.order {
		if r.alive && !s.cut[[2]rmtp.NodeID{e.id, r.id}] {
			r.engHeard[e.id] = s.now
			r.engTerms[e.id] = t
		}
	}
}

// request is one fan-out by n: each engine it reaches (both ways) that
// holds a higher term refuses it with staleTerm and that term.
func (s *sim) request(n *simNode) {
	for _, e := range s.engines {
		if e.alive && !s.cut[[2]rmtp.NodeID{n.id, e.id}] && !s.cut[[2]rmtp.NodeID{e.id, n.id}] && e.viewTerm > n.viewTerm {
			n.reported = max(n.reported, e.viewTerm)
		}
	}
}

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
	for _, e := range s.engines {
		if e.alive && !s.cut[[2]rmtp.NodeID{n.id, e.id}] {
			e.heard[n.id] = s.now
		}
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
	for _, e := range s.engines {
		if e.alive && !s.cut[[2]rmtp.NodeID{n.id, e.id}] {
			e.onView(n.id, n.viewTerm)
		}
	}
}

// run advances the clock by d. beat, if set, decides whether a node's
// heartbeat goes out (flapping); nil sends every one.
func (s *sim) run(d time.Duration, beat func(n *simNode) bool) {
	end := s.now.Add(d)
	for s.now.Before(end) {
		s.now = s.now.Add(simStep)
		for _, e := range s.engines {
			if e.alive && (s.now.Sub(epoch)+e.phase)%DefaultHeartbeat == 0 {
				s.engineHeartbeat(e)
			}
		}
		for _, n := range s.order {
			if !n.alive {
				continue
			}
			age := s.now.Sub(n.since)
			if (age+n.phase)%DefaultHeartbeat == 0 && (beat == nil || beat(n)) {
				s.heartbeat(n)
			}
			if s.requests && n.active && age%(100*time.Millisecond) == 0 {
				s.request(n)
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
