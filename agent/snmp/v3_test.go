package snmp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/snmp/snmptest"
	"github.com/smsnmpd/smsnmpd/agent/snmp/usm"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/gosnmpconv"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

const (
	testAuthPass = "auth-pass-1234"
	testPrivPass = "priv-pass-5678"
)

// v3Config is testConfig with SNMPv3 users: ops (SHA-256/AES, write),
// big (SHA-512/AES-256), and open (noAuthNoPriv, configured so).
func v3Config() Config {
	cfg := testConfig()
	cfg.Engine = Engine{ID: []byte{0x80, 0, 0x1f, 0x88, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Boots: 7}
	cfg.Users = []User{
		{Name: "ops", Auth: usm.SHA256, AuthPass: config.NewSecret(testAuthPass), Priv: usm.AES128, PrivPass: config.NewSecret(testPrivPass), Write: true},
		{Name: "big", Auth: usm.SHA512, AuthPass: config.NewSecret(testAuthPass), Priv: usm.AES256, PrivPass: config.NewSecret(testPrivPass)},
		{Name: "sha1", Auth: usm.SHA1, AuthPass: config.NewSecret(testAuthPass), Priv: usm.AES192, PrivPass: config.NewSecret(testPrivPass)},
		{Name: "authonly", Auth: usm.SHA256, AuthPass: config.NewSecret(testAuthPass)},
		{Name: "open"},
	}
	return cfg
}

func gosnmpV3(t testing.TB, addr *net.UDPAddr, user string, auth gosnmp.SnmpV3AuthProtocol, priv gosnmp.SnmpV3PrivProtocol, flags gosnmp.SnmpV3MsgFlags) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(addr.Port), Version: gosnmp.Version3, Timeout: 2 * time.Second, Retries: 1,
		SecurityModel: gosnmp.UserSecurityModel, MsgFlags: flags, MaxRepetitions: 25,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: user, AuthenticationProtocol: auth, AuthenticationPassphrase: testAuthPass,
			PrivacyProtocol: priv, PrivacyPassphrase: testPrivPass}}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

// v3args are net-snmp's options for user at level, with the test's
// passphrases (or auth and priv in their place when given).
func v3args(user, level, auth, priv string, pass ...string) []string {
	ap, pp := testAuthPass, testPrivPass
	if len(pass) == 2 {
		ap, pp = pass[0], pass[1]
	}
	args := []string{"-v3", "-l", level, "-u", user, "-r", "0", "-t", "2"}
	if auth != "" {
		args = append(args, "-a", auth, "-A", ap)
	}
	if priv != "" {
		args = append(args, "-x", priv, "-X", pp)
	}
	return args
}

