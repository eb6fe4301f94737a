package snmp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// These tests run net-snmp's command-line tools (Debian package snmp, and
// snmptrapd) against the agent, the way NMS operators will.

// needTool skips the test when a tool is missing, except under CI=true
// where a missing tool is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found and CI=true: install Debian packages snmp and snmptrapd", name)
	}
	t.Skipf("%s not found: install Debian packages snmp and snmptrapd to run this test", name)
	return ""
}

// snmpCmd runs a net-snmp tool with no MIBs loaded, numeric output and a
// bounded run time. It returns stdout, stderr and the error.
func snmpCmd(t *testing.T, tool string, args ...string) (string, string, error) {
	t.Helper()
	path := needTool(t, tool)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// -M /dev/null -m "": no MIB files, so output is numeric and no MIB
	// warnings; -On numeric OIDs, -Oq "OID value", -Ot raw timeticks,
	// -Oe numeric enums.
	full := append([]string{"-M", "/dev/null", "-m", "", "-On", "-Oq", "-Ot", "-Oe"}, args...)
	cmd := exec.CommandContext(ctx, path, full...)
	cmd.Env = append(os.Environ(), "SNMPCONFPATH=/nonexistent", "MIBS=")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// netsnmpText renders a value as net-snmp prints it with -Oq -Ot -Oe.
func netsnmpText(v smi.Value) string {
	switch v.Type {
	case smi.TypeInteger:
		return strconv.FormatInt(v.Int, 10)
	case smi.TypeOctetString:
		return strconv.Quote(string(v.Bytes))
	case smi.TypeObjectIdentifier:
		return "." + v.OID.String()
	case smi.TypeIPAddress:
		return fmt.Sprintf("%d.%d.%d.%d", v.Bytes[0], v.Bytes[1], v.Bytes[2], v.Bytes[3])
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks, smi.TypeCounter64:
		return strconv.FormatUint(v.Uint, 10)
	case smi.TypeNoSuchObject:
		return "No Such Object available on this agent at this OID"
	case smi.TypeNoSuchInstance:
		return "No Such Instance currently exists at this OID"
	}
	return v.String()
}

type line struct{ oid, val string }

func parseLines(t *testing.T, out string) []line {
	t.Helper()
	var ls []line
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		oid, val, _ := strings.Cut(sc.Text(), " ")
		ls = append(ls, line{oid, val})
	}
	return ls
}

// checkWalk compares a tool's walk output with the reference varbinds:
// same OIDs in strictly increasing order, same values.
func checkWalk(t *testing.T, out string, want []smi.VarBind) {
	t.Helper()
	got := parseLines(t, out)
	// The test tree is the last registration, so the walk ends with
	// endOfMibView (noSuchName in SNMPv1), which the tools print as a last
	// line of their own.
	if n := len(got); n > 0 && (strings.HasPrefix(got[n-1].val, "No more variables left in this MIB View") ||
		got[n-1].oid == "End" && got[n-1].val == "of MIB") {
		got = got[:n-1]
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d; last line: %v", len(got), len(want), got[len(got)-1])
	}
	var prev smi.OID
	for i, l := range got {
		o, err := smi.ParseOID(l.oid)
		if err != nil {
			t.Fatalf("line %d: %q", i, l.oid)
		}
		if prev != nil && o.Compare(prev) <= 0 {
			t.Fatalf("line %d: OID %v not increasing after %v", i, o, prev)
		}
		prev = o
		if !o.Equal(want[i].Name) || l.val != netsnmpText(want[i].Value) {
			t.Fatalf("line %d: %s %s, want %v %s", i, l.oid, l.val, want[i].Name, netsnmpText(want[i].Value))
		}
	}
}

func (s *served) target() string { return fmt.Sprintf("udp:127.0.0.1:%d", s.addr.Port) }

