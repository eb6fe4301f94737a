package mib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

func TestTransport(t *testing.T) {
	tree := agent.NewTree()
	reads := 0
	c := mib.TransportCounters{Sent: 1, Received: 2, Retransmits: 3, NaksSent: 4, NaksReceived: 5, NaksSuppressed: 6,
		Duplicates: 7, AuthFailures: 8, Aborts: 9, LateReplies: 10, DatagramsSent: 11, DatagramsReceived: 12,
		AbortsReceived: 13, Replays: 14, Dropped: 15, Malformed: 1 << 40}
	if err := mib.RegisterTransport(tree, func() mib.TransportCounters { reads++; return c }); err != nil {
		t.Fatal(err)
	}
	ids := []mib.ID{mib.SmTransportSent, mib.SmTransportReceived, mib.SmTransportRetransmits,
		mib.SmTransportNaksSent, mib.SmTransportNaksReceived, mib.SmTransportNaksSuppressed,
		mib.SmTransportDuplicates, mib.SmTransportAuthFailures, mib.SmTransportAborts, mib.SmTransportLateReplies,
		mib.SmTransportDatagramsSent, mib.SmTransportDatagramsReceived, mib.SmTransportAbortsReceived,
		mib.SmTransportReplays, mib.SmTransportDropped, mib.SmTransportMalformed}
	var names []smi.OID
	for _, id := range ids {
		names = append(names, inst(id))
	}
	got := get(t, tree, names...)
	for i, v := range got {
		want := uint64(i + 1)
		if i == 15 {
			want = 1 << 40
		}
		if !v.Equal(smi.Counter64(want)) {
			t.Errorf("%s = %s, want Counter64 %d", ids[i], v, want)
		}
	}
	if reads != 1 {
		t.Errorf("one GET of 16 counters read the endpoint %d times", reads)
	}
	vbs := walk(t, tree, mib.SmTransport.OID(), 50)
	if len(vbs) != len(ids) {
		t.Errorf("walk: %d counters, want %d", len(vbs), len(ids))
	}
	odd := get(t, tree, mib.SmTransportSent.OID().Append(1), mib.SmTransport.OID().Append(99, 0))
	if odd[0].Type != smi.TypeNoSuchInstance || odd[1].Type != smi.TypeNoSuchObject {
		t.Errorf("GET of non-instances = %v", odd)
	}
	if err := mib.RegisterTransport(agent.NewTree(), nil); !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("RegisterTransport(nil) = %v", err)
	}
}

type fakeDir struct {
	entries []mib.DirectoryEntry
	flow    mib.DirectoryFlow
}

func (d *fakeDir) Count() int              { return len(d.entries) }
func (d *fakeDir) Flow() mib.DirectoryFlow { return d.flow }
func (d *fakeDir) Entries(limit int) []mib.DirectoryEntry {
	return d.entries[:min(limit, len(d.entries))]
}

