package agentx_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

// These tests run a real net-snmp snmpd (internal/snmpdtest) as the AgentX
// master on its own loopback ports, with our subagent serving the
// agenttest tree, and talk to snmpd with gosnmp as any NMS would.

func dotted(o smi.OID) string { return "." + o.String() }

// fromGosnmp converts a gosnmp varbind to smi for comparison with the tree.
func fromGosnmp(t testing.TB, v gosnmp.SnmpPDU) smi.VarBind {
	t.Helper()
	name, err := smi.ParseOID(v.Name)
	if err != nil {
		t.Fatal(err)
	}
	vb := smi.VarBind{Name: name}
	switch v.Type {
	case gosnmp.Integer:
		vb.Value = smi.Integer(int32(v.Value.(int)))
	case gosnmp.OctetString:
		vb.Value = smi.OctetString(v.Value.([]byte))
	case gosnmp.ObjectIdentifier:
		vb.Value = smi.ObjectID(smi.MustParseOID(v.Value.(string)))
	case gosnmp.IPAddress:
		vb.Value = smi.Value{Type: smi.TypeIPAddress, Bytes: []byte(netipBytes(v.Value.(string)))}
	case gosnmp.Counter32:
		vb.Value = smi.Counter32(uint32(v.Value.(uint)))
	case gosnmp.Gauge32:
		vb.Value = smi.Gauge32(uint32(v.Value.(uint)))
	case gosnmp.TimeTicks:
		vb.Value = smi.TimeTicks(v.Value.(uint32))
	case gosnmp.Counter64:
		vb.Value = smi.Counter64(v.Value.(uint64))
	case gosnmp.NoSuchObject:
		vb.Value = smi.NoSuchObject()
	case gosnmp.NoSuchInstance:
		vb.Value = smi.NoSuchInstance()
	case gosnmp.EndOfMibView:
		vb.Value = smi.EndOfMibView()
	case gosnmp.Null:
		vb.Value = smi.Null()
	default:
		t.Fatalf("unexpected type %v for %s", v.Type, v.Name)
	}
	return vb
}

func netipBytes(s string) string {
	var a, b, c, d byte
	fmt.Sscanf(s, "%d.%d.%d.%d", &a, &b, &c, &d)
	return string([]byte{a, b, c, d})
}

// treeWalk is what a walk of root must return: the tree's own answers.
func treeWalk(t testing.TB, tree *agent.Tree, root smi.OID) []smi.VarBind {
	t.Helper()
	var out []smi.VarBind
	r := smi.Range{Start: root, End: root.SubtreeEnd()}
	for i := 0; i < 100000; i++ {
		vbs, err := tree.GetNext(context.Background(), []smi.Range{r})
		if err != nil {
			t.Fatal(err)
		}
		if vbs[0].Value.Type == smi.TypeEndOfMibView {
			return out
		}
		out = append(out, vbs[0])
		r.Start = vbs[0].Name
	}
	t.Fatal("tree walk does not end")
	return nil
}

func sameVarBinds(t testing.TB, what string, got, want []smi.VarBind) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d varbinds, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !got[i].Name.Equal(want[i].Name) || !got[i].Value.Equal(want[i].Value) {
			t.Errorf("%s: varbind %d: got %v, want %v", what, i, got[i], want[i])
			return
		}
	}
}

