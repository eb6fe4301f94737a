package snmp

import (
	"context"
	"net/netip"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/snmp/snmptest"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

type harness struct {
	a    *Agent
	tree *agenttest.Tree
}

func testConfig() Config {
	return Config{ROCommunity: config.NewSecret("public"), RWCommunity: config.NewSecret("private")}
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	tree := agenttest.New(agenttest.Options{})
	ctxs, err := snmptest.Contexts(agenttest.Base, tree.Tree)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, ctxs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{a: a, tree: tree}
}

// testFrom is the source address of requests sent without a socket.
var testFrom = netip.MustParseAddrPort("127.0.0.1:40000")

// raw sends a datagram through the request path and decodes the answer
// with gosnmp, an independent decoder (nil when the agent answers
// nothing).
func (h *harness) raw(t testing.TB, pkt []byte) *gosnmp.SnmpPacket {
	t.Helper()
	resp := h.a.handle(context.Background(), pkt, testFrom)
	if resp == nil {
		return nil
	}
	if len(resp) > h.a.cfg.MaxMessageSize {
		t.Fatalf("response of %d bytes exceeds %d", len(resp), h.a.cfg.MaxMessageSize)
	}
	p, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(resp)
	if err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	if p.PDUType != gosnmp.GetResponse {
		t.Fatalf("response PDU %v", p.PDUType)
	}
	return p
}

// do sends a request built with internal/ber (which can express every
// field, unlike gosnmp's encoder).
func (h *harness) do(t testing.TB, version ber.Version, community string, pdu ber.PDUType, f2, f3 int32, vbs ...smi.VarBind) *gosnmp.SnmpPacket {
	t.Helper()
	for i := range vbs {
		if vbs[i].Value.Type == 0 {
			vbs[i].Value = smi.Null()
		}
	}
	p := h.raw(t, encode(version, community, pdu, 4242, f2, f3, vbs))
	if p != nil && p.RequestID != 4242 {
		t.Fatalf("request-id %d", p.RequestID)
	}
	return p
}

// TestGet60Mixed: a GET of 60 varbinds mixing existing objects, missing
// instances and missing objects answers all 60 with the right values.
func TestGet60Mixed(t *testing.T) {
	h := newHarness(t, testConfig())
	var req []smi.OID
	var want []smi.Value
	for i := 0; len(req) < 60; i++ {
		switch i % 4 {
		case 0: // existing row
			idx := agenttest.SparseIndex(i)
			req = append(req, agenttest.SparseTable.Append(2, idx))
			want = append(want, smi.String(rowName(idx)))
		case 1: // a gap in the table: no such instance
			req = append(req, agenttest.SparseTable.Append(1, uint32(7*i+3)))
			want = append(want, smi.NoSuchInstance())
		case 2: // an object that does not exist at all
			req = append(req, agenttest.Base.Append(77, uint32(i), 0))
			want = append(want, smi.NoSuchObject())
		case 3: // a scalar with the wrong instance, and the right one
			if i%8 == 3 {
				req = append(req, agenttest.ScalarC64.Append(1))
				want = append(want, smi.NoSuchInstance())
			} else {
				req = append(req, agenttest.ScalarC64.Append(0))
				want = append(want, smi.Counter64(agenttest.C64Base))
			}
		}
	}
	p := h.do(t, ber.Version2c, "public", ber.PDUGet, 0, 0, names(req...)...)
	if p.Error != gosnmp.NoError {
		t.Fatalf("error-status %v", p.Error)
	}
	got := vbsOf(t, p)
	if len(got) != 60 {
		t.Fatalf("%d varbinds, want 60", len(got))
	}
	for i := range got {
		if !got[i].Name.Equal(req[i]) || !got[i].Value.Equal(want[i]) {
			t.Errorf("varbind %d: %v, want %v = %v", i, got[i], req[i], want[i])
		}
	}

	// SNMPv1: noSuchName naming the first missing one, the request echoed.
	p = h.do(t, ber.Version1, "public", ber.PDUGet, 0, 0, names(req...)...)
	if p.Error != gosnmp.NoSuchName || p.ErrorIndex != 2 || len(p.Variables) != 60 {
		t.Errorf("v1: %v index %d, %d varbinds", p.Error, p.ErrorIndex, len(p.Variables))
	}
	// SNMPv1 GET of a Counter64 is noSuchName too (RFC 3584 §4.2.1).
	p = h.do(t, ber.Version1, "public", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0), agenttest.ScalarC64.Append(0))...)
	if p.Error != gosnmp.NoSuchName || p.ErrorIndex != 2 {
		t.Errorf("v1 Counter64: %v index %d", p.Error, p.ErrorIndex)
	}
}

