package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersionPrintsVersionAndCommit(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "e2e-test") || !strings.Contains(string(out), "abc1234") {
		t.Errorf("version output %q lacks version e2e-test and commit abc1234", out)
	}
}

func TestCheckConfigAcceptsTheShippedExamples(t *testing.T) {
	files, _ := filepath.Glob("../../etc/*.toml")
	if len(files) < 4 {
		t.Fatalf("expected etc/smsnmpd.toml and the manager/SE examples, found %v", files)
	}
	for _, f := range files {
		out, err := exec.Command(binary, "check-config", f).CombinedOutput()
		if err != nil {
			t.Errorf("check-config %s: %v\n%s", f, err, out)
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func TestBadConfigNamesFileLineAndKeyAndStartsNothing(t *testing.T) {
	port := freeUDPPort(t)
	dir := t.TempDir()
	cases := []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{"misspelled key", fmt.Sprintf(`[node]
role = "manager"
id = 1

[snmp]
listen = "udp:127.0.0.1:%d"
ro_comunity = "hunter2-secret"
`, port), []string{"misspelled.toml", ":7", "snmp.ro_comunity"}},
		{"wrong type", fmt.Sprintf(`[node]
role = "manager"
id = "one"

[snmp]
listen = "udp:127.0.0.1:%d"
ro_community = "hunter2-secret"
`, port), []string{"wrong-type.toml", ":3", "node.id"}},
		{"invalid value", fmt.Sprintf(`[node]
role = "manager"
id = 1
level = 9

[snmp]
listen = "udp:127.0.0.1:%d"
ro_community = "hunter2-secret"
`, port), []string{"invalid-value.toml", "node.level"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
			path = strings.Replace(path, "misspelled-key", "misspelled", 1)
			if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"check-config", path}, {"-config", path}} {
				out, err := exec.Command(binary, args...).CombinedOutput()
				if code := exitCode(err); code == 0 || code == -1 {
					t.Fatalf("smsnmpd %v: exit %d, want non-zero\n%s", args, code, out)
				}
				for _, w := range c.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("smsnmpd %v: output lacks %q:\n%s", args, w, out)
					}
				}
				if strings.Contains(string(out), "hunter2-secret") {
					t.Errorf("smsnmpd %v printed a community string:\n%s", args, out)
				}
				if strings.Contains(string(out), "serving") {
					t.Errorf("smsnmpd %v started serving with a bad config:\n%s", args, out)
				}
			}
		})
	}
}

