package election

import (
	"slices"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// lastChange is a node's last reported change.
func lastChange(t *testing.T, n *simNode) Change {
	t.Helper()
	if len(n.changes) == 0 {
		t.Fatalf("node %d reported no change", n.id)
	}
	return n.changes[len(n.changes)-1]
}

// changeAt is the first change of n with role r and cause c.
func changeAt(n *simNode, r Role, c Cause) (Change, bool) {
	for _, ch := range n.changes {
		if ch.Role == r && ch.Cause == c {
			return ch, true
		}
	}
	return Change{}, false
}

// The SM and the BSM lose each other but not the SEs: the BSM takes over
// with term 2, the SEs follow it and say so in their heartbeats, and the
// old SM steps down within one SE heartbeat and a poll (it stopped
// announcing its view: the transport is no longer active). It then stays
// a backup, with no back-and-forth, while the BSM keeps the farm; when
// the partition heals it follows the BSM.
func TestFencedManagerStepsDown(t *testing.T) {
	// With requests, the first staleTerm reply usually comes before the
	// SEs' next heartbeat says which term they obey.
	t.Run("heartbeats", func(t *testing.T) { fencedStepsDown(t, false) })
	t.Run("heartbeats and requests", func(t *testing.T) { fencedStepsDown(t, true) })
}

func fencedStepsDown(t *testing.T, requests bool) {
	s := newSim(t)
	s.requests = requests
	s.addEngines(3)
	sm := s.start(1, 9, 0)
	bsm := s.start(2, 1, 0)
	s.run(2*time.Second, nil)
	old := s.settled(1)
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{2}, true)
	s.run(3*time.Second, nil)
	if a := s.actives(); !slices.Equal(a, []rmtp.NodeID{2}) {
		t.Fatalf("actives %v during the managers' partition, want only the BSM [2]", a)
	}
	took, ok := changeAt(bsm, Active, CauseTakeover)
	if !ok || took.Term != old+1 {
		t.Fatalf("BSM: %s", roles(bsm.changes))
	}
	c := lastChange(t, sm)
	if c.Role != Backup || c.Cause != CauseFenced || c.Term != old+1 || c.Owner != 0 || sm.el.Role() != Backup {
		t.Fatalf("old SM: %s, want its last change [backup fenced t%d o0]", roles(sm.changes), old+1)
	}
	fenced, _ := changeAt(sm, Backup, CauseFenced)
	if d := fenced.At.Sub(took.At); d < 0 || d > DefaultHeartbeat+sm.el.cfg.Poll+simStep {
		t.Errorf("old SM stepped down %v after the takeover, want within an SE heartbeat and a poll", d)
	}
	n, acts := len(sm.changes), s.activations
	s.run(10*time.Second, nil)
	if s.activations != acts || len(sm.changes) != n || !slices.Equal(s.actives(), []rmtp.NodeID{2}) {
		t.Fatalf("no longer stable: %d activations (was %d), old SM %s, actives %v", s.activations, acts, roles(sm.changes), s.actives())
	}
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{2}, false)
	s.run(2*time.Second, nil)
	if term := s.settled(2); term != old+1 {
		t.Errorf("after healing term %d, want %d", term, old+1)
	}
	if c := lastChange(t, sm); c.Cause != CauseActiveHeard || c.Owner != 2 {
		t.Errorf("old SM after healing: %s", roles(sm.changes))
	}
}

// The BSM that fenced the old SM off dies while the managers are still
// apart: the SEs declare it down, their heartbeats say 0, and the old SM
// takes the farm back above every term heard, about one rmtp DownAfter
// after the death.
func TestFencedManagerTakesOverWhenTheOtherDies(t *testing.T) {
	s := newSim(t)
	s.addEngines(3)
	sm := s.start(1, 9, 0)
	s.start(2, 1, 0)
	s.run(2*time.Second, nil)
	s.settled(1)
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{2}, true)
	s.run(3*time.Second, nil)
	if c := lastChange(t, sm); c.Cause != CauseFenced {
		t.Fatalf("old SM not fenced: %s", roles(sm.changes))
	}
	killed := s.now
	s.kill(2)
	s.run(3*time.Second, nil)
	if term := s.settled(1); term != 3 {
		t.Errorf("term %d after the second manager died, want 3", term)
	}
	for _, e := range s.engines {
		if e.viewTerm != 3 || e.owner != 1 {
			t.Errorf("engine %d follows %d term %d, want 1 term 3", e.id, e.owner, e.viewTerm)
		}
	}
	c := lastChange(t, sm)
	if d := c.At.Sub(killed); d < simDownAfter || d > simDownAfter+DefaultHeartbeat+sm.el.cfg.Poll+simStep {
		t.Errorf("took the farm back %v after the death, want about the SEs' DownAfter (%v)", d, simDownAfter)
	}
}