// TestV3NetSNMP: net-snmp's tools with authPriv (SHA-256/AES and the
// other pairs) read and walk the whole tree exactly as SNMPv2c does, and
// SET; each failure is what the tools expect and is counted.
func TestV3NetSNMP(t *testing.T) {
	s := serve(t, v3Config())
	if err := s.a.RegisterSNMPGroup(s.a.contexts.Default()); err != nil {
		t.Fatal(err)
	}
	want := reference(t, s.tree.Tree, agenttest.Base)
	root := dotted(agenttest.Base)
	for _, c := range []struct{ user, auth, priv string }{
		{"ops", "SHA-256", "AES"}, {"big", "SHA-512", "AES-256"}, {"sha1", "SHA", "AES-192"},
	} {
		for _, tool := range []string{"snmpwalk", "snmpbulkwalk"} {
			out, errOut, err := snmpCmd(t, tool, append(v3args(c.user, "authPriv", c.auth, c.priv), s.target(), root)...)
			if err != nil {
				t.Fatalf("%s %s: %v %s", tool, c.user, err, errOut)
			}
			checkWalk(t, out, want)
		}
	}
	out, errOut, err := snmpCmd(t, "snmpget", append(v3args("ops", "authPriv", "SHA-256", "AES"), s.target(),
		dotted(agenttest.ScalarInt.Append(0)), dotted(OIDSnmpEngine.Append(2, 0)))...)
	if err != nil || !strings.Contains(out, " 42\n") || !strings.Contains(out, ".1.3.6.1.6.3.10.2.1.2.0 7") {
		t.Errorf("snmpget: %v %q %s", err, out, errOut)
	}
	if _, errOut, err := snmpCmd(t, "snmpset", append(v3args("ops", "authPriv", "SHA-256", "AES"), s.target(),
		dotted(agenttest.WritableInt.Append(0)), "i", "77")...); err != nil || s.tree.WritableIntValue() != 77 {
		t.Errorf("snmpset: %v %s", err, errOut)
	}
	// A user without write access.
	if _, errOut, err := snmpCmd(t, "snmpset", append(v3args("big", "authPriv", "SHA-512", "AES-256"), s.target(),
		dotted(agenttest.WritableInt.Append(0)), "i", "78")...); err == nil || !strings.Contains(errOut, "noAccess") || s.tree.WritableIntValue() != 77 {
		t.Errorf("snmpset by a read-only user: %v %s", err, errOut)
	}

	get := append([]string{s.target()}, dotted(agenttest.ScalarInt.Append(0)))
	for _, c := range []struct {
		name    string
		args    []string
		stderr  string
		counter func(Counters) uint64
	}{
		{"wrong auth passphrase", v3args("ops", "authPriv", "SHA-256", "AES", "wrong-pass-123", testPrivPass),
			"Authentication failure", func(c Counters) uint64 { return c.WrongDigests }},
		{"wrong priv passphrase", v3args("ops", "authPriv", "SHA-256", "AES", testAuthPass, "wrong-pass-123"),
			"Decryption error", func(c Counters) uint64 { return c.DecryptionErrors }},
		{"unknown user", v3args("nobody", "authPriv", "SHA-256", "AES"),
			"Unknown user name", func(c Counters) uint64 { return c.UnknownUserNames }},
		{"noAuthNoPriv for an authPriv user", v3args("ops", "noAuthNoPriv", "", ""),
			"Unsupported security level", func(c Counters) uint64 { return c.UnsupportedSecLevels }},
		{"authNoPriv for an authPriv user", v3args("ops", "authNoPriv", "SHA-256", ""),
			"Unsupported security level", func(c Counters) uint64 { return c.UnsupportedSecLevels }},
	} {
		before := c.counter(s.a.Counters())
		_, errOut, err := snmpCmd(t, "snmpget", append(c.args, get...)...)
		if err == nil || !strings.Contains(errOut, c.stderr) {
			t.Errorf("%s: %v %q", c.name, err, errOut)
		}
		if after := c.counter(s.a.Counters()); after <= before {
			t.Errorf("%s: counter %d -> %d", c.name, before, after)
		}
	}
	// noAuthNoPriv works for the user configured so, and authNoPriv for
	// its user.
	for _, args := range [][]string{v3args("open", "noAuthNoPriv", "", ""), v3args("authonly", "authNoPriv", "SHA-256", "")} {
		if out, errOut, err := snmpCmd(t, "snmpget", append(args, get...)...); err != nil || !strings.Contains(out, " 42") {
			t.Errorf("%v: %v %s %s", args[4], err, out, errOut)
		}
	}
	// The counters are served: usmStatsWrongDigests over SNMPv3 itself.
	out, _, err = snmpCmd(t, "snmpget", append(v3args("ops", "authPriv", "SHA-256", "AES"), s.target(), dotted(OIDUsmStats.Append(5, 0)))...)
	if err != nil || !strings.Contains(out, ".1.3.6.1.6.3.15.1.1.5.0 1") {
		t.Errorf("usmStatsWrongDigests: %v %q", err, out)
	}
}

// TestV3Gosnmp: gosnmp's v3 client gets the same answers as net-snmp's
// tools: a GET, and a bulk walk identical to the v2c walk.
func TestV3Gosnmp(t *testing.T) {
	s := serve(t, v3Config())
	want := reference(t, s.tree.Tree, agenttest.Base)
	for _, c := range []struct {
		user string
		auth gosnmp.SnmpV3AuthProtocol
		priv gosnmp.SnmpV3PrivProtocol
	}{{"ops", gosnmp.SHA256, gosnmp.AES}, {"big", gosnmp.SHA512, gosnmp.AES256}, {"sha1", gosnmp.SHA, gosnmp.AES192}} {
		g := gosnmpV3(t, s.addr, c.user, c.auth, c.priv, gosnmp.AuthPriv)
		p, err := g.Get([]string{dotted(agenttest.ScalarInt.Append(0))})
		if err != nil || len(p.Variables) != 1 || p.Variables[0].Value != 42 {
			t.Fatalf("%s GET: %v %+v", c.user, err, p)
		}
		var got []smi.VarBind
		if err := g.BulkWalk(dotted(agenttest.Base), func(v gosnmp.SnmpPDU) error {
			vb, err := gosnmpconv.FromPDU(v)
			got = append(got, vb)
			return err
		}); err != nil {
			t.Fatalf("%s walk: %v", c.user, err)
		}
		sameVarBinds(t, got, want)
	}
}

