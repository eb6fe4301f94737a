package snmpdtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Trapd is a running snmptrapd that logs every notification it receives
// (community "public", numeric OIDs) to a file.
type Trapd struct {
	// Addr is the UDP address it listens on, "127.0.0.1:PORT".
	Addr string
	Dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// StartTrapd starts snmptrapd on a free UDP port of 127.0.0.1 and
// registers its cleanup with t.
func StartTrapd(t testing.TB) *Trapd {
	t.Helper()
	Require(t, "snmptrapd")
	dir, err := os.MkdirTemp("", "snmptrapdtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &Trapd{Dir: dir}
	t.Cleanup(d.Stop)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = d.start(); lastErr == nil {
			return d
		}
		d.Stop()
	}
	t.Fatalf("snmpdtest: snmptrapd did not start: %v\n%s", lastErr, d.Log())
	return nil
}

func (d *Trapd) start() error {
	port, err := FreeUDPPort()
	if err != nil {
		return err
	}
	d.Addr = "127.0.0.1:" + strconv.Itoa(port)
	conf := filepath.Join(d.Dir, "snmptrapd.conf")
	text := fmt.Sprintf("[snmp] mibs :\n[snmp] persistentDir %s\ndisableAuthorization yes\ndoNotLogTraps no\n", d.Dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	bin, err := lookPath("snmptrapd")
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-f", "-Lo", "-On", "-C", "-c", conf, "-p", filepath.Join(d.Dir, "snmptrapd.pid"), "udp:"+d.Addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	d.mu.Lock()
	d.cmd, d.exit = cmd, exit
	d.mu.Unlock()
	// snmptrapd logs its banner once the socket is bound.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return fmt.Errorf("snmptrapd exited: %v", cmd.ProcessState)
		default:
		}
		if waitFile(d.LogPath(), "NET-SNMP version", 50*time.Millisecond) {
			return nil
		}
	}
	return errors.New("snmptrapd did not log its start within 5s")
}

// LogPath is the file holding the received notifications.
func (d *Trapd) LogPath() string { return filepath.Join(d.Dir, "snmptrapd.log") }

// Log returns what snmptrapd logged so far.
func (d *Trapd) Log() string {
	b, _ := os.ReadFile(d.LogPath())
	return string(b)
}

// WaitFor waits until the log contains substr, at most timeout.
func (d *Trapd) WaitFor(substr string, timeout time.Duration) bool {
	return waitFile(d.LogPath(), substr, timeout)
}

// Stop terminates snmptrapd and waits for it.
func (d *Trapd) Stop() {
	d.mu.Lock()
	cmd, exit := d.cmd, d.exit
	d.cmd = nil
	d.mu.Unlock()
	stopProcess(cmd, exit, syscall.SIGTERM)
}