func TestNetSNMPWalks(t *testing.T) {
	s := serve(t, testConfig())
	want := reference(t, s.tree.Tree, agenttest.Base)
	root := "." + agenttest.Base.String()
	t.Run("snmpwalk v2c", func(t *testing.T) {
		out, errOut, err := snmpCmd(t, "snmpwalk", "-v2c", "-c", "public", s.target(), root)
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		checkWalk(t, out, want)
	})
	for _, reps := range []string{"10", "1000"} {
		t.Run("snmpbulkwalk -Cr"+reps, func(t *testing.T) {
			out, errOut, err := snmpCmd(t, "snmpbulkwalk", "-v2c", "-c", "public", "-Cr"+reps, s.target(), root)
			if err != nil {
				t.Fatalf("%v: %s", err, errOut)
			}
			checkWalk(t, out, want)
		})
	}
	t.Run("snmpwalk v1 skips Counter64", func(t *testing.T) {
		var v1 []smi.VarBind
		for _, vb := range want {
			if vb.Value.Type != smi.TypeCounter64 {
				v1 = append(v1, vb)
			}
		}
		out, errOut, err := snmpCmd(t, "snmpwalk", "-v1", "-c", "public", s.target(), root)
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		checkWalk(t, out, v1)
	})
}

// TestNetSNMPBulkTruncated: with a 1400-byte message size, a GETBULK asking
// for far more is truncated and snmpbulkwalk still gets everything.
func TestNetSNMPBulkTruncated(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageSize = 1400
	s := serve(t, cfg)
	want := reference(t, s.tree.Tree, agenttest.SparseTable)
	out, errOut, err := snmpCmd(t, "snmpbulkwalk", "-v2c", "-c", "public", "-Cr5000", s.target(), "."+agenttest.SparseTable.String())
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	checkWalk(t, out, want)
	if s.a.Counters().BulkTruncated == 0 {
		t.Error("no response was truncated")
	}
	// One GETBULK by snmpbulkget: an answer, not an error.
	out, errOut, err = snmpCmd(t, "snmpbulkget", "-v2c", "-c", "public", "-Cr5000", s.target(), "."+agenttest.SparseTable.String())
	if err != nil || len(parseLines(t, out)) < 10 {
		t.Fatalf("snmpbulkget: %v: %s %.300s", err, errOut, out)
	}
}

func TestNetSNMPGet60(t *testing.T) {
	s := serve(t, testConfig())
	var args []string
	var want []smi.VarBind
	for i := 0; i < 60; i++ {
		var o smi.OID
		switch i % 3 {
		case 0:
			o = agenttest.SparseTable.Append(3, agenttest.SparseIndex(i))
		case 1:
			o = agenttest.SparseTable.Append(1, uint32(7*i+3)) // a gap
		default:
			o = agenttest.Base.Append(99, uint32(i), 0) // no such object
		}
		args = append(args, "."+o.String())
		vals, err := s.tree.Get(context.Background(), []smi.OID{o})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, vals[0])
	}
	out, errOut, err := snmpCmd(t, "snmpget", append([]string{"-v2c", "-c", "public", s.target()}, args...)...)
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	got := parseLines(t, out)
	if len(got) != 60 {
		t.Fatalf("%d answers:\n%s", len(got), out)
	}
	for i, l := range got {
		if l.oid != "."+want[i].Name.String() || l.val != netsnmpText(want[i].Value) {
			t.Errorf("%d: %s %s, want %v %s", i, l.oid, l.val, want[i].Name, netsnmpText(want[i].Value))
		}
	}
}

