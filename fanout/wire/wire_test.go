package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

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

var oid = smi.MustParseOID

var requestCases = []struct {
	name string
	req  Request
	hex  string
}{
	{"get one name, one target",
		Request{Op: OpGet, Tx: 0x0102030405060708, Term: 9, BudgetUs: 800000, Targets: []uint32{101},
			VarBinds: []smi.VarBind{{Name: oid("1.3.6.1"), Value: smi.Null()}}},
		"01 01 0000 0102030405060708 0000000000000009 000c3500 00000000 0001 00000065" +
			" 3009 3007 06032b0601 0500"},
	{"walk with a continuation, every engine",
		Request{Op: OpWalk, Tx: 2, Term: 1, BudgetUs: 1, WalkCap: 2000,
			VarBinds: []smi.VarBind{{Name: oid("1.3.6.1"), Value: smi.ObjectID(oid("1.3.6.1.2"))}}},
		"01 03 0000 0000000000000002 0000000000000001 00000001 000007d0 0000" +
			" 300d 300b 06032b0601 06042b060102"},
	{"commit carries nothing",
		Request{Op: OpSetCommit, Tx: 3, Term: 4, Targets: []uint32{1, 2}},
		"01 05 0000 0000000000000003 0000000000000004 00000000 00000000 0002 00000001 00000002 3000"},
}

var replyCases = []struct {
	name string
	rep  Reply
	hex  string
}{
	{"get answered",
		Reply{Op: OpGet, Status: StatusOK, Tx: 1, Engine: 101, Incarnation: 0xabc, Term: 9,
			VarBinds: []smi.VarBind{{Name: oid("1.3.6.1"), Value: smi.Integer(5)}}},
		"01 01 00 00 0000000000000001 00000065 0000000000000abc 0000000000000009 0000 0000 300a 3008 06032b0601 020105"},
	{"set test refused",
		Reply{Op: OpSetTest, Status: StatusSNMPError, Tx: 7, Engine: 3, Incarnation: 1, Term: 2, ErrStatus: smi.WrongValue, ErrIndex: 2},
		"01 04 01 00 0000000000000007 00000003 0000000000000001 0000000000000002 000a 0002 3000"},
	{"walk truncated",
		Reply{Op: OpWalk, Status: StatusOK, Flags: FlagTruncated, Tx: 8, Engine: 4,
			VarBinds: []smi.VarBind{{Name: oid("1.3.6.1.1"), Value: smi.Counter64(1 << 40)}}},
		"01 03 00 01 0000000000000008 00000004 0000000000000000 0000000000000000 0000 0000 3010 300e 06042b060101 4606010000000000"},
}

func TestRequestBytes(t *testing.T) {
	for _, tc := range requestCases {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := AppendRequest(nil, &tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n got %x\nwant %x", got, want)
			}
			dec, err := ParseRequest(want)
			if err != nil {
				t.Fatal(err)
			}
			again, err := AppendRequest(nil, &dec)
			if err != nil || !bytes.Equal(again, want) {
				t.Fatalf("re-encoded %x, %v", again, err)
			}
			if dec.Op != tc.req.Op || dec.Tx != tc.req.Tx || dec.Term != tc.req.Term || len(dec.VarBinds) != len(tc.req.VarBinds) {
				t.Fatalf("decoded %+v", dec)
			}
		})
	}
}

func TestReplyBytes(t *testing.T) {
	for _, tc := range replyCases {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := AppendReply(nil, &tc.rep)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n got %x\nwant %x", got, want)
			}
			dec, err := ParseReply(want)
			if err != nil {
				t.Fatal(err)
			}
			if dec.Status != tc.rep.Status || dec.ErrStatus != tc.rep.ErrStatus || dec.ErrIndex != tc.rep.ErrIndex ||
				dec.Flags != tc.rep.Flags || dec.Engine != tc.rep.Engine || dec.Incarnation != tc.rep.Incarnation || len(dec.VarBinds) != len(tc.rep.VarBinds) {
				t.Fatalf("decoded %+v", dec)
			}
			for i := range dec.VarBinds {
				if !dec.VarBinds[i].Name.Equal(tc.rep.VarBinds[i].Name) || !dec.VarBinds[i].Value.Equal(tc.rep.VarBinds[i].Value) {
					t.Fatalf("varbind %d: %v", i, dec.VarBinds[i])
				}
			}
		})
	}
}

