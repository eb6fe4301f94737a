package election

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

type mgr struct {
	id    rmtp.NodeID
	prio  uint8
	floor uint64
	at    time.Duration // start offset
}

// Elections at start: non-preemptive, highest priority then lowest id,
// with a term above the floor and every term heard.
func TestStartElection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mgrs     []mgr
		want     rmtp.NodeID
		wantTerm uint64
	}{
		{"alone", []mgr{{id: 4, floor: 41}}, 4, 42},
		{"two together, equal priority: lowest id", []mgr{{id: 2}, {id: 1}}, 1, 1},
		{"two together: highest priority", []mgr{{id: 1, prio: 1}, {id: 2, prio: 9}}, 2, 1},
		{"priority beats id", []mgr{{id: 3, prio: 5}, {id: 1, prio: 4}, {id: 2, prio: 5}}, 2, 1},
		{"floor of any node: the winner's own counts", []mgr{{id: 1, floor: 10}, {id: 2, floor: 99}}, 1, 11},
		{"staggered inside the window", []mgr{{id: 5, prio: 1}, {id: 6, prio: 2, at: 400 * time.Millisecond}}, 6, 1},
		{"late better one does not preempt", []mgr{{id: 5, prio: 1}, {id: 6, prio: 9, at: 2 * time.Second}}, 5, 1},
		{"late better one does not preempt, three", []mgr{{id: 7}, {id: 8, at: 700 * time.Millisecond}, {id: 1, prio: 200, at: 3 * time.Second}}, 7, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			ms := slices.Clone(tc.mgrs)
			slices.SortStableFunc(ms, func(a, b mgr) int { return int(a.at - b.at) })
			var elapsed time.Duration
			for _, m := range ms {
				s.run(m.at-elapsed, nil)
				elapsed = m.at
				s.start(m.id, m.prio, m.floor)
			}
			s.run(5*time.Second, nil)
			if term := s.settled(tc.want); term != tc.wantTerm {
				t.Errorf("term %d, want %d", term, tc.wantTerm)
			}
			if s.activations != 1 {
				t.Errorf("%d activations, want 1", s.activations)
			}
			if got := s.nodes[tc.want].saved; got != tc.wantTerm {
				t.Errorf("saved term %d before activating, want %d", got, tc.wantTerm)
			}
			for _, n := range s.order {
				for _, c := range n.changes {
					if c.Cause == CauseSteppedDown || c.Cause == CauseTakeover {
						t.Errorf("node %d: %v at start", n.id, roles(n.changes))
					}
				}
			}
		})
	}
}

// A manager that never heard the view of term 7 still activates above it:
// a backup's heartbeat carries the term it holds.
func TestTermAboveHeartbeats(t *testing.T) {
	s := newSim(t)
	s.start(1, 0, 6)
	stuck := s.start(2, 0, 0)
	stuck.activateErr = errors.New("refused")
	s.run(2*time.Second, nil)
	s.settled(1)
	s.kill(1)
	s.run(2*time.Second, nil)
	n := s.start(3, 9, 0)
	s.run(3*time.Second, nil)
	if a := s.actives(); !slices.Equal(a, []rmtp.NodeID{3}) || n.viewTerm != 8 {
		t.Fatalf("actives %v term %d, want [3] term 8", a, n.viewTerm)
	}
}

// A manager starting beside an active one follows it at once (inside its
// window), whatever its priority.
func TestStartWithActive(t *testing.T) {
	s := newSim(t)
	s.start(1, 0, 0)
	s.run(2*time.Second, nil)
	s.start(2, 255, 500) // a higher floor does not matter: it never activates
	s.run(2*DefaultHeartbeat, nil)
	n := s.nodes[2]
	if len(n.changes) != 1 || n.changes[0].Role != Backup || n.changes[0].Cause != CauseActiveHeard || n.changes[0].Owner != 1 {
		t.Fatalf("changes %s", roles(n.changes))
	}
	if d := n.changes[0].At.Sub(n.since); d >= DefaultHeartbeat+2*simStep {
		t.Errorf("followed after %v, want within a heartbeat (the view)", d)
	}
	s.run(5*time.Second, nil)
	s.settled(1)
}

