// Package farmtest starts a farm of real smsnmpd processes on loopback for
// the tests against real monitoring systems (test/zabbix, test/exporter):
// one level-1 manager serving the built-in SNMPv2c agent on 127.0.0.1 and
// N service engines, each a process of its own (so one can be killed and
// started again), on a multicast group and port of their own so that
// parallel runs never hear each other.
//
// It owns no product code and no test logic: it builds the binary (Main, a
// TestMain for such packages), writes the configurations, starts, kills and
// restarts processes by their PID, reads the manager over SNMP with gosnmp,
// and runs the third-party daemons those tests poll with (Daemon).
package farmtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Build compiles smsnmpd (as operators run it: no race detector) into dir
// and returns its path. Call it from TestMain.
func Build(repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "smsnmpd")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=nms-test -X main.commit=test", "./cmd/smsnmpd")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building smsnmpd: %w\n%s", err, out)
	}
	return bin, nil
}

// EngineName is the sysName each engine is configured with: what
// smEngineName must report for it.
func EngineName(id int) string { return fmt.Sprintf("farm-se%d", id) }

// ManagerID is the manager's node id, far above the engines' 1..N.
const ManagerID = 1000

// Farm is a running manager and its engines.
type Farm struct {
	t      testing.TB
	bin    string
	dir    string
	SNMP   string // the manager's built-in agent, 127.0.0.1:port
	group  string
	mgroup string
	port   int

	mu      sync.Mutex
	manager *Proc
	engines map[int]*Proc
}

// Proc is one smsnmpd process with its output kept.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    *SyncBuffer
	exited chan struct{}
}

// Start starts the manager and engines 1..n and waits until the manager
// lists every engine up. Everything is stopped at the end of t.
func Start(t testing.TB, bin string, n int) *Farm {
	t.Helper()
	g := rand.IntN(200) + 20
	f := &Farm{t: t, bin: bin, dir: t.TempDir(), SNMP: fmt.Sprintf("127.0.0.1:%d", FreeUDPPort(t)),
		group: fmt.Sprintf("239.255.%d.1", g), mgroup: fmt.Sprintf("239.255.%d.2", g),
		port: 20000 + rand.IntN(20000), engines: map[int]*Proc{}}
	f.manager = f.start("manager", f.managerConfig("manager", ManagerID, 200, f.SNMP))
	f.manager.WaitOutput(t, "built-in SNMPv2c agent serving", 15*time.Second)
	for i := 1; i <= n; i++ {
		f.StartEngine(i)
	}
	f.WaitEngines(n, 20*time.Second)
	return f
}

func (f *Farm) rmtp() string {
	return fmt.Sprintf("[rmtp]\ninterface = \"lo\"\ngroup = %q\nmanager_group = %q\nport = %d\ninsecure = true\n", f.group, f.mgroup, f.port)
}

func (f *Farm) managerConfig(name string, id, priority int, snmp string) string {
	return fmt.Sprintf(`[node]
role = "manager"
level = 1
id = %d
priority = %d
state_dir = %q

[system]
name = "farm-%s"

[snmp]
listen = "udp:%s"
ro_community = "public"
rw_community = "private"

%s
[control]
socket = "unix:%s"
`, id, priority, f.mkdir(name), name, snmp, f.rmtp(), filepath.Join(f.dir, name+".sock"))
}

func (f *Farm) engineConfig(id int) string {
	name := fmt.Sprintf("se%d", id)
	return fmt.Sprintf(`[node]
role = "se"
id = %d
state_dir = %q

[system]
name = %q

%s
[control]
socket = "unix:%s"
`, id, f.mkdir(name), EngineName(id), f.rmtp(), filepath.Join(f.dir, name+".sock"))
}

func (f *Farm) mkdir(name string) string {
	d := filepath.Join(f.dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// start writes cfg and starts smsnmpd on it.
func (f *Farm) start(name, cfg string) *Proc {
	f.t.Helper()
	path := filepath.Join(f.dir, name+".toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		f.t.Fatal(err)
	}
	p := &Proc{Name: name, out: &SyncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(f.bin, "-config", path)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// The kernel kills it if the test binary dies without its cleanups.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	f.t.Cleanup(func() {
		p.Stop()
		if f.t.Failed() {
			f.t.Logf("=== %s output:\n%s", name, Tail(p.out.String(), 8<<10))
		}
	})
	return p
}

// Stop ends the process with SIGTERM (SIGKILL after 3 s) and waits.
func (p *Proc) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Output is what the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// WaitOutput waits until the process printed s.
func (p *Proc) WaitOutput(t testing.TB, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), s) {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before printing %q:\n%s", p.Name, s, Tail(p.out.String(), 8<<10))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no %q after %v:\n%s", p.Name, s, within, Tail(p.out.String(), 8<<10))
}

