package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// v3Node writes the configuration of a manager with the built-in agent on
// port, an SNMPv3 user "ops" (SHA-256/AES, passphrase files of mode mode)
// and its state in dir/state.
func v3Node(t *testing.T, dir string, port int, mode os.FileMode) string {
	t.Helper()
	for name, pass := range map[string]string{"ops.auth": "e2e-auth-passphrase", "ops.priv": "e2e-priv-passphrase"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pass+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "node.toml")
	body := fmt.Sprintf(`[node]
role = "manager"
id = 9
state_dir = %q

[snmp]
listen = "udp:127.0.0.1:%d"
ro_community = "public"

[[snmp.v3.user]]
name = "ops"
auth = "SHA-256"
auth_passphrase_file = "ops.auth"
priv = "AES"
priv_passphrase_file = "ops.priv"

[rmtp]
insecure = true

[control]
socket = ""
`, filepath.Join(dir, "state"), port)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func v3get(t *testing.T, target string, oids ...string) (string, error) {
	t.Helper()
	args := append([]string{"-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "e2e-auth-passphrase",
		"-x", "AES", "-X", "e2e-priv-passphrase", "-On", "-Oq", "-t", "3", "-r", "1", target}, oids...)
	return snmp(t, "snmpget", args...)
}

// TestSNMPv3Node: a node configured with an SNMPv3 user answers net-snmp's
// tools with authPriv (the walk identical to SNMPv2c's), keeps its engine
// ID in state_dir with one more boot at every start (the tools rediscover
// it by themselves), prints it with `smsnmpd engine-id`, and never shows
// a passphrase.
func TestSNMPv3Node(t *testing.T) {
	requireTool(t, "snmpget")
	dir := t.TempDir()
	port := freeUDPPort(t)
	path := v3Node(t, dir, port, 0o600)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	const boots, engineIDOID = ".1.3.6.1.6.3.10.2.1.2.0", ".1.3.6.1.6.3.10.2.1.1.0"

	p := start(t, "-config", path)
	p.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	out, err := v3get(t, target, boots, engineIDOID)
	if err != nil || !strings.Contains(out, boots+" 1\n") {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	// The walk of the whole tree is the same over SNMPv3 as over SNMPv2c
	// (sysUpTime and snmpEngineTime excepted, which move).
	walk := func(args ...string) []string {
		out, err := snmp(t, "snmpbulkwalk", append(append([]string{"-On", "-Oq", "-t", "3", "-r", "1"}, args...), target, ".1.3.6.1")...)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			// Counters and clocks move between the two walks (the snmp
			// group, usmStats, snmpEngineTime, sysUpTime): their names
			// must match, not their values.
			if oid, _, _ := strings.Cut(l, " "); strings.HasPrefix(l, ".1.3.6.1.2.1.11.") || strings.HasPrefix(l, ".1.3.6.1.6.3.") ||
				strings.HasPrefix(l, ".1.3.6.1.2.1.1.3.0 ") {
				l = oid
			}
			lines = append(lines, l)
		}
		return lines
	}
	v2 := walk("-v2c", "-c", "public")
	v3 := walk("-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "e2e-auth-passphrase", "-x", "AES", "-X", "e2e-priv-passphrase")
	if len(v2) < 20 || strings.Join(v2, "\n") != strings.Join(v3, "\n") {
		t.Errorf("walks differ:\nv2c:\n%s\nv3:\n%s", strings.Join(v2, "\n"), strings.Join(v3, "\n"))
	}

	cmd := execCommand(binary, "engine-id", "-config", path)
	id, err := cmd.Output()
	if err != nil {
		t.Fatalf("engine-id: %v", err)
	}
	hexID := strings.TrimPrefix(strings.TrimSpace(string(id)), "0x")
	served := func(out string) bool {
		return strings.Contains(strings.ToLower(strings.Join(strings.Fields(out), "")), hexID)
	}
	if len(hexID) != 34 || !served(out) {
		t.Errorf("engine-id printed %q; the agent serves\n%s", id, out)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 0)
	p2 := start(t, "-config", path)
	p2.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	out, err = v3get(t, target, boots, engineIDOID)
	if err != nil || !strings.Contains(out, boots+" 2\n") || !served(out) {
		t.Errorf("after a restart: %v\n%s", err, out)
	}
	for _, o := range []string{p.out.String(), p2.out.String()} {
		if strings.Contains(o, "e2e-auth-passphrase") || strings.Contains(o, "e2e-priv-passphrase") {
			t.Errorf("a passphrase is in the log:\n%s", o)
		}
		if !strings.Contains(o, "SNMPv3 engine started") {
			t.Errorf("the engine start is not logged:\n%s", o)
		}
	}
}

// A passphrase file others can read is a configuration error: exit code
// 3, before anything listens.
func TestSNMPv3PassphraseFileMode(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "-config", v3Node(t, dir, freeUDPPort(t), 0o644))
	waitExit(t, p, 3)
	if !strings.Contains(p.out.String(), "ops.auth") || !strings.Contains(p.out.String(), "0600") {
		t.Errorf("the error does not name the file and the mode wanted:\n%s", p.out.String())
	}
}
