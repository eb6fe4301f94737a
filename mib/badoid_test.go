package mib_test

import (
	"context"
	"io"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// Inner OIDs with no BER encoding, so no engine can hold them: fewer than
// 2 arcs, a first arc above 2, a second of 40 or more under 0 or 1.
var unencodable = []smi.OID{{1}, {7}, {5, 1}, {3, 6, 1}, {1, 40}, {0, 99, 1}}

// A varbind whose inner OID cannot exist is an instance that does not
// exist, answered beside the others of its PDU from one fan-out of the
// real Coordinator (which would fail to encode it for every varbind); a
// SET of one is noCreation. Nothing is logged for it.
func TestUnencodableInnerOIDsAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a farm on the in-memory network")
	}
	f := newMemFarm(t, 1000, 1000)
	log, hook := test.NewNullLogger()
	log.Out = io.Discard
	tree := agent.NewTree()
	if _, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f.coord, Logger: log}); err != nil {
		t.Fatal(err)
	}
	all := func(o smi.OID) smi.OID { return allRoot.Append(o...) }
	names := []smi.OID{agg(mib.FuncCount, seWeight)}
	for _, bad := range unencodable {
		names = append(names, agg(mib.FuncSum, bad), agg(mib.FuncCount, bad), proxy(1, bad), all(bad))
	}
	names = append(names, proxy(2, seWeight), all(seWeight))
	for range 100 {
		got := get(t, tree, names...)
		if !got[0].Equal(smi.Gauge32(2)) {
			t.Fatalf("smAggregateCount beside bad varbinds = %s, want 2", got[0])
		}
		for i, v := range got[1 : len(got)-2] {
			if v.Type != smi.TypeNoSuchInstance {
				t.Fatalf("%s = %s, want noSuchInstance", names[i+1], v)
			}
		}
		if got[len(got)-2].Type != smi.TypeGauge32 || got[len(got)-1].Type != smi.TypeGauge32 {
			t.Fatalf("smEngineProxy.2 and smAllEngines of smSeWeight = %s, %s", got[len(got)-2], got[len(got)-1])
		}
	}

	for _, bad := range []smi.OID{all(smi.OID{5, 1}), proxy(1, smi.OID{1}), proxy(2, smi.OID{1, 40, 1})} {
		err := set(tree, setVB(all(seWeight), smi.Gauge32(3)), setVB(bad, smi.Gauge32(3)))
		if st, idx := smi.StatusOf(err); st != smi.NoCreation || idx != 1 {
			t.Errorf("SET of %s: %v (%s at %d), want noCreation at 1", bad, err, st, idx)
		}
	}
	for i, se := range f.ses {
		if se.Weight() == 3 {
			t.Errorf("engine %d took the value of a refused SET", i+1)
		}
	}
	if n := len(hook.AllEntries()); n != 0 {
		t.Errorf("%d log lines for bad varbinds, want none: first %q", n, hook.AllEntries()[0].Message)
	}
}

// A fan-out that fails on every request (here: more distinct OIDs than a
// transaction carries, which any manager can send) fails those requests
// and logs once, not once per request.
func TestFailingFanOutLoggedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a farm on the in-memory network")
	}
	f := newMemFarm(t, 1000)
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	tree := agent.NewTree()
	if _, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f.coord, Logger: log}); err != nil {
		t.Fatal(err)
	}
	var names []smi.OID
	for i := range uint32(1100) { // the fan-out carries at most 1,024
		names = append(names, agg(mib.FuncSum, smi.OID{1, 3, 6, 1, 4, 1, 99, i, 0}))
	}
	for range 50 {
		if _, err := tree.Get(context.Background(), names); err == nil {
			t.Fatal("a GET of 1,100 distinct aggregates answered")
		}
	}
	if n := len(hook.AllEntries()); n != 1 {
		t.Errorf("%d log lines for 50 failing requests, want 1", n)
	}
}