func TestDirectory(t *testing.T) {
	now := epoch
	d := &fakeDir{}
	for i := uint32(1); i <= 5; i++ {
		d.entries = append(d.entries, mib.DirectoryEntry{ID: i * 10, Key: "http://cdn.example/" + strings.Repeat("k", int(i)),
			CDN: 1, DataCenter: 2, Farm: 3, Engine: i, Version: "1.7", Stored: epoch.Add(-time.Duration(i) * time.Minute)})
	}
	d.entries[0].Key = strings.Repeat("x", 2000)
	tree := agent.NewTree()
	err := mib.RegisterDirectory(tree, mib.DirectoryConfig{Source: d, Limit: 3, TTL: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	col := func(c, id uint32) smi.OID { return mib.SmDirectoryEntry.OID().Append(c, id) }
	got := get(t, tree, inst(mib.SmDirectoryCount), inst(mib.SmDirectoryTableLimit), col(2, 20), col(6, 30),
		col(7, 30), col(8, 30), col(2, 40), col(2, 10))
	want := []smi.Value{smi.Gauge32(5), smi.Gauge32(3), smi.String("http://cdn.example/kk"), smi.Gauge32(3),
		smi.String("1.7"), smi.Gauge32(180), smi.NoSuchInstance(), smi.String(strings.Repeat("x", mib.MaxDirectoryKey))}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
	if vbs := walk(t, tree, mib.SmDirectoryTable.OID(), 100); len(vbs) != 3*7 {
		t.Errorf("walk of the capped table: %d varbinds, want 21", len(vbs))
	}
	// The flow-control counters, read live, past 2^32.
	d.flow = mib.DirectoryFlow{RefusedOps: 1 << 33, RejectedOps: 7, Episodes: 2}
	got = get(t, tree, inst(mib.SmDirectoryRefusedOps), inst(mib.SmDirectoryRejectedOps), inst(mib.SmDirectoryRefusalEpisodes),
		mib.SmDirectoryRefusedOps.OID().Append(1))
	want = []smi.Value{smi.Counter64(1 << 33), smi.Counter64(7), smi.Counter64(2), smi.NoSuchInstance()}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("flow varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
	if vbs := walk(t, tree, mib.SmDirectory.OID(), 100); len(vbs) != 1+3*7+1+3 {
		t.Errorf("walk of smDirectory: %d varbinds, want count, 21 table cells, limit and 3 flow counters", len(vbs))
	}
	for _, bad := range []int{-1, mib.MaxDirectoryRows + 1} {
		if err := mib.RegisterDirectory(agent.NewTree(), mib.DirectoryConfig{Source: d, Limit: bad}); !errors.Is(err, mib.ErrInvalid) {
			t.Errorf("limit %d: %v", bad, err)
		}
	}
}

func TestViewTerm(t *testing.T) {
	tree := agent.NewTree()
	term := uint64(1)
	err := mib.RegisterNode(tree, mib.NodeInfo{Role: func() mib.Role { return mib.RoleManager }, Level: 1, ID: 1,
		Term: func() uint64 { return term }})
	if err != nil {
		t.Fatal(err)
	}
	term = 1 << 33
	if v := get(t, tree, inst(mib.SmViewTerm))[0]; !v.Equal(smi.Counter64(1 << 33)) {
		t.Errorf("smViewTerm = %s", v)
	}
}

// TestManagerTreeWalk walks everything a manager serves over a fake farm:
// strictly increasing, bounded, every value typed as the MIB says.
func TestManagerTreeWalk(t *testing.T) {
	tree, _, _ := newFarm(t, 3)
	if err := mib.RegisterTransport(tree, func() mib.TransportCounters { return mib.TransportCounters{} }); err != nil {
		t.Fatal(err)
	}
	if err := mib.RegisterNode(tree, mib.NodeInfo{Role: func() mib.Role { return mib.RoleManager }, Level: 1, ID: 1,
		Term: func() uint64 { return 4 }}); err != nil {
		t.Fatal(err)
	}
	if err := mib.RegisterForwarding(tree, mib.ForwardingConfig{Stats: func() mib.ForwardingStats {
		return mib.ForwardingStats{Policy: mib.ForwardFull, Active: true, Ops: 1}
	}}); err != nil {
		t.Fatal(err)
	}
	vbs := walk(t, tree, mib.SmMIB.OID(), 1000)
	if len(vbs) < 50 {
		t.Fatalf("walk of smMIB: only %d varbinds", len(vbs))
	}
	for _, vb := range vbs {
		if vb.Name.HasPrefix(mib.SmAggregate.OID()) || vb.Name.HasPrefix(mib.SmEngineProxy.OID()) {
			continue // values of the engines' objects
		}
		o := objectOf(vb.Name)
		if o.Name == "" {
			t.Errorf("%s is no object of the MIB", vb.Name)
			continue
		}
		if o.Syntax.Type != vb.Value.Type || (o.Access != mib.ReadOnly && o.Access != mib.ReadWrite) {
			t.Errorf("%s (%s): %s, MIB says %s %s", vb.Name, o.Name, vb.Value.Type, o.Syntax.Type, o.Access)
		}
	}
	if _, err := tree.GetBulk(context.Background(), 0, 50, []smi.Range{{Start: mib.SmMIB.OID()}}, 0); err != nil {
		t.Error(err)
	}
}

// objectOf returns the scalar or column an instance belongs to.
func objectOf(inst smi.OID) mib.Object {
	var best mib.Object
	for _, o := range mib.Objects() {
		if (o.Kind == mib.KindScalar || o.Kind == mib.KindColumn) && inst.HasPrefix(o.OID) && len(o.OID) > len(best.OID) {
			best = o
		}
	}
	return best
}