// A manager that starts where it cannot hear the active one, but reaches
// its SEs, never activates: the SEs obey a term it has no VIEW of. When
// it hears the active manager it follows it.
func TestStartBesideUnseenActive(t *testing.T) {
	s := newSim(t)
	s.addEngines(2)
	s.start(1, 0, 0)
	s.run(2*time.Second, nil)
	term := s.settled(1)
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{3}, true)
	n := s.start(3, 255, 0)
	s.run(5*time.Second, nil)
	if s.activations != 1 || !slices.Equal(s.actives(), []rmtp.NodeID{1}) {
		t.Fatalf("%d activations, actives %v: the newcomer took a farm it cannot see the manager of (%s)", s.activations, s.actives(), roles(n.changes))
	}
	if c := lastChange(t, n); c.Role != Backup || c.Cause != CauseUnseenActive || c.Term != term || len(n.changes) != 1 {
		t.Errorf("newcomer: %s, want one change [backup unseen-active t%d o0]", roles(n.changes), term)
	}
	s.partition([]rmtp.NodeID{1}, []rmtp.NodeID{3}, false)
	s.run(time.Second, nil)
	s.settled(1)
}

// Three managers, the SM and one backup on one side, the other backup
// alone: the lone one takes over, the SM is fenced off and steps down,
// and the backup beside it does not follow it (the SEs obey the higher
// term) nor activate. Nothing moves after that.
func TestFencedWithABackupBesideIt(t *testing.T) {
	s := newSim(t)
	s.addEngines(3)
	s.start(1, 9, 0)
	s.start(2, 5, 0)
	side := s.start(3, 1, 0)
	s.run(2*time.Second, nil)
	s.settled(1)
	s.partition([]rmtp.NodeID{1, 3}, []rmtp.NodeID{2}, true)
	s.run(3*time.Second, nil)
	if a := s.actives(); !slices.Equal(a, []rmtp.NodeID{2}) {
		t.Fatalf("actives %v, want [2]", a)
	}
	if c := lastChange(t, side); c.Role != Backup || c.Owner != 0 || c.Term != 2 {
		t.Errorf("backup beside the fenced SM: %s, want [backup unseen-active t2 o0]", roles(side.changes))
	}
	acts := s.activations
	s.run(10*time.Second, nil)
	if s.activations != acts {
		t.Errorf("%d activations while nothing changed", s.activations-acts)
	}
}

// The staleTerm replies alone (the SEs' heartbeats carry no term here)
// step an active manager down. A manager that started without its saved
// term activated below the SEs' term, the SEs ignore its view and refuse
// its requests: the first refusal steps it down, nothing says another
// manager is active, and it activates again above the SEs' term, which
// they adopt.
func TestStaleTermRepliesStepDown(t *testing.T) {
	s := newSim(t)
	s.echo = false
	s.requests = true
	s.addEngines(3)
	for _, e := range s.engines {
		e.viewTerm, e.owner = 5, 99 // a term-5 manager, long gone
	}
	n := s.start(1, 0, 0)
	s.run(3*time.Second, nil)
	if term := s.settled(1); term != 6 {
		t.Fatalf("term %d, want 6 (above the SEs' 5): %s", term, roles(n.changes))
	}
	for _, e := range s.engines {
		if e.viewTerm != 6 || e.owner != 1 {
			t.Errorf("engine %d follows %d term %d, want 1 term 6", e.id, e.owner, e.viewTerm)
		}
	}
	fenced, ok := changeAt(n, Backup, CauseFenced)
	if !ok || fenced.Term != 5 {
		t.Fatalf("no step-down on the staleTerm replies: %s", roles(n.changes))
	}
	first, _ := changeAt(n, Active, CauseElected)
	if d := fenced.At.Sub(first.At); d > 100*time.Millisecond+n.el.cfg.Poll+simStep {
		t.Errorf("stepped down %v after activating, want within a request interval and a poll", d)
	}
}

// A takeover with SEs present is as fast as without: the SEs still obey
// the dead manager's term, which the backup follows, so nothing holds it
// back.
func TestTakeoverWithEngines(t *testing.T) {
	s := newSim(t)
	s.addEngines(3)
	s.start(1, 0, 0)
	b := s.start(2, 0, 0)
	s.run(2*time.Second, nil)
	old := s.settled(1)
	s.kill(1)
	s.run(3*time.Second, nil)
	if term := s.settled(2); term != old+1 {
		t.Errorf("term %d after %d", term, old)
	}
	c := lastChange(t, b)
	if c.Cause != CauseTakeover {
		t.Fatalf("%s", roles(b.changes))
	}
	if took, hi := c.At.Sub(c.PreviousHeard), b.el.cfg.TakeoverAfter+b.el.cfg.Poll; took < b.el.cfg.TakeoverAfter || took > hi {
		t.Errorf("took over %v after the last heartbeat, want in [%v, %v]", took, b.el.cfg.TakeoverAfter, hi)
	}
	if s.activations != 2 {
		t.Errorf("%d activations", s.activations)
	}
}
