package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current output")

// TestBadConfigsGolden: every file in testdata/bad fails with exactly the
// message in its .golden file (file:line: key: kind: detail).
func TestBadConfigsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", f, cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with an error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test -update to create it)", rerr)
			}
			if got != string(want) {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, want)
			}
			// Every line names the file and a key.
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(line, f) {
					t.Errorf("line %q does not name the file", line)
				}
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is %T, want Errors", err)
			}
			for _, e := range es {
				if e.Key == "" {
					t.Errorf("error %q names no key", e)
				}
			}
		})
	}
}

// TestErrorFields checks the typed side of a few golden cases: callers
// branch on Kind/sentinels and read Line and Key without parsing text.
func TestErrorFields(t *testing.T) {
	cases := []struct {
		file     string
		sentinel error
		kind     ErrorKind
		line     int
		key      string
	}{
		{"unknown_key.toml", ErrUnknownKey, KindUnknownKey, 6, "snmp.lisen"},
		{"unknown_section.toml", ErrUnknownKey, KindUnknownKey, 8, "snmpp"},
		{"case_mismatch.toml", ErrUnknownKey, KindUnknownKey, 2, "node.Role"},
		{"wrong_type_int.toml", ErrType, KindType, 6, "snmp.workers"},
		{"wrong_type_string.toml", ErrType, KindType, 7, "rmtp.group"},
		{"duration_no_unit.toml", ErrInvalid, KindInvalid, 9, "fanout.read_deadline"},
		{"bad_role.toml", ErrInvalid, KindInvalid, 2, "node.role"},
		{"id_negative.toml", ErrInvalid, KindInvalid, 3, "node.id"},
		{"level_range.toml", ErrInvalid, KindInvalid, 3, "node.level"},
		{"se_missing_id.toml", ErrInvalid, KindInvalid, 2, "node.id"}, // points at [node]
		{"syntax.toml", ErrSyntax, KindSyntax, 2, "node.role"},
		{"inline_table.toml", ErrUnknownKey, KindUnknownKey, 9, "se.local_agent.comunity"},
		{"level4_parent.toml", ErrInvalid, KindInvalid, 8, "rmtp.parent.mode"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata/bad", c.file))
			if !errors.Is(err, c.sentinel) {
				t.Fatalf("errors.Is(%v, %v) = false", err, c.sentinel)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("errors.As(*Error) failed on %T", err)
			}
			if e.Kind != c.kind || e.Line != c.line || e.Key != c.key {
				t.Errorf("got kind=%v line=%d key=%q, want kind=%v line=%d key=%q", e.Kind, e.Line, e.Key, c.kind, c.line, c.key)
			}
			for _, other := range []error{ErrRead, ErrSyntax, ErrUnknownKey, ErrType, ErrInvalid} {
				if other != c.sentinel && errors.Is(e, other) {
					t.Errorf("*Error matches %v too", other)
				}
			}
		})
	}
}

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.toml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

// TestValuesDecoded checks that values land in the fields they name,
// including through dotted keys, quoted keys and inline tables.
func TestValuesDecoded(t *testing.T) {
	c, err := Load("testdata/good/dotted_inline.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Role != RoleSE || c.Node.ID != 7 || c.RMTP.Port != 7800 || c.RMTP.Heartbeat.Duration != 100*time.Millisecond {
		t.Errorf("node/rmtp not decoded: %+v %+v", c.Node, c.RMTP)
	}
	if c.SE.LocalAgent.Community.Reveal() != "multi-line-community" || c.SE.LocalAgent.Address.String() != "udp:127.0.0.1:161" {
		t.Errorf("local agent not decoded")
	}
	if c.Log.Format != FormatJSON || c.Log.Level != "warn" {
		t.Errorf("log = %+v", c.Log)
	}
	// Keys not in the file keep their defaults.
	if c.Fanout.ReadDeadline.Duration != 800*time.Millisecond || c.SE.ScanInterval.Duration != 10*time.Second {
		t.Errorf("defaults lost: %+v", c.Fanout)
	}

	c, err = Load("testdata/good/level2_unicast.toml")
	if err != nil {
		t.Fatal(err)
	}
	p := c.RMTP.Parent
	if p.Mode != ParentUnicast || len(p.Peers) != 3 || p.Peers[1].Network() != "udp" || p.Peers[1].Address() != "[2001:db8::12]:7731" {
		t.Errorf("parent = %+v", p)
	}
	if c.AgentX.Socket.Network() != "unix" || c.AgentX.Socket.Address() != "/var/agentx/master" {
		t.Errorf("agentx socket = %v", c.AgentX.Socket)
	}
}

