package farmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/test/deps"
)

// Main is a test package's TestMain for tests that run the smsnmpd
// binary: it builds it once into a temporary directory, hands its path and
// the repository root to set, runs the tests and exits with their code.
func Main(m *testing.M, set func(binary, repoRoot string)) {
	root, err := deps.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "smsnmpd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err := Build(root, dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	set(bin, root)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Daemon is a third-party process a test started (snmp_exporter,
// Prometheus, a Zabbix server, a database), stopped by its PID when the
// test ends, and its output shown when the test failed.
type Daemon struct {
	Name    string
	Cmd     *exec.Cmd
	Out     *SyncBuffer // its stdout and stderr, unless the caller set its own
	LogFile string      // a log file it writes, shown with its output on failure
	exited  chan struct{}
	stop    syscall.Signal
}

// StartDaemon starts cmd; stop is the signal that shuts it down cleanly
// (SIGKILL follows after 10 s). If the test binary dies without running its
// cleanups, the kernel kills the daemon too.
func StartDaemon(t testing.TB, name string, stop syscall.Signal, cmd *exec.Cmd) *Daemon {
	t.Helper()
	d := &Daemon{Name: name, Cmd: cmd, Out: &SyncBuffer{}, exited: make(chan struct{}), stop: stop}
	if cmd.Stdout == nil {
		cmd.Stdout, cmd.Stderr = d.Out, d.Out
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.Halt()
		if t.Failed() {
			t.Logf("=== %s output:\n%s", name, Tail(d.Out.String(), 8<<10))
			if d.LogFile != "" {
				b, _ := os.ReadFile(d.LogFile)
				t.Logf("=== %s log %s:\n%s", name, d.LogFile, Tail(string(b), 12<<10))
			}
		}
	})
	return d
}

// Halt stops the daemon with its stop signal, SIGKILL after 10 s.
func (d *Daemon) Halt() {
	if !d.Running() {
		return
	}
	_ = d.Cmd.Process.Signal(d.stop)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.Cmd.Process.Kill()
		<-d.exited
	}
}

// Running says whether the process has not exited yet.
func (d *Daemon) Running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Exited is closed when the process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// SyncBuffer is a bytes.Buffer a process writes while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last max bytes of s, marked as cut when it was.
func Tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return "[...]\n" + s[len(s)-max:]
}
