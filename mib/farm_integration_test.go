package mib_test

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// memFarm is a manager and engines running the real transport and fan-out
// over rmtp's in-memory network, each engine serving RegisterSE and
// RegisterSystem: the MIB's manager-side objects against the real
// Coordinator.
type memFarm struct {
	tree  *agent.Tree
	mgr   *rmtp.Endpoint
	coord *fanout.Coordinator
	ses   []*mib.SE
	reqs  []*atomic.Uint64
}

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}

func memRMTP(id rmtp.NodeID, role rmtp.Role) rmtp.Config {
	return rmtp.Config{Node: id, Role: role, Insecure: true, HelloInterval: 20 * time.Millisecond,
		SuspectAfter: 5, DownAfter: 25, Logger: quietLogger()}
}

func newMemFarm(t *testing.T, maxWeights ...uint32) *memFarm {
	t.Helper()
	net := memnet.New(1472)
	f := &memFarm{tree: agent.NewTree()}
	var err error
	f.mgr, err = rmtp.New(net.Attach(true, memnet.Faults{}, 1), memRMTP(1000, rmtp.Manager))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.mgr.Close() })
	if err := f.mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	f.coord, err = fanout.NewCoordinator(f.mgr, fanout.CoordinatorConfig{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.coord.Close() })
	if _, err := mib.RegisterManager(f.tree, mib.ManagerConfig{Farm: f.coord, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	for i, max := range maxWeights {
		id := rmtp.NodeID(i + 1)
		seTree := agent.NewTree()
		if _, err := mib.RegisterSystem(seTree, mib.SystemConfig{Name: fmt.Sprintf("se%d", id)}); err != nil {
			t.Fatal(err)
		}
		reqs := new(atomic.Uint64)
		reqs.Store(uint64(1000 * id))
		se, err := mib.RegisterSE(seTree, mib.SEConfig{MaxWeight: max, Requests: reqs.Load, Host: &fakeHost{}})
		if err != nil {
			t.Fatal(err)
		}
		f.ses, f.reqs = append(f.ses, se), append(f.reqs, reqs)
		ep, err := rmtp.New(net.Attach(false, memnet.Faults{}, uint64(id)), memRMTP(id, rmtp.Engine))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := fanout.NewResponder(ep, fanout.ResponderConfig{Tree: seTree, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Close(); ep.Close() })
	}
	// Wait (bounded) until the view holds every engine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, m := range f.mgr.View().Members {
			if m.Role == rmtp.Engine {
				n++
			}
		}
		if n == len(maxWeights) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d engines in the view after 10 s", n, len(maxWeights))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMemFarm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a farm on the in-memory network")
	}
	f := newMemFarm(t, 1000, 5, 1000)
	all := func(o smi.OID) smi.OID { return allRoot.Append(o...) }

	// SET smAllEngines.<smSeWeight.0> = 4: every engine, by one SET.
	if err := set(f.tree, setVB(all(seWeight), smi.Gauge32(4))); err != nil {
		t.Fatal(err)
	}
	got := get(t, f.tree, agg(mib.FuncSum, seWeight), agg(mib.FuncCount, seWeight), proxy(2, seWeight),
		agg(mib.FuncSum, seRequests), proxy(3, oidSysName), all(seWeight))
	want := []smi.Value{smi.Gauge32(12), smi.Gauge32(3), smi.Gauge32(4), smi.Counter64(6000), smi.String("se3"), smi.Gauge32(4)}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}

	// 6 is above engine 2's max_weight: the SET fails with its error and
	// no engine changes.
	err := set(f.tree, setVB(all(seWeight), smi.Gauge32(6)))
	if st, idx := smi.StatusOf(err); st != smi.WrongValue || idx != 0 {
		t.Errorf("SET 6 with one max_weight 5 = %v (%s), want wrongValue at 0", err, st)
	}
	for i, se := range f.ses {
		if se.Weight() != 4 {
			t.Errorf("engine %d weight %d after a refused SET, want 4", i+1, se.Weight())
		}
	}

	// A proxied SET reaches one engine only.
	if err := set(f.tree, setVB(proxy(3, seWeight), smi.Gauge32(9))); err != nil {
		t.Fatal(err)
	}
	if f.ses[2].Weight() != 9 || f.ses[0].Weight() != 4 {
		t.Errorf("proxied SET: weights %d %d", f.ses[0].Weight(), f.ses[2].Weight())
	}

	// Walks: bounded and in order, through the Coordinator's snapshots.
	aggWalk := walk(t, f.tree, aggRoot, 200)
	proxyWalk := walk(t, f.tree, proxyRoot, 500)
	if len(aggWalk) == 0 || len(proxyWalk) == 0 {
		t.Fatalf("walks: %d aggregates, %d proxied", len(aggWalk), len(proxyWalk))
	}
	for _, vb := range proxyWalk {
		if !vb.Name[len(proxyRoot)+1:].HasPrefix(smi.OID{1, 3, 6, 1, 2, 1, 1}) &&
			!vb.Name[len(proxyRoot)+1:].HasPrefix(mib.SmSe.OID()) {
			t.Errorf("proxy walk lists %s, not an engine's own object", vb.Name)
		}
	}
	engines := walk(t, f.tree, mib.SmEngineTable.OID(), 200)
	rows := 0
	for _, vb := range engines {
		if vb.Name[len(mib.SmEngineEntry.OID())] == 4 { // smEngineState
			rows++
			if !vb.Value.Equal(smi.Integer(1)) {
				t.Errorf("%s = %s, want up(1)", vb.Name, vb.Value)
			}
		}
	}
	if rows != 3 {
		t.Errorf("smEngineTable has %d rows, want 3", rows)
	}

	// 128 aggregate varbinds, one transaction.
	var names []smi.OID
	for i := range 128 {
		names = append(names, agg(mib.Funcs[i%5], smi.OID{1, 3, 6, 1, 4, 1, 99, uint32(i), 0}))
	}
	names[0] = agg(mib.FuncCount, seWeight)
	before := f.coord.Counters().Transactions
	vbs := get(t, f.tree, names...)
	if n := f.coord.Counters().Transactions - before; n != 1 {
		t.Errorf("GET of 128 aggregates took %d transactions, want 1", n)
	}
	if !vbs[0].Equal(smi.Gauge32(3)) {
		t.Errorf("count among 128 varbinds = %s", vbs[0])
	}

	// Counters grow: so does the sum.
	f.reqs[0].Add(5)
	if v := get(t, f.tree, agg(mib.FuncSum, seRequests))[0]; !v.Equal(smi.Counter64(6005)) {
		t.Errorf("sum after +5 = %s", v)
	}
}
