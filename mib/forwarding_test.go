package mib_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// hierarchyIDs are smDirectoryHierarchy's objects in OID order.
var hierarchyIDs = []mib.ID{mib.SmDirectoryForwardPolicy, mib.SmDirectoryForwardActive,
	mib.SmDirectoryForwardPending, mib.SmDirectoryForwardOps, mib.SmDirectoryForwardBytes,
	mib.SmDirectoryForwardRetries, mib.SmDirectoryForwardOverflows, mib.SmDirectoryForwardResyncs,
	mib.SmDirectoryLookups, mib.SmDirectoryLookupFailures,
	mib.SmDirectoryDigestSize, mib.SmDirectoryDigestKeys, mib.SmDirectoryDigestFill, mib.SmDirectoryDigestFpRate,
	mib.SmDirectoryDigestBytesSent, mib.SmDirectoryDigestFalseHits}

func TestForwarding(t *testing.T) {
	tree := agent.NewTree()
	var reads atomic.Int64
	s := mib.ForwardingStats{Policy: mib.ForwardDigest, Active: true, Pending: 7, Ops: 1 << 40, Bytes: 5,
		Retries: 6, Overflows: 8, Resyncs: 9, Lookups: 10, LookupFailures: 3,
		DigestSize: 1 << 33, DigestKeys: 1000, DigestFill: 0.4823, DigestFPRate: 0.00612, DigestBytes: 1 << 35, DigestFalseHits: 11}
	if err := mib.RegisterForwarding(tree, mib.ForwardingConfig{Stats: func() mib.ForwardingStats {
		reads.Add(1)
		return s
	}}); err != nil {
		t.Fatal(err)
	}
	names := make([]smi.OID, len(hierarchyIDs))
	for i, id := range hierarchyIDs {
		names[i] = inst(id)
	}
	want := []smi.Value{smi.Integer(5), smi.Integer(1), smi.Gauge32(7), smi.Counter64(1 << 40), smi.Counter64(5),
		smi.Counter64(6), smi.Counter64(8), smi.Counter64(9), smi.Counter64(10), smi.Counter64(3),
		smi.Gauge32(1<<32 - 1), smi.Gauge32(1000), smi.Gauge32(482300), smi.Gauge32(6120), smi.Counter64(1 << 35), smi.Counter64(11)}
	got := get(t, tree, names...)
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("%s = %s, want %s %s", hierarchyIDs[i], got[i], want[i].Type, want[i])
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("one GET of %d objects read the stats %d times", len(names), n)
	}

	// A backup without a parent: false(2), noParent(4); a queue beyond
	// Gauge32 latches at its maximum instead of wrapping.
	s = mib.ForwardingStats{Policy: mib.ForwardNoParent, Pending: 1<<32 + 5, Lookups: 4}
	got = get(t, tree, inst(mib.SmDirectoryForwardPolicy), inst(mib.SmDirectoryForwardActive),
		inst(mib.SmDirectoryForwardPending), inst(mib.SmDirectoryLookups))
	want = []smi.Value{smi.Integer(4), smi.Integer(2), smi.Gauge32(1<<32 - 1), smi.Counter64(4)}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("no parent: varbind %d = %s, want %s %s", i, got[i], want[i].Type, want[i])
		}
	}

	// The walk: strictly increasing (walk checks), every object once, in
	// order, typed as the MIB says, from one read per GETNEXT.
	reads.Store(0)
	vbs := walk(t, tree, mib.SmDirectoryHierarchy.OID(), 50)
	if len(vbs) != len(hierarchyIDs) {
		t.Fatalf("walk: %d varbinds, want %d", len(vbs), len(hierarchyIDs))
	}
	for i, vb := range vbs {
		o := hierarchyIDs[i].Object()
		if !vb.Name.Equal(inst(hierarchyIDs[i])) {
			t.Errorf("walk step %d: %s, want %s.0", i, vb.Name, o.Name)
		}
		if vb.Value.Type != o.Syntax.Type {
			t.Errorf("walk: %s is %s, MIB says %s", o.Name, vb.Value.Type, o.Syntax.Type)
		}
	}
	if n := reads.Load(); n != int64(len(hierarchyIDs)) {
		t.Errorf("walk of %d objects read the stats %d times", len(hierarchyIDs), n)
	}

	// GETNEXT from the object before the group lands on its first object,
	// and past the last one leaves it.
	next, err := tree.GetNext(context.Background(), []smi.Range{
		{Start: mib.SmDirectoryHierarchy.OID()},
		{Start: inst(mib.SmDirectoryDigestFalseHits)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !next[0].Name.Equal(inst(mib.SmDirectoryForwardPolicy)) || next[1].Value.Type != smi.TypeEndOfMibView {
		t.Errorf("GETNEXT at the group's edges = %v", next)
	}

	odd := get(t, tree, mib.SmDirectoryForwardOps.OID().Append(1), mib.SmDirectoryHierarchy.OID().Append(17, 0))
	if odd[0].Type != smi.TypeNoSuchInstance || odd[1].Type != smi.TypeNoSuchObject {
		t.Errorf("GET of non-instances = %v", odd)
	}
}

// TestForwardingBadPolicy: a policy the MIB does not define fails the
// request with genErr rather than answering a number an NMS cannot read.
func TestForwardingBadPolicy(t *testing.T) {
	tree := agent.NewTree()
	if err := mib.RegisterForwarding(tree, mib.ForwardingConfig{Stats: func() mib.ForwardingStats {
		return mib.ForwardingStats{Ops: 1} // Policy left zero
	}}); err != nil {
		t.Fatal(err)
	}
	_, err := tree.Get(context.Background(), []smi.OID{inst(mib.SmDirectoryForwardOps)})
	var re *smi.Error
	if !errors.As(err, &re) || re.Status != smi.GenErr || !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("GET with policy 0 = %v, want genErr wrapping ErrInvalid", err)
	}
	_, err = tree.GetNext(context.Background(), []smi.Range{{Start: mib.SmDirectoryHierarchy.OID()}})
	if !errors.As(err, &re) || re.Status != smi.GenErr {
		t.Errorf("GETNEXT with policy 0 = %v, want genErr", err)
	}
}

func TestRegisterForwardingFails(t *testing.T) {
	tree := agent.NewTree()
	if err := mib.RegisterForwarding(tree, mib.ForwardingConfig{}); !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("RegisterForwarding without stats = %v, want ErrInvalid", err)
	}
	if roots := tree.Roots(); len(roots) != 0 {
		t.Errorf("a failed registration left %v", roots)
	}
	stats := func() mib.ForwardingStats { return mib.ForwardingStats{Policy: mib.ForwardFull} }
	if err := mib.RegisterForwarding(tree, mib.ForwardingConfig{Stats: stats}); err != nil {
		t.Fatal(err)
	}
	if err := mib.RegisterForwarding(tree, mib.ForwardingConfig{Stats: stats}); err == nil {
		t.Error("a second registration of smDirectoryHierarchy succeeded")
	}
	if roots := tree.Roots(); len(roots) != 1 || !roots[0].Equal(mib.SmDirectoryHierarchy.OID()) {
		t.Errorf("roots after a refused second registration: %v", roots)
	}
}

// TestForwardPolicyMatchesMIB keeps the Go enumeration and the MIB's
// labels equal.
func TestForwardPolicyMatchesMIB(t *testing.T) {
	enum := mib.SmDirectoryForwardPolicy.Object().Syntax.Enum
	if len(enum) != 5 {
		t.Fatalf("smDirectoryForwardPolicy has %d labels in the table", len(enum))
	}
	for _, e := range enum {
		p := mib.ForwardPolicy(e.Value)
		if !p.Valid() || p.String() != e.Label {
			t.Errorf("smDirectoryForwardPolicy %s(%d): ForwardPolicy(%d) is %q, valid=%v", e.Label, e.Value, e.Value, p, p.Valid())
		}
	}
	if mib.ForwardPolicy(0).Valid() || mib.ForwardPolicy(6).Valid() {
		t.Error("policies outside the MIB's enumeration are valid")
	}
}
