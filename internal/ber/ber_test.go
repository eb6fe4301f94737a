package ber

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/gosnmpconv"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// cases covers every value type at its edges.
var cases = []smi.VarBind{
	{Name: smi.MustParseOID("1.3.6.1.2.1.1.3.0"), Value: smi.TimeTicks(4294967295)},
	{Name: smi.MustParseOID("1.3.6.1.2.1.1.5.0"), Value: smi.String("cache-7")},
	{Name: smi.MustParseOID("1.3.6.1.4.1.8072.9999.9999.42.1.1.1.0"), Value: smi.Integer(-2147483648)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.8072.9999.9999.42.1.1.2.0"), Value: smi.Integer(2147483647)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.1"), Value: smi.Integer(0)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.2"), Value: smi.Integer(-1)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.3"), Value: smi.Counter32(128)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.4"), Value: smi.Gauge32(4294967295)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.5"), Value: smi.Counter64(18446744073709551615)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.6"), Value: smi.Counter64(0)},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.7"), Value: smi.IPAddress(netip.MustParseAddr("192.0.2.1"))},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.8"), Value: smi.ObjectID(smi.MustParseOID("1.3.6.1.4.1.4294967295.0"))},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.9"), Value: smi.Null()},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.10"), Value: smi.NoSuchObject()},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.11"), Value: smi.NoSuchInstance()},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.12"), Value: smi.EndOfMibView()},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.13"), Value: smi.OctetString(bytes.Repeat([]byte{0xff}, 300))},
	{Name: smi.MustParseOID("1.3.6.1.4.1.1.14"), Value: smi.Opaque([]byte{0x9f, 0x78, 0x04, 0x42, 0xf6, 0x00, 0x00})},
	{Name: smi.MustParseOID("2.999.3"), Value: smi.OctetString(nil)},
}

func TestExactBytes(t *testing.T) {
	golden := []struct {
		vb  smi.VarBind
		hex string
	}{
		{smi.VarBind{Name: smi.OID{1, 3, 6, 1, 2, 1, 1, 3, 0}, Value: smi.TimeTicks(300)},
			"3010" + "300e" + "06082b06010201010300" + "4302012c"},
		{smi.VarBind{Name: smi.OID{1, 3, 6, 1}, Value: smi.Integer(-129)},
			"300b" + "3009" + "06032b0601" + "0202ff7f"},
		{smi.VarBind{Name: smi.OID{1, 3, 6, 1}, Value: smi.Counter64(1 << 63)},
			"3012" + "3010" + "06032b0601" + "4609008000000000000000"},
		{smi.VarBind{Name: smi.OID{1, 3, 200000}, Value: smi.EndOfMibView()},
			"300a" + "3008" + "06042b8c9a40" + "8200"},
	}
	for _, g := range golden {
		got, err := AppendVarBinds(nil, []smi.VarBind{g.vb})
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != g.hex {
			t.Errorf("%v:\n got %x\nwant %s", g.vb, got, g.hex)
		}
	}
}

// The encoding must match what gosnmp (and so net-snmp) puts on the wire:
// encode the same varbinds in a gosnmp packet and find ours inside it.
func TestEncodingMatchesGosnmp(t *testing.T) {
	var pdus []gosnmp.SnmpPDU
	for _, vb := range cases {
		if vb.Value.Type == smi.TypeOpaque || vb.Name[0] == 2 {
			continue // gosnmp re-encodes opaque floats, and refuses 2.999
		}
		pdus = append(pdus, gosnmpconv.ToPDU(vb))
	}
	pkt := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.GetResponse, RequestID: 1, Variables: pdus}
	msg, err := pkt.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	var ours []smi.VarBind
	for _, vb := range cases {
		if vb.Value.Type != smi.TypeOpaque && vb.Name[0] != 2 {
			ours = append(ours, vb)
		}
	}
	enc, err := AppendVarBinds(nil, ours)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(msg, enc) {
		t.Errorf("our VarBindList is not the tail of gosnmp's message:\nours   %x\ngosnmp %x", enc, msg)
	}
}

