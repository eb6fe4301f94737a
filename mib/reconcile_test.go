package mib_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	rwire "github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// dyingStore is an engine's Store that, on saving one value, keeps it
// and then never returns: the engine has written and persisted the SET
// and dies before it answers the COMMIT.
type dyingStore struct {
	mu         sync.Mutex
	m          map[string]string
	key, value string
	saved      chan struct{} // closed once the fatal value is persisted
	release    chan struct{} // closed at the test's end
}

func newDyingStore(key, value string) *dyingStore {
	return &dyingStore{m: map[string]string{}, key: key, value: value, saved: make(chan struct{}), release: make(chan struct{})}
}

func (s *dyingStore) Load() (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}

func (s *dyingStore) Save(key, value string) error {
	s.mu.Lock()
	s.m[key] = value
	s.mu.Unlock()
	if key == s.key && value == s.value {
		close(s.saved)
		<-s.release
	}
	return nil
}

// memManager is a manager on the in-memory network with its own farm
// state and SNMP tree.
type memManager struct {
	ep    *rmtp.Endpoint
	coord *fanout.Coordinator
	state *mib.FarmState
	tree  *agent.Tree
}

func newMemManager(t *testing.T, net *memnet.Network, id rmtp.NodeID) *memManager {
	t.Helper()
	m := &memManager{tree: agent.NewTree()}
	var err error
	if m.ep, err = rmtp.New(net.Attach(true, memnet.Faults{}, uint64(id)), memRMTP(id, rmtp.Manager)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.ep.Close() })
	if m.coord, err = fanout.NewCoordinator(m.ep, fanout.CoordinatorConfig{Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.coord.Close() })
	if m.state, err = mib.NewFarmState(mib.FarmStateConfig{Farm: m.coord, Active: m.ep.Active, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	if _, err := mib.RegisterManager(m.tree, mib.ManagerConfig{Farm: m.coord, State: m.state, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	return m
}

// memEngine starts engine id with its smSe group on store.
func memEngine(t *testing.T, net *memnet.Network, id rmtp.NodeID, store mib.Store) (*mib.SE, *memnet.Node) {
	t.Helper()
	tree := agent.NewTree()
	se, err := mib.RegisterSE(tree, mib.SEConfig{Store: store, Host: &fakeHost{}})
	if err != nil {
		t.Fatal(err)
	}
	tr := net.Attach(false, memnet.Faults{}, uint64(id)+100)
	ep, err := rmtp.New(tr, memRMTP(id, rmtp.Engine))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := fanout.NewResponder(ep, fanout.ResponderConfig{Tree: tree, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Close(); ep.Close() })
	return se, tr
}

// waitUp waits (bounded) until m's coordinator has engine id up, with a
// different incarnation than not, and in the view (what a SET asks).
func waitUp(t *testing.T, m *memManager, id fanout.NodeID, not uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		inView := false
		for _, mb := range m.ep.View().Members {
			inView = inView || (mb.Node == id && mb.Incarnation != not && !mb.Suspect)
		}
		for _, e := range m.coord.Engines() {
			if inView && e.ID == id && e.State == fanout.EngineUp && e.Incarnation != not {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("engine %d not up on manager %d after 10 s", id, m.ep.Node())
}

// TestReconcileAfterInterruptedCommit: engine 3 persists a SET's value
// and dies before it answers the COMMIT; the others undo it, and the SET
// is answered undoFailed. The active manager remembers engine 3, its row
// travels to the backup through the replica codec, the backup takes over,
// and when engine 3 comes back (holding the SET's value) the new active
// manager puts it back to its value before the SET: the farm agrees
// again, with the outcome the NMS was told.
func TestReconcileAfterInterruptedCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a farm on the in-memory network")
	}
	net := memnet.New(1472)
	sm := newMemManager(t, net, 1000)
	if err := sm.ep.Activate(1); err != nil {
		t.Fatal(err)
	}
	bsm := newMemManager(t, net, 1001)
	store3 := newDyingStore(mib.KeySeWeight, "7")
	se1, _ := memEngine(t, net, 1, nil)
	se2, _ := memEngine(t, net, 2, nil)
	_, tr3 := memEngine(t, net, 3, store3)
	for id := fanout.NodeID(1); id <= 3; id++ {
		waitUp(t, sm, id, 0)
	}
	all := func(o smi.OID) smi.OID { return allRoot.Append(o...) }
	if err := set(sm.tree, setVB(all(seWeight), smi.Gauge32(5))); err != nil {
		t.Fatal(err)
	}
	var inc3 uint64
	for _, e := range sm.coord.Engines() {
		if e.ID == 3 {
			inc3 = e.Incarnation
		}
	}

	// Engine 3 dies the moment it has persisted 7: no answer, no leave.
	go func() {
		<-store3.saved
		tr3.Close()
	}()
	err := set(sm.tree, setVB(all(seWeight), smi.Gauge32(7)))
	close(store3.release) // the dead engine's worker may end (its answer goes nowhere)
	if st, _ := smi.StatusOf(err); st != smi.UndoFailed {
		t.Fatalf("SET interrupted by engine 3's death: %v (%s), want undoFailed", err, st)
	}
	if se1.Weight() != 5 || se2.Weight() != 5 {
		t.Fatalf("engines 1 and 2 hold %d and %d after the undo, want 5", se1.Weight(), se2.Weight())
	}
	if v, _ := store3.Load(); v[mib.KeySeWeight] != "7" {
		t.Fatalf("engine 3 persisted %q", v[mib.KeySeWeight])
	}
	pending := inst(mib.SmReconcilePending)
	row := func(col uint32) smi.OID { return mib.SmReconcileEntry.OID().Append(col, 1) }
	got := get(t, sm.tree, pending, row(2), row(3), row(4))
	want := []smi.Value{smi.Gauge32(1), smi.Gauge32(3), smi.Integer(1), smi.ObjectID(seWeight)}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("active manager: varbind %d = %s, want %s", i, got[i], want[i])
		}
	}

	// The backup receives the state (through the codec, as the
	// replication carries it) and takes over.
	var st rwire.State
	sm.state.Export(&st)
	st.Node, st.Term, st.Seq = 1000, 1, 1
	b, err := rwire.Append(nil, &st)
	if err != nil {
		t.Fatal(err)
	}
	received, err := rwire.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	bsm.state.Adopt(received)
	if got := get(t, bsm.tree, pending)[0]; !got.Equal(smi.Gauge32(1)) {
		t.Fatalf("backup's smReconcilePending = %s after the state, want 1", got)
	}
	sm.coord.Close()
	sm.ep.Close()
	if err := bsm.ep.Activate(2); err != nil {
		t.Fatal(err)
	}
	bsm.state.Activated(true)

	// Engine 3 comes back, with 7 from its store.
	se3, _ := memEngine(t, net, 3, store3)
	if se3.Weight() != 7 {
		t.Fatalf("restarted engine 3 serves %d, want the 7 it persisted", se3.Weight())
	}
	waitUp(t, bsm, 3, inc3)
	bsm.state.EngineUp(3)
	deadline := time.Now().Add(10 * time.Second)
	for bsm.state.Pending() > 0 && time.Now().Before(deadline) {
		bsm.state.Reconcile(context.Background())
		time.Sleep(20 * time.Millisecond)
	}
	if se3.Weight() != 5 {
		t.Errorf("engine 3 holds %d after the reconciliation, want 5 (its value before the SET)", se3.Weight())
	}
	got = get(t, bsm.tree, pending, row(3), all(seWeight))
	want = []smi.Value{smi.Gauge32(0), smi.Integer(2), smi.Gauge32(5)}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("new active manager: varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestReconcileSuperseded: a later SET that writes the same object on the
// engine, and succeeds, leaves nothing to put back.
func TestReconcileSuperseded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a farm on the in-memory network")
	}
	net := memnet.New(1472)
	sm := newMemManager(t, net, 1000)
	if err := sm.ep.Activate(1); err != nil {
		t.Fatal(err)
	}
	store2 := newDyingStore(mib.KeySeWeight, "7")
	memEngine(t, net, 1, nil)
	_, tr2 := memEngine(t, net, 2, store2)
	waitUp(t, sm, 1, 0)
	waitUp(t, sm, 2, 0)
	var inc2 uint64
	for _, e := range sm.coord.Engines() {
		if e.ID == 2 {
			inc2 = e.Incarnation
		}
	}
	all := allRoot.Append(seWeight...)
	go func() {
		<-store2.saved
		tr2.Close() // engine 2 hangs: it stays in the view a while, silent
	}()
	err := set(sm.tree, setVB(all, smi.Gauge32(7)))
	close(store2.release) // the dead engine's worker may end (its answer goes nowhere)
	if st, _ := smi.StatusOf(err); st != smi.UndoFailed {
		t.Fatalf("SET: %v (%s), want undoFailed", err, st)
	}
	// Engine 2 is restarted in place (same id) and an NMS sets 9 on the
	// farm before the reconciliation ran: 9 is the farm's value now.
	se2, _ := memEngine(t, net, 2, nil)
	waitUp(t, sm, 2, inc2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := set(sm.tree, setVB(all, smi.Gauge32(9)))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET 9: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the old incarnation may still be in the view
	}
	sm.state.EngineUp(2)
	sm.state.Reconcile(context.Background())
	rows := sm.state.Reconciles()
	if len(rows) != 1 || rows[0].State != rwire.ReconcileSuperseded {
		t.Fatalf("rows after a later successful SET: %+v, want one superseded", rows)
	}
	if se2.Weight() != 9 {
		t.Errorf("engine 2 holds %d, want the later SET's 9", se2.Weight())
	}
}
