package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// codec adapts one message type to the table, truncation and fuzz tests.
type codec struct {
	decode func([]byte) (any, error)
	encode func(any) ([]byte, error)
}

var codecs = map[string]codec{
	"Update": {
		func(b []byte) (any, error) { return ParseUpdate(b) },
		func(v any) ([]byte, error) { u := v.(Update); return AppendUpdate(nil, &u) },
	},
	"SnapshotRequest": {
		func(b []byte) (any, error) { return ParseSnapshotRequest(b) },
		func(v any) ([]byte, error) { q := v.(SnapshotRequest); return AppendSnapshotRequest(nil, &q), nil },
	},
	"SnapshotChunk": {
		func(b []byte) (any, error) { return ParseSnapshotChunk(b) },
		func(v any) ([]byte, error) { c := v.(SnapshotChunk); return AppendSnapshotChunk(nil, &c) },
	},
	"Sync": {
		func(b []byte) (any, error) { return ParseSync(b) },
		func(v any) ([]byte, error) { s := v.(Sync); return AppendSync(nil, &s), nil },
	},
	"LookupQuery": {
		func(b []byte) (any, error) { return ParseLookupQuery(b) },
		func(v any) ([]byte, error) { q := v.(LookupQuery); return AppendLookupQuery(nil, &q) },
	},
	"LookupAnswer": {
		func(b []byte) (any, error) { return ParseLookupAnswer(b) },
		func(v any) ([]byte, error) { a := v.(LookupAnswer); return AppendLookupAnswer(nil, &a) },
	},
	"Verdict": {
		func(b []byte) (any, error) { return ParseVerdict(b) },
		func(v any) ([]byte, error) { d := v.(Verdict); return AppendVerdict(nil, &d) },
	},
	"Digest": {
		func(b []byte) (any, error) { return ParseDigest(b) },
		func(v any) ([]byte, error) { d := v.(Digest); return AppendDigest(nil, &d) },
	},
	"Resync": {
		func(b []byte) (any, error) { return struct{}{}, ParseResync(b) },
		func(any) ([]byte, error) { return AppendResync(nil), nil },
	},
}

func h(parts ...string) string { return strings.Join(parts, "") }

var loc1 = Location{1, 2, 3, 4}