// The active manager dies: the best live backup takes over within
// TakeoverAfter + Poll of the last heartbeat, with the next term; the
// other backup follows; exactly one activation.
func TestTakeover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mgrs  []mgr
		kill  rmtp.NodeID
		want  rmtp.NodeID
		leave bool
	}{
		{"two", []mgr{{id: 1}, {id: 2}}, 1, 2, false},
		{"three, lowest id backup", []mgr{{id: 1}, {id: 3}, {id: 2}}, 1, 2, false},
		{"three, priority backup", []mgr{{id: 1, prio: 9}, {id: 2, prio: 1}, {id: 3, prio: 5}}, 1, 3, false},
		{"graceful leave: no wait", []mgr{{id: 1}, {id: 2}}, 1, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			for _, m := range tc.mgrs {
				s.start(m.id, m.prio, m.floor)
			}
			s.run(2*time.Second, nil)
			old := s.settled(tc.kill)
			activations := s.activations
			killed := s.now
			if tc.leave {
				s.leave(tc.kill)
			} else {
				s.kill(tc.kill)
			}
			s.run(3*time.Second, nil)
			if term := s.settled(tc.want); term != old+1 {
				t.Errorf("term %d after %d", term, old)
			}
			if s.activations != activations+1 {
				t.Errorf("%d activations for one takeover", s.activations-activations)
			}
			w := s.nodes[tc.want]
			c := w.changes[len(w.changes)-1]
			if c.Cause != CauseTakeover || c.Previous != tc.kill {
				t.Fatalf("winner's last change %s", roles(w.changes))
			}
			took := c.At.Sub(c.PreviousHeard)
			if tc.leave {
				if d := c.At.Sub(killed); d > w.el.cfg.Poll+simStep {
					t.Errorf("takeover %v after a goodbye, want within a poll", d)
				}
				return
			}
			if lo, hi := w.el.cfg.TakeoverAfter, w.el.cfg.TakeoverAfter+w.el.cfg.Poll; took < lo || took > hi {
				t.Errorf("took over %v after the last heartbeat, want in [%v, %v]", took, lo, hi)
			}
		})
	}
}

// The old SM restarts: it hears the higher term inside its window and
// stays backup, even with the best priority and a high floor.
func TestRevivedStaysBackup(t *testing.T) {
	s := newSim(t)
	s.start(1, 9, 0)
	s.start(2, 1, 0)
	s.run(2*time.Second, nil)
	s.settled(1)
	s.kill(1)
	s.run(2*time.Second, nil)
	term := s.settled(2)
	n := s.start(1, 9, s.nodes[1].saved)
	s.run(5*time.Second, nil)
	if got := s.settled(2); got != term {
		t.Errorf("term moved %d -> %d", term, got)
	}
	if len(n.changes) != 1 || n.changes[0].Cause != CauseActiveHeard {
		t.Errorf("revived SM: %s", roles(n.changes))
	}
}

// A partition: both sides have an active manager; after healing, the
// higher term wins, the other reports the step-down, one term remains.
func TestSplitBrainResolves(t *testing.T) {
	s := newSim(t)
	for _, id := range []rmtp.NodeID{1, 2, 3} {
		s.start(id, 0, 0)
	}
	s.run(2*time.Second, nil)
	old := s.settled(1)
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{2, 3}, true)
	s.run(3*time.Second, nil)
	if a := s.actives(); !slices.Equal(a, []rmtp.NodeID{1, 2}) {
		t.Fatalf("during the partition actives %v, want [1 2]", a)
	}
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{2, 3}, false)
	s.run(3*time.Second, nil)
	if term := s.settled(2); term != old+1 {
		t.Errorf("term %d, want %d", term, old+1)
	}
	// The step-down comes from the VIEW of term 2 (rmtp), or, when the
	// HELLO of the backup following it arrives first, from that term
	// (fenced); either way the old active then follows node 2.
	ch := s.nodes[1].changes
	last := ch[len(ch)-1]
	if last.Owner != 2 || last.Role != Backup || last.Term != old+1 {
		t.Errorf("old active: %s", roles(ch))
	}
	if len(ch) < 2 || ch[1].Role != Backup || (ch[1].Cause != CauseSteppedDown && ch[1].Cause != CauseFenced) {
		t.Errorf("old active did not report its step-down: %s", roles(ch))
	}
	if s.activations != 2 {
		t.Errorf("%d activations, want 2", s.activations)
	}
}

