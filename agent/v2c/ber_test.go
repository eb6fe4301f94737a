package v2c

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

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

// TestEncodeExactBytes pins the encoding of a small response.
func TestEncodeExactBytes(t *testing.T) {
	m := &message{version: versionV2c, community: []byte("public"), pdu: PDUResponse, requestID: 0x1234,
		vbs: []smi.VarBind{
			{Name: smi.MustParseOID("1.3.6.1.2.1.1.3.0"), Value: smi.TimeTicks(200)},
			{Name: smi.MustParseOID("1.3.6.1.2"), Value: smi.Counter64(1 << 32)},
			{Name: smi.MustParseOID("1.3.6.1.3"), Value: smi.NoSuchInstance()},
			{Name: smi.MustParseOID("1.3.6.1.4"), Value: smi.EndOfMibView()},
		}}
	want := unhex(t, "304c 020101 04067075626c6963"+
		"a23f 02021234 020100 020100"+
		"3033"+
		"300e 06082b06010201010300 430200c8"+ // TimeTicks 200: leading zero octet
		"300d 06042b060102 46050100000000"+ // Counter64 2^32: five octets
		"3008 06042b060103 8100"+ // noSuchInstance
		"3008 06042b060104 8200") // endOfMibView
	if got := m.encode(); !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	if m.Len() != len(want) {
		t.Errorf("Len() = %d, want %d", m.Len(), len(want))
	}
}

// TestEncodeMatchesGosnmp checks the encoder byte for byte against gosnmp's
// MarshalMsg for every value type, including exceptions and Counter64.
func TestEncodeMatchesGosnmp(t *testing.T) {
	for _, rid := range []int32{0, 1, 127, 128, 65535, 1<<31 - 1} {
		vbs := everyType()
		m := &message{version: versionV2c, community: []byte("public"), pdu: PDUResponse, requestID: rid, vbs: vbs}
		p := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.GetResponse, RequestID: uint32(rid)}
		for _, vb := range vbs {
			p.Variables = append(p.Variables, toPDU(vb))
		}
		want, err := p.MarshalMsg()
		if err != nil {
			t.Fatal(err)
		}
		got := m.encode()
		if !bytes.Equal(got, want) {
			t.Fatalf("request-id %d:\n got %x\nwant %x", rid, got, want)
		}
		if m.Len() != len(got) {
			t.Errorf("Len() = %d, encoded %d", m.Len(), len(got))
		}
		// Every varbind's own size is exact.
		for _, vb := range vbs {
			n, ok := varBindLen(vb)
			if !ok || n != len(appendVarBind(nil, vb)) {
				t.Errorf("%v: varBindLen %d, encoded %d", vb, n, len(appendVarBind(nil, vb)))
			}
		}
	}
}

// TestEncodeDecodesWithGosnmp decodes the encoder's output with gosnmp and
// checks every value came back, including a large error-index gosnmp
// itself cannot encode.
func TestEncodeDecodesWithGosnmp(t *testing.T) {
	vbs := everyType()
	m := &message{version: versionV2c, community: []byte("c"), pdu: PDUResponse, requestID: -5, field2: 5, field3: 300, vbs: vbs}
	p, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(m.encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Variables) != len(vbs) {
		t.Fatalf("%d varbinds back, want %d", len(p.Variables), len(vbs))
	}
	for i, pv := range p.Variables {
		vb, _, err := fromPDU(pv)
		if err != nil {
			t.Fatal(err)
		}
		want := vbs[i]
		if want.Value.Type.IsException() {
			if gosnmp.Asn1BER(want.Value.Type) != pv.Type {
				t.Errorf("varbind %d: type %v, want %v", i, pv.Type, want.Value.Type)
			}
			continue
		}
		if !vb.Name.Equal(want.Name) || !vb.Value.Equal(want.Value) {
			t.Errorf("varbind %d: got %v, want %v", i, vb, want)
		}
	}
	h, err := parseHeader(m.encode())
	if err != nil || h.requestID != -5 || h.field3 != 300 {
		t.Errorf("parseHeader: %+v, %v", h, err)
	}
}

// TestParseHeader covers the envelope pre-parse, including what gosnmp
// narrows: non-repeaters above 255 and negative max-repetitions.
func TestParseHeader(t *testing.T) {
	req := &message{version: versionV2c, community: []byte("public"), pdu: PDUGetBulk, requestID: 77,
		field2: 300, field3: -1, vbs: []smi.VarBind{{Name: smi.MustParseOID("1.3.6"), Value: smi.Null()}}}
	b := req.encode()
	h, err := parseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.version != versionV2c || string(h.community) != "public" || h.pdu != PDUGetBulk ||
		h.requestID != 77 || h.field2 != 300 || h.field3 != -1 {
		t.Errorf("got %+v", h)
	}
	if want := unhex(t, "3008300606022b060500"); !bytes.Equal(h.vbl, want) {
		t.Errorf("vbl %x, want %x", h.vbl, want)
	}

	// SNMPv3 is recognized as a version, not garbage.
	v3 := unhex(t, "300e020103 3003020100 0400 3000 0400")
	if _, err := parseHeader(v3); !errors.Is(err, ErrVersion) {
		t.Errorf("v3: %v, want ErrVersion", err)
	}
	for name, in := range map[string]string{
		"empty":             "",
		"not a sequence":    "0400",
		"trailing garbage":  "3000 00",
		"indefinite length": "3080",
		"5-octet length":    "3085 0000000001",
		"long version":      "3005 02020001 0400",
		"request-id 5 oct":  "3014 020101 0400 a00d 02050100000000 020100 020100 3000",
		"vbl not sequence":  "3010 020101 0400 a009 020101 020100 020100 0400",
		"bytes after pdu":   "3011 020101 0400 a008 020101 020100 020100 3000 00",
		"multi-octet tag":   "3003 1f0100",
	} {
		if _, err := parseHeader(unhex(t, in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// TestParseHeaderTruncated: every cut-short request is an error, never a
// panic.
func TestParseHeaderTruncated(t *testing.T) {
	for _, pdu := range []PDUType{PDUGet, PDUGetBulk, PDUSet} {
		b := (&message{version: versionV1, community: []byte("private"), pdu: pdu, requestID: 1 << 20, vbs: everyType()}).encode()
		if _, err := parseHeader(b); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); i++ {
			if _, err := parseHeader(b[:i]); err == nil {
				t.Errorf("%v cut at %d of %d: no error", pdu, i, len(b))
			}
		}
	}
}

// TestFit checks the GETBULK truncation arithmetic against real encodings.
func TestFit(t *testing.T) {
	vbs := everyType()
	m := &message{version: versionV2c, community: []byte("public"), pdu: PDUResponse, requestID: 99999, vbs: vbs}
	full := len(m.encode())
	for limit := 0; limit <= full+1; limit++ {
		k := m.fit(limit)
		part := &message{version: m.version, community: m.community, pdu: m.pdu, requestID: m.requestID, vbs: vbs[:k]}
		n := len(part.encode())
		if k > 0 && n > limit {
			t.Fatalf("limit %d: %d varbinds take %d bytes", limit, k, n)
		}
		if k < len(vbs) {
			more := &message{version: m.version, community: m.community, pdu: m.pdu, requestID: m.requestID, vbs: vbs[:k+1]}
			if len(more.encode()) <= limit {
				t.Fatalf("limit %d: %d varbinds fit but fit() said %d", limit, k+1, k)
			}
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
