package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codec ties one body type's encoder and decoder together so that the exact
// bytes, truncation and fuzz tests share one table.
type codec struct {
	name   string
	encode func(any) []byte
	decode func([]byte) (any, error)
}

var codecs = map[string]codec{
	"Ack": {"Ack", func(v any) []byte { a := v.(Ack); return AppendAck(nil, &a) },
		func(b []byte) (any, error) { return ParseAck(b) }},
	"Nak": {"Nak", func(v any) []byte { a := v.(Nak); return AppendNak(nil, &a) },
		func(b []byte) (any, error) { return ParseNak(b) }},
	"Abort": {"Abort", func(v any) []byte { a := v.(Abort); return AppendAbort(nil, &a) },
		func(b []byte) (any, error) { return ParseAbort(b) }},
	"AbortAck": {"AbortAck", func(v any) []byte { a := v.(AbortAck); return AppendAbortAck(nil, &a) },
		func(b []byte) (any, error) { return ParseAbortAck(b) }},
	"Hello": {"Hello", func(v any) []byte { a := v.(Hello); return AppendHello(nil, &a) },
		func(b []byte) (any, error) { return ParseHello(b) }},
	"View": {"View", func(v any) []byte { a := v.(View); return AppendView(nil, &a) },
		func(b []byte) (any, error) { return ParseView(b) }},
	"ResponseRef": {"ResponseRef", func(v any) []byte {
		a := v.(refAndRest)
		return append(AppendResponseRef(nil, &a.Ref), a.Rest...)
	}, func(b []byte) (any, error) {
		r, rest, err := ParseResponseRef(b)
		return refAndRest{r, rest}, err
	}},
	"Packet": {"Packet", func(v any) []byte {
		p := v.(Packet)
		b, err := AppendPacket(nil, p.Header, p.Payload)
		if err != nil {
			panic(err)
		}
		return b
	}, func(b []byte) (any, error) { return ParsePacket(b) }},
}

type refAndRest struct {
	Ref  ResponseRef
	Rest []byte
}

var stream = StreamID{Node: 0x01020304, Incarnation: 0x1112131415161718, Channel: 7, Up: true}

// Exact bytes of every body and of a whole datagram, written by hand from
// the layout in package rmtp's documentation.
var exact = []struct {
	codec string
	value any
	hex   string
}{
	{"Ack", Ack{}, "0000"},
	{"Ack", Ack{Entries: []AckEntry{{Stream: stream, Next: 9}}},
		"0001 01020304 1112131415161718 07 01 0000000000000009"},
	{"Nak", Nak{Stream: stream, Ranges: []NakRange{{MsgID: 5, First: 2, Last: 3}, {MsgID: 6, First: 0, Last: SegAll}}},
		"01020304 1112131415161718 07 01 0002 0000000000000005 00000002 00000003 0000000000000006 00000000 ffffffff"},
	{"Abort", Abort{MsgID: 42}, "000000000000002a"},
	{"AbortAck", AbortAck{Stream: stream, MsgID: 42, Status: AbortDelivered},
		"01020304 1112131415161718 07 01 000000000000002a 01"},
	{"Hello", Hello{Role: RoleManager, Priority: 100, Level: 1, Term: 3, Time: 0x0102030405060708,
		Addr:    netip.MustParseAddrPort("10.0.0.1:7377"),
		Streams: []StreamMark{{Channel: 1, Up: false, Next: 10, Low: 8}},
		App:     []byte("hi")},
		"02 64 01 0000000000000003 0102030405060708 04 0a000001 1cd1 0001 01 00 000000000000000a 0000000000000008 0002 6869"},
	{"Hello", Hello{Role: RoleEngine}, "01 00 00 0000000000000000 0000000000000000 00 0000 0000"},
	{"View", View{Term: 2, Version: 5, Members: []Member{{Node: 1, Incarnation: 2, Role: RoleManager, State: StateAlive},
		{Node: 9, Incarnation: 3, Role: RoleEngine, State: StateSuspect}}},
		"0000000000000002 0000000000000005 0002 00000001 0000000000000002 02 01 00000009 0000000000000003 01 02"},
	{"ResponseRef", refAndRest{ResponseRef{Node: 1, Incarnation: 2, MsgID: 3, Up: false}, []byte("ok")},
		"00000001 0000000000000002 0000000000000003 00 6f6b"},
	{"Packet", Packet{Header: Header{Type: TypeData, Flags: FlagInit | FlagNoMore | FlagUp, Channel: 3, KeyID: 0,
		Node: 5, Incarnation: 6, MsgID: 7, Seq: 0, Count: 1, Ref: 4, PayloadLen: 3}, Payload: []byte("abc")},
		"524d 01 01 07 03 0000 00000005 0000000000000006 0000000000000007 00000000 00000001 0000000000000004 0003 0000" +
			" 616263 00000000000000000000000000000000"},
	{"Packet", Packet{Header: Header{Type: TypeHello, Flags: FlagLeave, Node: 1, Incarnation: 1, MsgID: 2}, Payload: []byte{}},
		"524d 01 06 08 00 0000 00000001 0000000000000001 0000000000000002 00000000 00000000 0000000000000000 0000 0000" +
			" 00000000000000000000000000000000"},
}

