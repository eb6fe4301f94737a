package mib_test

import (
	"context"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// walkAll walks root by single GetNexts, as snmpd does for a subagent, and
// returns the number of varbinds.
func walkAll(b *testing.B, tree *agent.Tree, root smi.OID) int {
	r := smi.Range{Start: root, End: root.SubtreeEnd()}
	n := 0
	for {
		vbs, err := tree.GetNext(context.Background(), []smi.Range{r})
		if err != nil {
			b.Fatal(err)
		}
		if vbs[0].Value.Type == smi.TypeEndOfMibView {
			return n
		}
		n++
		r.Start = vbs[0].Name
	}
}

// BenchmarkEngineTableWalk walks smEngineTable of 256 engines and reports
// its cost per varbind against a plain in-memory agent.Table of the same
// shape walked in the same run (ratio = engine table / plain table).
func BenchmarkEngineTableWalk(b *testing.B) {
	f := newFakeFarm(time.Now)
	plain := agent.NewTable(mib.SmEngineEntry.OID(), 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	for i := 1; i <= 256; i++ {
		e := f.add(fanout.NodeID(i))
		e.row.Info, e.row.HasInfo = wire.EngineInfo{Load: 1, Requests: 2, BytesOut: 3, ContentCount: 4}, true
		cols := agent.Columns{}
		for c := uint32(2); c <= 11; c++ {
			cols[c] = smi.Gauge32(c)
		}
		plain.SetRow(smi.OID{uint32(i)}, cols)
	}
	tree := agent.NewTree()
	if _, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f}); err != nil {
		b.Fatal(err)
	}
	base := agent.NewTree()
	if err := base.RegisterTable(plain); err != nil {
		b.Fatal(err)
	}
	root := mib.SmEngineTable.OID()
	var baseNs, ns float64
	varbinds := 0
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		walkAll(b, base, root)
		t1 := time.Now()
		varbinds = walkAll(b, tree, root)
		t2 := time.Now()
		baseNs += float64(t1.Sub(t0).Nanoseconds())
		ns += float64(t2.Sub(t1).Nanoseconds())
	}
	b.ReportMetric(float64(varbinds), "varbinds/walk")
	b.ReportMetric(ns/float64(b.N)/float64(varbinds), "ns/varbind")
	b.ReportMetric(ns/baseNs, "ratio-vs-plain-table")
}