func TestRelativePathsAnchoredAtFile(t *testing.T) {
	c, err := Load("testdata/good/minimal_se.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("testdata/good", "keys/rmtp.key"); c.RMTP.KeyFile != want {
		t.Errorf("key_file = %q, want %q", c.RMTP.KeyFile, want)
	}
	if c.Node.StateDir != "/var/lib/smsnmpd" {
		t.Errorf("absolute default state_dir changed: %q", c.Node.StateDir)
	}
}

// TestEtcExamples: the shipped examples load and validate.
func TestEtcExamples(t *testing.T) {
	for _, name := range []string{"smsnmpd.toml", "manager.toml", "se1.toml", "se2.toml"} {
		path := filepath.Join("..", "..", "etc", name)
		if err := Check(path); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	se1, err := Load("../../etc/se1.toml")
	if err != nil {
		t.Fatal(err)
	}
	se2, err := Load("../../etc/se2.toml")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := Load("../../etc/manager.toml")
	if err != nil {
		t.Fatal(err)
	}
	// One host, separate processes: same group, distinct ids and sockets.
	if se1.Node.ID == se2.Node.ID || se1.Control.Socket == se2.Control.Socket || se1.Control.Socket == mgr.Control.Socket {
		t.Error("the one-host examples collide on id or control socket")
	}
	if se1.RMTP.Group != mgr.RMTP.Group || se1.RMTP.Port != mgr.RMTP.Port || se1.RMTP.Interface != "lo" {
		t.Error("the one-host examples are not in one loopback group")
	}
	if mgr.SNMP.Listen.String() != "udp:127.0.0.1:1161" {
		t.Errorf("manager listens on %v", mgr.SNMP.Listen)
	}
}

// TestEtcExampleIsComplete: etc/smsnmpd.toml mentions every key of the
// schema, so a key added to Config without documentation fails here.
func TestEtcExampleIsComplete(t *testing.T) {
	data, err := os.ReadFile("../../etc/smsnmpd.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for key := range schemaKeys() {
		last := key[strings.LastIndexByte(key, '.')+1:]
		if !strings.Contains(text, "\n"+last+" =") && !strings.Contains(text, "\n#"+last+" =") &&
			!strings.Contains(text, "["+key+"]") && !strings.Contains(text, "[#"+key+"]") && !strings.Contains(text, "#["+key+"]") {
			t.Errorf("etc/smsnmpd.toml does not show key %q", key)
		}
	}
}

// TestEtcExampleSEBlock: the commented-out [se] block of the example is
// valid for an SE once uncommented.
func TestEtcExampleSEBlock(t *testing.T) {
	data, err := os.ReadFile("../../etc/smsnmpd.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "# --- role \"se\" only")
	if !ok {
		t.Fatal("marker of the [se] block not found")
	}
	var b strings.Builder
	b.WriteString("[node]\nrole = \"se\"\nid = 1\n[rmtp]\ninsecure = true\n")
	n := 0
	for _, line := range strings.Split(block, "\n") {
		if len(line) > 1 && line[0] == '#' && line[1] != ' ' && line[1] != '-' {
			b.WriteString(line[1:] + "\n")
			n++
		}
	}
	if n < 8 {
		t.Fatalf("only %d commented settings found", n)
	}
	c, err := Parse("se-block.toml", []byte(b.String()))
	if err != nil {
		t.Fatalf("uncommented [se] block: %v\n%s", err, b.String())
	}
	if c.SE.LocalAgent.Address.IsZero() || c.SE.ContentRoot == "" {
		t.Error("the [se] block did not set its keys")
	}
}

func TestDefaultNeedsRoleAndID(t *testing.T) {
	err := Default().Validate()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Default().Validate() = %v, want Errors", err)
	}
	keys := map[string]bool{}
	for _, e := range es {
		keys[e.Key] = true
	}
	for _, k := range []string{"node.role", "node.id", "rmtp.key_file"} {
		if !keys[k] {
			t.Errorf("Default() lacks an error for %s: %v", k, err)
		}
	}
	if len(es) != 3 {
		t.Errorf("Default() has %d errors, want exactly 3 (role, id, key): %v", len(es), err)
	}
}

func TestDemoPresetValid(t *testing.T) {
	d := Demo()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.SNMP.Listen.Network() != "udp" || d.SNMP.Listen.Address() != "127.0.0.1:1161" {
		t.Errorf("demo listen = %v", d.SNMP.Listen)
	}
	if !d.SNMP.ROCommunity.Equal([]byte("public")) || !d.SNMP.RWCommunity.Equal([]byte("private")) {
		t.Error("demo communities are not public/private")
	}
	// The preset is derived per node; make sure copies do not share slices.
	se := Demo()
	se.Node.Role, se.Node.ID = RoleSE, 2
	if err := se.Validate(); err != nil {
		t.Errorf("demo SE: %v", err)
	}
}

// TestRoundTrip: WriteTOML output of a loaded config (minus secrets) loads
// back to the same config, so the encoder and the decoder agree on every type.
func TestRoundTrip(t *testing.T) {
	c, err := Load("testdata/good/level2_unicast.toml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("/roundtrip.toml", []byte(b.String()))
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip differs:\n%+v\n%+v", c, c2)
	}
}

func TestSchemaMatchesDecoder(t *testing.T) {
	// Every schema key is accepted by the decoder: encode the defaults and
	// check that no key comes back undecoded.
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(Demo()); err != nil {
		t.Fatal(err)
	}
	var c Config
	md, err := toml.Decode(b.String(), &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Errorf("undecoded: %v", u)
	}
	known := schemaKeys()
	for _, k := range md.Keys() {
		if _, ok := known[k.String()]; !ok {
			t.Errorf("encoder wrote %q, unknown to the schema", k)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := schemaKeys()
	for in, want := range map[string]string{
		"snmp.lisen":                      "snmp.listen",
		"rmtp.keyfile":                    "rmtp.key_file",
		"fanout.read_deadlin":             "fanout.read_deadline",
		"completely.unrelated.thing.here": "",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if !errors.Is(err, ErrRead) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrRead wrapping ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "testdata/does-not-exist.toml: cannot read") {
		t.Errorf("message %q", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(p, []byte(strings.Repeat("# x\n", MaxFileSize/4+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); !errors.Is(err, ErrRead) {
		t.Fatalf("err = %v, want ErrRead", err)
	}
}

func TestCheckKeyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	loose := filepath.Join(dir, "loose.key")
	empty := filepath.Join(dir, "empty.key")
	secret := "key-material-never-printed"
	for p, mode := range map[string]os.FileMode{good: 0o600, loose: 0o640} {
		if err := os.WriteFile(p, []byte(secret), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyFile(good); err != nil {
		t.Errorf("good key: %v", err)
	}
	err := CheckKeyFile(loose)
	if !errors.Is(err, ErrKeyFilePerm) {
		t.Errorf("loose key: %v, want ErrKeyFilePerm", err)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Error("key contents in error")
	}
	if err := CheckKeyFile(empty); err == nil {
		t.Error("empty key accepted")
	}
	if err := CheckKeyFile(dir); err == nil {
		t.Error("directory accepted as key file")
	}
	if err := CheckKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
}

// TestHierarchyExampleIsWired: the 4-level example in etc/hierarchy
// validates, and its links agree: every parent link names managers of the
// level above whose unit contains the child, every unicast group lists
// the links that point at it, multicast links use the parent's groups,
// and node ids are unique.
func TestHierarchyExampleIsWired(t *testing.T) {
	files, err := filepath.Glob("../../etc/hierarchy/*.toml")
	if err != nil || len(files) < 8 {
		t.Fatalf("etc/hierarchy: %v %v", files, err)
	}
	type node struct {
		file string
		c    *Config
	}
	var nodes []node
	ids := map[uint32]string{}
	for _, f := range files {
		if err := Check(f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := ids[c.Node.ID]; dup {
			t.Errorf("%s and %s share node.id %d", f, other, c.Node.ID)
		}
		ids[c.Node.ID] = f
		nodes = append(nodes, node{filepath.Base(f), c})
	}
	// contains: is child's unit inside parent's (level of parent)?
	contains := func(parent, child *Config) bool {
		p, ch := parent.Node, child.Node
		switch parent.Node.Level {
		case 4:
			return true
		case 3:
			return p.CDN == ch.CDN
		case 2:
			return p.CDN == ch.CDN && p.DataCenter == ch.DataCenter
		}
		return p.CDN == ch.CDN && p.DataCenter == ch.DataCenter && p.Farm == ch.Farm
	}
	parentsOf := func(child *Config, level int) []node {
		var out []node
		for _, n := range nodes {
			if n.c.Node.Role == RoleManager && n.c.Node.Level == level && contains(n.c, child) {
				out = append(out, n)
			}
		}
		return out
	}
	for _, n := range nodes {
		c := n.c
		if c.Node.Role == RoleSE {
			ps := parentsOf(c, 1)
			if len(ps) == 0 {
				t.Errorf("%s: no level-1 manager of its farm", n.file)
			}
			for _, p := range ps {
				if p.c.RMTP.Group != c.RMTP.Group || p.c.RMTP.Port != c.RMTP.Port {
					t.Errorf("%s: farm group differs from %s's", n.file, p.file)
				}
			}
			continue
		}
		ps := parentsOf(c, c.Node.Level+1)
		switch c.RMTP.Parent.Mode {
		case ParentNone:
			if c.Node.Level < 4 {
				t.Errorf("%s: level %d without a parent link", n.file, c.Node.Level)
			}
		case ParentMulticast:
			for _, p := range ps {
				if p.c.RMTP.Mode != ParentMulticast || p.c.RMTP.Group != c.RMTP.Parent.Group ||
					p.c.RMTP.ManagerGroup != c.RMTP.Parent.ManagerGroup || p.c.RMTP.Port != c.RMTP.Parent.Port {
					t.Errorf("%s: parent link is not %s's group", n.file, p.file)
				}
			}
		case ParentUnicast:
			var want []string
			for _, p := range ps {
				want = append(want, p.c.RMTP.Listen.String())
				found := false
				for _, a := range p.c.RMTP.Peers {
					found = found || a == c.RMTP.Parent.Listen
				}
				if !found {
					t.Errorf("%s: rmtp.peers lacks %s's parent link %v", p.file, n.file, c.RMTP.Parent.Listen)
				}
			}
			var got []string
			for _, a := range c.RMTP.Parent.Peers {
				got = append(got, a.String())
			}
			if len(ps) > 0 && !slices.Equal(sortedCopy(got), sortedCopy(want)) {
				t.Errorf("%s: rmtp.parent.peers %v, want the parent managers %v", n.file, got, want)
			}
		}
		if c.Node.Level < 4 && len(ps) == 0 {
			t.Errorf("%s: no manager of level %d above it", n.file, c.Node.Level+1)
		}
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