// TestV3TimeWindow: a message replayed 200 s later is answered with an
// authenticated notInTimeWindow report carrying our boots and time, and
// not executed; within 150 s it is.
func TestV3TimeWindow(t *testing.T) {
	cfg := v3Config()
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC).UnixNano())
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	s := serve(t, cfg)
	r := startRelay(t, s.addr)
	g := gosnmpV3(t, r.conn.LocalAddr().(*net.UDPAddr), "ops", gosnmp.SHA256, gosnmp.AES, gosnmp.AuthPriv)
	now.Add(int64(1000 * time.Second))
	if _, err := g.Set([]gosnmp.SnmpPDU{{Name: dotted(agenttest.WritableInt.Append(0)), Type: gosnmp.Integer, Value: 55}}); err != nil {
		t.Fatal(err)
	}
	reqs := r.requests()
	set := reqs[len(reqs)-1]
	h := &harness{a: s.a, tree: s.tree}
	reset := func() {
		h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: agenttest.WritableInt.Append(0), Value: smi.Integer(1)})
	}
	reset()
	now.Add(int64(140 * time.Second))
	if resp := h.a.handle(context.Background(), bytes.Clone(set), testFrom); resp == nil || s.tree.WritableIntValue() != 55 {
		t.Fatalf("replayed within the window: not executed (%d)", s.tree.WritableIntValue())
	}
	reset()
	now.Add(int64(60 * time.Second))
	before := s.a.Counters().NotInTimeWindows
	resp := h.a.handle(context.Background(), bytes.Clone(set), testFrom)
	if resp == nil || s.tree.WritableIntValue() != 1 || s.a.Counters().NotInTimeWindows != before+1 {
		t.Fatalf("replayed after 200 s: executed or not reported (%d)", s.tree.WritableIntValue())
	}
	m, err := ber.DecodeV3Message(resp)
	if err != nil || m.Flags&ber.FlagAuth == 0 || m.ScopedPDU == nil {
		t.Fatalf("report: %+v %v", m, err)
	}
	sp, _ := ber.DecodeUSMParams(m.SecurityParameters)
	sc, _ := ber.DecodeScopedPDU(m.ScopedPDU)
	if sp.Boots != 7 || sp.Time != 1200 || sc.PDU.Type != ber.PDUReport || !sc.PDU.VarBinds[0].Name.Equal(OIDUsmStats.Append(2, 0)) {
		t.Errorf("report: boots %d time %d, %v", sp.Boots, sp.Time, sc.PDU)
	}
	// The report is authenticated with the user's key.
	k, _ := usm.NewKeys(usm.SHA256, []byte(testAuthPass), usm.NoPriv, nil, cfg.Engine.ID)
	if !k.Verify(resp, m.SecurityOffset+sp.AuthOffset) {
		t.Error("the notInTimeWindow report does not verify")
	}
}

// TestV3NonReportable: a failure of a message without the reportable flag
// (a Response, a Trap) is counted and not answered (RFC 3412 §7.1).
func TestV3NonReportable(t *testing.T) {
	h := newHarness(t, v3Config())
	msg := ber.V3Message{MsgID: 5, MaxSize: 1500, Flags: 0, SecurityModel: 3}
	sp := ber.USMParams{EngineID: []byte("not-ours"), UserName: []byte("ops"), AuthParams: []byte{}, PrivParams: []byte{}}
	msg.SecurityParameters, _ = sp.Append(nil)
	sc := ber.ScopedPDU{PDU: ber.PDU{Type: ber.PDUGet, RequestID: 1, VarBinds: names(agenttest.ScalarInt.Append(0))}}
	msg.ScopedPDU, _ = sc.Append(nil)
	pkt, _ := msg.Append(nil)
	if resp := h.a.handle(context.Background(), pkt, testFrom); resp != nil {
		t.Error("a non-reportable message was reported")
	}
	msg.Flags = ber.FlagReportable
	pkt, _ = msg.Append(nil)
	if resp := h.a.handle(context.Background(), pkt, testFrom); resp == nil {
		t.Error("a reportable message with an unknown engine ID got no report")
	}
	if c := h.a.Counters(); c.UnknownEngineIDs != 2 || c.OutReports != 0 && c.OutReports != 1 {
		t.Errorf("counters %+v", c)
	}
}

