package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

// farm is a manager and its SEs as separate smsnmpd processes on loopback
// multicast, with a group and port of their own so that parallel test runs
// never hear each other.
type farm struct {
	t       *testing.T
	ns      string // network namespace the farm runs in ("" = this one)
	agentx  string // manager's AgentX master socket ("" = none)
	dir     string
	snmp    string // manager's built-in agent, host:port
	group   string
	mgroup  string
	port    int
	trap    int // trap sink port (0: none)
	manager *proc
	ses     map[int]*proc
}

func newFarm(t *testing.T, trapPort int) *farm {
	t.Helper()
	requireTool(t, "snmpget")
	// 239.255.x.y, administratively scoped; random per run.
	g := rand.IntN(200) + 20
	f := &farm{t: t, dir: t.TempDir(), snmp: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)),
		group: fmt.Sprintf("239.255.%d.1", g), mgroup: fmt.Sprintf("239.255.%d.2", g),
		port: 20000 + rand.IntN(20000), trap: trapPort, ses: map[int]*proc{}}
	return f
}

func (f *farm) rmtpSection() string {
	return fmt.Sprintf(`[rmtp]
interface = "lo"
group = %q
manager_group = %q
port = %d
insecure = true
`, f.group, f.mgroup, f.port)
}

func (f *farm) write(name, body string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *farm) startManager() {
	f.t.Helper()
	f.manager = f.startManagerWith("manager", 1000, 100, f.snmp)
	// Alone in its farm it wins the election after one observation window.
	f.waitRole(f.snmp, "manager")
}

// startManagerWith starts a manager process with its own built-in agent
// at snmpAddr (and the farm's AgentX master, if any).
func (f *farm) startManagerWith(name string, id, priority int, snmpAddr string) *proc {
	f.t.Helper()
	traps := ""
	if f.trap != 0 {
		traps = fmt.Sprintf("trap_sinks = [\"udp:127.0.0.1:%d\"]\ntrap_community = \"public\"\n", f.trap)
	}
	cfg := f.write(name+".toml", fmt.Sprintf(`[node]
role = "manager"
id = %d
priority = %d
state_dir = %q

[snmp]
listen = "udp:%s"
ro_community = "public"
rw_community = "private"
%s
%s
%s
[control]
socket = "unix:%s"
`, id, priority, f.mkdir(name), snmpAddr, traps, f.agentxSection(), f.rmtpSection(), f.socket(name)))
	p := startIn(f.t, f.ns, "-config", cfg)
	p.waitOutput(f.t, "built-in SNMPv2c agent serving", 10*time.Second)
	return p
}

// waitRole waits until the manager at snmpAddr reports smNodeRole = role.
func (f *farm) waitRole(snmpAddr, role string) {
	f.t.Helper()
	waitfor.True(f.t, 10*time.Second, "smNodeRole of "+snmpAddr+" = "+role, func() bool {
		return strings.Contains(f.getAt(snmpAddr, "smNodeRole.0")[0], role)
	})
}

// socket is the control socket path of a node of this farm.
func (f *farm) socket(node string) string {
	return filepath.Join(f.dir, node+".sock")
}

func (f *farm) agentxSection() string {
	if f.agentx == "" {
		return ""
	}
	return fmt.Sprintf("[agentx]\nsocket = %q\n", f.agentx)
}

