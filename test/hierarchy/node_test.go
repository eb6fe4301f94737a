package hierarchy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The topology of issue 8: 3 CDNs x 2 data centers x 1 farm x 2 SEs.
const (
	cdns        = 3
	dcsPerCDN   = 2
	sesPerFarm  = 2
	keysPerSE   = 3
	failoverCDN = 1 // the data center (1,1) has a level-2 BSM
	failoverDC  = 1
)

// Ports and groups. Every LAN is its own bridge, so the same groups on
// every LAN never meet.
const (
	farmGroup, farmMgrGroup = "239.255.77.1", "239.255.77.2"
	farmPort                = 7730
	dcGroup, dcMgrGroup     = "239.255.80.1", "239.255.80.2" // the level-2 SM farm of a data center (Fig 4)
	dcPort                  = 7740
	l2ParentPort            = 7741 // a level-2 manager's unicast link to level 3
	l3Port                  = 7750 // level 3's own group, unicast
	l3ParentPort            = 7751 // a level-3 manager's unicast link to level 4
	l4Port                  = 7760 // level 4's own group, unicast
	snmpPort                = 1161
)

// kind is what a process plays.
type kind int

const (
	kindSE kind = iota
	kindL1
	kindL2
	kindL3
	kindL4
)

// node is one smsnmpd process of the tree.
type node struct {
	id       uint32
	kind     kind
	level    int
	priority int
	cdn, dc  int
	se       int // 1..2 for an SE
	backup   bool
	lan      *lan
	ip       string
	ns       string
	dir      string // config, state, log
	cfg      string
	sock     string
	log      string
	cmd      *exec.Cmd
	exited   chan struct{}
	killed   bool // by the test, on purpose
}

func (n *node) name() string {
	switch n.kind {
	case kindSE:
		return fmt.Sprintf("SE %d (%d,%d,%d)", n.id, n.cdn, n.dc, n.se)
	default:
		role := "SM"
		if n.backup {
			role = "BSM"
		}
		return fmt.Sprintf("level-%d %s %d", n.level, role, n.id)
	}
}

// Node ids, globally unique and stable, readable in logs: an SE is
// CDN*1000 + DC*100 + its number, a manager ends in 50 (level 1), 80 or
// 81 (level 2 SM, BSM), 900 (level 3).
func seID(c, d, e int) uint32 { return uint32(c*1000 + d*100 + e) }
func l1ID(c, d int) uint32    { return uint32(c*1000 + d*100 + 50) }
func l2ID(c, d int) uint32    { return uint32(c*1000 + d*100 + 80) }
func l2BID(c, d int) uint32   { return uint32(c*1000 + d*100 + 81) }
func l3ID(c int) uint32       { return uint32(c*1000 + 900) }

const l4ID = 9000

// tree is the whole hierarchy of one run.
type tree struct {
	t       *testing.T
	net     *network
	dir     string
	keyFile string
	nodes   map[uint32]*node
	order   []*node // start order: top down
	// l3Forward is level 3's directory.forward ("summary" or "digest").
	l3Forward string
}

func (tr *tree) node(id uint32) *node {
	n := tr.nodes[id]
	if n == nil {
		tr.t.Fatalf("no node %d in the tree", id)
	}
	return n
}

