package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/test/deps"
)

const (
	sysUpTime0 = ".1.3.6.1.2.1.1.3.0"
	// maxReps is the max-repetitions of both bulk walks (snmp_exporter's).
	maxReps = 25
)

func freePort(tb testing.TB) int {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startSnmpd runs an isolated snmpd (no AgentX, no SMUX, no system
// config) on a loopback port and stops it, by its PID, when the benchmark
// ends.
func startSnmpd(b *testing.B, extra ...string) int {
	snmpd := deps.NeedTool(b, "snmpd")
	dir := b.TempDir()
	port := freePort(b)
	conf := filepath.Join(dir, "snmpd.conf")
	text := strings.Join([]string{
		"[snmp] mibs :",
		"[snmp] persistentDir " + filepath.Join(dir, "persist"),
		"[snmp] noPersistentLoad yes",
		"[snmp] noPersistentSave yes",
		fmt.Sprintf("agentAddress udp:127.0.0.1:%d", port),
		"rocommunity public 127.0.0.1",
		"dontLogTCPWrappersConnects yes",
		strings.Join(extra, "\n"),
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	// -Lf: snmpd's log goes to a file, shown only when it does not answer.
	logf := filepath.Join(dir, "snmpd.log")
	cmd := exec.Command(snmpd, "-f", "-Lf", logf, "-C", "-c", conf, "-I", "-smux", "-p", filepath.Join(dir, "pid"))
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+dir, "MIBS=")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	g := client(b, port)
	for i := 0; ; i++ {
		if _, err := g.Get([]string{sysUpTime0}); err == nil {
			return port
		} else if i == 50 {
			log, _ := os.ReadFile(logf)
			b.Fatalf("snmpd does not answer: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startAgent serves, with the built-in agent on a loopback port, a copy of
// agenttest's 10,000-row sparse table (same OIDs, same values) registered
// directly on the default context, as package mib registers its tables,
// plus a sysUpTime.0 of its own. (agenttest builds a Tree of its own, which
// agent.Contexts cannot adopt; serving it through snmptest.Mount would add a
// second Tree dispatch per varbind that production never pays.)
func startAgent(b *testing.B, users ...snmp.User) (int, *snmp.Agent) {
	ctxs := agent.NewContexts()
	sparse := agent.NewTable(agenttest.SparseTable, 1, 2, 3, 4)
	for i := 0; i < agenttest.SparseRows; i++ {
		idx := agenttest.SparseIndex(i)
		row := agent.Columns{
			1: smi.Integer(int32(idx)),
			2: smi.String(fmt.Sprintf("row-%05d", idx)),
			3: smi.Counter64(agenttest.C64Base + uint64(idx)*1000003),
		}
		if idx%2 == 0 {
			row[4] = smi.Gauge32(idx)
		}
		sparse.SetRow(smi.OID{idx}, row)
	}
	if err := ctxs.Default().RegisterTable(sparse); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := ctxs.Default().RegisterScalar(smi.MustParseOID("1.3.6.1.2.1.1.3"), agent.Func(func() smi.Value {
		return smi.TimeTicks(uint32(time.Since(start) / (10 * time.Millisecond)))
	})); err != nil {
		b.Fatal(err)
	}
	cfg := snmp.Config{ROCommunity: config.NewSecret("public"), Users: users}
	if len(users) > 0 {
		cfg.Engine = snmp.Engine{ID: snmp.NewEngineID(), Boots: 1}
	}
	a, err := snmp.New(cfg, ctxs, nil)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, conn) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		conn.Close()
	})
	return conn.LocalAddr().(*net.UDPAddr).Port, a
}

func client(tb testing.TB, port int) *gosnmp.GoSNMP {
	tb.Helper()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(port), Community: "public", Version: gosnmp.Version2c,
		Timeout: 2 * time.Second, Retries: 2, MaxRepetitions: maxReps}
	if err := g.Connect(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Conn.Close() })
	return g
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkGetVsSnmpd: GET sysUpTime.0, alternating between snmpd and the
// built-in agent so both see the same load; reports both p50s and
// p50-ratio = ours/snmpd (target: <= 1).
func BenchmarkGetVsSnmpd(b *testing.B) {
	ref := client(b, startSnmpd(b))
	port, _ := startAgent(b)
	ours := client(b, port)
	var tRef, tOurs []time.Duration
	get := func(g *gosnmp.GoSNMP) time.Duration {
		t0 := time.Now()
		p, err := g.Get([]string{sysUpTime0})
		d := time.Since(t0)
		if err != nil || len(p.Variables) != 1 || p.Variables[0].Type != gosnmp.TimeTicks {
			b.Fatalf("GET: %v %v", err, p)
		}
		return d
	}
	for range 200 { // warm both up
		get(ref)
		get(ours)
	}
	b.ResetTimer()
	for b.Loop() {
		tRef = append(tRef, get(ref))
		tOurs = append(tOurs, get(ours))
	}
	b.StopTimer()
	r, o := p50(tRef), p50(tOurs)
	b.ReportMetric(us(o), "p50-us-ours")
	b.ReportMetric(us(r), "p50-us-snmpd")
	b.ReportMetric(float64(o)/float64(r), "p50-ratio")
}

// BenchmarkBulkWalkVsSnmpd: gosnmp BulkWalk with the same max-repetitions
// of the 10,000-row sparse table (35,000 varbinds) on the built-in agent
// and of subtrees of snmpd's native tree, alternating; reports µs per
// varbind for both and us-per-vb-ratio = ours/snmpd (target: <= 1).
// snmpd's subtrees: its whole tree (.1.3.6.1, about 7,000 varbinds on a
// Debian host), hrSWInstalledTable (its largest table, cached) and
// nsModuleTable (its own registry, in memory: the fairest comparison with
// an in-memory table).
func BenchmarkBulkWalkVsSnmpd(b *testing.B) {
	ref := client(b, startSnmpd(b))
	port, _ := startAgent(b)
	ours := client(b, port)
	walk := func(b *testing.B, g *gosnmp.GoSNMP, root string) (time.Duration, int) {
		n := 0
		t0 := time.Now()
		err := g.BulkWalk(root, func(gosnmp.SnmpPDU) error { n++; return nil })
		d := time.Since(t0)
		if err != nil || n == 0 {
			b.Fatalf("bulkwalk %s: %v, %d varbinds", root, err, n)
		}
		return d, n
	}
	ourRoot := "." + agenttest.SparseTable.String()
	for _, ref0 := range []struct{ name, root string }{
		{"whole-tree", ".1.3.6.1"},
		{"hrSWInstalledTable", ".1.3.6.1.2.1.25.6.3"},
		{"nsModuleTable", ".1.3.6.1.4.1.8072.1.2"},
	} {
		b.Run(ref0.name, func(b *testing.B) {
			walk(b, ref, ref0.root)
			walk(b, ours, ourRoot)
			var refPer, ourPer []time.Duration
			var refN, ourN int
			for b.Loop() {
				d, n := walk(b, ref, ref0.root)
				refPer, refN = append(refPer, d/time.Duration(n)), n
				d, n = walk(b, ours, ourRoot)
				ourPer, ourN = append(ourPer, d/time.Duration(n)), n
			}
			r, o := p50(refPer), p50(ourPer)
			b.ReportMetric(us(o), "us-per-vb-ours")
			b.ReportMetric(us(r), "us-per-vb-snmpd")
			b.ReportMetric(float64(o)/float64(r), "us-per-vb-ratio")
			b.ReportMetric(float64(ourN), "vbs-ours")
			b.ReportMetric(float64(refN), "vbs-snmpd")
		})
	}
}