// A 128-varbind GET (what Zabbix sends) arrives as one AgentX Get with 128
// ranges and must be answered in full: a short Response makes snmpd log
// "bailing out" and wedge.
func TestGet128(t *testing.T) {
	r := startRig(t, rigOptions{})
	var names []smi.OID
	for i := uint32(1); i <= 50; i++ {
		names = append(names, agenttest.CallbackRoot.Append(i, 0))
	}
	for j := uint32(1); j <= 20; j++ {
		names = append(names, agenttest.CallbackRoot.Append(100, j))
	}
	for i := 0; len(names) < 126; i++ {
		names = append(names, agenttest.SparseTable.Append(uint32(1+i%4), agenttest.SparseIndex(i)))
	}
	names = append(names, agenttest.ScalarC64.Append(0), agenttest.SparseTable.Append(2, 3)) // a gap: noSuchInstance
	want, err := r.tree.Get(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	strs := make([]string, len(names))
	for i, n := range names {
		strs[i] = dotted(n)
	}
	res, err := r.client(t, "public").Get(strs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != gosnmp.NoError {
		t.Fatalf("error-status %v at %d", res.Error, res.ErrorIndex)
	}
	got := make([]smi.VarBind, len(res.Variables))
	for i, v := range res.Variables {
		got[i] = fromGosnmp(t, v)
	}
	sameVarBinds(t, "GET 128", got, want)
	if strings.Contains(r.snmpd.Log(), "bailing out") {
		t.Error("snmpd logged bailing out")
	}
}

// Walks through snmpd give exactly what the tree gives (GETNEXT one at a
// time, GETBULK, and a multi-varbind GETNEXT).
func TestDifferentialWalk(t *testing.T) {
	r := startRig(t, rigOptions{})
	g := r.client(t, "public")
	// The whole test tree, by GETBULK: 35,000 varbinds.
	want := treeWalk(t, r.tree.Tree, agenttest.Base)
	var got []smi.VarBind
	g.MaxRepetitions = 25
	if err := g.BulkWalk(dotted(agenttest.Base), func(v gosnmp.SnmpPDU) error {
		got = append(got, fromGosnmp(t, v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sameVarBinds(t, "bulkwalk", got, want)

	// Everything but the big table by GETNEXT.
	for _, root := range []smi.OID{agenttest.Base.Append(1), agenttest.Base.Append(2), agenttest.Base.Append(4),
		agenttest.CallbackRoot, agenttest.Base.Append(6)} {
		want := treeWalk(t, r.tree.Tree, root)
		got = got[:0]
		if err := g.Walk(dotted(root), func(v gosnmp.SnmpPDU) error {
			got = append(got, fromGosnmp(t, v))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sameVarBinds(t, "walk "+root.String(), got, want)
	}

	// One GETNEXT with varbinds in different registrations, across gaps
	// and empty tables, and past the end of the tree.
	starts := []smi.OID{agenttest.ScalarInt, agenttest.EmptyTable1, agenttest.SparseTable.Append(1, 3),
		agenttest.SparseTable.Append(4, 9999999), agenttest.EmptyTable2, agenttest.TwoIndexTable.Append(3, 3, 10),
		agenttest.CallbackRoot.Append(50, 0)}
	ranges := make([]smi.Range, len(starts))
	strs := make([]string, len(starts))
	for i, s := range starts {
		ranges[i] = smi.Range{Start: s}
		strs[i] = dotted(s)
	}
	wantNext, err := r.tree.GetNext(context.Background(), ranges)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.GetNext(strs)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for i, v := range res.Variables {
		vb := fromGosnmp(t, v)
		// Past the end of our tree snmpd goes on to its own objects.
		if wantNext[i].Value.Type == smi.TypeEndOfMibView {
			if vb.Name.HasPrefix(agenttest.Base) || vb.Name.Compare(starts[i]) <= 0 {
				t.Errorf("GETNEXT %s past the tree: %v", starts[i], vb)
			}
			vb = wantNext[i]
		}
		got = append(got, vb)
	}
	sameVarBinds(t, "multi-varbind GETNEXT", got, wantNext)

	// The CLI agrees on the count (and ends the walk cleanly).
	out, err := r.snmpd.Tool(context.Background(), "snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Cr25", r.snmpd.Addr, dotted(agenttest.TwoIndexTable))
	if err != nil {
		t.Fatalf("snmpbulkwalk: %v\n%s", err, out)
	}
	if n, want := strings.Count(out, "\n"), len(treeWalk(t, r.tree.Tree, agenttest.TwoIndexTable)); n != want {
		t.Errorf("snmpbulkwalk printed %d lines, want %d:\n%s", n, want, out)
	}
}

func TestSet(t *testing.T) {
	r := startRig(t, rigOptions{})
	g := r.client(t, "private")
	set := func(vbs ...gosnmp.SnmpPDU) *gosnmp.SnmpPacket {
		t.Helper()
		res, err := g.Set(vbs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	wInt := gosnmp.SnmpPDU{Name: dotted(agenttest.WritableInt.Append(0)), Type: gosnmp.Integer, Value: 5}
	if res := set(wInt); res.Error != gosnmp.NoError || r.tree.WritableIntValue() != 5 {
		t.Fatalf("set: %v, value %d", res.Error, r.tree.WritableIntValue())
	}
	// The second varbind fails its test phase: nothing changes.
	res := set(gosnmp.SnmpPDU{Name: wInt.Name, Type: gosnmp.Integer, Value: 6},
		gosnmp.SnmpPDU{Name: dotted(agenttest.WritableStr.Append(0)), Type: gosnmp.OctetString, Value: strings.Repeat("x", 40)})
	if res.Error != gosnmp.WrongLength || res.ErrorIndex != 2 {
		t.Errorf("failing SET: %v at %d, want wrongLength at 2", res.Error, res.ErrorIndex)
	}
	if v, s := r.tree.WritableIntValue(), r.tree.WritableStrValue(); v != 5 || s != "initial" {
		t.Errorf("failed SET changed state: %d %q", v, s)
	}
	// A commit that fails is undone everywhere (UndoSet through snmpd).
	res = set(gosnmp.SnmpPDU{Name: wInt.Name, Type: gosnmp.Integer, Value: 9},
		gosnmp.SnmpPDU{Name: dotted(agenttest.CommitFails.Append(0)), Type: gosnmp.Integer, Value: 13})
	if res.Error != gosnmp.CommitFailed {
		t.Errorf("failing commit: %v at %d, want commitFailed", res.Error, res.ErrorIndex)
	}
	if v := r.tree.WritableIntValue(); v != 5 {
		t.Errorf("undo left WritableInt at %d, want 5", v)
	}
	// snmpd is not wedged: a native SET and a subagent SET still work.
	res = set(gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.4.0", Type: gosnmp.OctetString, Value: "ops@example.net"})
	if res.Error != gosnmp.NoError {
		t.Errorf("native SET sysContact.0: %v", res.Error)
	}
	if res := set(gosnmp.SnmpPDU{Name: dotted(agenttest.WritableStr.Append(0)), Type: gosnmp.OctetString, Value: "changed"}); res.Error != gosnmp.NoError || r.tree.WritableStrValue() != "changed" {
		t.Errorf("SET after failures: %v, value %q", res.Error, r.tree.WritableStrValue())
	}
	if strings.Contains(r.snmpd.Log(), "bailing out") {
		t.Error("snmpd logged bailing out")
	}
}

// getScalarInt polls ScalarInt.0 until it is answered or the deadline.
func getScalarIntWithin(t testing.TB, g *gosnmp.GoSNMP, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		res, err := g.Get([]string{dotted(agenttest.ScalarInt.Append(0))})
		if err == nil && res.Error == gosnmp.NoError && res.Variables[0].Type == gosnmp.Integer {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ScalarInt.0 not answered within %v", d)
	return 0
}

// With snmpd's defaults (1 s timeout, 5 retries) a 3 s handler is re-sent
// twice by the master, executed once, answered once; other requests are
// answered meanwhile.
func TestSlowHandlerDefaults(t *testing.T) {
	r := startRig(t, rigOptions{tree: agenttest.Options{SlowDelay: 3 * time.Second},
		snmpd: snmpdtest.Options{Debug: []string{"agentx/master"}}})
	slow := r.client(t, "public")
	slow.Timeout = 10 * time.Second
	type result struct {
		res *gosnmp.SnmpPacket
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := slow.Get([]string{dotted(agenttest.SlowScalar.Append(0))})
		done <- result{res, err}
	}()
	fast := r.client(t, "public")
	fast.Timeout = 2 * time.Second
	answered := 0
	for {
		select {
		case out := <-done:
			if out.err != nil {
				t.Fatal(out.err)
			}
			if out.res.Error != gosnmp.NoError || out.res.Variables[0].Value != 77 {
				t.Fatalf("slow GET: %v %v", out.res.Error, out.res.Variables[0])
			}
			if n := r.tree.SlowCalls.Load(); n != 1 {
				t.Errorf("slow handler executed %d times", n)
			}
			if answered < 5 {
				t.Errorf("only %d other GETs answered while the slow one ran", answered)
			}
			if !strings.Contains(r.snmpd.Log(), "resend on session") {
				t.Error("snmpd never re-sent the slow PDU; the test proves nothing")
			}
			if r.sa.Stats().Duplicates == 0 {
				t.Error("no duplicate counted")
			}
			return
		default:
		}
		res, err := fast.Get([]string{dotted(agenttest.ScalarInt.Append(0))})
		if err != nil || res.Error != gosnmp.NoError {
			t.Fatalf("GET during slow request: %v %v", err, res)
		}
		answered++
		time.Sleep(50 * time.Millisecond)
	}
}

// With agentXRetries 1 snmpd gives up on the slow request: the client gets
// genErr, snmpd closes the session, our late answer is dropped, and we are
// back within 2 s.
func TestSlowHandlerMasterGivesUp(t *testing.T) {
	r := startRig(t, rigOptions{tree: agenttest.Options{SlowDelay: 3 * time.Second},
		snmpd: snmpdtest.Options{AgentXRetries: 1, Debug: []string{"agentx/master"}}})
	g := r.client(t, "public")
	res, err := g.Get([]string{dotted(agenttest.SlowScalar.Append(0))})
	if err != nil {
		t.Fatal(err)
	}
	gaveUp := time.Now()
	if res.Error != gosnmp.GenErr {
		t.Errorf("got %v, want genErr", res.Error)
	}
	if d := getScalarIntWithin(t, g, 2*time.Second); d > 2*time.Second {
		t.Errorf("served again after %v", d)
	}
	t.Logf("served again %v after the genErr", time.Since(gaveUp))
	// (snmpd routes to the new session from its first Register on, so the
	// GET above may beat the end of our registration.)
	waitfor.True(t, 5*time.Second, "a second session", func() bool { return r.sa.Stats().Sessions >= 2 })
	waitfor.True(t, 5*time.Second, "the late response dropped", func() bool { return r.sa.Stats().LateDropped > 0 })
	if n := r.tree.SlowCalls.Load(); n != 1 {
		t.Errorf("slow handler executed %d times", n)
	}
}

// snmpd killed and restarted: the subtree answers again within 2 s.
func TestMasterRestart(t *testing.T) {
	r := startRig(t, rigOptions{})
	g := r.client(t, "public")
	getScalarIntWithin(t, g, 2*time.Second)
	r.snmpd.Kill()
	time.Sleep(1500 * time.Millisecond) // the subagent is in its capped backoff
	r.snmpd.Restart()
	d := getScalarIntWithin(t, g, 2*time.Second)
	t.Logf("answered %v after the restart", d)
	waitfor.True(t, 5*time.Second, "exactly a second session", func() bool { return r.sa.Stats().Sessions == 2 })
}

// 8 clients × 1,000 GETs: all answered, and snmpd never re-sent a PDU.
func TestConcurrentClients(t *testing.T) {
	r := startRig(t, rigOptions{snmpd: snmpdtest.Options{Debug: []string{"agentx/master"}}})
	const clients, gets = 8, 1000
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		g := r.client(t, "public")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < gets; i++ {
				idx := agenttest.SparseIndex((c*gets + i) % agenttest.SparseRows)
				res, err := g.Get([]string{dotted(agenttest.SparseTable.Append(1, idx)), dotted(agenttest.ScalarC64.Append(0))})
				if err != nil {
					errs <- fmt.Errorf("client %d get %d: %w", c, i, err)
					return
				}
				if res.Error != gosnmp.NoError || len(res.Variables) != 2 || res.Variables[0].Value != int(idx) ||
					res.Variables[1].Value != agenttest.C64Base {
					errs <- fmt.Errorf("client %d get %d: %v %v", c, i, res.Error, res.Variables)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	log := r.snmpd.Log()
	if n := strings.Count(log, "resend on session"); n > 0 {
		t.Errorf("snmpd re-sent %d PDUs", n)
	}
	if strings.Contains(log, "bailing out") {
		t.Error("snmpd logged bailing out")
	}
	if st := r.sa.Stats(); st.Requests < clients*gets || st.Duplicates != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A subtree registered in a non-default context answers SNMPv3 requests
// with that context name, and only those.
func TestSNMPv3Context(t *testing.T) {
	se3 := agent.NewTree()
	obj := smi.MustParseOID("1.3.6.1.4.1.8072.9999.4243.1")
	if err := se3.RegisterScalar(obj, agent.Const(smi.String("engine 3"))); err != nil {
		t.Fatal(err)
	}
	user := snmpdtest.User{Name: "smuser", AuthPass: "authpass123", PrivPass: "privpass123", Context: "se3"}
	r := startRig(t, rigOptions{contexts: map[string]*agent.Tree{"se3": se3},
		snmpd: snmpdtest.Options{Users: []snmpdtest.User{user}}})
	g := &gosnmp.GoSNMP{
		Target: "127.0.0.1", Port: uint16(r.snmpd.Port), Version: gosnmp.Version3, Timeout: 5 * time.Second,
		SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv, ContextName: "se3",
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: user.Name,
			AuthenticationProtocol: gosnmp.SHA, AuthenticationPassphrase: user.AuthPass,
			PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: user.PrivPass},
	}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	res, err := g.Get([]string{dotted(obj.Append(0)), dotted(agenttest.ScalarInt.Append(0))})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Variables[0]; v.Type != gosnmp.OctetString || string(v.Value.([]byte)) != "engine 3" {
		t.Errorf("context se3: %v %v", v.Type, v.Value)
	}
	if v := res.Variables[1]; v.Type != gosnmp.NoSuchObject {
		t.Errorf("default-context object seen in se3: %v %v", v.Type, v.Value)
	}
	// And the default context does not see se3's object.
	d, err := r.client(t, "public").Get([]string{dotted(obj.Append(0))})
	if err != nil {
		t.Fatal(err)
	}
	if d.Variables[0].Type != gosnmp.NoSuchObject {
		t.Errorf("se3 object in the default context: %v", d.Variables[0].Type)
	}
}

// A notification sent through snmpd reaches a real snmptrapd.
func TestNotifyToTrapd(t *testing.T) {
	trapd := snmpdtest.StartTrapd(t)
	r := startRig(t, rigOptions{snmpd: snmpdtest.Options{TrapSinks: []string{trapd.Addr}}})
	trapOID := agenttest.Base.Append(0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.sa.Notify(ctx, trapOID, []smi.VarBind{{Name: agenttest.WritableStr.Append(0), Value: smi.String("trap-payload-xyz")}})
	if err != nil {
		t.Fatal(err)
	}
	if !trapd.WaitFor("trap-payload-xyz", 5*time.Second) {
		t.Fatalf("snmptrapd never logged the notification:\n%s", trapd.Log())
	}
	log := trapd.Log()
	if !strings.Contains(log, dotted(trapOID)) || !strings.Contains(log, ".1.3.6.1.6.3.1.1.4.1.0") {
		t.Errorf("trap OID missing:\n%s", log)
	}
	if r.sa.Stats().Notifications != 1 {
		t.Errorf("stats %+v", r.sa.Stats())
	}
	_ = agentx.ErrNotConnected
}

// The same over a unix socket (agentXSocket unix:/path).
func TestUnixSocketMaster(t *testing.T) {
	r := startRig(t, rigOptions{snmpd: snmpdtest.Options{Unix: true}})
	if !strings.HasPrefix(r.snmpd.AgentX, "unix:/") {
		t.Fatalf("socket %s", r.snmpd.AgentX)
	}
	res, err := r.client(t, "public").Get([]string{dotted(agenttest.ScalarC64.Append(0))})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Variables[0]; v.Type != gosnmp.Counter64 || v.Value != agenttest.C64Base {
		t.Errorf("got %v %v", v.Type, v.Value)
	}
}