// newTree lays out the LANs and nodes and writes every configuration; it
// starts nothing.
func newTree(t *testing.T, nw *network, l3Forward string) *tree {
	t.Helper()
	tr := &tree{t: t, net: nw, dir: t.TempDir(), nodes: map[uint32]*node{}, l3Forward: l3Forward}
	tr.writeKey()
	// check-config wants every location id set (1..); a level-3 or
	// level-4 manager's unit keeps only what its level names, so the
	// data center (and CDN) given to them is never used.
	l4 := nw.addLAN("l4", "10.9.9")
	tr.add(&node{id: l4ID, kind: kindL4, level: 4, priority: 200, cdn: 1, dc: 1, lan: l4}, 1)
	for c := 1; c <= cdns; c++ {
		cl := nw.addLAN(fmt.Sprintf("c%d", c), fmt.Sprintf("10.%d.100", c))
		tr.add(&node{id: l3ID(c), kind: kindL3, level: 3, priority: 200, cdn: c, dc: 1, lan: cl}, 1)
	}
	for c := 1; c <= cdns; c++ {
		for d := 1; d <= dcsPerCDN; d++ {
			dl := nw.addLAN(fmt.Sprintf("d%d%d", c, d), fmt.Sprintf("10.%d.%d", c, d))
			tr.add(&node{id: l2ID(c, d), kind: kindL2, level: 2, priority: 200, cdn: c, dc: d, lan: dl}, 80)
			if c == failoverCDN && d == failoverDC {
				tr.add(&node{id: l2BID(c, d), kind: kindL2, level: 2, priority: 100, cdn: c, dc: d, lan: dl, backup: true}, 81)
			}
			tr.add(&node{id: l1ID(c, d), kind: kindL1, level: 1, priority: 200, cdn: c, dc: d, lan: dl}, 50)
			for e := 1; e <= sesPerFarm; e++ {
				tr.add(&node{id: seID(c, d, e), kind: kindSE, level: 1, cdn: c, dc: d, se: e, lan: dl}, e)
			}
		}
	}
	for _, n := range tr.order {
		n.cfg = filepath.Join(n.dir, "smsnmpd.toml")
		if err := os.WriteFile(n.cfg, []byte(tr.config(n)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func (tr *tree) add(n *node, host int) {
	tr.t.Helper()
	n.ns = tr.net.addHost(n.lan, n.id, host)
	n.ip = n.lan.addr(host)
	n.dir = filepath.Join(tr.dir, fmt.Sprint(n.id))
	if err := os.MkdirAll(filepath.Join(n.dir, "state"), 0o700); err != nil {
		tr.t.Fatal(err)
	}
	n.sock = filepath.Join(tr.dir, fmt.Sprintf("%d.sock", n.id))
	n.log = filepath.Join(n.dir, "smsnmpd.log")
	tr.nodes[n.id] = n
	tr.order = append(tr.order, n)
}

// writeKey writes the group key every node shares (rmtp/keys.go format).
func (tr *tree) writeKey() {
	tr.t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		tr.t.Fatal(err)
	}
	tr.keyFile = filepath.Join(tr.dir, "rmtp.key")
	if err := os.WriteFile(tr.keyFile, []byte("# hierarchy test key\n1 "+hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		tr.t.Fatal(err)
	}
}

// config renders a node's TOML, wired as DESIGN.md §4 says: multicast inside a
// LAN (a farm; a data center's level-2 SM farm), unicast between LANs.
func (tr *tree) config(n *node) string {
	var b strings.Builder
	role := "manager"
	if n.kind == kindSE {
		role = "se"
	}
	fmt.Fprintf(&b, `[node]
role = %q
level = %d
id = %d
priority = %d
cdn = %d
datacenter = %d
farm = 1
state_dir = %q

[log]
level = "info"

[control]
socket = "unix:%s"
`, role, n.level, n.id, n.priority, n.cdn, n.dc, filepath.Join(n.dir, "state"), n.sock)
	if n.kind != kindSE {
		fmt.Fprintf(&b, `
[snmp]
listen = "udp:%s:%d"
ro_community = "public"
`, n.ip, snmpPort)
	}
	fmt.Fprintf(&b, "\n[rmtp]\ninterface = \"eth0\"\nkey_file = %q\n", tr.keyFile)
	switch n.kind {
	case kindSE, kindL1:
		fmt.Fprintf(&b, "group = %q\nmanager_group = %q\nport = %d\n", farmGroup, farmMgrGroup, farmPort)
	case kindL2:
		fmt.Fprintf(&b, "group = %q\nmanager_group = %q\nport = %d\n", dcGroup, dcMgrGroup, dcPort)
	case kindL3:
		var peers []string
		for _, m := range tr.order {
			if m.kind == kindL2 && m.cdn == n.cdn {
				peers = append(peers, fmt.Sprintf("%q", fmt.Sprintf("udp:%s:%d", m.ip, l2ParentPort)))
			}
		}
		fmt.Fprintf(&b, "mode = \"unicast\"\nlisten = \"udp:%s:%d\"\npeers = [%s]\n", n.ip, l3Port, strings.Join(peers, ", "))
	case kindL4:
		var peers []string
		for _, m := range tr.order {
			if m.kind == kindL3 {
				peers = append(peers, fmt.Sprintf("%q", fmt.Sprintf("udp:%s:%d", m.ip, l3ParentPort)))
			}
		}
		fmt.Fprintf(&b, "mode = \"unicast\"\nlisten = \"udp:%s:%d\"\npeers = [%s]\n", n.ip, l4Port, strings.Join(peers, ", "))
	}
	switch n.kind {
	case kindL1:
		fmt.Fprintf(&b, `
[rmtp.parent]
mode = "multicast"
interface = "eth0"
group = %q
manager_group = %q
port = %d

[directory]
forward = "full"
`, dcGroup, dcMgrGroup, dcPort)
	case kindL2:
		fmt.Fprintf(&b, `
[rmtp.parent]
mode = "unicast"
listen = "udp:%s:%d"
peers = ["udp:%s:%d"]

[directory]
forward = "full"
`, n.ip, l2ParentPort, tr.node(l3ID(n.cdn)).ip, l3Port)
	case kindL3:
		fmt.Fprintf(&b, `
[rmtp.parent]
mode = "unicast"
listen = "udp:%s:%d"
peers = ["udp:%s:%d"]

[directory]
forward = %q
`, n.ip, l3ParentPort, tr.node(l4ID).ip, l4Port, tr.l3Forward)
	case kindL4:
		b.WriteString(`
[rmtp.parent]
mode = "none"

[directory]
forward = "none"
`)
	}
	return b.String()
}

// checkConfigs runs `smsnmpd check-config` on every file and fails with
// what it said about each one it rejects.
func (tr *tree) checkConfigs() {
	tr.t.Helper()
	var bad []string
	for _, n := range tr.order {
		out, err := exec.Command(binary, "check-config", n.cfg).CombinedOutput()
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s (%s): %v\n%s\n--- file:\n%s", n.name(), n.cfg, err, out, tr.config(n)))
		}
	}
	if len(bad) > 0 {
		tr.t.Fatalf("check-config rejected %d of %d configurations; first:\n%s", len(bad), len(tr.order), bad[0])
	}
}

// start starts n in its namespace (ip execs in place: the PID is the
// daemon's own), output to its log file. It is killed at cleanup.
func (tr *tree) start(n *node) {
	tr.t.Helper()
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tr.t.Fatal(err)
	}
	defer f.Close()
	n.cmd = exec.Command("ip", "netns", "exec", n.ns, binary, "-config", n.cfg)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	// If the test binary dies without its cleanups (a go test timeout
	// panics), the kernel kills the daemons: ip execs in place, so the
	// daemon keeps this parent-death signal.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		tr.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	cmd, exited := n.cmd, n.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	tr.t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
}

// kill sends SIGKILL to n by its PID and waits for it to be gone.
func (tr *tree) kill(n *node) {
	tr.t.Helper()
	n.killed = true
	if err := n.cmd.Process.Kill(); err != nil {
		tr.t.Fatalf("killing %s: %v", n.name(), err)
	}
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		tr.t.Fatalf("%s still running 5 s after SIGKILL", n.name())
	}
}

// startAll starts the tree top down (parents first, so children find them)
// and waits until every control socket answers.
func (tr *tree) startAll() {
	tr.t.Helper()
	for _, n := range tr.order {
		tr.start(n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range tr.order {
		for {
			if _, err := os.Stat(n.sock); err == nil {
				break
			}
			select {
			case <-n.exited:
				tr.t.Fatalf("%s exited at start: %v", n.name(), n.cmd.ProcessState)
			default:
			}
			if time.Now().After(deadline) {
				tr.t.Fatalf("%s: no control socket %s after 20 s", n.name(), n.sock)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// managers is every node but the SEs, in start order.
func (tr *tree) managers() []*node {
	var ms []*node
	for _, n := range tr.order {
		if n.kind != kindSE {
			ms = append(ms, n)
		}
	}
	return ms
}

// checkAlive fails for every node that exited without the test killing it
// (a crash shows here with its exit status; its log is dumped at the end).
func (tr *tree) checkAlive() {
	tr.t.Helper()
	for _, n := range tr.order {
		if n.killed || n.exited == nil {
			continue
		}
		select {
		case <-n.exited:
			tr.t.Errorf("%s exited on its own: %v (log %s)", n.name(), n.cmd.ProcessState, n.log)
		default:
		}
	}
}

// dumpLogs prints every process's log, on failure only.
func (tr *tree) dumpLogs() {
	if !tr.t.Failed() {
		return
	}
	for _, n := range tr.order {
		b, err := os.ReadFile(n.log)
		if err != nil {
			tr.t.Logf("=== %s: %v", n.name(), err)
			continue
		}
		tr.t.Logf("=== %s (%s, log %s):\n%s", n.name(), n.ns, n.log, tailBytes(b, 16<<10))
	}
}

// tailBytes keeps the last max bytes: a log of a long run would drown the
// failure.
func tailBytes(b []byte, max int) string {
	if len(b) <= max {
		return string(b)
	}
	b = b[len(b)-max:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return "[...]\n" + string(b)
}

// snmpGet reads one OID (numeric) from a manager's built-in agent with
// net-snmp's snmpget, run inside the manager's namespace; it returns the
// value as snmpget prints it after "= TYPE: ".
func (tr *tree) snmpGet(n *node, oid string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Standard output only: net-snmp's notices on standard error (a
	// persistent directory created on a fresh machine) are no value.
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.ns, "snmpget", "-v2c", "-c", "public", "-On", "-Oe",
		"-t", "1", "-r", "2", fmt.Sprintf("%s:%d", n.ip, snmpPort), oid)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("snmpget %s on %s: %w: %s", oid, n.name(), err, errOut.String())
	}
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:], nil
	}
	return s, nil
}

// cli runs an smsnmpd CLI command against n's control socket from the root
// namespace (a unix socket is not isolated by network namespaces). err is
// set only when the command could not run or was killed at its deadline;
// an exit code is a result. Safe off the test goroutine.
func (tr *tree) cli(n *node, cmd string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{cmd, "-socket", "unix:" + n.sock}, args...)
	c := exec.CommandContext(ctx, binary, argv...)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		code, err = ee.ExitCode(), nil
	}
	if err != nil {
		err = fmt.Errorf("smsnmpd %s: %w", strings.Join(argv, " "), err)
	}
	return o.String(), e.String(), code, err
}

// publish publishes keys on an SE; any failure is fatal.
func (tr *tree) publish(se *node, keys ...string) {
	tr.t.Helper()
	out, errOut, code, err := tr.cli(se, "publish", append([]string{"-size", "4096"}, keys...)...)
	if err != nil {
		tr.t.Fatal(err)
	}
	if code != 0 {
		tr.t.Fatalf("publish on %s: exit %d: %s%s", se.name(), code, out, errOut)
	}
}

func (tr *tree) unpublish(se *node, keys ...string) {
	tr.t.Helper()
	out, errOut, code, err := tr.cli(se, "unpublish", keys...)
	if err != nil {
		tr.t.Fatal(err)
	}
	if code != 0 {
		tr.t.Fatalf("unpublish on %s: exit %d: %s%s", se.name(), code, out, errOut)
	}
}

// location, hit, step and resolution mirror `smsnmpd lookup -json`.
type location struct {
	CDN        uint32 `json:"cdn"`
	DataCenter uint32 `json:"data_center"`
	Farm       uint32 `json:"farm"`
	Engine     uint32 `json:"engine"`
}

func (l location) String() string {
	return fmt.Sprintf("%d/%d/%d/%d", l.CDN, l.DataCenter, l.Farm, l.Engine)
}

func seLocation(c, d, e int) location {
	return location{CDN: uint32(c), DataCenter: uint32(d), Farm: 1, Engine: seID(c, d, e)}
}

type hit struct {
	ID       uint32   `json:"id"`
	Location location `json:"location"`
	Size     uint64   `json:"size"`
	Down     bool     `json:"down"`
	Hops     int      `json:"hops"`
}

type step struct {
	Node      uint32   `json:"node"`
	Level     int      `json:"level"`
	Unit      location `json:"unit"`
	Via       string   `json:"via"`
	Hits      int      `json:"hits"`
	Summaries int      `json:"summaries"`
	Error     string   `json:"error"`
}

type resolution struct {
	Key        string `json:"key"`
	Hits       []hit  `json:"hits"`
	Unresolved []hit  `json:"unresolved"`
	Path       []step `json:"path"`
}

func (r resolution) locations() []location {
	out := make([]location, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = h.Location
	}
	return out
}

func (r resolution) pathString() string {
	var s []string
	for _, p := range r.Path {
		x := fmt.Sprintf("%s(L%d %d)", p.Via, p.Level, p.Node)
		if p.Error != "" {
			x += "[" + p.Error + "]"
		}
		s = append(s, x)
	}
	return strings.Join(s, " -> ")
}

// lookup runs `smsnmpd lookup -json [-local] KEY` on a manager; any
// error is fatal.
func (tr *tree) lookup(m *node, key string, local bool) (resolution, int) {
	tr.t.Helper()
	r, code, err := tr.lookupE(m, key, local)
	if err != nil {
		tr.t.Fatal(err)
	}
	return r, code
}

// lookupE is lookup returning its error: exit 0 (hits), 1 (a miss) and
// 4 (a miss with a level that did not answer) carry the JSON answer, and
// the exit code must agree with it. Safe off the test goroutine.
func (tr *tree) lookupE(m *node, key string, local bool) (resolution, int, error) {
	args := []string{"-json"}
	if local {
		args = append(args, "-local")
	}
	var r resolution
	out, errOut, code, err := tr.cli(m, "lookup", append(args, key)...)
	switch {
	case err != nil:
		return r, code, err
	case code != 0 && code != 1 && code != 4:
		return r, code, fmt.Errorf("lookup %v %q on %s: exit %d\nstdout: %s\nstderr: %s", args, key, m.name(), code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, code, fmt.Errorf("lookup %v %q on %s: exit %d, output not JSON: %v\nstdout: %s\nstderr: %s", args, key, m.name(), code, err, out, errOut)
	}
	failed := false
	for _, s := range r.Path {
		failed = failed || s.Error != ""
	}
	want := 0
	switch {
	case len(r.Hits) == 0 && failed:
		want = 4
	case len(r.Hits) == 0:
		want = 1
	}
	if code != want {
		return r, code, fmt.Errorf("lookup %v %q on %s: exit %d with %d hits, failed step %v (want 0 with hits, 1 on a miss, 4 on a miss with a failed step)", args, key, m.name(), code, len(r.Hits), failed)
	}
	return r, code, nil
}

// digest is `smsnmpd digest -json [-unit C/D/F/E]` on a node.
type digest struct {
	Digest  string `json:"digest"`
	Entries uint64 `json:"entries"`
}

func (tr *tree) digest(n *node, unit string) digest {
	tr.t.Helper()
	args := []string{"-json"}
	if unit != "" {
		args = append(args, "-unit", unit)
	}
	out, errOut, code, err := tr.cli(n, "digest", args...)
	if err != nil {
		tr.t.Fatal(err)
	}
	if code != 0 {
		tr.t.Fatalf("digest %v on %s: exit %d\nstdout: %s\nstderr: %s", args, n.name(), code, out, errOut)
	}
	var d digest
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		tr.t.Fatalf("digest %v on %s: output not JSON: %v\n%s", args, n.name(), err, out)
	}
	return d
}
