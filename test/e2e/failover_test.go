package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"golang.org/x/sys/unix"

	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

// monoNow is CLOCK_MONOTONIC, the clock the election logs (mono_ns), so
// times taken here and in the nodes' logs compare on one host.
func monoNow(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano()
}

// parseDigest reads "AAAA…BBBB…/N" as printed by smsnmpd digest.
func parseDigest(t *testing.T, out string) (a, b, n uint64) {
	t.Helper()
	f := strings.Fields(out)
	if len(f) == 0 || len(f[0]) < 34 {
		t.Fatalf("unexpected digest output %q", out)
	}
	d := f[0]
	var err error
	if a, err = strconv.ParseUint(d[:16], 16, 64); err == nil {
		if b, err = strconv.ParseUint(d[16:32], 16, 64); err == nil {
			n, err = strconv.ParseUint(d[33:], 10, 64)
		}
	}
	if err != nil {
		t.Fatalf("digest %q: %v", d, err)
	}
	return a, b, n
}

// 10,000 entries published by 5 SEs while the active manager is killed
// with SIGKILL at a random moment: the backup takes over within 1 s, ends
// with every entry (its digest equals the sum of the SEs' own), answers
// walks and lookups, and an SNMP poller running throughout through a
// shared snmpd sees at most the failover window of errors. The old manager
// restarted becomes a backup and catches up; one active term remains.
func TestFailoverDuringPublishing(t *testing.T) {
	requireTool(t, "snmpbulkwalk")
	trapd := snmpdtest.StartTrapd(t)
	sd := snmpdtest.Start(t, snmpdtest.Options{TrapSinks: []string{trapd.Addr}})
	f := newFarm(t, 0)
	f.agentx = sd.AgentX
	snmpA, snmpB := f.snmp, fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	smA := f.startManagerWith("smA", 1000, 200, snmpA)
	f.waitRole(snmpA, "manager")
	smB := f.startManagerWith("smB", 1001, 100, snmpB)
	// A manager reports backup from the start; wait until B follows A's
	// view (same term), so that A's death is a takeover, not a first
	// election.
	termA := f.getAt(snmpA, "smViewTerm.0")[0]
	waitfor.True(t, 10*time.Second, "the backup follows the active manager's term", func() bool {
		return f.getAt(snmpB, "smViewTerm.0")[0] == termA
	})
	f.waitRole(snmpB, "backup")
	const n, perSE = 5, 2000
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)

	// Only the active manager may SET: the backup refuses, the SM accepts.
	set := func(addr string) error {
		_, err := snmp(t, "snmpset", append(append([]string{"-v2c", "-c", "private", "-t", "3", "-r", "0"}, mibArgs...),
			addr, "smAllEngines."+smSeWeight, "u", "9")...)
		return err
	}
	if err := set(snmpB); err == nil || !strings.Contains(err.Error(), "notWritable") {
		t.Errorf("SET on the backup manager: %v; want notWritable", err)
	}
	if err := set(snmpA); err != nil {
		t.Errorf("the active manager refused a SET: %v", err)
	}

	// The poller: an aggregate GET through snmpd every 20 ms.
	stop := make(chan struct{})
	var pollMu sync.Mutex
	var polls, failures int
	var firstFail, lastFail time.Time
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() {
		defer pollWG.Done()
		g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(sd.Port), Community: "public", Version: gosnmp.Version2c,
			Timeout: time.Second, Retries: 0}
		if err := g.Connect(); err != nil {
			return
		}
		defer g.Conn.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r, err := g.Get([]string{".1.3.6.1.4.1.8072.9999.9999.42.1.4.5." + smSeWeight}) // smAggregateCount
			ok := err == nil && len(r.Variables) == 1 && r.Variables[0].Type == gosnmp.Gauge32
			pollMu.Lock()
			polls++
			if !ok {
				failures++
				if firstFail.IsZero() {
					firstFail = time.Now()
				}
				lastFail = time.Now()
			}
			pollMu.Unlock()
		}
	}()

	// Publish from every SE at once; kill the active manager meanwhile.
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 1; i <= n; i++ {
		var b strings.Builder
		for j := 0; j < perSE; j++ {
			fmt.Fprintf(&b, "se%d/content/%05d\n", i, j)
		}
		list := filepath.Join(f.dir, fmt.Sprintf("keys%d", i))
		if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, code := cli(t, "publish", "-socket", "unix:"+f.socket(fmt.Sprintf("se%d", i)), "-size", "100", "-from", list); code != 0 {
				errs <- fmt.Sprintf("se%d: %s", i, out)
			}
		}()
	}
	time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
	killMono := monoNow(t)
	if err := smA.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = smA.cmd.Wait()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("publish: %s", e)
	}

	// B took over within 1 s of the kill (monotonic clocks, one host).
	f.waitRole(snmpB, "manager")
	m := regexp.MustCompile(`msg="election: role change".*cause=takeover.*mono_ns=(\d+)`).FindStringSubmatch(smB.out.String())
	if m == nil {
		t.Fatalf("no takeover logged by the backup:\n%s", smB.out.String())
	}
	takeoverMono, _ := strconv.ParseInt(m[1], 10, 64)
	took := time.Duration(takeoverMono - killMono)
	t.Logf("takeover %v after the SIGKILL", took)
	if took <= 0 || took > time.Second {
		t.Errorf("takeover %v after the kill, want within 1 s", took)
	}

	// The takeover was announced: smManagerTakeover through snmpd.
	if !trapd.WaitFor("8072.9999.9999.42.0.3", 10*time.Second) {
		t.Errorf("no smManagerTakeover at snmptrapd:\n%s", trapd.Log())
	}

	// B converges to every entry: its digest is the sum of the SEs'.
	var wantA, wantB, wantN uint64
	for i := 1; i <= n; i++ {
		out, code := cli(t, "digest", "-socket", "unix:"+f.socket(fmt.Sprintf("se%d", i)))
		if code != 0 {
			t.Fatalf("digest of se%d: %s", i, out)
		}
		a, b, c := parseDigest(t, out)
		wantA, wantB, wantN = wantA+a, wantB+b, wantN+c
	}
	if wantN != n*perSE {
		t.Fatalf("the SEs hold %d entries, want %d", wantN, n*perSE)
	}
	waitfor.True(t, 20*time.Second, "the new active manager holds every entry", func() bool {
		out, code := cli(t, "digest", "-socket", "unix:"+f.socket("smB"))
		if code != 0 {
			return false
		}
		a, b, c := parseDigest(t, out)
		return a == wantA && b == wantB && c == wantN
	})

	// It answers walks (through snmpd) and lookups.
	out, err := snmp(t, "snmpbulkwalk", "-v2c", "-c", "public", "-Cr50", "-t", "5", "-r", "1", sd.Addr, "1.3.6.1.4.1.8072.9999.9999.42.1.7.2.1.2") // smDirectoryKey
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(out, "STRING:"); rows < 1000 {
		t.Errorf("walk of smDirectoryKey through snmpd: %d rows", rows)
	}
	if out, code := cli(t, "lookup", "-socket", "unix:"+f.socket("smB"), "se4/content/01999"); code != 0 || !strings.Contains(out, "se 4") {
		t.Errorf("lookup on the new active manager: %s", out)
	}
	close(stop)
	pollWG.Wait()
	pollMu.Lock()
	window := lastFail.Sub(firstFail)
	t.Logf("poller: %d polls, %d failed, failures spanning %v", polls, failures, window)
	if failures > 0 && window > 1500*time.Millisecond {
		t.Errorf("the SNMP poller saw failures over %v, longer than a failover", window)
	}
	if polls < 10 {
		t.Errorf("the poller ran only %d polls", polls)
	}
	pollMu.Unlock()

	// The old SM restarted: it hears the higher term, stays backup, and
	// catches up by state transfer; one active term remains.
	f.startManagerWith("smA", 1000, 200, snmpA)
	f.waitRole(snmpA, "backup")
	waitfor.True(t, 20*time.Second, "the restarted manager catches up", func() bool {
		out, code := cli(t, "digest", "-socket", "unix:"+f.socket("smA"))
		if code != 0 {
			return false
		}
		a, b, c := parseDigest(t, out)
		return a == wantA && b == wantB && c == wantN
	})
	if r := f.getAt(snmpB, "smNodeRole.0")[0]; !strings.Contains(r, "manager") {
		t.Errorf("after the old SM came back, B is %s", r)
	}
	if ta, tb := f.getAt(snmpA, "smViewTerm.0")[0], f.getAt(snmpB, "smViewTerm.0")[0]; ta != tb || ta == termA {
		t.Errorf("terms after the old SM rejoined: A follows %s, B %s (the first term was %s)", ta, tb, termA)
	}
}