// TestV3SourceAllowlist: a request from 127.0.0.2 to a user allowing only
// 127.0.0.1/32 is dropped and counted; from 127.0.0.1 it is answered.
func TestV3SourceAllowlist(t *testing.T) {
	cfg := v3Config()
	cfg.Users[0].Sources = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.CommunitySources = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s := serve(t, cfg)
	bind := func(ip string) *gosnmp.GoSNMP {
		g := gosnmpV3(t, s.addr, "ops", gosnmp.SHA256, gosnmp.AES, gosnmp.AuthPriv)
		g.Conn.Close()
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, s.addr)
		if err != nil {
			t.Fatal(err)
		}
		g.Conn = c
		g.Timeout, g.Retries = 300*time.Millisecond, 0
		return g
	}
	if _, err := bind("127.0.0.1").Get([]string{dotted(agenttest.ScalarInt.Append(0))}); err != nil {
		t.Fatalf("from 127.0.0.1: %v", err)
	}
	if _, err := bind("127.0.0.2").Get([]string{dotted(agenttest.ScalarInt.Append(0))}); err == nil {
		t.Fatal("answered 127.0.0.2")
	}
	c2, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write(encode(ber.Version2c, "public", ber.PDUGet, 1, 0, 0, names(agenttest.ScalarInt.Append(0)))); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 10*time.Second, "both refusals counted", func() bool { return s.a.Counters().AccessRefused == 2 })
}

