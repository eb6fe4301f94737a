package pdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// hx turns spaced hex ("01 02 0304") into bytes.
func hx(parts ...string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(strings.Join(parts, "")))
	if err != nil {
		panic(err)
	}
	return b
}

var (
	oidBase     = smi.MustParseOID("1.3.6.1.4.1.8072.9999.4242")
	beBaseOID   = "04 04 00 00 00000001 00001f88 0000270f 00001092"
	hdrIDsBE    = "00000001 00000002 00000003"
	hdrIDsLE    = "01000000 02000000 03000000"
	allTypesVBs = []smi.VarBind{
		{Name: smi.OID{1, 1}, Value: smi.Integer(-5)},
		{Name: smi.OID{1, 2}, Value: smi.String("abcde")},
		{Name: smi.OID{1, 3}, Value: smi.Null()},
		{Name: smi.OID{1, 4}, Value: smi.ObjectID(smi.MustParseOID("1.3.6.1.6.3.1.1.4.1.0"))},
		{Name: smi.OID{1, 5}, Value: smi.Value{Type: smi.TypeIPAddress, Bytes: []byte{192, 0, 2, 7}}},
		{Name: smi.OID{1, 6}, Value: smi.Counter32(4294967295)},
		{Name: smi.OID{1, 7}, Value: smi.Gauge32(4000000000)},
		{Name: smi.OID{1, 8}, Value: smi.TimeTicks(123456)},
		{Name: smi.OID{1, 9}, Value: smi.Opaque([]byte{1, 2})},
		{Name: smi.OID{1, 10}, Value: smi.Counter64(1<<40 + 12345)},
		{Name: smi.OID{1, 11}, Value: smi.NoSuchObject()},
		{Name: smi.OID{1, 12}, Value: smi.NoSuchInstance()},
		{Name: smi.OID{1, 13}, Value: smi.EndOfMibView()},
	}
	allTypesBE = `
		0002 0000 02000000 00000001 00000001 fffffffb
		0004 0000 02000000 00000001 00000002 00000005 61626364 65000000
		0005 0000 02000000 00000001 00000003
		0006 0000 02000000 00000001 00000004 06060000 00000003 00000001 00000001 00000004 00000001 00000000
		0040 0000 02000000 00000001 00000005 00000004 c0000207
		0041 0000 02000000 00000001 00000006 ffffffff
		0042 0000 02000000 00000001 00000007 ee6b2800
		0043 0000 02000000 00000001 00000008 0001e240
		0044 0000 02000000 00000001 00000009 00000002 01020000
		0046 0000 02000000 00000001 0000000a 00000100 00003039
		0080 0000 02000000 00000001 0000000b
		0081 0000 02000000 00000001 0000000c
		0082 0000 02000000 00000001 0000000d`
	allTypesLE = `
		0200 0000 02000000 01000000 01000000 fbffffff
		0400 0000 02000000 01000000 02000000 05000000 61626364 65000000
		0500 0000 02000000 01000000 03000000
		0600 0000 02000000 01000000 04000000 06060000 03000000 01000000 01000000 04000000 01000000 00000000
		4000 0000 02000000 01000000 05000000 04000000 c0000207
		4100 0000 02000000 01000000 06000000 ffffffff
		4200 0000 02000000 01000000 07000000 00286bee
		4300 0000 02000000 01000000 08000000 40e20100
		4400 0000 02000000 01000000 09000000 02000000 01020000
		4600 0000 02000000 01000000 0a000000 39300000 00010000
		8000 0000 02000000 01000000 0b000000
		8100 0000 02000000 01000000 0c000000
		8200 0000 02000000 01000000 0d000000`
)

type codecCase struct {
	name  string
	p     *Packet
	bytes []byte
}

func pkt(t Type, flags Flags, ctx []byte, body PDU) *Packet {
	return &Packet{Header: Header{Type: t, Flags: flags, SessionID: 1, TransactionID: 2, PacketID: 3}, Context: ctx, PDU: body}
}