func TestNetSNMPBadCommunity(t *testing.T) {
	s := serve(t, testConfig())
	_, errOut, err := snmpCmd(t, "snmpget", "-v2c", "-c", "guess", "-r", "0", "-t", "0.5", s.target(), "."+agenttest.ScalarInt.Append(0).String())
	if err == nil || !strings.Contains(errOut, "Timeout") {
		t.Errorf("bad community: %v %q", err, errOut)
	}
	if c := s.a.Counters(); c.InBadCommunityNames != 1 || c.OutResponses != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestNetSNMPSet(t *testing.T) {
	s := serve(t, testConfig())
	wi := "." + agenttest.WritableInt.Append(0).String()
	ws := "." + agenttest.WritableStr.Append(0).String()
	for _, v := range []string{"-v1", "-v2c"} {
		out, errOut, err := snmpCmd(t, "snmpset", v, "-c", "private", s.target(), wi, "i", "321", ws, "s", "set by "+v)
		if err != nil || s.tree.WritableIntValue() != 321 || s.tree.WritableStrValue() != "set by "+v {
			t.Fatalf("%s: %v %s %s", v, err, out, errOut)
		}
	}
	// One varbind out of range: the whole SET fails, nothing changes.
	_, errOut, err := snmpCmd(t, "snmpset", "-v2c", "-c", "private", s.target(), wi, "i", "5", ws, "s", strings.Repeat("x", 40))
	if err == nil || !strings.Contains(errOut, "wrongLength") || s.tree.WritableIntValue() != 321 {
		t.Errorf("failing SET: %v %q, int %d", err, errOut, s.tree.WritableIntValue())
	}
	_, errOut, err = snmpCmd(t, "snmpset", "-v1", "-c", "private", s.target(), ws, "s", "ok", wi, "i", "5000")
	if err == nil || !strings.Contains(errOut, "badValue") || !strings.Contains(errOut, "Failed object: "+wi) ||
		s.tree.WritableIntValue() != 321 || s.tree.WritableStrValue() != "set by -v2c" {
		t.Errorf("failing v1 SET: %v %q, int %d", err, errOut, s.tree.WritableIntValue())
	}
	// The read-only community cannot SET.
	_, errOut, err = snmpCmd(t, "snmpset", "-v2c", "-c", "public", s.target(), wi, "i", "9")
	if err == nil || !strings.Contains(errOut, "noAccess") || s.tree.WritableIntValue() != 321 {
		t.Errorf("ro SET: %v %q", err, errOut)
	}
}

// startTrapd starts a real snmptrapd on a loopback port with its own
// configuration (lines added to a base that loads no MIBs and logs each
// notification as TRAP <varbinds>), and returns its address and log file.
// It is stopped, by its PID, when the test ends.
func startTrapd(t *testing.T, lines ...string) (string, string) {
	t.Helper()
	trapd := needTool(t, "snmptrapd")
	dir := t.TempDir()
	port := freeUDPPort(t)
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(append([]string{
		"[snmp] mibs :",
		"[snmp] persistentDir " + filepath.Join(dir, "persist"),
		"[snmp] noPersistentLoad yes",
		"[snmp] noPersistentSave yes",
		"doNotRetainNotificationLogs yes",
		"format2 TRAP %V~%v\\n",
	}, append(lines, "")...), "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(dir, "trapd.log")
	pidf := filepath.Join(dir, "trapd.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, trapd, "-f", "-Lf", logf, "-C", "-c", conf, "-p", pidf, "-On", "-M", "/dev/null",
		fmt.Sprintf("udp:127.0.0.1:%d", port))
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+dir, "MIBS=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the PID we started, nothing else
		_ = cmd.Wait()
		cancel()
	})
	// Bound: it logs its banner once the socket is bound.
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(logf); strings.Contains(string(b), "NET-SNMP version") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("127.0.0.1:%d", port), logf
}

// TestNetSNMPTrap sends a notification to a real snmptrapd started on a
// loopback port with its own configuration.
func TestNetSNMPTrap(t *testing.T) {
	addr, logf := startTrapd(t, "authCommunity log traps")
	cfg := testConfig()
	cfg.TrapSinks = []string{addr}
	cfg.TrapCommunity = config.NewSecret("traps")
	cfg.SysUpTime = func() uint32 { return 4242 }
	h := newHarness(t, cfg)
	trapOID := smi.MustParseOID("1.3.6.1.4.1.8072.9999.4242.0.1")
	extra := []smi.VarBind{
		{Name: agenttest.ScalarC64.Append(0), Value: smi.Counter64(agenttest.C64Base)},
		{Name: agenttest.ScalarString.Append(0), Value: smi.String("hello trap")},
	}
	// snmptrapd needs a moment to bind: resend until it logs, bounded.
	var logged string
	for i := 0; i < 50 && !strings.Contains(logged, "hello trap"); i++ {
		if err := h.a.Notify(context.Background(), trapOID, extra); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		b, _ := os.ReadFile(logf)
		logged = string(b)
	}
	for _, wantPart := range []string{
		".1.3.6.1.2.1.1.3.0 = Timeticks: (4242)",
		".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.4.1.8072.9999.4242.0.1",
		"." + agenttest.ScalarC64.Append(0).String() + " = Counter64: " + strconv.FormatUint(agenttest.C64Base, 10),
		`"hello trap"`,
	} {
		if !strings.Contains(logged, wantPart) {
			t.Errorf("snmptrapd log lacks %q:\n%s", wantPart, logged)
		}
	}
	if c := h.a.Counters(); c.OutTraps == 0 || c.TrapErrors != 0 {
		t.Errorf("counters %+v", c)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