// exact cases: the value and its bytes, hand-written from doc.go.
var exact = []struct {
	name  string
	codec string
	v     any
	hex   string
}{
	{"update empty", "Update", Update{Level: 1}, "01010100" + "0000"},
	{"update add and remove", "Update", Update{Level: 1, Groups: []Group{{
		Origin: loc1, Incarnation: 9, Flags: SyncBegin | SyncEnd,
		Ops: []Op{
			{Kind: OpAdd, Seq: 1, Key: "a/b", Size: 100, Expiry: 5000},
			{Kind: OpRemove, Seq: 2, Key: "x"},
		}}}},
		h("01010100", "0001",
			"00000001000000020000000300000004", "0000000000000009", "03", "0002",
			"01", "0000000000000001", "0003", "612f62", "0000000000000064", "0000000000001388",
			"02", "0000000000000002", "0001", "78"),
	},
	{"update two groups", "Update", Update{Level: 2, Groups: []Group{
		{Origin: Location{1, 2, 0, 0}, Incarnation: 1},
		{Origin: loc1, Incarnation: 2, Ops: []Op{{Kind: OpRemove, Seq: 7, Key: "k"}}},
	}},
		h("01010200", "0002",
			"00000001000000020000000000000000", "0000000000000001", "00", "0000",
			"00000001000000020000000300000004", "0000000000000002", "00", "0001",
			"02", "0000000000000007", "0001", "6b"),
	},
	{"snapshot request", "SnapshotRequest", SnapshotRequest{Donor: 7, After: 0x01020304, MaxBytes: 65536},
		"01020000" + "00000007" + "01020304" + "00010000"},
	{"resync", "Resync", struct{}{}, "01040000"},
	{"sync begin", "Sync", Sync{Level: 3, Unit: Location{1, 2, 0, 0}, Generation: 0x0102030405060708},
		h("01050301", "00000001000000020000000000000000", "0102030405060708")},
	{"sync end", "Sync", Sync{Level: 4, End: true, Unit: Location{7, 0, 0, 0}, Generation: 1},
		h("01050402", "00000007000000000000000000000000", "0000000000000001")},
	{"lookup", "LookupQuery", LookupQuery{ID: 0x0102030405060708, Asker: 1050, Budget: 800, Steps: 2, From: loc1, Key: "a/b"},
		h("01060000", "0102030405060708", "0000041a", "00000320", "02", "00000001000000020000000300000004", "0003", "612f62")},
	{"lookup down", "LookupQuery", LookupQuery{ID: 1, Asker: 9, Down: true, From: Location{1, 0, 0, 0}, Key: "k"},
		h("01060001", "0000000000000001", "00000009", "00000000", "00", "00000001000000000000000000000000", "0001", "6b")},
	{"lookup answer empty", "LookupAnswer", LookupAnswer{ID: 1, Asker: 2},
		h("01070000", "0000000000000001", "00000002", "0000", "0000", "0000", "00")},
	{"lookup answer", "LookupAnswer", LookupAnswer{ID: 7, Asker: 1050,
		Hits:       []LookupHit{{ID: 5, Location: loc1, Size: 100, Incarnation: 3, Seq: 4, Expiry: 0, Stored: 0x10, Down: true, Hops: 6}},
		Unresolved: []LookupHit{{ID: 6, Location: Location{2, 0, 0, 0}, Stored: 1, Hops: 3}},
		Path: []LookupStep{
			{Node: 1050, Level: 1, Unit: Location{1, 2, 3, 0}, Via: ViaSelf},
			{Node: 9000, Level: 4, Via: ViaParent, Summaries: 1, Error: "é"},
		}},
		h("01070000", "0000000000000007", "0000041a", "0000", "0001", "0001", "02",
			"00000005", "00000001000000020000000300000004", "0000000000000064", "0000000000000003", "0000000000000004",
			"0000000000000000", "0000000000000010", "01", "06",
			"00000006", "00000002000000000000000000000000", "0000000000000000", "0000000000000000", "0000000000000000",
			"0000000000000000", "0000000000000001", "00", "03",
			"0000041a", "01", "00000001000000020000000300000000", "01", "0000", "0000", "0000",
			"00002328", "04", "00000000000000000000000000000000", "02", "0000", "0001", "0002", "c3a9")},
	{"lookup answer failed", "LookupAnswer", LookupAnswer{ID: 3, Asker: 4, Failed: true, Error: "no"},
		h("01070001", "0000000000000003", "00000004", "0002", "6e6f", "0000", "0000", "00")},
	{"snapshot chunk empty last", "SnapshotChunk", SnapshotChunk{Last: true}, "01030001" + "00000000" + "0000" + "0000" + "00000000"},
	{"snapshot chunk", "SnapshotChunk", SnapshotChunk{Next: 42,
		Sources: []Source{{Origin: loc1, Incarnation: 9, Synced: 8}},
		Records: []Record{
			{ID: 5, Origin: loc1, Incarnation: 9, Seq: 3, Key: "k1", Size: 1, Expiry: 2},
			{ID: 42, Origin: loc1, Incarnation: 8, Seq: 4, Removed: true, Key: "k2"},
			{ID: 43, Origin: loc1, Incarnation: 9, Seq: 5, Removed: true, Key: "k3"},
		}},
		h("01030000", "0000002a",
			"0001", "00000001000000020000000300000004", "0000000000000009", "0000000000000008",
			"0002", "00000001000000020000000300000004", "0000000000000009",
			"00000001000000020000000300000004", "0000000000000008",
			"00000003",
			"00000005", "0000", "0000000000000003", "00", "0002", "6b31", "0000000000000001", "0000000000000002",
			"0000002a", "0001", "0000000000000004", "01", "0002", "6b32",
			"0000002b", "0000", "0000000000000005", "01", "0002", "6b33"),
	},
	{"verdict empty", "Verdict", Verdict{Level: 1}, "01080100" + "0000"},
	{"verdict", "Verdict", Verdict{Level: 1, Entries: []VerdictEntry{
		{Engine: 101, Incarnation: 9, Message: 0x0102030405060708, Result: ResultAccepted, Rejected: 2, Rate: 1000, Burst: 10000},
		{Engine: 102, Incarnation: 3, Message: 7, Result: ResultRateLimited, RetryAfter: 1250, Rate: 1000, Burst: 10000},
		{Engine: 7, Incarnation: 1, Message: 1, Result: ResultWrongOrigin},
	}},
		h("01080100", "0003",
			"00000065", "0000000000000009", "0102030405060708", "01", "00000002", "00000000", "000003e8", "00002710",
			"00000066", "0000000000000003", "0000000000000007", "02", "00000000", "000004e2", "000003e8", "00002710",
			"00000007", "0000000000000001", "0000000000000001", "03", "00000000", "00000000", "00000000", "00000000"),
	},
	{"verdict wrong level", "Verdict", Verdict{Level: 1, Entries: []VerdictEntry{{Engine: 1, Incarnation: 2, Message: 3, Result: ResultWrongLevel}}},
		h("01080100", "0001", "00000001", "0000000000000002", "0000000000000003", "04", strings.Repeat("00", 16))},
	{"digest begin", "Digest", Digest{Level: 4, Flags: DigestBegin, Unit: Location{1, 0, 0, 0}, Generation: 0x0102030405060708,
		Algorithm: DigestFNVKM, Hashes: 7, Seed: 0x1122334455667788, Bits: 20, Keys: 2, Piece: []byte{0x05, 0x80, 0x00}},
		h("01090401", "00000001000000000000000000000000", "0102030405060708", "01", "07", "1122334455667788",
			"0000000000000014", "0000000000000002", "00000000", "00000003", "058000", "00000000", "00000000")},
	{"digest delta", "Digest", Digest{Level: 4, Unit: Location{2, 0, 0, 0}, Generation: 9, Algorithm: DigestFNVKM, Hashes: 3,
		Bits: 1000, Keys: 5, Set: []uint32{7, 999}, Clear: []uint32{3}},
		h("01090400", "00000002000000000000000000000000", "0000000000000009", "01", "03", "0000000000000000",
			"00000000000003e8", "0000000000000005", "00000000", "00000000", "00000002", "00000007", "000003e7", "00000001", "00000003")},
	{"digest end piece", "Digest", Digest{Level: 3, Flags: DigestEnd, Unit: Location{1, 2, 0, 0}, Generation: 1, Algorithm: DigestFNVKM,
		Hashes: 1, Bits: 16, Offset: 1, Piece: []byte{0xff}},
		h("01090302", "00000001000000020000000000000000", "0000000000000001", "01", "01", "0000000000000000",
			"0000000000000010", "0000000000000000", "00000001", "00000001", "ff", "00000000", "00000000")},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExactBytes(t *testing.T) {
	for _, c := range exact {
		t.Run(c.name, func(t *testing.T) {
			cd := codecs[c.codec]
			want := unhex(t, c.hex)
			got, err := cd.encode(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got  %x\n want %x", got, want)
			}
			v, err := cd.decode(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, c.v) {
				t.Fatalf("decode:\n got  %+v\n want %+v", v, c.v)
			}
			if typ, err := Peek(want); err != nil || typ.String() == "" {
				t.Fatalf("Peek = %v, %v", typ, err)
			}
		})
	}
}

// TestTruncated: every input cut short is an error wrapping ErrMalformed,
// never a panic and never a success.
func TestTruncated(t *testing.T) {
	for _, c := range exact {
		b := unhex(t, c.hex)
		for n := range len(b) {
			if _, err := codecs[c.codec].decode(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut to %d of %d: err = %v", c.name, n, len(b), err)
			}
		}
	}
}

func TestTrailing(t *testing.T) {
	for _, c := range exact {
		b := append(unhex(t, c.hex), 0)
		if _, err := codecs[c.codec].decode(b); !errors.Is(err, ErrTrailing) {
			t.Errorf("%s with a trailing byte: err = %v", c.name, err)
		}
	}
}

func TestRejects(t *testing.T) {
	long := strings.Repeat("k", MaxKey+1)
	bad := []struct {
		name  string
		codec string
		hex   string
		want  error
	}{
		{"version 2", "Update", "02010100" + "0000", ErrVersion},
		{"wrong type", "Update", "01020100" + "0000", ErrType},
		{"update flags", "Update", "01010101" + "0000", ErrFlags},
		{"group flags", "Update", h("01010100", "0001", strings.Repeat("00", 24), "04", "0000"), ErrFlags},
		{"too many groups", "Update", h("01010100", "1001"), ErrCount},
		{"groups over bytes", "Update", h("01010100", "0002", strings.Repeat("00", 27)), ErrTruncated},
		{"op kind 3", "Update", h("01010100", "0001", strings.Repeat("00", 25), "0001", "03", "0000000000000001", "0001", "61"), ErrOpKind},
		{"empty key", "Update", h("01010100", "0001", strings.Repeat("00", 25), "0001", "02", "0000000000000001", "0000", "00"), ErrKey},
		{"key over cap", "Update", h("01010100", "0001", strings.Repeat("00", 25), "0001", "02", "0000000000000001", "1001", "00"), ErrKey},
		{"key not utf-8", "Update", h("01010100", "0001", strings.Repeat("00", 25), "0001", "02", "0000000000000001", "0001", "ff"), ErrKey},
		{"chunk flags", "SnapshotChunk", "01030002" + "00000000" + "0000" + "0000" + "00000000", ErrFlags},
		{"too many records", "SnapshotChunk", "01030000" + "00000000" + "0000" + "0000" + "00100001", ErrCount},
		{"records over bytes", "SnapshotChunk", "01030000" + "00000000" + "0000" + "0000" + "00000100", ErrTruncated},
		{"origin index", "SnapshotChunk", h("01030000", "00000000", "0000", "0000", "00000001",
			"00000001", "0000", "0000000000000001", "01", "0001", "61"), ErrIndex},
		{"unused origin", "SnapshotChunk", h("01030000", "00000000", "0000", "0001", strings.Repeat("00", 24), "00000000"), ErrIndex},
		{"record flags", "SnapshotChunk", h("01030000", "00000000", "0000", "0001", strings.Repeat("00", 24), "00000001",
			"00000001", "0000", "0000000000000001", "03", "0001", "61"), ErrFlags},
		{"resync body", "Resync", "0104000000", ErrTrailing},
		{"sync no phase", "Sync", h("01050300", strings.Repeat("00", 24)), ErrFlags},
		{"sync both phases", "Sync", h("01050303", strings.Repeat("00", 24)), ErrFlags},
		{"sync undefined flag", "Sync", h("01050305", strings.Repeat("00", 24)), ErrFlags},
		{"lookup flags", "LookupQuery", h("01060002", strings.Repeat("00", 33), "0001", "6b"), ErrFlags},
		{"lookup empty key", "LookupQuery", h("01060000", strings.Repeat("00", 33), "0000"), ErrKey},
		{"answer too many hits", "LookupAnswer", h("01070000", strings.Repeat("00", 12), "0000", "0401", "0000", "00"), ErrCount},
		{"answer hits over bytes", "LookupAnswer", h("01070000", strings.Repeat("00", 12), "0000", "0002", "0000", "00"), ErrTruncated},
		{"answer text over cap", "LookupAnswer", h("01070000", strings.Repeat("00", 12), "0201"), ErrCount},
		{"answer text not utf-8", "LookupAnswer", h("01070000", strings.Repeat("00", 12), "0001", "ff", "0000", "0000", "00"), ErrMalformed},
		{"answer down flag", "LookupAnswer", h("01070000", strings.Repeat("00", 12), "0000", "0001", "0000", "00",
			strings.Repeat("00", 60), "02", "00"), ErrFlags},
		{"answer step via", "LookupAnswer", h("01070000", strings.Repeat("00", 12), "0000", "0000", "0000", "01",
			"00000001", "01", strings.Repeat("00", 16), "04", "0000", "0000", "0000"), ErrFlags},
		{"level on a request", "SnapshotRequest", "01020100" + "00000007" + "00000000" + "00000000", ErrFlags},
		{"digest flags", "Digest", h("01090404", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000000"), ErrFlags},
		{"digest algorithm 2", "Digest", h("01090400", strings.Repeat("00", 24), "02", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000000"), ErrFlags},
		{"digest no hashes", "Digest", h("01090400", strings.Repeat("00", 24), "01", "00", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000000"), ErrCount},
		{"digest 33 hashes", "Digest", h("01090400", strings.Repeat("00", 24), "01", "21", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000000"), ErrCount},
		{"digest no bits", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000000", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000000"), ErrCount},
		{"digest over 2^32 bits", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000100000001", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000000"), ErrCount},
		{"digest piece past the bits", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000002", "00000001", "ff", "00000000", "00000000"), ErrIndex},
		{"digest position past the bits", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000001", "00000010", "00000000"), ErrIndex},
		{"digest clear past the bits", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000000", "00000001", "00000011"), ErrIndex},
		{"digest too many positions", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00020001"), ErrCount},
		{"digest positions over bytes", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000000", "00000002", "00000001"), ErrTruncated},
		{"digest piece over bytes", "Digest", h("01090400", strings.Repeat("00", 24), "01", "07", strings.Repeat("00", 8), "0000000000000010", strings.Repeat("00", 8), "00000000", "00000005", "ff"), ErrTruncated},
		{"verdict flags", "Verdict", "01080101" + "0000", ErrFlags},
		{"verdict result 0", "Verdict", h("01080100", "0001", strings.Repeat("00", 20), "00", strings.Repeat("00", 16)), ErrResult},
		{"verdict result 5", "Verdict", h("01080100", "0001", strings.Repeat("00", 20), "05", strings.Repeat("00", 16)), ErrResult},
		{"too many verdicts", "Verdict", h("01080100", "1001"), ErrCount},
		{"verdicts over bytes", "Verdict", h("01080100", "0002", strings.Repeat("00", 37)), ErrTruncated},
	}
	for _, c := range bad {
		if _, err := codecs[c.codec].decode(unhex(t, c.hex)); !errors.Is(err, c.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := AppendUpdate(nil, &Update{Groups: []Group{{Ops: []Op{{Kind: OpAdd, Key: long}}}}}); !errors.Is(err, ErrKey) {
		t.Errorf("encoding a key over MaxKey: %v", err)
	}
	if _, err := AppendUpdate(nil, &Update{Groups: []Group{{Ops: []Op{{Kind: 9, Key: "k"}}}}}); !errors.Is(err, ErrOpKind) {
		t.Errorf("encoding op kind 9: %v", err)
	}
	if _, err := AppendDigest(nil, &Digest{Algorithm: DigestFNVKM, Hashes: 1, Bits: 8, Set: []uint32{8}}); !errors.Is(err, ErrIndex) {
		t.Errorf("encoding a position past the bits: %v", err)
	}
	if _, err := AppendVerdict(nil, &Verdict{Entries: []VerdictEntry{{Result: 9}}}); !errors.Is(err, ErrResult) {
		t.Errorf("encoding verdict result 9: %v", err)
	}
	if _, err := AppendVerdict(nil, &Verdict{Entries: make([]VerdictEntry, MaxVerdicts+1)}); !errors.Is(err, ErrCount) {
		t.Errorf("encoding %d verdicts: %v", MaxVerdicts+1, err)
	}
}

// TestLengths: the length helpers the batchers budget with match the
// encoder.
func TestLengths(t *testing.T) {
	ops := []Op{{Kind: OpAdd, Seq: 1, Key: "abc"}, {Kind: OpRemove, Seq: 2, Key: "defg"}}
	u := Update{Groups: []Group{{Ops: ops}}}
	b, err := AppendUpdate(nil, &u)
	if err != nil {
		t.Fatal(err)
	}
	if want := UpdateOverhead + GroupOverhead + ops[0].Len() + ops[1].Len(); len(b) != want {
		t.Fatalf("update %d bytes, helpers say %d", len(b), want)
	}
	recs := []Record{{Key: "abc"}, {Key: "de", Removed: true}}
	c := SnapshotChunk{Sources: []Source{{}}, Records: recs}
	b, err = AppendSnapshotChunk(nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	if want := SnapshotChunkOverhead + SourceLen + OriginLen + RecordLen(&recs[0]) + RecordLen(&recs[1]); len(b) != want {
		t.Fatalf("chunk %d bytes, helpers say %d", len(b), want)
	}
	d := Digest{Algorithm: DigestFNVKM, Hashes: 2, Bits: 64, Piece: []byte{1, 2, 3}, Set: []uint32{1}, Clear: []uint32{2, 3}}
	if b, err = AppendDigest(nil, &d); err != nil || len(b) != DigestLen(&d) {
		t.Fatalf("digest %d bytes (%v), helpers say %d", len(b), err, DigestLen(&d))
	}
	v := Verdict{Entries: []VerdictEntry{{Result: ResultAccepted}, {Result: ResultRateLimited}}}
	if b, err = AppendVerdict(nil, &v); err != nil || len(b) != VerdictOverhead+2*VerdictEntryLen {
		t.Fatalf("verdict %d bytes (%v), helpers say %d", len(b), err, VerdictOverhead+2*VerdictEntryLen)
	}
}

// TestWriteCorpus regenerates testdata/fuzz from the exact cases when
// WRITE_CORPUS=1.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("WRITE_CORPUS") != "1" {
		t.Skip("set WRITE_CORPUS=1 to regenerate the fuzz seed corpus")
	}
	for i, c := range exact {
		dir := filepath.Join("testdata", "fuzz", "Fuzz"+c.codec)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", unhex(t, c.hex))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