const be, le = FlagNetworkByteOrder, Flags(0)

// codecCases hold every PDU type, both byte orders, contexts, range
// registrations and every varbind type, with bytes written out by hand
// from RFC 2741 §5 and §6.
var codecCases = []codecCase{
	{"Open BE", pkt(TypeOpen, be, nil, &Open{Timeout: 5, ID: smi.MustParseOID("1.3.6.1.4.1.8072"), Description: []byte("smsnmpd")}),
		hx("01 01 10 00", hdrIDsBE, "0000001c", "05 000000", "02 04 00 00 00000001 00001f88", "00000007 736d736e 6d706400")},
	{"Open LE null id", pkt(TypeOpen, le, nil, &Open{Description: []byte{}}),
		hx("01 01 00 00", hdrIDsLE, "0c000000", "00 000000", "00 00 00 00", "00000000")},
	{"Close LE", pkt(TypeClose, le, nil, &Close{Reason: ReasonShutdown}),
		hx("01 02 00 00", hdrIDsLE, "04000000", "05 000000")},
	{"Register BE context", pkt(TypeRegister, be|FlagNonDefaultContext, []byte("ctx"), &Register{Priority: 127, Subtree: oidBase}),
		hx("01 03 18 00", hdrIDsBE, "00000020", "00000003 63747800", "00 7f 00 00", beBaseOID)},
	{"Register LE instance range", pkt(TypeRegister, le|FlagInstanceRegistration, nil,
		&Register{Timeout: 10, Priority: 1, RangeSubID: 10, Subtree: smi.MustParseOID("1.3.6.1.2.1.2.2.1.1"), UpperBound: 24}),
		hx("01 03 01 00", hdrIDsLE, "20000000", "0a 01 0a 00", "05 02 00 00 01000000 02000000 02000000 01000000 01000000", "18000000")},
	{"Unregister BE", pkt(TypeUnregister, be, nil, &Unregister{Priority: 127, Subtree: oidBase}),
		hx("01 04 10 00", hdrIDsBE, "00000018", "00 7f 00 00", beBaseOID)},
	{"Unregister LE range context", pkt(TypeUnregister, le|FlagNonDefaultContext, []byte("ab"),
		&Unregister{Priority: 2, RangeSubID: 2, Subtree: smi.OID{1, 2}, UpperBound: 9}),
		hx("01 04 08 00", hdrIDsLE, "1c000000", "02000000 61620000", "00 02 02 00", "02 00 00 00 01000000 02000000", "09000000")},
	{"Get BE", pkt(TypeGet, be, nil, &Get{Ranges: []SearchRange{{Start: smi.MustParseOID("1.3.6.1.2.1.1.3.0")}, {Start: smi.OID{1, 2, 3}}}}),
		hx("01 05 10 00", hdrIDsBE, "0000002c", "04 02 00 00 00000001 00000001 00000003 00000000", "00000000",
			"03 00 00 00 00000001 00000002 00000003", "00000000")},
	{"GetNext LE empty context include", pkt(TypeGetNext, le|FlagNonDefaultContext, []byte{},
		&GetNext{Ranges: []SearchRange{{Start: oidBase, Include: true, End: smi.MustParseOID("1.3.6.1.4.1.8072.9999.4243")}}}),
		hx("01 06 08 00", hdrIDsLE, "2c000000", "00000000", "04 04 01 00 01000000 881f0000 0f270000 92100000",
			"04 04 00 00 01000000 881f0000 0f270000 93100000")},
	{"GetBulk BE", pkt(TypeGetBulk, be, nil, &GetBulk{NonRepeaters: 1, MaxRepetitions: 25,
		Ranges: []SearchRange{{Start: smi.MustParseOID("1.3.6.1.2.1.1.1"), End: smi.MustParseOID("1.3.6.1.2.1.1.2")}}}),
		hx("01 07 10 00", hdrIDsBE, "00000024", "0001 0019", "03 02 00 00 00000001 00000001 00000001", "03 02 00 00 00000001 00000001 00000002")},
	{"TestSet BE all types", pkt(TypeTestSet, be, nil, &TestSet{VarBinds: allTypesVBs}),
		hx("01 08 10 00", hdrIDsBE, "00000120", allTypesBE)},
	{"CommitSet BE", pkt(TypeCommitSet, be, nil, &CommitSet{}), hx("01 09 10 00", hdrIDsBE, "00000000")},
	{"UndoSet LE", pkt(TypeUndoSet, le, nil, &UndoSet{}), hx("01 0a 00 00", hdrIDsLE, "00000000")},
	{"CleanupSet BE", pkt(TypeCleanupSet, be, nil, &CleanupSet{}), hx("01 0b 10 00", hdrIDsBE, "00000000")},
	{"Notify LE all types", pkt(TypeNotify, le, nil, &Notify{VarBinds: allTypesVBs}),
		hx("01 0c 00 00", hdrIDsLE, "20010000", allTypesLE)},
	{"Ping BE context", pkt(TypePing, be|FlagNonDefaultContext, []byte("ctx"), &Ping{}),
		hx("01 0d 18 00", hdrIDsBE, "00000008", "00000003 63747800")},
	{"IndexAllocate BE", pkt(TypeIndexAllocate, be|FlagNewIndex, nil, &IndexAllocate{VarBinds: []smi.VarBind{{Name: smi.OID{1, 1}, Value: smi.Integer(0)}}}),
		hx("01 0e 12 00", hdrIDsBE, "00000014", "0002 0000 02000000 00000001 00000001 00000000")},
	{"IndexDeallocate LE", pkt(TypeIndexDeallocate, le|FlagAnyIndex, nil, &IndexDeallocate{VarBinds: []smi.VarBind{{Name: smi.OID{1, 1}, Value: smi.OctetString([]byte{})}}}),
		hx("01 0f 04 00", hdrIDsLE, "14000000", "0400 0000 02000000 01000000 01000000 00000000")},
	{"AddAgentCaps BE", pkt(TypeAddAgentCaps, be, nil, &AddAgentCaps{ID: oidBase.Append(99), Description: []byte("caps")}),
		hx("01 10 10 00", hdrIDsBE, "00000020", "05 04 00 00 00000001 00001f88 0000270f 00001092 00000063", "00000004 63617073")},
	{"RemoveAgentCaps LE", pkt(TypeRemoveAgentCaps, le, nil, &RemoveAgentCaps{ID: oidBase.Append(99)}),
		hx("01 11 00 00", hdrIDsLE, "18000000", "05 04 00 00 01000000 881f0000 0f270000 92100000 63000000")},
	{"Response BE error", pkt(TypeResponse, be, nil, &Response{SysUpTime: 0x1234, Error: ResponseError(smi.GenErr), Index: 2,
		VarBinds: []smi.VarBind{{Name: smi.OID{1, 1}, Value: smi.Integer(7)}, {Name: smi.OID{1, 2}, Value: smi.NoSuchInstance()}}}),
		hx("01 12 10 00", hdrIDsBE, "0000002c", "00001234 0005 0002", "0002 0000 02000000 00000001 00000001 00000007", "0081 0000 02000000 00000001 00000002")},
	{"Response LE admin error", pkt(TypeResponse, le, nil, &Response{Error: DuplicateRegistration}),
		hx("01 12 00 00", hdrIDsLE, "08000000", "00000000 0701 0000")},
}

