package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzCodec checks decode -> encode -> decode: whatever decodes re-encodes
// to the same bytes (the encodings are canonical) and decodes to the same
// value.
func fuzzCodec(f *testing.F, name string) {
	cd := codecs[name]
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := cd.decode(b)
		if err != nil {
			return
		}
		enc := cd.encode(v)
		if name == "Packet" {
			// ParsePacket does not look at the tag; AppendPacket
			// leaves it zero for Sign.
			enc = append(enc[:len(enc)-TagLen], b[len(b)-TagLen:]...)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, enc)
		}
		v2, err := cd.decode(enc)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(v2)) {
			t.Fatalf("unstable: %+v vs %+v", v, v2)
		}
	})
}

func FuzzPacket(f *testing.F)      { fuzzCodec(f, "Packet") }
func FuzzAck(f *testing.F)         { fuzzCodec(f, "Ack") }
func FuzzNak(f *testing.F)         { fuzzCodec(f, "Nak") }
func FuzzAbort(f *testing.F)       { fuzzCodec(f, "Abort") }
func FuzzAbortAck(f *testing.F)    { fuzzCodec(f, "AbortAck") }
func FuzzHello(f *testing.F)       { fuzzCodec(f, "Hello") }
func FuzzView(f *testing.F)        { fuzzCodec(f, "View") }
func FuzzResponseRef(f *testing.F) { fuzzCodec(f, "ResponseRef") }

// FuzzScanAck checks ScanAck against ParseAck: the same verdict, and the
// entries of one node (the first entry's, so that some match) in order.
func FuzzScanAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		node := uint32(0)
		if len(b) >= 6 {
			node = uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
		}
		var got []AckEntry
		err := ScanAck(b, node, func(e AckEntry) { got = append(got, e) })
		a, perr := ParseAck(b)
		if (err == nil) != (perr == nil) {
			t.Fatalf("ScanAck %v, ParseAck %v", err, perr)
		}
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("fn called on a bad body")
			}
			return
		}
		var want []AckEntry
		for _, e := range a.Entries {
			if e.Stream.Node == node {
				want = append(want, e)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ScanAck %+v, ParseAck %+v", got, want)
		}
	})
}

// FuzzOpen feeds arbitrary datagrams to a keyring: never a panic, and
// whatever opens must carry a valid tag under the ring's key.
func FuzzOpen(f *testing.F) {
	kr, err := NewKeyring(1, map[uint16][]byte{1: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range exact {
		if c.codec == "Packet" {
			dg := unhex(f, c.hex)
			f.Add(bytes.Clone(dg))
			kr.Sign(dg)
			f.Add(dg)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := kr.Open(b)
		if err != nil {
			return
		}
		re, err := AppendPacket(nil, p.Header, p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		kr.Sign(re)
		if !bytes.Equal(re, b) {
			t.Fatalf("opened datagram does not re-sign to itself")
		}
	})
}
