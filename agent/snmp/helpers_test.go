package snmp

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/gosnmpconv"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// encode builds an SNMPv1/v2c message with internal/ber, which can
// express every field a manager may send (gosnmp's encoder narrows some).
func encode(v ber.Version, community string, t ber.PDUType, rid, f2, f3 int32, vbs []smi.VarBind) []byte {
	m := ber.CommunityMessage{Version: v, Community: []byte(community),
		PDU: ber.PDU{Type: t, RequestID: rid, ErrorStatus: f2, ErrorIndex: f3, VarBinds: vbs}}
	b, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func names(oids ...smi.OID) []smi.VarBind {
	out := make([]smi.VarBind, len(oids))
	for i, o := range oids {
		out[i] = smi.VarBind{Name: o, Value: smi.Null()}
	}
	return out
}

// vbsOf converts gosnmp's decoding of a response.
func vbsOf(t testing.TB, p *gosnmp.SnmpPacket) []smi.VarBind {
	t.Helper()
	out := make([]smi.VarBind, len(p.Variables))
	for i, v := range p.Variables {
		vb, err := gosnmpconv.FromPDU(v)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = vb
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// everyType is one varbind of each type the agent can send, with values at
// the edges of their encodings.
func everyType() []smi.VarBind {
	o := smi.MustParseOID
	return []smi.VarBind{
		{Name: o("1.3.6.1.2.1.1.3.0"), Value: smi.TimeTicks(4294967295)},
		{Name: o("1.3.6.1.4.1.8072.9999.1"), Value: smi.Integer(-2147483648)},
		{Name: o("1.3.6.1.4.1.8072.9999.2"), Value: smi.Integer(127)},
		{Name: o("1.3.6.1.4.1.8072.9999.3"), Value: smi.Integer(128)},
		{Name: o("1.3.6.1.4.1.8072.9999.4"), Value: smi.Integer(-129)},
		{Name: o("1.3.6.1.4.1.8072.9999.5"), Value: smi.String("hello")},
		{Name: o("1.3.6.1.4.1.8072.9999.6"), Value: smi.OctetString(bytes.Repeat([]byte{0xaa}, 300))},
		{Name: o("1.3.6.1.4.1.8072.9999.7"), Value: smi.Null()},
		{Name: o("1.3.6.1.4.1.8072.9999.8"), Value: smi.ObjectID(o("1.3.6.1.4.1.4294967295.0"))},
		{Name: o("1.3.6.1.4.1.8072.9999.9"), Value: smi.IPAddress(netip.MustParseAddr("192.0.2.255"))},
		{Name: o("1.3.6.1.4.1.8072.9999.10"), Value: smi.Counter32(2147483648)},
		{Name: o("1.3.6.1.4.1.8072.9999.11"), Value: smi.Gauge32(0)},
		{Name: o("1.3.6.1.4.1.8072.9999.12"), Value: smi.Counter64(1<<64 - 1)},
		{Name: o("1.3.6.1.4.1.8072.9999.13"), Value: smi.Counter64(1<<40 + 12345)},
		{Name: o("1.3.6.1.4.1.8072.9999.14"), Value: smi.Opaque([]byte{1, 2, 3})},
		{Name: o("1.3.6.1.4.1.8072.9999.15"), Value: smi.NoSuchObject()},
		{Name: o("1.3.6.1.4.1.8072.9999.16"), Value: smi.NoSuchInstance()},
		{Name: o("1.3.6.1.4.1.8072.9999.17"), Value: smi.EndOfMibView()},
		{Name: o("2.999.3"), Value: smi.Integer(0)},
	}
}