func TestExactBytes(t *testing.T) {
	for i, c := range exact {
		t.Run(fmt.Sprintf("%d_%s", i, c.codec), func(t *testing.T) {
			cd := codecs[c.codec]
			want := unhex(t, c.hex)
			if got := cd.encode(c.value); !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			got, err := cd.decode(want)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(c.value)) {
				t.Fatalf("decode:\n got %+v\nwant %+v", got, c.value)
			}
		})
	}
}

// normalize makes empty and nil slices compare equal.
func normalize(v any) any {
	switch x := v.(type) {
	case Hello:
		if len(x.App) == 0 {
			x.App = nil
		}
		return x
	case Packet:
		if len(x.Payload) == 0 {
			x.Payload = nil
		}
		return x
	case refAndRest:
		if len(x.Rest) == 0 {
			x.Rest = nil
		}
		return x
	}
	return v
}

// Every proper prefix of a valid encoding is an error (never a panic), and
// for the fixed-layout codecs it is ErrTruncated.
func TestTruncated(t *testing.T) {
	for i, c := range exact {
		cd := codecs[c.codec]
		full := unhex(t, c.hex)
		for n := 0; n < len(full); n++ {
			if c.codec == "ResponseRef" && n >= ResponseRefLen {
				continue // the rest is opaque payload: any length is valid
			}
			_, err := cd.decode(full[:n:n])
			if err == nil {
				t.Errorf("case %d %s: %d of %d bytes decoded without error", i, c.codec, n, len(full))
				continue
			}
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("case %d %s: %d of %d bytes: %v, want ErrTruncated", i, c.codec, n, len(full), err)
			}
		}
	}
}