// normalize zeroes what decoding fills in but encoding computes.
func normalize(p *Packet) *Packet {
	q := *p
	q.Type = p.PDU.Type()
	q.PayloadLength = 0
	return &q
}

func TestCodecExactBytes(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.p)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, c.bytes) {
				t.Fatalf("Encode:\n got %x\nwant %x", got, c.bytes)
			}
			p, err := Decode(c.bytes)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.PayloadLength != uint32(len(c.bytes)-HeaderLength) {
				t.Errorf("PayloadLength %d, want %d", p.PayloadLength, len(c.bytes)-HeaderLength)
			}
			if !reflect.DeepEqual(normalize(p), normalize(c.p)) {
				t.Fatalf("Decode:\n got %#v\nwant %#v", p.PDU, c.p.PDU)
			}
		})
	}
}

func TestEveryTypeCovered(t *testing.T) {
	seen := map[Type]bool{}
	for _, c := range codecCases {
		seen[c.p.PDU.Type()] = true
	}
	for ty := TypeOpen; ty <= TypeResponse; ty++ {
		if !seen[ty] {
			t.Errorf("no exact-bytes case for %s", ty)
		}
		if ty.String() == "" || strings.HasPrefix(ty.String(), "Type(") {
			t.Errorf("type %d has no name", ty)
		}
	}
	if Type(19).Valid() || Type(0).Valid() || Type(19).String() != "Type(19)" {
		t.Error("types outside 1..18 must be invalid")
	}
}