func TestRoundTrip(t *testing.T) {
	enc, err := AppendVarBinds(nil, cases)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := VarBindsLen(cases); n != len(enc) {
		t.Errorf("VarBindsLen = %d, encoding has %d bytes", n, len(enc))
	}
	dec, err := DecodeVarBinds(enc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != len(cases) {
		t.Fatalf("decoded %d varbinds, want %d", len(dec), len(cases))
	}
	for i := range cases {
		if !dec[i].Name.Equal(cases[i].Name) || !dec[i].Value.Equal(cases[i].Value) {
			t.Errorf("%d: got %v want %v", i, dec[i], cases[i])
		}
	}
	if _, err := DecodeVarBinds(enc, len(cases)-1); !errors.Is(err, ErrTooMany) {
		t.Errorf("cap of %d varbinds: %v", len(cases)-1, err)
	}
}

// TestDecodedNamesAreIndependent: the names of one list share an array
// (DecodeVarBinds allocates once for all of them); appending to one, as
// a walk does to build the next name, must not write into another.
func TestDecodedNamesAreIndependent(t *testing.T) {
	enc, err := AppendVarBinds(nil, cases)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeVarBinds(enc, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range dec {
		_ = append(dec[i].Name, 99, 98, 97)
	}
	for i := range cases {
		if !dec[i].Name.Equal(cases[i].Name) {
			t.Errorf("%d: %v after appending to the others, want %v", i, dec[i].Name, cases[i].Name)
		}
	}
}

func TestEveryTruncationIsAnError(t *testing.T) {
	enc, err := AppendVarBinds(nil, cases)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(enc); i++ {
		if _, err := DecodeVarBinds(enc[:i], 0); err == nil {
			t.Fatalf("decoding the first %d of %d bytes succeeded", i, len(enc))
		}
	}
}

func TestRejectsWhatCannotBeEncoded(t *testing.T) {
	bad := []smi.VarBind{
		{Name: smi.OID{1}, Value: smi.Null()},
		{Name: smi.OID{3, 1}, Value: smi.Null()},
		{Name: smi.OID{1, 3}, Value: smi.Value{Type: smi.TypeInteger, Int: 1 << 40}},
		{Name: smi.OID{1, 3}, Value: smi.Value{Type: smi.TypeGauge32, Uint: 1 << 40}},
		{Name: smi.OID{1, 3}, Value: smi.Value{Type: smi.TypeIPAddress, Bytes: []byte{1, 2}}},
		{Name: smi.OID{1, 3}, Value: smi.Value{Type: 0x99}},
	}
	for _, vb := range bad {
		if _, err := AppendVarBinds(nil, []smi.VarBind{vb}); !errors.Is(err, ErrMalformed) {
			t.Errorf("encoding %v: %v, want ErrMalformed", vb, err)
		}
	}
}

func TestRejectsMalformedInput(t *testing.T) {
	for _, h := range []string{
		"310a300806032b06010201ff",            // SET OF instead of SEQUENCE
		"300c300a06032b0601020100020100",      // trailing bytes in a varbind
		"300b300906032b06010205ffffffffff",    // 5-octet INTEGER
		"300a300806032b06014102ff00",          // negative unsigned
		"3009300706032b0601" + "400100",       // 1-octet IpAddress
		"30083006" + "0601" + "80" + "0500",   // non-minimal sub-identifier
		"300885ffffffffff",                    // 5-octet length
		"30093007" + "0602" + "2b80" + "0500", // sub-identifier cut short
		"3008300606032b06010501",              // NULL... length past end
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(h, err)
		}
		if _, err := DecodeVarBinds(b, 0); err == nil {
			t.Errorf("%s decoded without error", h)
		}
	}
}

func FuzzDecodeVarBinds(f *testing.F) {
	enc, _ := AppendVarBinds(nil, cases)
	f.Add(enc)
	for _, vb := range cases {
		e, _ := AppendVarBinds(nil, []smi.VarBind{vb})
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vbs, err := DecodeVarBinds(b, 0)
		if err != nil {
			return
		}
		// What decodes must re-encode and decode to the same varbinds.
		re, err := AppendVarBinds(nil, vbs)
		if err != nil {
			// Sub-identifiers past 2^32-1 in the first arc pair, or
			// unusual first arcs, decode but are refused on encode.
			return
		}
		again, err := DecodeVarBinds(re, 0)
		if err != nil || len(again) != len(vbs) {
			t.Fatalf("re-decode: %v (%d vs %d)", err, len(again), len(vbs))
		}
		for i := range vbs {
			if !again[i].Name.Equal(vbs[i].Name) || !again[i].Value.Equal(vbs[i].Value) {
				t.Fatalf("varbind %d changed: %v -> %v", i, vbs[i], again[i])
			}
		}
	})
}

// CheckOID says exactly what AppendVarBinds can encode as a name.
func TestCheckOID(t *testing.T) {
	long := make(smi.OID, smi.MaxSubIDs+1)
	long[0], long[1] = 1, 3
	for _, c := range []struct {
		oid smi.OID
		ok  bool
	}{
		{nil, false},
		{smi.OID{1}, false},
		{smi.OID{7}, false},
		{smi.OID{3, 1}, false},
		{smi.OID{5, 1}, false},
		{smi.OID{0, 40}, false},
		{smi.OID{1, 40}, false},
		{long, false},
		{long[:smi.MaxSubIDs], true},
		{smi.OID{0, 39}, true},
		{smi.OID{1, 3, 6, 1}, true},
		{smi.OID{2, 40}, true},
		{smi.OID{2, 4294967295}, true},
	} {
		err := CheckOID(c.oid)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("CheckOID(%v) = %v, want ok %v", c.oid, err, c.ok)
		}
		_, encErr := AppendVarBinds(nil, []smi.VarBind{{Name: c.oid, Value: smi.Null()}})
		if (encErr == nil) != (err == nil) {
			t.Errorf("%v: CheckOID %v but encoding %v", c.oid, err, encErr)
		}
	}
}
