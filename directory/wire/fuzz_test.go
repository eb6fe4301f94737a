package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzCodec checks decode -> encode -> decode: whatever decodes re-encodes
// to the same bytes (the encodings are canonical) and to the same value.
func fuzzCodec(f *testing.F, name string) {
	cd := codecs[name]
	for _, c := range exact {
		if c.codec == name {
			f.Add(unhex(f, c.hex))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := cd.decode(b)
		if err != nil {
			return
		}
		enc, err := cd.encode(v)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", v, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, enc)
		}
		v2, err := cd.decode(enc)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("unstable: %+v vs %+v", v, v2)
		}
	})
}

func FuzzUpdate(f *testing.F)          { fuzzCodec(f, "Update") }
func FuzzSnapshotRequest(f *testing.F) { fuzzCodec(f, "SnapshotRequest") }
func FuzzSnapshotChunk(f *testing.F)   { fuzzCodec(f, "SnapshotChunk") }
func FuzzResync(f *testing.F)          { fuzzCodec(f, "Resync") }
func FuzzSync(f *testing.F)            { fuzzCodec(f, "Sync") }
func FuzzLookupQuery(f *testing.F)     { fuzzCodec(f, "LookupQuery") }
func FuzzLookupAnswer(f *testing.F)    { fuzzCodec(f, "LookupAnswer") }
func FuzzVerdict(f *testing.F)         { fuzzCodec(f, "Verdict") }
func FuzzDigest(f *testing.F)          { fuzzCodec(f, "Digest") }
