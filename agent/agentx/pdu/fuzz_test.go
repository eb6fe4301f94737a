package pdu

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode: any input decodes or fails without panicking, and what
// decodes re-encodes to bytes that decode to the same packet and encode to
// the same bytes again (decode -> encode -> decode is stable).
func FuzzDecode(f *testing.F) {
	for _, c := range codecCases {
		f.Add(c.bytes)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := Encode(p)
		if err != nil {
			t.Fatalf("decoded packet does not encode: %v", err)
		}
		p2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v\n%x", err, enc)
		}
		if !reflect.DeepEqual(normalize(p), normalize(p2)) {
			t.Fatalf("unstable:\n%#v\n%#v", p.PDU, p2.PDU)
		}
		enc2, err := Encode(p2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("second encoding differs: %v\n%x\n%x", err, enc, enc2)
		}
	})
}

// FuzzParseHeader: a header that parses re-encodes to the input (with the
// reserved byte zeroed) and parses to the same Header.
func FuzzParseHeader(f *testing.F) {
	for _, c := range codecCases {
		f.Add(c.bytes)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		enc := appendHeader(nil, h)
		want := append([]byte(nil), b[:HeaderLength]...)
		want[3] = 0
		if !bytes.Equal(enc, want) {
			t.Fatalf("re-encoded header %x, want %x", enc, want)
		}
		if h2, err := ParseHeader(enc); err != nil || h2 != h {
			t.Fatalf("reparse: %+v %v, want %+v", h2, err, h)
		}
	})
}
