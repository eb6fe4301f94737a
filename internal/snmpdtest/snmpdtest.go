// Package snmpdtest starts real, isolated net-snmp daemons for tests and
// benchmarks: snmpd as an AgentX master (its own UDP port on 127.0.0.1, its
// own AgentX TCP port or unix socket path, its own config, persistence
// directory and log) and snmptrapd as a notification receiver. Each process
// is started by PID, stopped by PID, and never outlives the test.
//
// It owns process life-cycle and configuration text only; it speaks no SNMP
// itself except a readiness probe. Tests use gosnmp (Snmpd.Client,
// Snmpd.ClientV3) or the net-snmp CLI (Snmpd.Tool) as clients. Typical use:
//
//	trapd := snmpdtest.StartTrapd(t)
//	sd := snmpdtest.Start(t, snmpdtest.Options{
//		AgentXRetries: 1, Debug: []string{"agentx/master"},
//		Users:     []snmpdtest.User{{Name: "u", AuthPass: "authpass1", PrivPass: "privpass1", Context: "se3"}},
//		TrapSinks: []string{trapd.Addr},
//	})
//	// point a subagent at sd.AgentX, then:
//	res, err := sd.Client(t, "public").Get([]string{".1.3.6.1.2.1.1.3.0"})
//	sd.Kill(); sd.Restart()            // crash and come back, same ports
//	strings.Contains(sd.Log(), "resend on session")
//
// When a needed binary is missing the test is skipped with the reason,
// unless the environment variable CI is "true": then it fails, so CI never
// passes by skipping. Debian: apt-get install -y snmpd snmp snmptrapd.
package snmpdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require skips (or, with CI=true, fails) t unless every binary is on PATH
// or in /usr/sbin.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	for _, b := range binaries {
		if _, err := lookPath(b); err != nil {
			reason := fmt.Sprintf("snmpdtest: %s not installed (apt-get install -y snmpd snmp snmptrapd)", b)
			if os.Getenv("CI") == "true" {
				t.Fatal(reason + "; CI=true forbids skipping")
			}
			t.Skip(reason)
		}
	}
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("snmpdtest: %s not found", name)
}

// User is an SNMPv3 USM user (SHA authentication, AES privacy) with VACM
// access to one context at level authPriv.
type User struct {
	Name, AuthPass, PrivPass string // passphrases of 8 characters or more
	Context                  string // "" is the default context
	ReadWrite                bool
}

// Community is an SNMPv1/v2c community from 127.0.0.1 mapped to a context.
type Community struct {
	Name      string
	Context   string
	ReadWrite bool
}

// Options configure Start. The zero value is snmpd's defaults on TCP.
type Options struct {
	// AgentXTimeout is agentXTimeout in seconds; 0 keeps snmpd's default (1).
	AgentXTimeout int
	// AgentXRetries is agentXRetries; 0 keeps snmpd's default (5), a
	// negative value means 0 retries.
	AgentXRetries int
	// Unix puts the AgentX master socket on a fresh unix socket path
	// instead of a TCP port on 127.0.0.1.
	Unix bool
	// Debug are -D tokens, e.g. "agentx/master", "snmp_agent".
	Debug []string
	// Users and Communities add SNMPv3 users and context-mapped
	// communities. "public" (read-only) and "private" (read-write) for the
	// default context always exist.
	Users       []User
	Communities []Community
	// TrapSinks are "host:port" receivers of SNMPv2c notifications
	// (community "public"), e.g. a Trapd's Addr.
	TrapSinks []string
	// Extra is appended to the generated snmpd.conf.
	Extra string
}