// The Peek functions read the header fields of every encoded case, and
// refuse what is too short for them.
func TestPeek(t *testing.T) {
	for _, tc := range requestCases {
		b := unhex(t, tc.hex)
		if op, tx, ok := PeekRequest(b); !ok || op != tc.req.Op || tx != tc.req.Tx {
			t.Errorf("%s: PeekRequest = %s, %d, %v", tc.name, op, tx, ok)
		}
		for n := range peekLen {
			if _, _, ok := PeekRequest(b[:n]); ok {
				t.Errorf("%s: PeekRequest of %d bytes", tc.name, n)
			}
		}
		bad := bytes.Clone(b)
		bad[1] = 0
		if _, _, ok := PeekRequest(bad); ok {
			t.Errorf("%s: PeekRequest of op 0", tc.name)
		}
	}
	for _, tc := range replyCases {
		b := unhex(t, tc.hex)
		if op, st, tx, ok := PeekReply(b); !ok || op != tc.rep.Op || st != tc.rep.Status || tx != tc.rep.Tx {
			t.Errorf("%s: PeekReply = %s, %s, %d, %v", tc.name, op, st, tx, ok)
		}
		if _, _, _, ok := PeekReply(b[:ReplyHeaderLen-1]); ok {
			t.Errorf("%s: PeekReply of a short header", tc.name)
		}
	}
}

// Every cut-short input is an error, never a panic.
func TestTruncated(t *testing.T) {
	for _, tc := range requestCases {
		b := unhex(t, tc.hex)
		for n := 0; n < len(b); n++ {
			if _, err := ParseRequest(b[:n]); err == nil {
				t.Errorf("%s: %d of %d bytes accepted", tc.name, n, len(b))
			}
		}
	}
	for _, tc := range replyCases {
		b := unhex(t, tc.hex)
		for n := 0; n < len(b); n++ {
			if _, err := ParseReply(b[:n]); err == nil {
				t.Errorf("%s: %d of %d bytes accepted", tc.name, n, len(b))
			}
		}
	}
	info := AppendEngineInfo(nil, EngineInfo{Load: 1, Requests: 2, BytesOut: 3, ContentCount: 4})
	for n := 0; n < len(info); n++ {
		if _, err := ParseEngineInfo(info[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("engine info: %d of %d bytes: %v", n, len(info), err)
		}
	}
}

func TestRejects(t *testing.T) {
	base := unhex(t, requestCases[0].hex)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(base)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"version", mut(func(b []byte) []byte { b[0] = 2; return b }), ErrVersion},
		{"op zero", mut(func(b []byte) []byte { b[1] = 0; return b }), ErrMalformed},
		{"op unknown", mut(func(b []byte) []byte { b[1] = 8; return b }), ErrMalformed},
		{"flags", mut(func(b []byte) []byte { b[3] = 1; return b }), ErrMalformed},
		{"walk cap over the cap", mut(func(b []byte) []byte { b[24] = 0xff; return b }), ErrTooMany},
		{"targets over the cap", mut(func(b []byte) []byte { b[28], b[29] = 0xff, 0xff; return b }), ErrTooMany},
		{"targets beyond the end", mut(func(b []byte) []byte { b[29] = 9; return b }), ErrTruncated},
		{"trailing byte", mut(func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"commit with varbinds", mut(func(b []byte) []byte { b[1] = byte(OpSetCommit); return b }), ErrMalformed},
	}
	for _, tc := range cases {
		if _, err := ParseRequest(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	rb := unhex(t, replyCases[0].hex)
	rb[2] = byte(StatusNoAnswer)
	if _, err := ParseReply(rb); !errors.Is(err, ErrMalformed) {
		t.Errorf("noAnswer on the wire: %v", err)
	}
	rb[2], rb[3] = 0, 2
	if _, err := ParseReply(rb); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown reply flag: %v", err)
	}
	if _, err := AppendRequest(nil, &Request{Op: OpGet, Targets: make([]uint32, MaxTargets+1)}); !errors.Is(err, ErrTooMany) {
		t.Errorf("encoding too many targets: %v", err)
	}
	if _, err := AppendReply(nil, &Reply{Op: OpGet, Status: StatusNoAnswer}); err == nil {
		t.Error("encoded a status that never travels")
	}
}

func TestEngineInfo(t *testing.T) {
	in := EngineInfo{Load: 150, Requests: 1 << 40, BytesOut: 7, ContentCount: 3}
	b := AppendEngineInfo(nil, in)
	want := unhex(t, "01 00000096 0000010000000000 0000000000000007 0000000000000003")
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x want %x", b, want)
	}
	out, err := ParseEngineInfo(append(b, 0xaa, 1, 0xff)) // a later version's extra field
	if err != nil || out != in {
		t.Fatalf("got %+v, %v", out, err)
	}
}