// TestV3Restart: the engine file in the state directory gives the same
// engine ID and one more boot at every start; a gosnmp client that knew
// the old boots resynchronizes by itself (the notInTimeWindow report).
func TestV3Restart(t *testing.T) {
	dir := t.TempDir()
	e1, persistent, err := StartEngine(dir)
	if err != nil || !persistent || e1.Boots != 1 || len(e1.ID) != 17 {
		t.Fatalf("first start: %+v %v %v", e1, persistent, err)
	}
	e2, _, err := StartEngine(dir)
	if err != nil || e2.Boots != 2 || !bytes.Equal(e1.ID, e2.ID) {
		t.Fatalf("second start: %+v %v", e2, err)
	}
	if r, err := ReadEngine(dir); err != nil || r.Boots != 2 {
		t.Errorf("ReadEngine: %+v %v", r, err)
	}
	if e, persistent, _ := StartEngine(""); persistent || e.Boots != 1 || bytes.Equal(e.ID, e1.ID) {
		t.Errorf("without a state dir: %+v %v", e, persistent)
	}
	if other, _, _ := StartEngine(t.TempDir()); bytes.Equal(other.ID, e1.ID) {
		t.Error("two nodes share an engine ID")
	}

	cfg := v3Config()
	cfg.Engine = e2
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	run := func(cfg Config, conn *net.UDPConn) func() {
		a, err := New(cfg, agentContexts(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.RegisterSNMPGroup(a.contexts.Default()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Serve(ctx, conn) }()
		return func() { cancel(); <-done; conn.Close() }
	}
	stop := run(cfg, conn)
	g := gosnmpV3(t, addr, "ops", gosnmp.SHA256, gosnmp.AES, gosnmp.AuthPriv)
	if _, err := g.Get([]string{dotted(agenttest.ScalarInt.Append(0))}); err != nil {
		t.Fatal(err)
	}
	stop()
	e3, _, err := StartEngine(dir)
	if err != nil || e3.Boots != 3 {
		t.Fatal(e3, err)
	}
	cfg.Engine = e3
	conn, err = net.ListenUDP("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop = run(cfg, conn)
	defer stop()
	p, err := g.Get([]string{dotted(OIDSnmpEngine.Append(2, 0))})
	if err != nil || p.Variables[0].Value != 3 {
		t.Fatalf("after the restart: %v %+v", err, p)
	}
}

func agentContexts(t testing.TB) *agent.Contexts {
	t.Helper()
	tree := agenttest.New(agenttest.Options{})
	ctxs, err := snmptest.Contexts(agenttest.Base, tree.Tree)
	if err != nil {
		t.Fatal(err)
	}
	return ctxs
}

// TestViews: a user's and the communities' read and write subtrees, and
// the communities' contexts: outside the read view GET answers
// noSuchObject and walks skip as if absent; outside the write view SET
// answers noAccess, counted.
func TestViews(t *testing.T) {
	cfg := v3Config()
	cfg.Users[0].Read = []smi.OID{agenttest.SparseTable, agenttest.WritableInt, agenttest.WritableStr}
	cfg.Users[0].WriteSubtrees = []smi.OID{agenttest.WritableInt}
	cfg.CommunityRead = []smi.OID{agenttest.ScalarInt, agenttest.SparseTable.Append(1, 3)}
	cfg.CommunityContexts = []string{""}
	s := serve(t, cfg)
	full := reference(t, s.tree.Tree, agenttest.Base)
	filter := func(in []smi.OID) []smi.VarBind {
		var out []smi.VarBind
		for _, vb := range full {
			if inAny(in, vb.Name) {
				out = append(out, vb)
			}
		}
		return out
	}
	g := gosnmpV3(t, s.addr, "ops", gosnmp.SHA256, gosnmp.AES, gosnmp.AuthPriv)
	g2 := s.client(t, "public", gosnmp.Version2c)
	for _, c := range []struct {
		g    *gosnmp.GoSNMP
		want []smi.VarBind
	}{{g, filter(cfg.Users[0].Read)}, {g2, filter(cfg.CommunityRead)}} {
		var got []smi.VarBind
		if err := c.g.BulkWalk(dotted(agenttest.Base), func(v gosnmp.SnmpPDU) error {
			vb, err := gosnmpconv.FromPDU(v)
			got = append(got, vb)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		sameVarBinds(t, got, c.want)
		var walked []smi.VarBind
		if err := c.g.Walk(dotted(agenttest.Base), func(v gosnmp.SnmpPDU) error {
			vb, err := gosnmpconv.FromPDU(v)
			walked = append(walked, vb)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		sameVarBinds(t, walked, c.want)
	}
	p, err := g.Get([]string{dotted(agenttest.ScalarInt.Append(0)), dotted(agenttest.WritableInt.Append(0))})
	if err != nil || p.Variables[0].Type != gosnmp.NoSuchObject || p.Variables[1].Type != gosnmp.Integer {
		t.Errorf("GET through the view: %v %+v", err, p)
	}
	before := s.a.Counters().AccessRefused
	p, err = g.Set([]gosnmp.SnmpPDU{{Name: dotted(agenttest.WritableInt.Append(0)), Type: gosnmp.Integer, Value: 8},
		{Name: dotted(agenttest.WritableStr.Append(0)), Type: gosnmp.OctetString, Value: []byte("no")}})
	if err != nil || p.Error != gosnmp.NoAccess || p.ErrorIndex != 2 || s.tree.WritableIntValue() == 8 {
		t.Errorf("SET outside the write view: %v %+v", err, p)
	}
	if s.a.Counters().AccessRefused != before+1 {
		t.Error("the refused SET is not counted")
	}
	if p, err := g.Set([]gosnmp.SnmpPDU{{Name: dotted(agenttest.WritableInt.Append(0)), Type: gosnmp.Integer, Value: 8}}); err != nil ||
		p.Error != gosnmp.NoError || s.tree.WritableIntValue() != 8 {
		t.Errorf("SET inside the write view: %v %+v", err, p)
	}
	// The communities may name the default context only.
	s.a.contexts.Ensure("se3")
	g3 := s.client(t, "public@se3", gosnmp.Version2c)
	g3.Timeout, g3.Retries = 300*time.Millisecond, 0
	if _, err := g3.Get([]string{dotted(agenttest.ScalarInt.Append(0))}); err == nil {
		t.Error("public@se3 answered with community_contexts = [\"\"]")
	}
}

// TestPassphrasesNeverLogged runs SNMPv3's paths that log or fail (a
// wrong digest, an inform nobody acknowledges, a user printed by a
// careless caller) at trace level and looks for the passphrases.
func TestPassphrasesNeverLogged(t *testing.T) {
	var out bytes.Buffer
	log := logrus.New()
	log.Out = &out
	log.Level = logrus.TraceLevel
	cfg := v3Config()
	cfg.Sinks = []Sink{{Address: "127.0.0.1:" + strconv.Itoa(freeUDPPort(t)), User: "ops", Inform: true}}
	cfg.InformTimeout, cfg.InformRetries = 100*time.Millisecond, 1
	a, err := New(cfg, agentContexts(t), log)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, conn) }()
	_, _, _ = snmpCmd(t, "snmpget", append(v3args("ops", "authPriv", "SHA-256", "AES", "wrong-pass-123", testPrivPass),
		"udp:"+conn.LocalAddr().String(), dotted(agenttest.ScalarInt.Append(0)))...)
	_ = a.Notify(context.Background(), smi.OID{1, 3, 6, 1, 4, 1, 8072, 1}, nil)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = a.WaitInforms(wctx)
	wcancel()
	log.WithField("users", cfg.Users).Info("a careless caller logs the users")
	printed := fmt.Sprintf("%v %+v %#v", cfg.Users, cfg.Users, cfg)
	cancel()
	<-done
	conn.Close()
	for _, s := range []string{testAuthPass, testPrivPass} {
		if strings.Contains(out.String(), s) || strings.Contains(printed, s) {
			t.Errorf("a passphrase is printed:\n%s\n%s", out.String(), printed)
		}
	}
	if !strings.Contains(out.String(), "inform not acknowledged") {
		t.Errorf("expected the inform's failure in the log:\n%s", out.String())
	}
}