// Uncompressed 1.3.6.1.x OIDs (legal on the wire) decode to the same OID
// and re-encode compressed.
func TestUncompressedOIDDecodes(t *testing.T) {
	b := hx("01 11 10 00", hdrIDsBE, "00000018", "05 00 00 00 00000001 00000003 00000006 00000001 00000004")
	p, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.PDU.(*RemoveAgentCaps).ID; !got.Equal(smi.OID{1, 3, 6, 1, 4}) {
		t.Fatalf("ID %s", got)
	}
	out, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := hx("01 11 10 00", hdrIDsBE, "00000004", "00 04 00 00"); !bytes.Equal(out, want) {
		t.Fatalf("re-encoded %x, want %x", out, want)
	}
}

// Every input cut short is an error, never a panic.
func TestTruncated(t *testing.T) {
	for _, c := range codecCases {
		for n := 0; n < len(c.bytes); n++ {
			if _, err := Decode(c.bytes[:n]); err == nil {
				t.Errorf("%s: Decode of %d of %d bytes succeeded", c.name, n, len(c.bytes))
			} else if !errors.Is(err, ErrTruncated) {
				t.Errorf("%s: cut at %d: %v, want ErrTruncated", c.name, n, err)
			}
		}
		// The same cuts with a header that agrees, so the payload decoder
		// itself meets the short input: an error, or (cut at a list
		// boundary) a shorter but valid packet that re-encodes.
		h, _ := ParseHeader(c.bytes)
		for n := 0; n < int(h.PayloadLength); n += 4 {
			h2 := h
			h2.PayloadLength = uint32(n)
			p, err := DecodePayload(h2, c.bytes[HeaderLength:HeaderLength+n])
			if err != nil {
				continue
			}
			if _, err := Encode(p); err != nil {
				t.Errorf("%s: payload cut at %d decoded but does not encode: %v", c.name, n, err)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tooManySubIDs := "81 00 00 00" + strings.Repeat("00000001", 129)
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"version", hx("02 0d 10 00", hdrIDsBE, "00000000"), ErrVersion},
		{"type 0", hx("01 00 10 00", hdrIDsBE, "00000000"), ErrType},
		{"type 19", hx("01 13 10 00", hdrIDsBE, "00000000"), ErrType},
		{"payload cap", hx("01 0d 10 00", hdrIDsBE, "00100004"), ErrTooLong},
		{"payload not multiple of 4", hx("01 0d 10 00", hdrIDsBE, "00000002 0000"), ErrMalformed},
		{"trailing bytes", hx("01 0d 10 00", hdrIDsBE, "00000000 00000000"), ErrMalformed},
		{"trailing payload", hx("01 02 10 00", hdrIDsBE, "00000008 05000000 00000000"), ErrMalformed},
		{"OID too long", hx("01 11 10 00", hdrIDsBE, fmt.Sprintf("%08x", 4+129*4), tooManySubIDs), ErrTooLong},
		{"prefixed OID too long", hx("01 11 10 00", hdrIDsBE, fmt.Sprintf("%08x", 4+124*4), "7c 04 00 00", strings.Repeat("00000001", 124)), ErrTooLong},
		{"octet string cap", hx("01 0d 18 00", hdrIDsBE, "00000004", "00010000"), ErrTooLong},
		{"varbind type", hx("01 0c 10 00", hdrIDsBE, "00000004", "0003 0000"), ErrMalformed},
		{"varbind type above 255", hx("01 0c 10 00", hdrIDsBE, "00000004", "0102 0000"), ErrMalformed},
		{"IpAddress length", hx("01 0c 10 00", hdrIDsBE, "0000000c", "0040 0000 00000000 00000003 c0000200"), ErrMalformed},
		{"range_subid beyond subtree", hx("01 03 10 00", hdrIDsBE, "00000010", "00 7f 03 00", "02 00 00 00 00000001 00000002"), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := Decode(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	long := make(smi.OID, 129)
	cases := []struct {
		name string
		p    *Packet
	}{
		{"no PDU", &Packet{}},
		{"Integer32 range", pkt(TypeTestSet, be, nil, &TestSet{VarBinds: []smi.VarBind{{Name: smi.OID{1}, Value: smi.Value{Type: smi.TypeInteger, Int: 1 << 31}}}})},
		{"Counter32 range", pkt(TypeTestSet, be, nil, &TestSet{VarBinds: []smi.VarBind{{Name: smi.OID{1}, Value: smi.Value{Type: smi.TypeCounter32, Uint: 1 << 32}}}})},
		{"IpAddress length", pkt(TypeTestSet, be, nil, &TestSet{VarBinds: []smi.VarBind{{Name: smi.OID{1}, Value: smi.Value{Type: smi.TypeIPAddress, Bytes: []byte{1}}}}})},
		{"bad type", pkt(TypeTestSet, be, nil, &TestSet{VarBinds: []smi.VarBind{{Name: smi.OID{1}, Value: smi.Value{Type: 3}}}})},
		{"long OID", pkt(TypeRemoveAgentCaps, be, nil, &RemoveAgentCaps{ID: long})},
		{"long string", pkt(TypeOpen, be, nil, &Open{Description: make([]byte, MaxOctetStringLength+1)})},
		{"range_subid", pkt(TypeRegister, be, nil, &Register{RangeSubID: 3, Subtree: smi.OID{1, 2}})},
	}
	for _, c := range cases {
		dst := []byte("keep")
		out, err := Append(dst, c.p)
		if !errors.Is(err, ErrEncode) {
			t.Errorf("%s: err %v, want ErrEncode", c.name, err)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst changed to %x", c.name, out)
		}
	}
}

func TestStrings(t *testing.T) {
	if s := (FlagNonDefaultContext | FlagNetworkByteOrder | 0x40).String(); s != "NON_DEFAULT_CONTEXT|NETWORK_BYTE_ORDER|0x40" {
		t.Errorf("Flags.String %q", s)
	}
	for e, want := range map[ResponseError]string{0: "noError", 5: "genErr", 263: "duplicateRegistration", 268: "processingError", 300: "ResponseError(300)"} {
		if e.String() != want {
			t.Errorf("%d: %q want %q", e, e.String(), want)
		}
	}
	if ReasonShutdown.String() != "reasonShutdown" || CloseReason(9).String() != "CloseReason(9)" {
		t.Error("CloseReason.String")
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from the table cases and the
// recorded snmpd PDUs: SMSNMPD_WRITE_CORPUS=1 go test -run WriteFuzzCorpus.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SMSNMPD_WRITE_CORPUS") == "" {
		t.Skip("set SMSNMPD_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	seeds := map[string][]byte{}
	for _, c := range codecCases {
		seeds[strings.ReplaceAll(strings.ToLower(c.name), " ", "-")] = c.bytes
	}
	for _, r := range loadRecorded(t) {
		seeds["snmpd-"+r.name] = r.bytes
	}
	for name, b := range seeds {
		for _, fz := range []string{"FuzzDecode", "FuzzParseHeader"} {
			dir := filepath.Join("testdata", "fuzz", fz)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
