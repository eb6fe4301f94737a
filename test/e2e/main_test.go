// Package e2e runs the smsnmpd binary as operators do, built without the
// race detector, against the real net-snmp command-line tools.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	binary   string // path of the smsnmpd built for this run
	repoRoot string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smsnmpd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "smsnmpd")
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", binary, "-ldflags", "-X main.version=e2e-test -X main.commit=abc1234", "../../cmd/smsnmpd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building smsnmpd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool skips when a net-snmp tool is missing, except in CI where
// the missing tool is a failure of the install step.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (make test installs it: test/deps/install.sh)", name)
		}
		t.Skipf("%s not installed; run test/deps/install.sh as root", name)
	}
	return p
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// proc is a started smsnmpd with its output captured.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startIn(t, "", args...)
}

// inNetns prefixes a command with `ip netns exec ns` when ns is set (ip
// execs in place, so the process's PID is the command's own).
func inNetns(ns, name string, args []string) (string, []string) {
	if ns == "" {
		return name, args
	}
	return "ip", append([]string{"netns", "exec", ns, name}, args...)
}

// startIn starts smsnmpd inside network namespace ns ("" = this one).
func startIn(t *testing.T, ns string, args ...string) *proc {
	t.Helper()
	name, argv := inNetns(ns, binary, args)
	p := &proc{cmd: exec.Command(name, argv...), out: &syncBuffer{}}
	p.cmd.Dir = repoRoot // as after `git clone`: the demo finds mib/ there
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("smsnmpd output:\n%s", p.out.String())
		}
	})
	return p
}

// waitOutput waits (bounded) until the process printed s.
func (p *proc) waitOutput(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q in output after %v:\n%s", s, within, p.out.String())
}

// snmp runs a net-snmp tool with a deadline and returns its stdout.
func snmp(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	return snmpIn(t, "", tool, args...)
}

// snmpIn runs a net-snmp tool inside network namespace ns ("" = this one).
func snmpIn(t *testing.T, ns, tool string, args ...string) (string, error) {
	t.Helper()
	requireTool(t, tool)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	name, argv := inNetns(ns, tool, args)
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

var execCommand = exec.Command
