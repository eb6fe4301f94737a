package snmpdtest

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t, Options{AgentXTimeout: 2, AgentXRetries: -1, Debug: []string{"agentx/master"},
		Users:       []User{{Name: "u1", AuthPass: "authpass123", PrivPass: "privpass123", Context: "c1"}},
		Communities: []Community{{Name: "ctxcomm", Context: "c1", ReadWrite: true}}})
	conf := s.ConfigText()
	for _, want := range []string{"agentXTimeout 2\n", "agentXRetries 0\n", "createUser u1 SHA", "access smg_u0 c1 usm priv exact smAll none none",
		"com2sec -Cn c1 sms_c0 127.0.0.1 ctxcomm", "master agentx", "agentXSocket " + s.AgentX} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	pid := s.PID()
	if pid == 0 {
		t.Fatal("no PID")
	}
	out, err := s.Tool(context.Background(), "snmpget", "-v2c", "-c", "public", "-On", s.Addr, ".1.3.6.1.2.1.1.3.0")
	if err != nil || !strings.Contains(out, ".1.3.6.1.2.1.1.3.0 = Timeticks") {
		t.Fatalf("snmpget: %v\n%s", err, out)
	}
	// The AgentX master socket accepts connections.
	addr := strings.TrimPrefix(s.AgentX, "tcp:")
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("agentx socket %s: %v", s.AgentX, err)
	}
	c.Close()
	s.Kill()
	if s.PID() != 0 {
		t.Error("PID after Kill")
	}
	if err := probe(s.Addr, 200*time.Millisecond); err == nil {
		t.Error("killed snmpd still answers")
	}
	s.Restart()
	if s.PID() == 0 || s.PID() == pid {
		t.Errorf("restart PID %d (was %d)", s.PID(), pid)
	}
	if err := probe(s.Addr, time.Second); err != nil {
		t.Errorf("restarted snmpd does not answer: %v", err)
	}
	if !s.WaitLog("NET-SNMP version", time.Second) || strings.Count(s.Log(), "NET-SNMP version") != 2 {
		t.Errorf("log does not span both runs:\n%s", s.Log())
	}
}

func TestUnixSocket(t *testing.T) {
	s := Start(t, Options{Unix: true})
	path := strings.TrimPrefix(s.AgentX, "unix:")
	if !strings.HasPrefix(s.AgentX, "unix:/") || len(path) > 107 {
		t.Fatalf("AgentX %q", s.AgentX)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v", path, err, fi)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600 (agentXPerms)", fi.Mode().Perm())
	}
}

func TestTrapd(t *testing.T) {
	d := StartTrapd(t)
	s := Start(t, Options{TrapSinks: []string{d.Addr}})
	out, err := s.Tool(context.Background(), "snmptrap", "-v2c", "-c", "public", d.Addr, "", ".1.3.6.1.4.1.8072.9999.1", ".1.3.6.1.4.1.8072.9999.2", "s", "hello-trapd")
	if err != nil {
		t.Fatalf("snmptrap: %v\n%s", err, out)
	}
	if !d.WaitFor("hello-trapd", 5*time.Second) {
		t.Fatalf("trap not logged:\n%s", d.Log())
	}
	if !strings.Contains(d.Log(), ".1.3.6.1.4.1.8072.9999.1") {
		t.Errorf("numeric trap OID missing:\n%s", d.Log())
	}
}

func TestRequireFailsUnderCI(t *testing.T) {
	if os.Getenv("CI") == "true" {
		t.Skip("checks the non-CI path")
	}
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Require(ft, "no-such-binary-smsnmpd")
	}()
	if !ft.skipped || !strings.Contains(ft.msg, "no-such-binary-smsnmpd not installed") {
		t.Errorf("skipped %v %q", ft.skipped, ft.msg)
	}
	t.Setenv("CI", "true")
	ft = &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Require(ft, "no-such-binary-smsnmpd")
	}()
	if !ft.failed {
		t.Error("CI=true must fail, not skip")
	}
}

// fakeTB records Skip and Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, args[0].(string)
	panic("skip")
}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, args[0].(string)
	panic("fatal")
}

func TestClients(t *testing.T) {
	u := User{Name: "u2", AuthPass: "authpass123", PrivPass: "privpass123"}
	s := Start(t, Options{Users: []User{u}})
	for name, g := range map[string]interface {
		Get([]string) (*gosnmp.SnmpPacket, error)
	}{"v2c": s.Client(t, "public"), "v3": s.ClientV3(t, u)} {
		res, err := g.Get([]string{".1.3.6.1.2.1.1.3.0"})
		if err != nil || res.Variables[0].Type != gosnmp.TimeTicks {
			t.Errorf("%s: %v %v", name, err, res)
		}
	}
}
