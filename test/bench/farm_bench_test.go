package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// buildSmsnmpd builds the binary without the race detector, as operators
// run it.
func buildSmsnmpd(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "smsnmpd")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/smsnmpd").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkEngineTableBulkWalkThroughSnmpd: a farm of 256 engines (one
// demo process, real loopback multicast) registered with a real snmpd;
// snmpbulkwalk (max-repetitions 25) of smEngineTable through snmpd, which
// turns every repetition into one AgentX GetNext. Target: under 0.5 s.
func BenchmarkEngineTableBulkWalkThroughSnmpd(b *testing.B) {
	const engines = 256
	sd := snmpdtest.Start(b, snmpdtest.Options{})
	bin := buildSmsnmpd(b)
	cmd := exec.Command(bin, "demo", "--engines", fmt.Sprint(engines), "--agentx", sd.AgentX,
		"--rmtp-port", fmt.Sprint(30000+rand.IntN(20000)))
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(sd.Port), Community: "public", Version: gosnmp.Version2c,
		Timeout: 5 * time.Second, Retries: 0, MaxRepetitions: 25}
	if err := g.Connect(); err != nil {
		b.Fatal(err)
	}
	defer g.Conn.Close()
	const count = ".1.3.6.1.4.1.8072.9999.9999.42.1.2.1.0" // smEngineCount.0
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := g.Get([]string{count})
		if err == nil && gosnmp.ToBigInt(r.Variables[0].Value).Int64() == engines {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("farm of %d engines not up through snmpd after 30 s (last: %v %v)", engines, r, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	const table = ".1.3.6.1.4.1.8072.9999.9999.42.1.2.2"
	var n int
	var worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		pdus, err := g.BulkWalkAll(table)
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		n = len(pdus)
		worst = max(worst, d)
	}
	if n < engines*9 {
		b.Fatalf("walk returned %d varbinds, want at least %d", n, engines*9)
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "s/walk")
	b.ReportMetric(worst.Seconds(), "s/worst-walk")
	b.ReportMetric(float64(n), "varbinds")
	b.ReportMetric(float64(per.Microseconds())/float64(n), "µs/varbind")
}