func rowName(idx uint32) string {
	return "row-" + string([]byte{byte('0' + idx/10000%10), byte('0' + idx/1000%10), byte('0' + idx/100%10), byte('0' + idx/10%10), byte('0' + idx%10)})
}

// reference walks the inner tree directly: what every walk must return.
func reference(t testing.TB, tree *agent.Tree, root smi.OID) []smi.VarBind {
	t.Helper()
	var out []smi.VarBind
	r := smi.Range{Start: root, End: root.SubtreeEnd()}
	for {
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
}

// walk walks root with GETNEXT (bulk == 0) or GETBULK through the agent.
func (h *harness) walk(t testing.TB, version ber.Version, root smi.OID, bulk int32) []smi.VarBind {
	t.Helper()
	var out []smi.VarBind
	cur := root
	for steps := 0; steps < 100000; steps++ {
		var p *gosnmp.SnmpPacket
		if bulk > 0 {
			p = h.do(t, version, "public", ber.PDUGetBulk, 0, bulk, names(cur)...)
		} else {
			p = h.do(t, version, "public", ber.PDUGetNext, 0, 0, names(cur)...)
		}
		if p.Error == gosnmp.NoSuchName && version == ber.Version1 {
			return out
		}
		if p.Error != gosnmp.NoError || len(p.Variables) == 0 {
			t.Fatalf("walk at %v: %v, %d varbinds", cur, p.Error, len(p.Variables))
		}
		for _, vb := range vbsOf(t, p) {
			if vb.Value.Type == smi.TypeEndOfMibView || !vb.Name.HasPrefix(root) {
				return out
			}
			if vb.Name.Compare(cur) <= 0 {
				t.Fatalf("OID not increasing: %v after %v", vb.Name, cur)
			}
			out = append(out, vb)
			cur = vb.Name
		}
	}
	t.Fatal("walk did not end")
	return nil
}

func sameVarBinds(t testing.TB, got, want []smi.VarBind) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d varbinds, want %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Name.Equal(want[i].Name) || !got[i].Value.Equal(want[i].Value) {
			t.Fatalf("varbind %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestWalks(t *testing.T) {
	h := newHarness(t, testConfig())
	want := reference(t, h.tree.Tree, agenttest.Base)
	if len(want) < 3*agenttest.SparseRows {
		t.Fatalf("reference walk has only %d varbinds", len(want))
	}
	sameVarBinds(t, h.walk(t, ber.Version2c, agenttest.Base, 0), want)
	sameVarBinds(t, h.walk(t, ber.Version2c, agenttest.Base, 25), want)
	sameVarBinds(t, h.walk(t, ber.Version2c, agenttest.Base, 1000), want)

	// SNMPv1: the same walk without a single Counter64.
	var v1 []smi.VarBind
	for _, vb := range want {
		if vb.Value.Type != smi.TypeCounter64 {
			v1 = append(v1, vb)
		}
	}
	sameVarBinds(t, h.walk(t, ber.Version1, agenttest.Base, 0), v1)
}

// TestGetBulkTruncated: a GETBULK whose answer exceeds the message size
// is truncated to what fits, never answered with an error.
func TestGetBulkTruncated(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageSize = 1400
	h := newHarness(t, cfg)
	want := reference(t, h.tree.Tree, agenttest.SparseTable)
	p := h.do(t, ber.Version2c, "public", ber.PDUGetBulk, 0, 5000, names(agenttest.SparseTable)...)
	if p.Error != gosnmp.NoError {
		t.Fatalf("error-status %v", p.Error)
	}
	got := vbsOf(t, p)
	if len(got) < 20 || len(got) >= 5000 {
		t.Fatalf("%d varbinds", len(got))
	}
	sameVarBinds(t, got, want[:len(got)])
	if c := h.a.Counters().BulkTruncated; c != 1 {
		t.Errorf("BulkTruncated = %d", c)
	}
	// The same request at the largest size: more, still truncated, still ok.
	h2 := newHarness(t, testConfig())
	p = h2.do(t, ber.Version2c, "public", ber.PDUGetBulk, 0, 1<<30, names(agenttest.SparseTable)...)
	if p.Error != gosnmp.NoError || len(p.Variables) < 1000 {
		t.Fatalf("65507: %v, %d varbinds", p.Error, len(p.Variables))
	}
	sameVarBinds(t, vbsOf(t, p), want[:len(p.Variables)])
}

// TestTooBig: GET and GETNEXT answers that do not fit are tooBig with an
// empty list in SNMPv2c.
func TestTooBig(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageSize = MinMessageSize
	h := newHarness(t, cfg)
	var req []smi.OID
	for i := 0; i < 30; i++ {
		req = append(req, agenttest.SparseTable.Append(2, agenttest.SparseIndex(i)))
	}
	for _, pdu := range []ber.PDUType{ber.PDUGet, ber.PDUGetNext} {
		p := h.do(t, ber.Version2c, "public", pdu, 0, 0, names(req...)...)
		if p.Error != gosnmp.TooBig || p.ErrorIndex != 0 || len(p.Variables) != 0 {
			t.Errorf("%v: %v index %d, %d varbinds", pdu, p.Error, p.ErrorIndex, len(p.Variables))
		}
	}
	if c := h.a.Counters().OutTooBig; c != 2 {
		t.Errorf("OutTooBig = %d", c)
	}
}

// TestGetBulkFields covers non-repeaters and max-repetitions edge values,
// including those gosnmp's decoder would narrow.
func TestGetBulkFields(t *testing.T) {
	h := newHarness(t, testConfig())
	var req []smi.OID
	for i := 0; i < 300; i++ {
		req = append(req, agenttest.ScalarInt)
	}
	req = append(req, agenttest.SparseTable)
	// 300 non-repeaters and one repeater with 3 repetitions: 303 varbinds.
	p := h.do(t, ber.Version2c, "public", ber.PDUGetBulk, 300, 3, names(req...)...)
	if p.Error != gosnmp.NoError || len(p.Variables) != 303 {
		t.Fatalf("non-repeaters 300: %v, %d varbinds", p.Error, len(p.Variables))
	}
	// Negative max-repetitions means none; negative non-repeaters means 0.
	p = h.do(t, ber.Version2c, "public", ber.PDUGetBulk, 0, -1, names(agenttest.SparseTable)...)
	if p.Error != gosnmp.NoError || len(p.Variables) != 0 {
		t.Errorf("max-repetitions -1: %v, %d varbinds", p.Error, len(p.Variables))
	}
	p = h.do(t, ber.Version2c, "public", ber.PDUGetBulk, -5, 2, names(agenttest.ScalarInt)...)
	if p.Error != gosnmp.NoError || len(p.Variables) != 2 {
		t.Errorf("non-repeaters -5: %v, %d varbinds", p.Error, len(p.Variables))
	}
	// GETBULK is no SNMPv1 PDU: dropped as a parse error.
	before := h.a.Counters().InASNParseErrs
	if p := h.do(t, ber.Version1, "public", ber.PDUGetBulk, 0, 2, names(agenttest.ScalarInt)...); p != nil {
		t.Error("v1 GETBULK answered")
	}
	if h.a.Counters().InASNParseErrs != before+1 {
		t.Error("v1 GETBULK not counted")
	}
}

func TestSet(t *testing.T) {
	h := newHarness(t, testConfig())
	wi := agenttest.WritableInt.Append(0)
	ws := agenttest.WritableStr.Append(0)
	cf := agenttest.CommitFails.Append(0)

	p := h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0,
		smi.VarBind{Name: wi, Value: smi.Integer(500)}, smi.VarBind{Name: ws, Value: smi.String("new")})
	if p.Error != gosnmp.NoError || len(p.Variables) != 2 || h.tree.WritableIntValue() != 500 || h.tree.WritableStrValue() != "new" {
		t.Fatalf("set: %v, int %d str %q", p.Error, h.tree.WritableIntValue(), h.tree.WritableStrValue())
	}

	// One bad varbind fails the whole SET and changes nothing.
	p = h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0,
		smi.VarBind{Name: wi, Value: smi.Integer(1)}, smi.VarBind{Name: ws, Value: smi.String("0123456789012345678901234567890123")})
	if p.Error != gosnmp.WrongLength || p.ErrorIndex != 2 || h.tree.WritableIntValue() != 500 || h.tree.WritableStrValue() != "new" {
		t.Errorf("bad length: %v index %d, int %d str %q", p.Error, p.ErrorIndex, h.tree.WritableIntValue(), h.tree.WritableStrValue())
	}
	// SNMPv1 maps it (RFC 3584 §4.4).
	p = h.do(t, ber.Version1, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: wi, Value: smi.Integer(2000)})
	if p.Error != gosnmp.BadValue || p.ErrorIndex != 1 {
		t.Errorf("v1 wrongValue: %v index %d", p.Error, p.ErrorIndex)
	}
	p = h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: wi, Value: smi.String("x")})
	if p.Error != gosnmp.WrongType {
		t.Errorf("wrong type: %v", p.Error)
	}
	p = h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: agenttest.ScalarInt.Append(0), Value: smi.Integer(1)})
	if p.Error != gosnmp.NotWritable {
		t.Errorf("read-only object: %v", p.Error)
	}
	p = h.do(t, ber.Version1, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: agenttest.ScalarInt.Append(0), Value: smi.Integer(1)})
	if p.Error != gosnmp.NoSuchName {
		t.Errorf("v1 read-only object: %v", p.Error)
	}
	// A failed commit is undone and answered commitFailed.
	p = h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0,
		smi.VarBind{Name: wi, Value: smi.Integer(9)}, smi.VarBind{Name: cf, Value: smi.Integer(13)})
	if p.Error != gosnmp.CommitFailed || h.tree.WritableIntValue() != 500 {
		t.Errorf("commit failure: %v, int %d", p.Error, h.tree.WritableIntValue())
	}

	// The read-only community may not SET.
	p = h.do(t, ber.Version2c, "public", ber.PDUSet, 0, 0, smi.VarBind{Name: wi, Value: smi.Integer(3)})
	if p.Error != gosnmp.NoAccess || h.tree.WritableIntValue() != 500 {
		t.Errorf("ro community: %v", p.Error)
	}
	p = h.do(t, ber.Version1, "public", ber.PDUSet, 0, 0, smi.VarBind{Name: wi, Value: smi.Integer(3)})
	if p.Error != gosnmp.NoSuchName {
		t.Errorf("v1 ro community: %v", p.Error)
	}
	if c := h.a.Counters().InBadCommunityUses; c != 2 {
		t.Errorf("InBadCommunityUses = %d", c)
	}
}