func TestHeaderChecks(t *testing.T) {
	good := unhex(t, exact[len(exact)-2].hex)
	if _, err := ParsePacket(good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mut  func(b []byte)
		want error
	}{
		{"magic", func(b []byte) { b[0] = 'X' }, ErrMagic},
		{"version", func(b []byte) { b[2] = 2 }, ErrVersion},
		{"type 0", func(b []byte) { b[3] = 0 }, ErrType},
		{"type 200", func(b []byte) { b[3] = 200 }, ErrType},
		{"unknown flag", func(b []byte) { b[4] |= 0x80 }, ErrMalformed},
		{"no INIT on seq 0", func(b []byte) { b[4] &^= byte(FlagInit) }, ErrMalformed},
		{"no NO_MORE on last", func(b []byte) { b[4] &^= byte(FlagNoMore) }, ErrMalformed},
		{"node 0", func(b []byte) { copy(b[8:12], []byte{0, 0, 0, 0}) }, ErrMalformed},
		{"msgid 0", func(b []byte) { clear(b[20:28]) }, ErrMalformed},
		{"seq >= count", func(b []byte) { b[31] = 1 }, ErrMalformed},
		{"count 0", func(b []byte) { b[35] = 0 }, ErrTooLarge},
		{"count over cap", func(b []byte) { b[32] = 0xff }, ErrTooLarge},
		{"payload over cap", func(b []byte) { b[44], b[45] = 0xff, 0xff }, ErrTooLarge},
		{"payload longer than datagram", func(b []byte) { b[45] = 4 }, ErrTruncated},
		{"reserved", func(b []byte) { b[47] = 1 }, ErrMalformed},
		{"leave on data", func(b []byte) { b[4] |= byte(FlagLeave) }, ErrMalformed},
	}
	for _, c := range cases {
		b := bytes.Clone(good)
		c.mut(b)
		if _, err := ParsePacket(b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParsePacket(append(bytes.Clone(good), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: got %v", err)
	}
}

func TestCaps(t *testing.T) {
	// Counts over the cap are refused before the elements are read.
	over := func(n int) []byte { return []byte{byte(n >> 8), byte(n)} }
	if _, err := ParseAck(over(MaxAckEntries + 1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ack: %v", err)
	}
	nak := append(appendStreamID(nil, stream), over(MaxNakRanges+1)...)
	if _, err := ParseNak(nak); !errors.Is(err, ErrTooLarge) {
		t.Errorf("nak: %v", err)
	}
	view := append(make([]byte, 16), over(MaxViewMembers+1)...)
	if _, err := ParseView(view); !errors.Is(err, ErrTooLarge) {
		t.Errorf("view: %v", err)
	}
	if _, err := AppendPacket(nil, Header{}, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("packet: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, err := NewKeyring(1, map[uint16][]byte{1: k1})
	if err != nil {
		t.Fatal(err)
	}
	rolling, err := NewKeyring(2, map[uint16][]byte{1: k1, 2: k2})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKeyring(1, map[uint16][]byte{1: k2})
	dg, _ := AppendPacket(nil, Header{Type: TypeHello, Node: 1, Incarnation: 1, MsgID: 1}, []byte("x"))

	signed := bytes.Clone(dg)
	old.Sign(signed)
	if _, err := rolling.Open(signed); err != nil {
		t.Errorf("old key during roll: %v", err)
	}
	if _, err := other.Open(signed); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v", err)
	}
	var insecure *Keyring
	if _, err := insecure.Open(signed); !errors.Is(err, ErrNoKey) {
		t.Errorf("signed datagram on insecure endpoint: %v", err)
	}
	signed2 := bytes.Clone(dg)
	rolling.Sign(signed2)
	if _, err := old.Open(signed2); !errors.Is(err, ErrNoKey) {
		t.Errorf("new key id unknown to old ring: %v", err)
	}
	tampered := bytes.Clone(signed)
	tampered[HeaderLen] ^= 1
	if _, err := old.Open(tampered); !errors.Is(err, ErrAuth) {
		t.Errorf("tampered: %v", err)
	}
	plain := bytes.Clone(dg)
	insecure.Sign(plain)
	if _, err := insecure.Open(plain); err != nil {
		t.Errorf("insecure: %v", err)
	}
	if _, err := old.Open(plain); !errors.Is(err, ErrNoKey) {
		t.Errorf("unauthenticated on secure endpoint: %v", err)
	}
	if _, err := NewKeyring(1, map[uint16][]byte{1: k1[:8]}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := NewKeyring(3, map[uint16][]byte{1: k1}); !errors.Is(err, ErrNoKey) {
		t.Errorf("missing current: %v", err)
	}
	if _, err := NewKeyring(0, map[uint16][]byte{0: k1}); err == nil {
		t.Error("key id 0 accepted")
	}
}

func TestStrings(t *testing.T) {
	if s := TypeAbortAck.String(); s != "ABORT_ACK" {
		t.Error(s)
	}
	if s := Type(99).String(); s != "Type(99)" {
		t.Error(s)
	}
	if s := (FlagInit | FlagNoMore | 0x80).String(); s != "INIT|NO_MORE|0x80" {
		t.Error(s)
	}
	if RoleManager.String() != "manager" || StateSuspect.String() != "suspect" || AbortDelivered.String() != "delivered" {
		t.Error("enum strings")
	}
}

// TestWriteSeedCorpus regenerates testdata/fuzz from the exact-bytes table
// when RMTP_WRITE_CORPUS=1; otherwise it checks every fuzz target has one.
func TestWriteSeedCorpus(t *testing.T) {
	for i, c := range exact {
		dir := filepath.Join("testdata", "fuzz", "Fuzz"+c.codec)
		file := filepath.Join(dir, fmt.Sprintf("seed%02d", i))
		if os.Getenv("RMTP_WRITE_CORPUS") == "1" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", unhex(t, c.hex))
			if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("seed corpus missing (run with RMTP_WRITE_CORPUS=1): %v", err)
		}
	}
}

// TestScanAck: only the given node's entries reach fn, in order; a bad
// body (cap, truncation, trailing byte, bad direction byte) reaches fn
// with nothing and fails as ParseAck does.
func TestScanAck(t *testing.T) {
	other := StreamID{Node: 9, Incarnation: 1, Channel: 1}
	mine2 := stream
	mine2.Channel, mine2.Up = 8, false
	a := Ack{Entries: []AckEntry{{Stream: stream, Next: 9}, {Stream: other, Next: 3}, {Stream: mine2, Next: 4}}}
	b := AppendAck(nil, &a)
	var got []AckEntry
	if err := ScanAck(b, stream.Node, func(e AckEntry) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	if want := []AckEntry{a.Entries[0], a.Entries[2]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	bad := map[string][]byte{
		"trailing":  append(bytes.Clone(b), 0),
		"cap":       binary.BigEndian.AppendUint16(nil, MaxAckEntries+1),
		"direction": func() []byte { c := bytes.Clone(b); c[2+2*ackEntryLen+13] = 2; return c }(),
	}
	for i := range len(b) {
		bad[fmt.Sprintf("cut %d", i)] = b[:i]
	}
	for name, c := range bad {
		called := false
		err := ScanAck(c, stream.Node, func(AckEntry) { called = true })
		_, perr := ParseAck(c)
		if err == nil || called || perr == nil {
			t.Errorf("%s: ScanAck %v (fn called %v), ParseAck %v", name, err, called, perr)
		}
	}
}
