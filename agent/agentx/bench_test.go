package agentx_test

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// Benchmarks through a real snmpd, each against snmpd's own objects in the
// same run (go test -run X -bench . ./agent/agentx/):
//
//	BenchmarkGetLatency   GET p50/p99 of a subagent OID vs native sysUpTime.0,
//	                      and the subagent's CPU per request
//	BenchmarkBulkwalk     µs per varbind, 3,000-varbind subagent table vs a
//	                      native walk, same max-repetitions

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func BenchmarkGetLatency(b *testing.B) {
	b.Run("tcp", func(b *testing.B) { benchGetLatency(b, false) })
	b.Run("unix", func(b *testing.B) { benchGetLatency(b, true) })
}

func benchGetLatency(b *testing.B, unix bool) {
	r := startRig(b, rigOptions{snmpd: snmpdtest.Options{Unix: unix}})
	g := r.client(b, "public")
	sub := []string{dotted(agenttest.ScalarInt.Append(0))}
	native := []string{".1.3.6.1.2.1.1.3.0"}
	get := func(oids []string) time.Duration {
		t0 := time.Now()
		res, err := g.Get(oids)
		if err != nil || res.Error != gosnmp.NoError || res.Variables[0].Type == gosnmp.NoSuchObject {
			b.Fatalf("GET %v: %v %v", oids, err, res)
		}
		return time.Since(t0)
	}
	for i := 0; i < 200; i++ { // warm up both paths
		get(sub)
		get(native)
	}
	// Alternate so both see the same machine noise; CPU is measured per
	// path, so client-side CPU (the same for both) cancels in the difference.
	var subLat, natLat []time.Duration
	var subCPU, natCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		subLat = append(subLat, get(sub))
		c1 := cpuTime()
		natLat = append(natLat, get(native))
		c2 := cpuTime()
		subCPU += c1 - c0
		natCPU += c2 - c1
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(percentile(subLat, 0.5)), "sub-p50-µs")
	b.ReportMetric(us(percentile(subLat, 0.99)), "sub-p99-µs")
	b.ReportMetric(us(percentile(natLat, 0.5)), "native-p50-µs")
	b.ReportMetric(us(percentile(natLat, 0.99)), "native-p99-µs")
	b.ReportMetric(float64(percentile(subLat, 0.5))/float64(percentile(natLat, 0.5)), "p50-ratio")
	b.ReportMetric(float64(percentile(subLat, 0.99))/float64(percentile(natLat, 0.99)), "p99-ratio")
	b.ReportMetric(us(subCPU-natCPU)/float64(b.N), "subagent-cpu-µs/req")
}

func BenchmarkBulkwalk(b *testing.B) {
	const rows = 3000
	entry := smi.MustParseOID("1.3.6.1.4.1.8072.9999.4244.1.1")
	tbl := agent.NewTable(entry, 1)
	for i := uint32(1); i <= rows; i++ {
		tbl.SetRow(smi.OID{i}, agent.Columns{1: smi.Counter64(uint64(i) << 33)})
	}
	tree := agent.NewTree()
	if err := tree.RegisterTable(tbl); err != nil {
		b.Fatal(err)
	}
	// Serve the 3,000-row table in the default context beside the test tree.
	r := startRig(b, rigOptions{serve: func(t *agent.Tree) *agent.Tree { return mergedTree(b, t, tree) }})
	g := r.client(b, "public")
	g.MaxRepetitions = 25
	walk := func(root string) (int, time.Duration) {
		n := 0
		t0 := time.Now()
		if err := g.BulkWalk(root, func(gosnmp.SnmpPDU) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		return n, time.Since(t0)
	}
	if n, _ := walk(dotted(entry)); n != rows {
		b.Fatalf("subagent table walk gave %d varbinds", n)
	}
	nativeRoot := ".1.3.6.1.2.1"
	var subN, natN int
	var subT, natT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, d := walk(dotted(entry))
		subN, subT = subN+n, subT+d
		n, d = walk(nativeRoot)
		natN, natT = natN+n, natT+d
	}
	b.StopTimer()
	subPer := float64(subT) / float64(time.Microsecond) / float64(subN)
	natPer := float64(natT) / float64(time.Microsecond) / float64(natN)
	b.ReportMetric(subPer, "sub-µs/varbind")
	b.ReportMetric(natPer, "native-µs/varbind")
	b.ReportMetric(subPer/natPer, "ratio")
	b.ReportMetric(float64(natN)/float64(b.N), "native-varbinds")
}
