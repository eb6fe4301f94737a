package agentx_test

import (
	"flag"
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
//	BenchmarkGetLatency   GET p50/p99 of a subagent OID vs native sysUpTime.0
//	                      and vs the floor (a zero-logic Go responder on the
//	                      same snmpd), and the subagent's CPU per request
//	BenchmarkBulkwalk     µs per varbind, 3,000-varbind subagent table vs a
//	                      native walk, same max-repetitions
//
// BenchmarkGetLatency metrics, per path (sub = our subagent, native,
// floor, and raw with -agentx.rawfloor):
//
//	<path>-p50-µs, <path>-p99-µs   latency of one gosnmp GET
//	<path>-p50-ratio, -p99-ratio   over native (the target: sub ≤ 1.5)
//	<path>-cpu-µs/req              this process's CPU during the GET minus
//	                               during the native GET (the client's share
//	                               cancels)
//	sub/<floor>-p50                sub's p50 over the floor's
//	sub-<floor>-µs                 median of sub minus the floor, paired per
//	                               iteration: our own cost through snmpd
//
// All paths are interleaved in one loop with the same client, so they see
// the same machine noise.

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

// rawFloor adds the C-like floor (startRawFloorResponder) to
// BenchmarkGetLatency. Off by default: its thread blocked in read(2) holds
// one of the runtime's Ps, which on 2 cores disturbs the other paths.
var rawFloor = flag.Bool("agentx.rawfloor", false, "BenchmarkGetLatency: also measure the raw (C-like, blocking thread) floor responder")

func BenchmarkGetLatency(b *testing.B) {
	b.Run("tcp", func(b *testing.B) { benchGetLatency(b, false) })
	b.Run("unix", func(b *testing.B) { benchGetLatency(b, true) })
}

func benchGetLatency(b *testing.B, unix bool) {
	r := startRig(b, rigOptions{snmpd: snmpdtest.Options{Unix: unix}})
	type path struct {
		name string
		oids []string
		lat  []time.Duration
		cpu  time.Duration
	}
	paths := []*path{
		{name: "sub", oids: []string{dotted(agenttest.ScalarInt.Append(0))}},
		{name: "native", oids: []string{".1.3.6.1.2.1.1.3.0"}},
	}
	startFloorResponder(b, r.snmpd.AgentX, floorOID)
	paths = append(paths, &path{name: "floor", oids: []string{dotted(floorOID)}})
	if *rawFloor && startRawFloorResponder(b, r.snmpd.AgentX, rawFloorOID) {
		paths = append(paths, &path{name: "raw", oids: []string{dotted(rawFloorOID)}})
	}
	g := r.client(b, "public")
	get := func(oids []string) time.Duration {
		t0 := time.Now()
		res, err := g.Get(oids)
		if err != nil || res.Error != gosnmp.NoError || res.Variables[0].Type == gosnmp.NoSuchObject {
			b.Fatalf("GET %v: %v %v", oids, err, res)
		}
		return time.Since(t0)
	}
	for i := 0; i < 200; i++ { // warm up every path
		for _, p := range paths {
			get(p.oids)
		}
	}
	// Interleave so every path sees the same machine noise. CPU is our
	// process's (client and responders), so the client's share, the same
	// on every path, cancels in the difference to the native GET.
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range paths {
			c0 := cpuTime()
			p.lat = append(p.lat, get(p.oids))
			p.cpu += cpuTime() - c0
		}
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	sub, native := paths[0], paths[1]
	for _, p := range paths {
		b.ReportMetric(us(percentile(p.lat, 0.5)), p.name+"-p50-µs")
		b.ReportMetric(us(percentile(p.lat, 0.99)), p.name+"-p99-µs")
		if p != native {
			b.ReportMetric(us(p.cpu-native.cpu)/float64(b.N), p.name+"-cpu-µs/req")
			b.ReportMetric(float64(percentile(p.lat, 0.5))/float64(percentile(native.lat, 0.5)), p.name+"-p50-ratio")
			b.ReportMetric(float64(percentile(p.lat, 0.99))/float64(percentile(native.lat, 0.99)), p.name+"-p99-ratio")
		}
		if p != native && p != sub {
			b.ReportMetric(float64(percentile(sub.lat, 0.5))/float64(percentile(p.lat, 0.5)), "sub/"+p.name+"-p50")
			// Paired: the median of sub's GET minus this floor's GET of the
			// same iteration, which cancels most of the machine's drift.
			d := make([]time.Duration, b.N)
			for i := range d {
				d[i] = sub.lat[i] - p.lat[i]
			}
			b.ReportMetric(us(percentile(d, 0.5)), "sub-"+p.name+"-µs")
		}
	}
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