// Both sides of a partition take over with the same term: rmtp keeps the
// lower id, the Elector of the other one follows.
func TestSplitBrainEqualTerms(t *testing.T) {
	s := newSim(t)
	for _, id := range []rmtp.NodeID{1, 2, 3} {
		s.start(id, 0, 0)
	}
	s.run(2*time.Second, nil)
	old := s.settled(1)
	s.partition([]rmtp.NodeID{2}, []rmtp.NodeID{3}, true)
	s.kill(1)
	s.run(3*time.Second, nil)
	if a := s.actives(); !slices.Equal(a, []rmtp.NodeID{2, 3}) {
		t.Fatalf("actives %v, want [2 3]", a)
	}
	s.partition([]rmtp.NodeID{2}, []rmtp.NodeID{3}, false)
	s.run(2*time.Second, nil)
	if term := s.settled(2); term != old+1 {
		t.Errorf("term %d", term)
	}
}

// Heartbeats that come late but inside TakeoverAfter never cause a
// takeover; one long gap causes exactly one, and the old manager steps
// down when it is heard again: no back-and-forth.
func TestFlappingHeartbeats(t *testing.T) {
	s := newSim(t)
	s.start(1, 0, 0)
	s.start(2, 0, 0)
	s.run(2*time.Second, nil)
	s.settled(1)
	// node 1 sends only every third heartbeat: 600 ms gaps
	n := 0
	s.run(10*time.Second, func(m *simNode) bool {
		if m.id != 1 {
			return true
		}
		n++
		return n%3 == 0
	})
	s.settled(1)
	if s.activations != 1 {
		t.Fatalf("%d activations with 600 ms gaps", s.activations)
	}
	// now gaps of 800 ms: one takeover, then the old one steps down
	n = 0
	s.run(10*time.Second, func(m *simNode) bool {
		if m.id != 1 {
			return true
		}
		n++
		return n%4 == 0
	})
	s.run(2*time.Second, nil)
	s.settled(2)
	if s.activations != 2 {
		t.Errorf("%d activations, want 2 (one takeover)", s.activations)
	}
	if got := roles(s.nodes[1].changes); len(s.nodes[1].changes) != 2 {
		t.Errorf("old active: %s", got)
	}
}

// A loop that ran late waits one heartbeat before declaring anyone dead:
// the transport's queued heartbeats come first.
func TestStallGrace(t *testing.T) {
	s := newSim(t)
	s.start(1, 0, 0)
	b := s.start(2, 0, 0)
	s.run(2*time.Second, nil)
	s.settled(1)
	// node 2's loop sleeps 1 s while node 1 keeps sending; the heartbeats
	// are delivered only after the sleep (its receive loop starved too).
	b.alive = false
	s.run(time.Second, nil)
	b.alive = true
	s.now = s.now.Add(simStep)
	b.el.step(s.now) // late: everything looks silent
	if b.el.Role() != Backup || s.activations != 1 {
		t.Fatalf("took over right after a stall: %s", roles(b.changes))
	}
	s.heartbeat(s.nodes[1]) // the queued heartbeat is read
	s.run(2*time.Second, nil)
	s.settled(1)
}