func TestDropped(t *testing.T) {
	h := newHarness(t, testConfig())
	get := names(agenttest.ScalarInt.Append(0))
	if p := h.do(t, ber.Version2c, "wrong", ber.PDUGet, 0, 0, get...); p != nil {
		t.Error("bad community answered")
	}
	if p := h.do(t, ber.Version2c, "public@nosuchcontext", ber.PDUGet, 0, 0, get...); p != nil {
		t.Error("unknown context answered")
	}
	if p := h.do(t, 3, "public", ber.PDUGet, 0, 0, get...); p != nil {
		t.Error("SNMPv3 answered")
	}
	if p := h.do(t, ber.Version2c, "public", ber.PDUResponse, 0, 0, get...); p != nil {
		t.Error("Response answered")
	}
	if p := h.raw(t, []byte{0x30, 0x03, 0x02, 0x01}); p != nil {
		t.Error("garbage answered")
	}
	if p := h.raw(t, make([]byte, MaxDatagram+1)); p != nil {
		t.Error("oversized answered")
	}
	c := h.a.Counters()
	if c.InBadCommunityNames != 2 || c.InBadVersions != 1 || c.UnsupportedPDUs != 1 || c.InASNParseErrs != 1 || c.Oversized != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestContextCommunity(t *testing.T) {
	h := newHarness(t, testConfig())
	se3 := h.a.contexts.Ensure("se3")
	if err := se3.RegisterScalar(smi.MustParseOID("1.3.6.1.4.1.8072.9999.77"), agent.Const(smi.Integer(3))); err != nil {
		t.Fatal(err)
	}
	p := h.do(t, ber.Version2c, "public@se3", ber.PDUGet, 0, 0, names(smi.MustParseOID("1.3.6.1.4.1.8072.9999.77.0"), agenttest.ScalarInt.Append(0))...)
	got := vbsOf(t, p)
	if !got[0].Value.Equal(smi.Integer(3)) || got[1].Value.Type != smi.TypeNoSuchObject {
		t.Errorf("context se3: %v", got)
	}
}

func TestSNMPGroup(t *testing.T) {
	h := newHarness(t, testConfig())
	if err := h.a.RegisterSNMPGroup(h.a.contexts.Default()); err != nil {
		t.Fatal(err)
	}
	h.do(t, ber.Version2c, "nope", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0))...)
	h.do(t, ber.Version2c, "nope", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0))...)
	p := h.do(t, ber.Version2c, "public", ber.PDUGet, 0, 0, names(OIDSNMPGroup.Append(4, 0), OIDSNMPGroup.Append(30, 0), OIDSNMPGroup.Append(32, 0))...)
	got := vbsOf(t, p)
	if !got[0].Value.Equal(smi.Counter32(2)) || !got[1].Value.Equal(smi.Integer(2)) || !got[2].Value.Equal(smi.Counter32(0)) {
		t.Errorf("snmp group: %v", got)
	}
	p = h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: OIDSNMPGroup.Append(30, 0), Value: smi.Integer(3)})
	if p.Error != gosnmp.WrongValue {
		t.Errorf("snmpEnableAuthenTraps = 3: %v", p.Error)
	}
	p = h.do(t, ber.Version2c, "private", ber.PDUSet, 0, 0, smi.VarBind{Name: OIDSNMPGroup.Append(30, 0), Value: smi.Integer(1)})
	if p.Error != gosnmp.NoError || h.a.authTraps.Load() != 1 {
		t.Errorf("snmpEnableAuthenTraps = 1: %v", p.Error)
	}
}