func (f *farm) mkdir(name string) string {
	d := filepath.Join(f.dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *farm) startSE(id, maxWeight int) *proc {
	f.t.Helper()
	cfg := f.write(fmt.Sprintf("se%d.toml", id), fmt.Sprintf(`[node]
role = "se"
id = %d
state_dir = %q

[system]
name = "se%d"

[se]
max_weight = %d

%s
[control]
socket = "unix:%s"
`, id, f.mkdir(fmt.Sprintf("se%d", id)), id, maxWeight, f.rmtpSection(), f.socket(fmt.Sprintf("se%d", id))))
	p := startIn(f.t, f.ns, "-config", cfg)
	f.ses[id] = p
	p.waitOutput(f.t, "rmtp: endpoint up", 10*time.Second)
	return p
}

var mibArgs = []string{"-M", "+../../mib:../../.cache/std-mibs", "-m", "SERVICE-MANAGER-MIB"}

// get returns snmpget's value-only output for oids on the manager.
func (f *farm) get(oids ...string) []string {
	f.t.Helper()
	return f.getAt(f.snmp, oids...)
}

// getAt is get on the agent at addr.
func (f *farm) getAt(addr string, oids ...string) []string {
	f.t.Helper()
	args := append(append([]string{"-v2c", "-c", "public", "-Oqv", "-t", "3", "-r", "0"}, mibArgs...), addr)
	out, err := snmpIn(f.t, f.ns, "snmpget", append(args, oids...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

func (f *farm) getInt(oid string) int64 {
	f.t.Helper()
	v := f.get(oid)[0]
	n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
	if err != nil {
		f.t.Fatalf("%s = %q, not a number", oid, v)
	}
	return n
}

// waitEngines waits (bounded) until smEngineCount counts want engines up.
func (f *farm) waitUp(want int) {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out, err := snmpIn(f.t, f.ns, "snmpwalk", append(append([]string{"-v2c", "-c", "public", "-Oqv"}, mibArgs...), f.snmp, "smEngineState")...)
		if err == nil && strings.Count(out, "up") == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("fewer than %d engines up after 15 s", want)
}

const smSeWeight = "1.3.6.1.4.1.8072.9999.9999.42.1.3.2.0"

func TestFarmAggregatesAndSetAcrossEngines(t *testing.T) {
	f := newFarm(t, 0)
	f.startManager()
	const n = 5
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)

	// SET smAllEngines.<smSeWeight.0> = 7 on every engine at once.
	args := append(append([]string{"-v2c", "-c", "private", "-t", "3", "-r", "0"}, mibArgs...), f.snmp, "smAllEngines."+smSeWeight, "u", "7")
	if out, err := snmp(t, "snmpset", args...); err != nil {
		t.Fatalf("smAllEngines SET: %v %s\nmanager log:\n%s", err, out, f.manager.out.String())
	}
	if got := f.getInt("smAggregateSum." + smSeWeight); got != 7*n {
		t.Errorf("smAggregateSum of smSeWeight = %d, want %d", got, 7*n)
	}
	if got := f.getInt("smAggregateCount." + smSeWeight); got != n {
		t.Errorf("smAggregateCount of smSeWeight = %d, want %d", got, n)
	}
	for i := 1; i <= n; i++ {
		if got := f.getInt(fmt.Sprintf("smEngineProxy.%d.%s", i, smSeWeight)); got != 7 {
			t.Errorf("engine %d smSeWeight = %d, want 7", i, got)
		}
	}

	// A GET of 128 aggregate varbinds is answered whole, from one
	// multicast transaction (the manager's rmtp sent one message).
	before := f.getInt("smTransportSent.0")
	var oids []string
	for i := 0; i < 128; i++ {
		fn := []string{"smAggregateSum", "smAggregateMin", "smAggregateMax", "smAggregateCount"}[i%4]
		oids = append(oids, fn+"."+smSeWeight)
	}
	vals := f.get(oids...)
	if len(vals) != 128 {
		t.Fatalf("128-varbind GET answered %d varbinds", len(vals))
	}
	for i, v := range vals {
		if strings.Contains(v, "No Such") {
			t.Errorf("varbind %d: %s", i, v)
		}
	}
	if after := f.getInt("smTransportSent.0"); after-before != 1 {
		t.Errorf("128-varbind GET sent %d rmtp messages, want 1 transaction", after-before)
	}

	// An engine that allows at most 5 refuses 6: the SET fails with its
	// error and no engine changes.
	f.startSE(n+1, 5)
	f.waitUp(n + 1)
	args[len(args)-1] = "6"
	out, err := snmp(t, "snmpset", args...)
	if err == nil || !regexp.MustCompile(`wrongValue|Bad value`).MatchString(out+err.Error()) {
		t.Errorf("SET of 6 with an engine capped at 5: err %v, out %s; want wrongValue", err, out)
	}
	for i := 1; i <= n; i++ {
		if got := f.getInt(fmt.Sprintf("smEngineProxy.%d.%s", i, smSeWeight)); got != 7 {
			t.Errorf("after the refused SET engine %d smSeWeight = %d, want still 7", i, got)
		}
	}
	if got := f.getInt(fmt.Sprintf("smEngineProxy.%d.%s", n+1, smSeWeight)); got == 6 {
		t.Errorf("the refusing engine took the value")
	}

	// The built-in agent serves each engine under context se<N> too,
	// reached with the community public@se<N>.
	out, err = snmp(t, "snmpget", "-v2c", "-c", "public@se4", "-Oqv", "-t", "3", "-r", "0", f.snmp, "1.3.6.1.2.1.1.5.0")
	if err != nil || strings.TrimSpace(out) != `"se4"` {
		t.Errorf("sysName.0 with community public@se4 = %q, %v; want \"se4\"", out, err)
	}
}

func TestFarmEngineDeathAndRestart(t *testing.T) {
	requireTool(t, "snmptrapd")
	trapPort := freeUDPPort(t)
	traps := startTrapd(t, trapPort)
	f := newFarm(t, trapPort)
	f.startManager()
	const n = 5
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)
	sumBefore := f.getInt("smAggregateSum.1.3.6.1.4.1.8072.9999.9999.42.1.3.4.0") // smSeRequests

	victim := f.ses[3]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	// The next aggregate GET answers inside the client's timeout and counts
	// the engines that answered.
	t0 := time.Now()
	got := f.getInt("smAggregateCount." + smSeWeight)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("aggregate GET with a dead engine took %v", d)
	}
	if got != n-1 && got != n {
		t.Errorf("smAggregateCount with one engine dead = %d", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(f.get("smEngineState.3")[0], "down") {
		if time.Now().After(deadline) {
			t.Fatalf("engine 3 not shown down: %v", f.get("smEngineState.3"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	traps.waitOutput(t, "smEngineDown", 10*time.Second)

	// Restarted, it keeps its row index and the farm's counter sum does
	// not go backwards.
	f.startSE(3, 1000)
	f.waitUp(n)
	if st := f.get("smEngineState.3")[0]; !strings.Contains(st, "up") {
		t.Errorf("restarted engine 3 state %s", st)
	}
	if after := f.getInt("smAggregateSum.1.3.6.1.4.1.8072.9999.9999.42.1.3.4.0"); after < sumBefore {
		t.Errorf("smAggregateSum of smSeRequests went backwards: %d -> %d", sumBefore, after)
	}
	traps.waitOutput(t, "smEngineUp", 10*time.Second)
}

// startTrapd runs a real snmptrapd on a loopback port, logging to stdout.
func startTrapd(t *testing.T, port int) *proc {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte("disableAuthorization yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mibdirs, _ := filepath.Abs("../../mib")
	std, _ := filepath.Abs("../../.cache/std-mibs")
	p := &proc{out: &syncBuffer{}}
	p.cmd = execCommand("snmptrapd", "-f", "-Lo", "-C", "-c", conf, "-M", mibdirs+":"+std+":/usr/share/snmp/mibs",
		"-m", "SERVICE-MANAGER-MIB", fmt.Sprintf("udp:127.0.0.1:%d", port))
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("snmptrapd output:\n%s", p.out.String())
		}
	})
	p.waitOutput(t, "NET-SNMP version", 10*time.Second)
	return p
}
