package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/test/netns"
)

// bridgeNet is hosts on one LAN: a bridge in a switch namespace of its own
// and one namespace per host with eth0 = 10.250.0.I/24. Nothing is made in
// the test's own namespace; every name carries the run's suffix, so
// parallel runs never meet.
type bridgeNet struct {
	t      *testing.T
	prefix string
	sw     string
}

func ipRun(t *testing.T, stdin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newBridgeNet(t *testing.T) *bridgeNet {
	t.Helper()
	n := &bridgeNet{t: t, prefix: fmt.Sprintf("smfence%05x", rand.IntN(1<<20))}
	n.sw = n.addNetns("sw")
	// No IGMP querier on this segment: a snooping bridge would depend on
	// timers the test does not control.
	ipRun(t, "link add br0 type bridge mcast_snooping 0\nlink set br0 up\n", "-n", n.sw, "-batch", "-")
	return n
}

func (n *bridgeNet) addNetns(name string) string {
	n.t.Helper()
	ns := n.prefix + "-" + name
	netns.Add(n.t, ns)
	return ns
}

// host adds host i (10.250.0.i) and returns its namespace.
func (n *bridgeNet) host(i int) string {
	n.t.Helper()
	ns := n.addNetns(fmt.Sprintf("h%d", i))
	ipRun(n.t, fmt.Sprintf("link add v%d type veth peer name eth0 netns %s\nlink set v%d master br0 up\n", i, ns, i), "-n", n.sw, "-batch", "-")
	ipRun(n.t, fmt.Sprintf("addr add %s/24 dev eth0\nlink set eth0 up\n", hostIP(i)), "-n", ns, "-batch", "-")
	return ns
}

func hostIP(i int) string { return fmt.Sprintf("10.250.0.%d", i) }

// deafTo makes ns drop, on input, every packet from the address from: a
// partition of that one path while both hosts still reach the rest. On
// input, not output: a dropped send would be an error, not a loss.
func deafTo(t *testing.T, ns, from string) {
	t.Helper()
	rules := fmt.Sprintf(`table inet smsnmpdfence {
  chain in {
    type filter hook input priority 0; policy accept;
    ip saddr %s counter drop
  }
}
`, from)
	netns.Nft(t, ns, rules)
}

// snmpClient is a gosnmp client whose socket lives in namespace ns.
func snmpClient(t *testing.T, ns, host string) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{Target: host, Port: 1161, Community: "public", Version: gosnmp.Version2c,
		Timeout: 1500 * time.Millisecond, Retries: 0}
	if err := netns.Do(ns, g.Connect); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

const (
	oidNodeRole = ".1.3.6.1.4.1.8072.9999.9999.42.1.1.1.0" // smNodeRole: manager(2), backup(3)
	oidViewTerm = ".1.3.6.1.4.1.8072.9999.9999.42.1.1.4.0" // smViewTerm
	oidAggCount = ".1.3.6.1.4.1.8072.9999.9999.42.1.4.5." + smSeWeight
)

// getInt reads one integer object; ok is false on any error.
func getInt(g *gosnmp.GoSNMP, oid string) (uint64, bool) {
	r, err := g.Get([]string{oid})
	if err != nil || r.Error != gosnmp.NoError || len(r.Variables) != 1 {
		return 0, false
	}
	switch v := r.Variables[0].Value.(type) {
	case int:
		return uint64(v), true
	case uint:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	}
	return 0, false
}

// fenceNode is one smsnmpd process of the fenced farm.
type fenceNode struct {
	name string
	ns   string
	ip   string
	p    *proc
	snmp *gosnmp.GoSNMP // managers: a client in the node's own namespace
}

func startFenceNode(t *testing.T, dir, name, ns, ip, body string) *fenceNode {
	t.Helper()
	cfg := filepath.Join(dir, name+".toml")
	rmtp := `
[rmtp]
interface = "eth0"
group = "239.255.77.1"
manager_group = "239.255.77.2"
port = 7730
insecure = true

[control]
socket = ""
`
	if err := os.WriteFile(cfg, []byte(body+rmtp), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &fenceNode{name: name, ns: ns, ip: ip, p: startIn(t, ns, "-config", cfg)}
	return n
}

// monoOf returns mono_ns of the first election role change in n's log
// whose cause is cause.
func monoOf(n *fenceNode, cause string) (int64, bool) {
	m := regexp.MustCompile(`msg="election: role change".*cause=` + cause + `\b.*mono_ns=(\d+)`).FindStringSubmatch(n.p.out.String())
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	return v, err == nil
}

// The SM and the BSM lose each other (nftables on both, input hook) but
// both still reach the three SEs, each process in a network namespace of
// its own on one bridge. The BSM takes over with term 2 and the SEs obey
// it. The old SM must say so within a second or two: it reports
// smNodeRole = backup (on main it claims manager for the whole
// partition), logs the SEs' refusal at warning once, and never answers an
// aggregate with a silent count of 0 meanwhile (genErr instead). It stays
// a backup while the BSM lives; when the BSM dies, still apart, the SEs
// lose it too and the old SM takes the farm back above every term.
func TestFencedManagerStepsDown(t *testing.T) {
	requireRoot(t)
	nw := newBridgeNet(t)
	dir := t.TempDir()
	smNS, bsmNS := nw.host(1), nw.host(2)
	manager := func(id, prio int, ip string) string {
		return fmt.Sprintf(`[node]
role = "manager"
id = %d
priority = %d
state_dir = %q

[snmp]
listen = "udp:%s:1161"
ro_community = "public"
rw_community = "private"
`, id, prio, filepath.Join(dir, fmt.Sprint(id)), ip)
	}
	for _, id := range []int{1000, 1001} {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprint(id)), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sm := startFenceNode(t, dir, "sm", smNS, hostIP(1), manager(1000, 200, hostIP(1)))
	sm.p.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	sm.snmp = snmpClient(t, smNS, hostIP(1))
	waitfor.True(t, 10*time.Second, "the SM is active", func() bool {
		r, ok := getInt(sm.snmp, oidNodeRole)
		return ok && r == 2
	})
	bsm := startFenceNode(t, dir, "bsm", bsmNS, hostIP(2), manager(1001, 100, hostIP(2)))
	bsm.p.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	bsm.snmp = snmpClient(t, bsmNS, hostIP(2))
	term1, _ := getInt(sm.snmp, oidViewTerm)
	waitfor.True(t, 10*time.Second, "the BSM follows the SM's term", func() bool {
		r, ok := getInt(bsm.snmp, oidNodeRole)
		tm, ok2 := getInt(bsm.snmp, oidViewTerm)
		return ok && ok2 && r == 3 && tm == term1
	})
	const engines = 3
	for i := 1; i <= engines; i++ {
		ns := nw.host(10 + i)
		se := startFenceNode(t, dir, fmt.Sprintf("se%d", i), ns, hostIP(10+i), fmt.Sprintf(`[node]
role = "se"
id = %d

[system]
name = "se%d"
`, i, i))
		se.p.waitOutput(t, "rmtp: endpoint up", 10*time.Second)
	}
	waitfor.True(t, 15*time.Second, "the SM counts every SE", func() bool {
		c, ok := getInt(sm.snmp, oidAggCount)
		return ok && c == engines
	})

	// The poller: an aggregate count at the old SM every 20 ms, from
	// before the cut until the end.
	type answer struct {
		at    time.Time
		count uint64
		err   string // "" for a count
	}
	var mu sync.Mutex
	var answers []answer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	poller := snmpClient(t, smNS, hostIP(1))
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			a := answer{at: time.Now()}
			r, err := poller.Get([]string{oidAggCount})
			switch {
			case err != nil:
				a.err = err.Error()
			case r.Error != gosnmp.NoError:
				a.err = r.Error.String()
			case len(r.Variables) != 1 || r.Variables[0].Type != gosnmp.Gauge32:
				a.err = fmt.Sprintf("not a count: %+v", r.Variables)
			default:
				a.count = uint64(r.Variables[0].Value.(uint))
			}
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond)

	cut := time.Now()
	deafTo(t, smNS, hostIP(2))
	deafTo(t, bsmNS, hostIP(1))
	waitfor.True(t, 10*time.Second, "the BSM takes over", func() bool {
		r, ok := getInt(bsm.snmp, oidNodeRole)
		return ok && r == 2
	})
	term2, _ := getInt(bsm.snmp, oidViewTerm)
	if term2 <= term1 {
		t.Fatalf("BSM active with term %d, not above %d", term2, term1)
	}
	took, ok := monoOf(bsm, "takeover")
	if !ok {
		t.Fatalf("no takeover logged by the BSM:\n%s", bsm.p.out.String())
	}
	tookAt := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, ok := getInt(sm.snmp, oidNodeRole); ok && r == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old SM still reports smNodeRole = manager %v after the BSM took over (term %d); the SEs refuse it",
				time.Since(tookAt).Round(time.Millisecond), term2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fenced, ok := monoOf(sm, "fenced")
	if !ok {
		t.Fatalf("the old SM reports backup but logged no fenced step-down:\n%s", sm.p.out.String())
	}
	stepped := time.Duration(fenced - took)
	t.Logf("BSM took over %v after the cut (seen by polling); the old SM stepped down %v after the takeover (their logs)", tookAt.Sub(cut).Round(time.Millisecond), stepped.Round(time.Millisecond))
	if stepped < 0 || stepped > 2*time.Second {
		t.Errorf("the old SM stepped down %v after the takeover, want within 2 s", stepped)
	}

	// Stable while apart: the BSM keeps the farm, the old SM stays backup.
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) {
		if r, ok := getInt(sm.snmp, oidNodeRole); ok && r != 3 {
			t.Fatalf("the old SM's role moved to %d while apart", r)
		}
		if r, ok := getInt(bsm.snmp, oidNodeRole); ok && r != 2 {
			t.Fatalf("the BSM's role moved to %d while apart", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, ok := getInt(bsm.snmp, oidAggCount); !ok || c != engines {
		t.Errorf("the BSM counts %d engines (ok %v), want %d", c, ok, engines)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	var zero, counted, errs, errsAfter int
	for _, a := range answers {
		switch {
		case a.err != "":
			errs++
			if a.at.After(tookAt) {
				errsAfter++
			}
		case a.count == 0:
			zero++
			t.Errorf("the old SM answered smAggregateCount = 0 at %v after the cut", a.at.Sub(cut).Round(time.Millisecond))
		default:
			counted++
		}
	}
	t.Logf("aggregate poller at the old SM: %d answers, %d counts, %d errors (%d after the takeover), %d zero counts", len(answers), counted, errs, errsAfter, zero)
	if errsAfter == 0 {
		t.Errorf("no error from the old SM after the takeover: it cannot have counted the SEs that refuse it")
	}
	mu.Unlock()
	if n := strings.Count(sm.p.out.String(), "refuse this manager's term"); n != 1 {
		t.Errorf("the old SM logged the SEs' refusal %d times, want once for the episode:\n%s", n, sm.p.out.String())
	}
	if !regexp.MustCompile(`level=warning msg="election: role change".*cause=fenced`).MatchString(sm.p.out.String()) {
		t.Errorf("the fenced step-down is not logged at warning:\n%s", sm.p.out.String())
	}
	// One step-down, no back-and-forth: the old SM was active once.
	if n := len(regexp.MustCompile(`msg="election: role change".*role=active`).FindAllString(sm.p.out.String(), -1)); n != 1 {
		t.Errorf("the old SM became active %d times before the BSM died, want once (at start)", n)
	}

	// The BSM dies while the managers are still apart: the SEs declare it
	// down, and the old SM takes the farm back above every term.
	if err := bsm.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = bsm.p.cmd.Wait()
	killed := time.Now()
	waitfor.True(t, 10*time.Second, "the old SM takes the farm back", func() bool {
		r, ok := getInt(sm.snmp, oidNodeRole)
		return ok && r == 2
	})
	back := time.Since(killed)
	term3, _ := getInt(sm.snmp, oidViewTerm)
	t.Logf("the old SM is active again %v after the BSM's SIGKILL, term %d", back.Round(time.Millisecond), term3)
	if term3 <= term2 {
		t.Errorf("term %d after taking the farm back, want above %d", term3, term2)
	}
	waitfor.True(t, 10*time.Second, "the old SM counts every SE again", func() bool {
		c, ok := getInt(sm.snmp, oidAggCount)
		return ok && c == engines
	})
}
