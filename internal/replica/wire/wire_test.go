package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

var update = flag.Bool("update", false, "rewrite testdata/golden and the fuzz seed corpus from the cases")

var oid = smi.MustParseOID

// cases are the states checked byte for byte against testdata/golden and
// seeding FuzzParse.
var cases = []struct {
	name  string
	state State
}{
	{"empty", State{Node: 1000, Incarnation: 7, Term: 2, Seq: 1}},
	{"sums", State{Node: 1001, Incarnation: 0x0102030405060708, Term: 3, Seq: 42, Discontinuity: 1_800_000_000_000_000_000,
		Sums: []Sum{
			{OID: oid("1.3.6.1.4.1.8072.9999.9999.42.1.3.4.0"), Engines: []Count{
				{Engine: 1, Incarnation: 11, Last: 1000, Offset: 0},
				{Engine: 2, Incarnation: 22, Last: 5, Offset: 4_137_465}}},
			{OID: oid("1.3.6.1.2.1.2.2.1.10.1"), Engines: []Count{{Engine: 3, Incarnation: 33, Last: 1 << 40, Offset: 1 << 32}}},
		}}},
	{"partial", State{Node: 1000, Incarnation: 9, Term: 4, Seq: 2, Flags: FlagPartial,
		Sums: []Sum{{OID: oid("1.3"), Engines: nil}}}},
	{"reconcile", State{Node: 1000, Incarnation: 9, Term: 4, Seq: 3, NextReconcile: 8,
		Reconciles: []Reconcile{
			{ID: 7, Engine: 3, Incarnation: 99, State: ReconcilePending, Attempts: 2, Created: 1_800_000_000_000_000_000,
				Before: []smi.VarBind{{Name: oid("1.3.6.1.4.1.8072.9999.9999.42.1.3.2.0"), Value: smi.Gauge32(5)}}},
			{ID: 6, Engine: 2, Incarnation: 98, State: ReconcileDone, Attempts: 1, Created: 1, Resolved: 2,
				Before: []smi.VarBind{{Name: oid("1.3.6.1.2.1.1.4.0"), Value: smi.String("ops")}}},
		}}},
	{"journal", State{Node: 1001, Incarnation: 10, Term: 5, Seq: 4,
		Journal: []Entry{
			{Kind: 2, Subject: 3, Instance: 99, At: 1_800_000_000_000_000_001, Sent: true,
				TrapOID:  oid("1.3.6.1.4.1.8072.9999.9999.42.0.2"),
				VarBinds: []smi.VarBind{{Name: oid("1.3.6.1.4.1.8072.9999.9999.42.1.2.2.1.4.3"), Value: smi.Integer(3)}}},
			{Kind: 1, Subject: 3, Instance: 100, At: 1_800_000_000_000_000_002,
				TrapOID: oid("1.3.6.1.4.1.8072.9999.9999.42.0.1")},
		}}},
}

func goldenPath(name string) string { return filepath.Join("testdata", "golden", name+".hex") }

// readGolden reads a hex file: whitespace and lines from '#' on are
// ignored, so a file can be laid out by field.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", goldenPath(name), err)
	}
	return b
}

// writeGolden writes b as hex, the 48-byte header on lines of its own.
func writeGolden(t *testing.T, name string, b []byte) {
	t.Helper()
	var out strings.Builder
	fmt.Fprintf(&out, "# replica/wire state %q (go test -update rewrites this file)\n", name)
	fmt.Fprintf(&out, "# header\n%x\n%x\n%x\n# sums, reconciles, journal\n", b[:16], b[16:32], b[32:48])
	for rest := b[48:]; len(rest) > 0; {
		n := min(32, len(rest))
		fmt.Fprintf(&out, "%x\n", rest[:n])
		rest = rest[n:]
	}
	if err := os.MkdirAll(filepath.Dir(goldenPath(name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath(name), []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// equalState compares two states as printed: nil and empty lists (and
// byte strings) print alike, which is the equality the codec keeps.
func equalState(a, b *State) bool { return fmt.Sprintf("%+v", *a) == fmt.Sprintf("%+v", *b) }

func TestGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Append(nil, &tc.state)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := Len(&tc.state); err != nil || n != len(got) {
				t.Errorf("Len = %d, %v; encoded %d bytes", n, err, len(got))
			}
			if *update {
				writeGolden(t, tc.name, got)
				writeSeed(t, tc.name, got)
			}
			want := readGolden(t, tc.name)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n got %x\nwant %x", got, want)
			}
			dec, err := Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			if !equalState(dec, &tc.state) {
				t.Errorf("decoded\n got %+v\nwant %+v", *dec, tc.state)
			}
		})
	}
}