// StartEngine starts engine id (again, after Kill).
func (f *Farm) StartEngine(id int) *Proc {
	f.t.Helper()
	p := f.start(fmt.Sprintf("se%d", id), f.engineConfig(id))
	f.mu.Lock()
	f.engines[id] = p
	f.mu.Unlock()
	p.WaitOutput(f.t, "rmtp: endpoint up", 15*time.Second)
	return p
}

// Kill sends SIGKILL to engine id by its PID and waits until it is gone.
func (f *Farm) Kill(id int) {
	f.t.Helper()
	f.mu.Lock()
	p := f.engines[id]
	f.mu.Unlock()
	if p == nil {
		f.t.Fatalf("no engine %d", id)
	}
	p.Kill(f.t)
}

// Manager is the first manager's process.
func (f *Farm) Manager() *Proc { return f.manager }

// StartBackup starts another manager of the farm (a lower election
// priority: it stays backup while the first one lives) with its own
// built-in agent, and returns it and that agent's address.
func (f *Farm) StartBackup(name string, id int) (*Proc, string) {
	f.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", FreeUDPPort(f.t))
	p := f.start(name, f.managerConfig(name, id, 100, addr))
	p.WaitOutput(f.t, "built-in SNMPv2c agent serving", 15*time.Second)
	return p, addr
}

// Kill sends SIGKILL to the process by its PID and waits until it is gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing %s: %v", p.Name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still running 5 s after SIGKILL", p.Name)
	}
}

// Client returns a connected gosnmp client of the manager (v2c, public).
func (f *Farm) Client() *gosnmp.GoSNMP { return f.ClientOf(f.SNMP) }

// ClientOf returns a connected gosnmp client of the agent at addr.
func (f *Farm) ClientOf(addr string) *gosnmp.GoSNMP {
	f.t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		f.t.Fatal(err)
	}
	var p uint16
	fmt.Sscan(port, &p)
	c := &gosnmp.GoSNMP{Target: host, Port: p, Community: "public", Version: gosnmp.Version2c,
		Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25, MaxOids: 60, Context: context.Background()}
	if err := c.Connect(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Conn.Close() })
	return c
}

// smEngineState's column OID (SERVICE-MANAGER-MIB): state up(1).
const smEngineStateOID = ".1.3.6.1.4.1.8072.9999.9999.42.1.2.2.1.4"

// EngineStates walks smEngineState: index -> state.
func (f *Farm) EngineStates(c *gosnmp.GoSNMP) (map[int]int, error) {
	pdus, err := c.BulkWalkAll(smEngineStateOID)
	if err != nil {
		return nil, err
	}
	out := map[int]int{}
	for _, p := range pdus {
		var idx int
		if _, err := fmt.Sscanf(strings.TrimPrefix(p.Name, smEngineStateOID+"."), "%d", &idx); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		out[idx] = int(gosnmp.ToBigInt(p.Value).Int64())
	}
	return out, nil
}

// WaitEngines waits until the manager lists want engines up.
func (f *Farm) WaitEngines(want int, within time.Duration) {
	f.t.Helper()
	c := f.Client()
	deadline := time.Now().Add(within)
	var last map[int]int
	var err error
	for time.Now().Before(deadline) {
		last, err = f.EngineStates(c)
		up := 0
		for _, s := range last {
			if s == 1 {
				up++
			}
		}
		if err == nil && up == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("%d engines up wanted after %v; smEngineState %v (%v)", want, within, last, err)
}

// FreeUDPPort returns a loopback UDP port that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// FreeTCPPort returns a loopback TCP port that was free a moment ago.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond every interval until it returns "" (done) or within
// passes; the last reason is the failure.
func WaitFor(t testing.TB, within, interval time.Duration, what string, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	reason := "never checked"
	for {
		if reason = cond(); reason == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, within, reason)
		}
		time.Sleep(interval)
	}
}
