package wire

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rwire "github.com/smsnmpd/smsnmpd/rmtp/wire"
)

var engineInfoCases = []struct {
	name string
	info EngineInfo
	hex  string
}{
	{"an engine with its name",
		EngineInfo{Load: 150, Requests: 9, BytesOut: 10, ContentCount: 3, Name: "se1"},
		"01 00000096 0000000000000009 000000000000000a 0000000000000003 01 03 736531"},
	{"a level-2 manager's subtree, active",
		EngineInfo{Load: 20, BytesOut: 5, ContentCount: 7, Name: "dc1-sm",
			Subtree: Subtree{Active: true, Level: 2, CDN: 1, DataCenter: 2, Term: 3, Requests: 1 << 40, BytesOut: 0x0102,
				ContentCount: 12, LoadSum: 300, LoadEngines: 4, Up: 3, Suspect: 1, Down: 2}, HasSubtree: true},
		"01 00000014 0000000000000000 0000000000000005 0000000000000007 01 06 6463312d736d" +
			" 02 46 01 02 00000001 00000002 00000000 0000000000000003 0000010000000000 0000000000000102" +
			" 000000000000000c 000000000000012c 00000004 00000003 00000001 00000002"},
	{"a backup's subtree without a name",
		EngineInfo{Subtree: Subtree{Level: 1, CDN: 1, DataCenter: 1, Farm: 1, Requests: 1}, HasSubtree: true},
		"01 00000000 0000000000000000 0000000000000000 0000000000000000" +
			" 02 46 00 01 00000001 00000001 00000001 0000000000000000 0000000000000001 0000000000000000" +
			" 0000000000000000 0000000000000000 00000000 00000000 00000000 00000000"},
}

func TestEngineInfoBytes(t *testing.T) {
	for _, c := range engineInfoCases {
		t.Run(c.name, func(t *testing.T) {
			want := unhex(t, c.hex)
			got := AppendEngineInfo(nil, c.info)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%x\nwant\n%x", got, want)
			}
			back, err := ParseEngineInfo(want)
			if err != nil || back != c.info {
				t.Fatalf("decoded %+v, %v; want %+v", back, err, c.info)
			}
			for n := 0; n < len(want); n++ {
				// Cut anywhere but at a field boundary: truncated.
				if n >= EngineInfoLen && fieldBoundary(want, n) {
					continue
				}
				if _, err := ParseEngineInfo(want[:n]); !errors.Is(err, ErrTruncated) {
					t.Errorf("%d of %d bytes: %v, want ErrTruncated", n, len(want), err)
				}
			}
		})
	}
}

// fieldBoundary reports whether b[:n] ends where a field ends.
func fieldBoundary(b []byte, n int) bool {
	at := EngineInfoLen
	for at < n {
		at += 2 + int(b[at+1])
	}
	return at == n
}

func TestEngineInfoFields(t *testing.T) {
	base := AppendEngineInfo(nil, EngineInfo{Load: 1, Name: "x"})
	// A later version's field, and a longer subtree, are skipped.
	later := append(append([]byte{}, base...), 0x7f, 2, 0xaa, 0xbb)
	st := AppendEngineInfo(nil, EngineInfo{Subtree: Subtree{Level: 3, Up: 9}, HasSubtree: true})
	longer := append(append([]byte{}, st[:EngineInfoLen]...), fieldSubtree, SubtreeLen+3)
	longer = append(append(longer, st[EngineInfoLen+2:]...), 1, 2, 3)
	for name, c := range map[string]struct {
		b    []byte
		want EngineInfo
	}{
		"unknown field":  {later, EngineInfo{Load: 1, Name: "x"}},
		"longer subtree": {longer, EngineInfo{Subtree: Subtree{Level: 3, Up: 9}, HasSubtree: true}},
	} {
		if got, err := ParseEngineInfo(c.b); err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, c.want)
		}
	}
	// A field twice is malformed; a subtree too short is truncated.
	twice := append(append([]byte{}, base...), fieldName, 1, 'y')
	if _, err := ParseEngineInfo(twice); !errors.Is(err, ErrMalformed) {
		t.Errorf("name twice: %v, want ErrMalformed", err)
	}
	short := append(append([]byte{}, base...), fieldSubtree, 3, 0, 1, 2)
	if _, err := ParseEngineInfo(short); !errors.Is(err, ErrTruncated) {
		t.Errorf("subtree of 3 bytes: %v, want ErrTruncated", err)
	}
	// Unknown flag bits of a subtree are a later version's.
	flags := append([]byte{}, st...)
	flags[EngineInfoLen+2] = 0xfe
	if got, err := ParseEngineInfo(flags); err != nil || got.Subtree.Active || got.Subtree.Up != 9 {
		t.Errorf("flags 0xfe: %+v, %v", got, err)
	}
}