// Every proper prefix of a valid state is refused as truncated, and never
// panics.
func TestTruncated(t *testing.T) {
	for _, tc := range cases {
		b, err := Append(nil, &tc.state)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			if _, err := Parse(b[:n]); !errors.Is(err, ErrTruncated) {
				t.Errorf("%s cut at %d of %d bytes: %v, want ErrTruncated", tc.name, n, len(b), err)
			}
		}
	}
}

func TestRefused(t *testing.T) {
	valid, err := Append(nil, &cases[3].state) // reconcile
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	bad := []struct {
		name string
		b    []byte
		want error
	}{
		{"magic", edit(func(b []byte) []byte { b[0] = 0; return b }), ErrMalformed},
		{"version", edit(func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"flags", edit(func(b []byte) []byte { b[3] = 0x80; return b }), ErrMalformed},
		{"node 0", edit(func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }), ErrMalformed},
		{"reserved", edit(func(b []byte) []byte { b[47] = 1; return b }), ErrMalformed},
		{"trailing byte", append(bytes.Clone(valid), 0), ErrMalformed},
		{"sums over the cap", edit(func(b []byte) []byte { b[48], b[49] = 0xff, 0xff; return b }), ErrTooMany},
		{"a reconcile state of 0", edit(func(b []byte) []byte { b[48+2+2+16] = 0; return b }), ErrMalformed},
		{"over MaxState", make([]byte, MaxState+1), ErrTooMany},
	}
	for _, tc := range bad {
		if _, err := Parse(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	refusedOut := []struct {
		name string
		s    State
	}{
		{"node 0", State{}},
		{"unknown flag", State{Node: 1, Flags: 0x40}},
		{"empty OID", State{Node: 1, Sums: []Sum{{}}}},
		{"state 0", State{Node: 1, Reconciles: []Reconcile{{}}}},
		{"empty trap OID", State{Node: 1, Journal: []Entry{{}}}},
		{"too many engines", State{Node: 1, Sums: []Sum{{OID: oid("1.3"), Engines: make([]Count, MaxSumEngines+1)}}}},
		{"over MaxState", State{Node: 1, Sums: []Sum{
			{OID: oid("1.3"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.4"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.5"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.6"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.7"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.8"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.9"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.10"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.11"), Engines: make([]Count, MaxSumEngines)},
			{OID: oid("1.12"), Engines: make([]Count, MaxSumEngines)},
		}}},
	}
	for _, tc := range refusedOut {
		if b, err := Append([]byte{9}, &tc.s); err == nil {
			t.Errorf("%s: encoded %d bytes", tc.name, len(b))
		} else if len(b) != 1 {
			t.Errorf("%s: a refused state left %d bytes behind", tc.name, len(b)-1)
		}
	}
}

func writeSeed(t *testing.T, name string, b []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzParse: whatever the bytes, Parse returns an error or a state that
// encodes, and whose encoding decodes to the same state and encodes to
// the same bytes (BER may be written non-canonically on the way in).
func FuzzParse(f *testing.F) {
	// The seeds are testdata/fuzz/FuzzParse, written from cases by -update.
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Append(nil, s)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		s2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !equalState(s, s2) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", *s, *s2)
		}
		third, err := Append(nil, s2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable: %v", err)
		}
	})
}