// Snmpd is a running (or stopped) snmpd.
type Snmpd struct {
	// Addr is the SNMP agent's UDP address, "127.0.0.1:PORT".
	Addr string
	// Port is its UDP port.
	Port int
	// AgentX is the master socket in agentXSocket syntax:
	// "tcp:127.0.0.1:PORT" or "unix:/path".
	AgentX string
	// Dir holds snmpd.conf, snmpd.log, snmpd.pid and persist/.
	Dir string

	t    testing.TB
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start starts snmpd and waits until it answers sysUpTime.0. It registers
// cleanup (stop, remove the directory) with t.
func Start(t testing.TB, opts Options) *Snmpd {
	t.Helper()
	Require(t, "snmpd")
	dir, err := os.MkdirTemp("", "snmpdtest") // short: unix socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Snmpd{Dir: dir, t: t}
	t.Cleanup(s.Stop)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken between probe and bind
		if lastErr = s.configure(opts); lastErr != nil {
			break
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		s.Stop()
	}
	t.Fatalf("snmpdtest: snmpd did not start: %v\n%s", lastErr, s.Log())
	return nil
}

func (s *Snmpd) configure(o Options) error {
	port, err := FreeUDPPort()
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = "127.0.0.1:" + strconv.Itoa(port)
	if o.Unix {
		s.AgentX = "unix:" + filepath.Join(s.Dir, "agentx.sock")
	} else {
		p, err := FreeTCPPort()
		if err != nil {
			return err
		}
		s.AgentX = "tcp:127.0.0.1:" + strconv.Itoa(p)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "persist"), 0o700); err != nil {
		return err
	}
	var c strings.Builder
	fmt.Fprintf(&c, "[snmp] mibs :\n[snmp] persistentDir %s/persist\n[snmp] noPersistentLoad yes\n[snmp] noPersistentSave yes\n", s.Dir)
	fmt.Fprintf(&c, "agentAddress udp:%s\nmaster agentx\nagentXSocket %s\nagentXPerms 0600 0700\n", s.Addr, s.AgentX)
	if o.AgentXTimeout > 0 {
		fmt.Fprintf(&c, "agentXTimeout %d\n", o.AgentXTimeout)
	}
	if o.AgentXRetries != 0 {
		fmt.Fprintf(&c, "agentXRetries %d\n", max(o.AgentXRetries, 0))
	}
	c.WriteString("rocommunity public 127.0.0.1\nrwcommunity private 127.0.0.1\ndontLogTCPWrappersConnects yes\n")
	c.WriteString("view smAll included .1\n")
	for i, u := range o.Users {
		grp := "smg_u" + strconv.Itoa(i)
		fmt.Fprintf(&c, "createUser %s SHA %q AES %q\ngroup %s usm %s\naccess %s %s usm priv exact smAll %s none\n",
			u.Name, u.AuthPass, u.PrivPass, grp, u.Name, grp, quoteCtx(u.Context), writeView(u.ReadWrite))
	}
	for i, cm := range o.Communities {
		sec, grp := "sms_c"+strconv.Itoa(i), "smg_c"+strconv.Itoa(i)
		ctxOpt := ""
		if cm.Context != "" {
			ctxOpt = "-Cn " + cm.Context + " "
		}
		fmt.Fprintf(&c, "com2sec %s%s 127.0.0.1 %s\ngroup %s v1 %s\ngroup %s v2c %s\naccess %s %s any noauth exact smAll %s none\n",
			ctxOpt, sec, cm.Name, grp, sec, grp, sec, grp, quoteCtx(cm.Context), writeView(cm.ReadWrite))
	}
	for _, sink := range o.TrapSinks {
		fmt.Fprintf(&c, "trap2sink %s public\n", sink)
	}
	c.WriteString(o.Extra)
	c.WriteString("\n")
	conf := filepath.Join(s.Dir, "snmpd.conf")
	if err := os.WriteFile(conf, []byte(c.String()), 0o600); err != nil {
		return err
	}
	bin, err := lookPath("snmpd")
	if err != nil {
		return err
	}
	s.args = []string{bin, "-f", "-Lo", "-C", "-c", conf, "-I", "-smux", "-p", filepath.Join(s.Dir, "snmpd.pid")}
	if len(o.Debug) > 0 {
		s.args = append(s.args, "-D"+strings.Join(o.Debug, ","))
	}
	return nil
}

func quoteCtx(c string) string {
	if c == "" {
		return `""`
	}
	return c
}

func writeView(rw bool) string {
	if rw {
		return "smAll"
	}
	return "none"
}

// ConfigText returns the generated snmpd.conf.
func (s *Snmpd) ConfigText() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "snmpd.conf"))
	return string(b)
}

func (s *Snmpd) start() error {
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s.mu.Lock()
	s.cmd, s.exit = cmd, exit
	s.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return fmt.Errorf("snmpd exited: %v", cmd.ProcessState)
		default:
		}
		if probe(s.Addr, 200*time.Millisecond) == nil {
			return nil
		}
	}
	return errors.New("snmpd did not answer sysUpTime.0 within 5s")
}

// LogPath is the file holding snmpd's stdout and stderr (-Lo).
func (s *Snmpd) LogPath() string { return filepath.Join(s.Dir, "snmpd.log") }

// Log returns everything snmpd logged so far, across restarts.
func (s *Snmpd) Log() string {
	b, _ := os.ReadFile(s.LogPath())
	return string(b)
}

// WaitLog waits until the log contains substr, polling, at most timeout.
func (s *Snmpd) WaitLog(substr string, timeout time.Duration) bool {
	return waitFile(s.LogPath(), substr, timeout)
}

// PID is the process id, 0 when stopped.
func (s *Snmpd) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop terminates snmpd (SIGTERM, SIGKILL after 3 s) and waits for it.
func (s *Snmpd) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills snmpd with SIGKILL, as a crash would, and waits for it.
func (s *Snmpd) Kill() { s.signal(syscall.SIGKILL) }

func (s *Snmpd) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	stopProcess(cmd, exit, sig)
}

func stopProcess(cmd *exec.Cmd, exit chan struct{}, sig syscall.Signal) {
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exit:
	case <-time.After(3 * time.Second):
		cmd.Process.Kill()
		<-exit
	}
}

// Restart starts snmpd again with the same configuration, ports and socket
// (after Stop or Kill; a running snmpd is stopped first).
func (s *Snmpd) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for i := 0; i < 20; i++ { // the TCP port may linger a moment after a kill
		if err = s.start(); err == nil {
			return
		}
		s.Stop()
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("snmpdtest: restart: %v\n%s", err, s.Log())
}

// Tool runs a net-snmp command-line tool (snmpget, snmpwalk, ...) with a
// 30 s limit and returns its standard output. Standard error goes into
// the error when the tool fails, and nowhere else: net-snmp prints notices
// there that are not results ("Created directory: /var/lib/snmp/..." on
// the first run on a fresh machine).
func (s *Snmpd) Tool(ctx context.Context, name string, args ...string) (string, error) {
	bin, err := lookPath(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "MIBS=", "MIBDIRS=/nonexistent", "SNMPCONFPATH="+s.Dir+"/noconf")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// FreeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitFile(path, substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(substr)) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