// The heartbeat payload has a size limit: rmtp drops a HELLO's app bytes
// whole, without a word, beyond rmtp/wire.MaxHelloApp. No engine info can
// be that long: the longest name is cut, and the rest has a fixed size.
func TestEngineInfoFitsHello(t *testing.T) {
	if MaxEngineInfoLen > rwire.MaxHelloApp {
		t.Fatalf("MaxEngineInfoLen %d > rmtp's MaxHelloApp %d: heartbeats would lose the engine's numbers", MaxEngineInfoLen, rwire.MaxHelloApp)
	}
	longest := EngineInfo{Load: ^uint32(0), Requests: ^uint64(0), BytesOut: ^uint64(0), ContentCount: ^uint64(0),
		Name: strings.Repeat("n", 4*MaxEngineName), HasSubtree: true,
		Subtree: Subtree{Active: true, Level: 4, CDN: ^uint32(0), DataCenter: ^uint32(0), Farm: ^uint32(0), Term: ^uint64(0),
			Requests: ^uint64(0), BytesOut: ^uint64(0), ContentCount: ^uint64(0), LoadSum: ^uint64(0), LoadEngines: ^uint32(0),
			Up: ^uint32(0), Suspect: ^uint32(0), Down: ^uint32(0)}}
	b := AppendEngineInfo(nil, longest)
	if len(b) != MaxEngineInfoLen {
		t.Errorf("the longest engine info encodes to %d bytes, MaxEngineInfoLen says %d", len(b), MaxEngineInfoLen)
	}
	if len(b) > rwire.MaxHelloApp {
		t.Errorf("the longest engine info is %d bytes, over rmtp's MaxHelloApp %d", len(b), rwire.MaxHelloApp)
	}
	got, err := ParseEngineInfo(b)
	if err != nil || len(got.Name) != MaxEngineName || got.Subtree != longest.Subtree {
		t.Errorf("decoded %d-byte name, %+v, %v", len(got.Name), got.Subtree, err)
	}
	// And what rmtp carries it in: a whole HELLO with it still parses
	// with the app bytes intact.
	h := rwire.Hello{Role: rwire.RoleEngine, App: b}
	back, err := rwire.ParseHello(rwire.AppendHello(nil, &h))
	if err != nil || !bytes.Equal(back.App, b) {
		t.Errorf("HELLO round trip: %v, app %d bytes", err, len(back.App))
	}
}

// TestWriteEngineInfoSeeds rewrites the fuzz seeds from the table cases
// when FANOUT_WIRE_WRITE_CORPUS=1, and otherwise checks they are there.
func TestWriteEngineInfoSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseEngineInfo")
	for i, c := range engineInfoCases {
		path := filepath.Join(dir, fmt.Sprintf("info-%d", i))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", unhex(t, c.hex))
		if os.Getenv("FANOUT_WIRE_WRITE_CORPUS") == "1" {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != body {
			t.Errorf("seed %s missing or stale (run with FANOUT_WIRE_WRITE_CORPUS=1): %v", path, err)
		}
	}
}