// Activation failures (saving the term, the transport refusing) are
// retried; a better candidate that never activates is passed over.
func TestActivationFailures(t *testing.T) {
	t.Run("save fails then works", func(t *testing.T) {
		s := newSim(t)
		n := s.start(1, 0, 7)
		n.saveErr = errDisk
		s.run(2*time.Second, nil)
		if n.el.Role() != Electing || s.activations != 0 {
			t.Fatalf("activated without saving the term: %s", roles(n.changes))
		}
		n.saveErr = nil
		s.run(time.Second, nil)
		s.settled(1)
		if n.viewTerm != 8 || n.saved != 8 {
			t.Errorf("term %d saved %d, want 8", n.viewTerm, n.saved)
		}
	})
	t.Run("best never activates", func(t *testing.T) {
		s := newSim(t)
		bad := s.start(1, 0, 0)
		bad.activateErr = errors.New("refused")
		s.start(2, 0, 0)
		s.run(5*time.Second, nil)
		s.settled(2)
		st := s.nodes[2].changes
		if c := st[len(st)-1]; c.Cause != CauseElected {
			t.Errorf("%s", roles(st))
		}
		if at := st[len(st)-1].At.Sub(epoch); at < s.nodes[2].el.cfg.Window+s.nodes[2].el.cfg.StallAfter {
			t.Errorf("passed over after %v, before the stall timeout", at)
		}
	})
}

// A caller that activated the transport itself is adopted, not fought.
func TestAdopt(t *testing.T) {
	s := newSim(t)
	n := s.start(1, 0, 0)
	if err := n.Activate(50); err != nil {
		t.Fatal(err)
	}
	s.run(time.Second, nil)
	if c := n.el.Status(); c.Role != Active || c.Cause != CauseAdopted || c.Term != 50 {
		t.Fatalf("%s", roles(n.changes))
	}
}

func TestConfig(t *testing.T) {
	m := &simNode{}
	for _, c := range []Config{
		{TakeoverAfter: 300 * time.Millisecond},
		{Window: 100 * time.Millisecond},
		{Poll: 400 * time.Millisecond},
		{StallAfter: 100 * time.Millisecond},
	} {
		if _, err := New(m, c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := New(nil, Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil membership: %v", err)
	}
	e, err := New(m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.cfg
	if c.Heartbeat != 200*time.Millisecond || c.Window != 600*time.Millisecond || c.TakeoverAfter != 700*time.Millisecond ||
		c.Poll != 50*time.Millisecond || c.StallAfter != 1300*time.Millisecond {
		t.Errorf("defaults %+v", c)
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[string]string{
		Electing.String(): "electing", Backup.String(): "backup", Active.String(): "active", Role(9).String(): "Role(9)",
		CauseTakeover.String(): "takeover", CauseAdopted.String(): "adopted", Cause(0).String(): "Cause(0)",
	} {
		if v != want {
			t.Errorf("%q, want %q", v, want)
		}
	}
}

// Run on the real clock: it elects, answers Role concurrently, refuses a
// second Run, returns on cancel and leaves no goroutine behind.
func TestRunStops(t *testing.T) {
	before := runtime.NumGoroutine()
	s := newSim(t)
	n := &simNode{s: s, id: 1, alive: true, heard: map[rmtp.NodeID]time.Time{}, gone: map[rmtp.NodeID]bool{}}
	s.nodes[1], s.order = n, []*simNode{n}
	changed := make(chan Change, 4)
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	e, err := New(n, Config{Heartbeat: 20 * time.Millisecond, OnChange: func(c Change) { changed <- c }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case c := <-changed:
		if c.Role != Active || c.Cause != CauseElected || c.Mono <= 0 {
			t.Errorf("%+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no election")
	}
	if e.Role() != Active {
		t.Error("Role disagrees with the change")
	}
	if err := e.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	checkGoroutines(t, before)
	// one line per change, with the monotonic time and the term
	var lines int
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["msg"] == "election: role change" {
			lines++
			if rec["role"] != "active" || rec["cause"] != "elected" || rec["mono_ns"].(float64) <= 0 || rec["term"].(float64) != 1 {
				t.Errorf("log line %s", l)
			}
		}
	}
	if lines != 1 {
		t.Errorf("%d role-change lines for one change:\n%s", lines, logs.String())
	}
}

func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