func TestEnumStrings(t *testing.T) {
	for op := OpGet; op <= OpSetCleanup; op++ {
		if strings.HasPrefix(op.String(), "Op(") {
			t.Errorf("op %d has no name", op)
		}
	}
	if Op(99).String() != "Op(99)" || Status(99).String() != "Status(99)" {
		t.Error("unknown values must show their number")
	}
}

// FuzzParseRequest checks that decoding never panics and that decode →
// encode → decode is stable.
func FuzzParseRequest(f *testing.F) {
	for _, tc := range requestCases {
		f.Add(unhex(f, tc.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if op, tx, ok := PeekRequest(b); !ok || op != r.Op || tx != r.Tx {
			t.Fatalf("PeekRequest = %s, %d, %v; ParseRequest %s, %d", op, tx, ok, r.Op, r.Tx)
		}
		enc, err := AppendRequest(nil, &r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		r2, err := ParseRequest(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		enc2, _ := AppendRequest(nil, &r2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable: %x vs %x", enc, enc2)
		}
	})
}

// FuzzParseReply is FuzzParseRequest for replies.
func FuzzParseReply(f *testing.F) {
	for _, tc := range replyCases {
		f.Add(unhex(f, tc.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		if op, st, tx, ok := PeekReply(b); !ok || op != r.Op || st != r.Status || tx != r.Tx {
			t.Fatalf("PeekReply = %s, %s, %d, %v; ParseReply %s, %s, %d", op, st, tx, ok, r.Op, r.Status, r.Tx)
		}
		enc, err := AppendReply(nil, &r)
		if err != nil {
			t.Fatalf("decoded reply does not encode: %v", err)
		}
		r2, err := ParseReply(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		enc2, _ := AppendReply(nil, &r2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable: %x vs %x", enc, enc2)
		}
	})
}

// FuzzParseEngineInfo checks the HELLO app bytes decoder.
func FuzzParseEngineInfo(f *testing.F) {
	f.Add(AppendEngineInfo(nil, EngineInfo{Load: 1, Requests: 2, BytesOut: 3, ContentCount: 4}))
	for _, c := range engineInfoCases {
		f.Add(unhex(f, c.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEngineInfo(b)
		if err != nil {
			return
		}
		e2, err := ParseEngineInfo(AppendEngineInfo(nil, e))
		if err != nil || e2 != e {
			t.Fatalf("unstable: %+v vs %+v (%v)", e, e2, err)
		}
	})
}
