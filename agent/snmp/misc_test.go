package snmp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/snmp/snmptest"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// TestAuthenticationFailureTrap: with snmpEnableAuthenTraps enabled, a bad
// community sends one authenticationFailure notification (rate-limited),
// decodable by gosnmp, with sysUpTime.0 and snmpTrapOID.0 first.
func TestAuthenticationFailureTrap(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	cfg := testConfig()
	cfg.TrapSinks = []string{sink.LocalAddr().String()}
	cfg.TrapCommunity = config.NewSecret("trapsecret")
	cfg.AuthenticationTraps = true
	h := newHarness(t, cfg)
	for i := 0; i < 3; i++ { // three bad packets inside a second: one trap
		h.do(t, ber.Version2c, "guess", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0))...)
	}
	buf := make([]byte, 2000)
	_ = sink.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := sink.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if p.PDUType != gosnmp.SNMPv2Trap || p.Community != "trapsecret" || len(p.Variables) != 2 ||
		p.Variables[0].Name != "."+OIDSysUpTime.String() || p.Variables[0].Type != gosnmp.TimeTicks ||
		p.Variables[1].Name != "."+OIDSnmpTrapOID.String() || p.Variables[1].Value != "."+OIDAuthenticationFailure.String() {
		t.Errorf("trap %+v", p)
	}
	if c := h.a.Counters(); c.OutTraps != 1 || c.InBadCommunityNames != 3 {
		t.Errorf("counters %+v", c)
	}
	if err := (&Agent{}).Notify(context.Background(), smi.OID{1, 3}, nil); err != ErrNoSinks {
		t.Errorf("no sinks: %v", err)
	}
}

// TestCommunitiesNeverLogged runs every path that logs, at trace level,
// and looks for the configured communities in the output.
func TestCommunitiesNeverLogged(t *testing.T) {
	var out bytes.Buffer
	log := logrus.New()
	log.Out = &out
	log.Level = logrus.TraceLevel
	tree := agenttest.New(agenttest.Options{})
	ctxs, err := snmptest.Contexts(agenttest.Base, tree.Tree)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ROCommunity: config.NewSecret("ro-Secret-1"), RWCommunity: config.NewSecret("rw-Secret-2"),
		TrapSinks: []string{"127.0.0.1:9"}, TrapCommunity: config.NewSecret("trap-Secret-3"), AuthenticationTraps: true}
	a, err := New(cfg, ctxs, log)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{a: a, tree: tree}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, conn) }()
	h.do(t, ber.Version2c, "ro-Secret-1x", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0))...)
	h.do(t, ber.Version2c, "rw-Secret-2", ber.PDUSet, 0, 0, smi.VarBind{Name: agenttest.CommitFails.Append(0), Value: smi.Integer(13)})
	h.do(t, ber.Version2c, "ro-Secret-1", ber.PDUSet, 0, 0, smi.VarBind{Name: agenttest.WritableInt.Append(0), Value: smi.Integer(13)})
	_ = a.Notify(context.Background(), smi.OID{1, 3, 6}, nil)
	log.WithField("cfg", cfg).Info("a careless caller logs the config")
	printed := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.RWCommunity)
	cancel()
	<-done
	conn.Close()
	for _, s := range []string{"Secret-1", "Secret-2", "Secret-3"} {
		if strings.Contains(out.String(), s) {
			t.Errorf("log contains a community:\n%s", out.String())
		}
		if strings.Contains(printed, s) {
			t.Errorf("config prints a community: %s", printed)
		}
	}
	if !strings.Contains(out.String(), "request failed") {
		t.Errorf("expected a debug line for the failed SET:\n%s", out.String())
	}
}

// TestOversizedDatagram sends a datagram above MaxDatagram over IPv6
// loopback (IPv4 cannot carry one): counted and dropped, and the agent
// still answers afterwards.
func TestOversizedDatagram(t *testing.T) {
	h := newHarness(t, testConfig())
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.a.Serve(ctx, conn) }()
	defer func() { cancel(); <-done }()
	c, err := net.DialUDP("udp6", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, MaxDatagram+13)); err != nil {
		t.Skipf("cannot send %d bytes over ::1: %v", MaxDatagram+13, err)
	}
	g := &gosnmp.GoSNMP{Target: "::1", Port: uint16(conn.LocalAddr().(*net.UDPAddr).Port), Community: "public",
		Version: gosnmp.Version2c, Timeout: 2 * time.Second, Retries: 2, Transport: "udp6"}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	if _, err := g.Get([]string{"." + agenttest.ScalarInt.Append(0).String()}); err != nil {
		t.Fatal(err)
	}
	if c := h.a.Counters(); c.Oversized != 1 || c.InPkts != 2 {
		t.Errorf("counters %+v", c)
	}
}