// directAgent serves a copy of agenttest's sparse table registered
// directly on the default context (no snmptest.Mount), as production
// registers its tables.
func directAgent(b *testing.B) *harness {
	ctxs := agent.NewContexts()
	sparse := agent.NewTable(agenttest.SparseTable, 1, 2, 3, 4)
	for i := 0; i < agenttest.SparseRows; i++ {
		idx := agenttest.SparseIndex(i)
		sparse.SetRow(smi.OID{idx}, agent.Columns{1: smi.Integer(int32(idx)), 2: smi.String(rowName(idx)),
			3: smi.Counter64(agenttest.C64Base + uint64(idx))})
	}
	if err := ctxs.Default().RegisterTable(sparse); err != nil {
		b.Fatal(err)
	}
	if err := ctxs.Default().RegisterScalar(agenttest.ScalarInt, agent.Const(smi.Integer(42))); err != nil {
		b.Fatal(err)
	}
	a, err := New(testConfig(), ctxs, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &harness{a: a}
}

// BenchmarkHandleGetBulk measures the agent's own cost of one GETBULK of
// 25 repetitions in the sparse table (no socket), per varbind.
func BenchmarkHandleGetBulk(b *testing.B) {
	h := directAgent(b)
	pkt := encode(ber.Version2c, "public", ber.PDUGetBulk, 1, 0, 25, names(agenttest.SparseTable.Append(2, 5000)))
	b.ReportAllocs()
	for b.Loop() {
		if h.a.handle(context.Background(), pkt, testFrom) == nil {
			b.Fatal("no answer")
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/25/1000, "us/varbind")
}

// BenchmarkHandleGet measures one GET of one scalar (no socket).
func BenchmarkHandleGet(b *testing.B) {
	h := directAgent(b)
	pkt := encode(ber.Version2c, "public", ber.PDUGet, 1, 0, 0, names(agenttest.ScalarInt.Append(0)))
	b.ReportAllocs()
	for b.Loop() {
		if h.a.handle(context.Background(), pkt, testFrom) == nil {
			b.Fatal("no answer")
		}
	}
}

func TestV1Status(t *testing.T) {
	// RFC 3584 §4.4.
	want := map[smi.ErrorStatus]smi.ErrorStatus{
		smi.NoError: smi.NoError, smi.TooBig: smi.TooBig, smi.NoSuchName: smi.NoSuchName,
		smi.BadValue: smi.BadValue, smi.ReadOnly: smi.ReadOnly, smi.GenErr: smi.GenErr,
		smi.WrongValue: smi.BadValue, smi.WrongEncoding: smi.BadValue, smi.WrongType: smi.BadValue,
		smi.WrongLength: smi.BadValue, smi.InconsistentValue: smi.BadValue,
		smi.NoAccess: smi.NoSuchName, smi.NotWritable: smi.NoSuchName, smi.NoCreation: smi.NoSuchName,
		smi.InconsistentName: smi.NoSuchName, smi.AuthorizationError: smi.NoSuchName,
		smi.ResourceUnavailable: smi.GenErr, smi.CommitFailed: smi.GenErr, smi.UndoFailed: smi.GenErr,
	}
	for in, out := range want {
		if got := v1Status(in); got != out {
			t.Errorf("v1Status(%v) = %v, want %v", in, got, out)
		}
	}
}

// TestUnencodableValueIsGenErr: a handler's value that has no BER encoding
// (an OBJECT IDENTIFIER of one arc, which the old encoder padded to two
// as net-snmp does; a Counter32 beyond 32 bits, which it truncated) is
// answered genErr naming that varbind, in both versions, and the other
// objects still answer.
func TestUnencodableValueIsGenErr(t *testing.T) {
	h := newHarness(t, testConfig())
	short := smi.MustParseOID("1.3.6.1.4.1.8072.9999.88")
	wide := smi.MustParseOID("1.3.6.1.4.1.8072.9999.89")
	def := h.a.contexts.Default()
	if err := def.RegisterScalar(short, agent.Const(smi.ObjectID(smi.OID{1}))); err != nil {
		t.Fatal(err)
	}
	if err := def.RegisterScalar(wide, agent.Const(smi.Value{Type: smi.TypeCounter32, Uint: 1<<32 + 5})); err != nil {
		t.Fatal(err)
	}
	for _, v := range []ber.Version{ber.Version1, ber.Version2c} {
		for _, bad := range []smi.OID{short, wide} {
			p := h.do(t, v, "public", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0), bad.Append(0))...)
			if p == nil || p.Error != gosnmp.GenErr || p.ErrorIndex != 2 || len(p.Variables) != 2 {
				t.Errorf("%v GET %v: %+v", v, bad, p)
			}
		}
	}
	p := h.do(t, ber.Version2c, "public", ber.PDUGet, 0, 0, names(agenttest.ScalarInt.Append(0))...)
	if p == nil || p.Error != gosnmp.NoError {
		t.Errorf("the other objects: %+v", p)
	}
}