// The demo's printed commands must work exactly as printed.
func TestDemoPrintsCommandsThatWork(t *testing.T) {
	requireTool(t, "snmpwalk")
	port := freeUDPPort(t)
	p := start(t, "demo", "--snmp", fmt.Sprintf("udp:127.0.0.1:%d", port), "--rmtp-port", fmt.Sprint(freeUDPPort(t)))
	p.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	// The four demo engines announce themselves within a few heartbeats.
	p.waitOutput(t, "engine=4", 10*time.Second)
	// The commands come once the manager won its election and the backup
	// runs (their last line is the lookup), which on a loaded machine is
	// later than the engines' first heartbeats.
	p.waitOutput(t, " lookup -socket unix:", 10*time.Second)
	var cmds []string
	for _, line := range strings.Split(p.out.String(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "snmp") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) < 2 {
		t.Fatalf("demo printed %d commands, want at least 2:\n%s", len(cmds), p.out.String())
	}
	if !strings.Contains(p.out.String(), "snmpget -v3 -l authPriv -u demo -a SHA-256") {
		t.Errorf("demo printed no SNMPv3 authPriv command:\n%s", p.out.String())
	}
	// With the standard MIB texts in place (make test fetches them) the
	// demo must show names, not numbers.
	if _, err := os.Stat(filepath.Join(repoRoot, ".cache", "std-mibs", "SNMPv2-MIB.mib")); err == nil || os.Getenv("CI") == "true" {
		if !strings.Contains(p.out.String(), "snmpget") || !strings.Contains(p.out.String(), "-m SERVICE-MANAGER-MIB") {
			t.Errorf("demo printed no command resolving SERVICE-MANAGER-MIB names:\n%s", p.out.String())
		}
	}
	for _, c := range cmds {
		f := strings.Fields(c)
		out, err := snmp(t, f[0], f[1:]...)
		if err != nil {
			t.Fatalf("printed command failed: %v", err)
		}
		if strings.Contains(out, "No Such") || strings.TrimSpace(out) == "" {
			t.Errorf("%s:\n%s", c, out)
		}
		t.Logf("$ %s\n%s", c, out)
		switch {
		case strings.Contains(c, "smViewTerm.0"): // the backup manager's command
			if !strings.Contains(out, "smNodeRole.0 = INTEGER: backup(3)") || !strings.Contains(out, "smEngineCount.0 = Gauge32: 4") {
				t.Errorf("the demo's backup manager:\n%s", out)
			}
		case strings.Contains(c, "smNodeRole.0") && !regexp.MustCompile(`smNodeRole.0 = INTEGER: manager\(2\)`).MatchString(out):
			t.Errorf("node group not resolved by name through the MIB:\n%s", out)
		case strings.HasPrefix(c, "snmptable") && strings.Count(out, " up ") != 4:
			t.Errorf("smEngineTable does not show the 4 demo engines up:\n%s", out)
		case strings.Contains(c, "-v3") && !strings.Contains(out, `STRING: "smsnmpd-demo"`):
			t.Errorf("the demo's SNMPv3 command:\n%s", out)
		case strings.Contains(c, "smAggregateSum") && !strings.Contains(out, "Gauge32: 28"):
			// Printed after the smAllEngines SET of 7 on 4 engines.
			t.Errorf("smAggregateSum of smSeWeight after setting 7 on 4 engines:\n%s", out)
		}
	}
	// The directory commands it prints work as printed too: publish on
	// engine 2, then the lookup finds it there.
	var pub, look []string
	for _, line := range strings.Split(p.out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[1] == "publish":
			pub = f
		case len(f) > 1 && f[1] == "lookup":
			look = f
		}
	}
	if pub == nil || look == nil {
		t.Fatalf("demo printed no publish/lookup commands:\n%s", p.out.String())
	}
	if out, err := exec.Command(pub[0], pub[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(pub, " "), err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command(look[0], look[1:]...).CombinedOutput()
		if err == nil && strings.Contains(string(out), "se 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v\n%s", strings.Join(look, " "), err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Ctrl-C stops it cleanly and promptly.
	t0 := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 0)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("demo took %v to stop after SIGINT, want within 2 s", d)
	}
}

func waitExit(t *testing.T, p *proc, want int) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if err != nil {
			code = exitCode(err)
		}
		if code != want {
			t.Errorf("exit code %d, want %d", code, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit within 10 s")
	}
}

func TestSIGHUPReloadsLogLevelAndSIGTERMStops(t *testing.T) {
	requireTool(t, "snmpget")
	port := freeUDPPort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "node.toml")
	write := func(level string) {
		body := fmt.Sprintf(`[node]
role = "manager"
id = 9
state_dir = %q

[log]
level = %q

[snmp]
listen = "udp:127.0.0.1:%d"
ro_community = "public"
rw_community = "private"

[rmtp]
insecure = true

[control]
socket = ""
`, filepath.Join(dir, "state"), level, port)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("info")
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := start(t, "-config", path)
	p.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	write("debug")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, "level=debug", 10*time.Second)

	// sysContact written over SNMP survives a restart (state_dir).
	target := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := snmp(t, "snmpset", "-v2c", "-c", "private", target, "1.3.6.1.2.1.1.4.0", "s", "noc@example.net"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 0)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %v to stop after SIGTERM, want within 2 s", d)
	}
	p2 := start(t, "-config", path)
	p2.waitOutput(t, "built-in SNMPv2c agent serving", 10*time.Second)
	out, err := snmp(t, "snmpget", "-v2c", "-c", "public", "-Oqv", target, "1.3.6.1.2.1.1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != `"noc@example.net"` {
		t.Errorf("sysContact after restart = %s, want the value set before", out)
	}
}
