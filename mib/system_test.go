package mib_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

var (
	sysDescr        = smi.MustParseOID("1.3.6.1.2.1.1.1.0")
	sysObjectID     = smi.MustParseOID("1.3.6.1.2.1.1.2.0")
	sysUpTime       = smi.MustParseOID("1.3.6.1.2.1.1.3.0")
	sysContact      = smi.MustParseOID("1.3.6.1.2.1.1.4.0")
	sysName         = smi.MustParseOID("1.3.6.1.2.1.1.5.0")
	sysLocation     = smi.MustParseOID("1.3.6.1.2.1.1.6.0")
	sysServices     = smi.MustParseOID("1.3.6.1.2.1.1.7.0")
	sysORLastChange = smi.MustParseOID("1.3.6.1.2.1.1.8.0")
	sysOREntry      = smi.MustParseOID("1.3.6.1.2.1.1.9.1")
	system          = smi.MustParseOID("1.3.6.1.2.1.1")
)

// clock is a settable clock for sysUpTime.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newSystem(t *testing.T, cfg mib.SystemConfig) (*agent.Tree, *mib.System, *clock) {
	t.Helper()
	c := &clock{t: epoch}
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	tree := agent.NewTree()
	s, err := mib.RegisterSystem(tree, cfg)
	if err != nil {
		t.Fatalf("RegisterSystem: %v", err)
	}
	return tree, s, c
}

var txSeq atomic.Uint32

func set(tree *agent.Tree, vbs ...smi.VarBind) error {
	return tree.Set(context.Background(), smi.TxID{Session: 7, Transaction: txSeq.Add(1)}, vbs)
}

func str(oid smi.OID, s string) smi.VarBind { return smi.VarBind{Name: oid, Value: smi.String(s)} }

func TestSystemValues(t *testing.T) {
	tree, _, c := newSystem(t, mib.SystemConfig{
		Descr: "smsnmpd 1.0 linux/amd64", Contact: "noc@example.net", Name: "sm1",
		Location: "dc2 row 4", Start: epoch,
	})
	c.Advance(12340 * time.Millisecond)
	got := get(t, tree, sysDescr, sysObjectID, sysUpTime, sysContact, sysName, sysLocation, sysServices, sysORLastChange)
	want := []smi.Value{
		smi.String("smsnmpd 1.0 linux/amd64"), smi.ObjectID(mib.SmAgentSmsnmpd.OID()), smi.TimeTicks(1234),
		smi.String("noc@example.net"), smi.String("sm1"), smi.String("dc2 row 4"), smi.Integer(72), smi.TimeTicks(0),
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestSystemWalk checks the whole group in walk order: scalars, then
// sysORTable column by column, listing SERVICE-MANAGER-MIB.
func TestSystemWalk(t *testing.T) {
	extra := smi.MustParseOID("1.3.6.1.6.3.1")
	tree, _, _ := newSystem(t, mib.SystemConfig{
		Capabilities: []mib.Capability{{ID: extra, Descr: "The MIB module for SNMPv2 entities"}},
	})
	vbs := walk(t, tree, system, 100)
	var names []string
	for _, vb := range vbs {
		names = append(names, vb.Name.String())
	}
	want := []string{
		"1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.4.0",
		"1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0", "1.3.6.1.2.1.1.7.0", "1.3.6.1.2.1.1.8.0",
		"1.3.6.1.2.1.1.9.1.2.1", "1.3.6.1.2.1.1.9.1.2.2",
		"1.3.6.1.2.1.1.9.1.3.1", "1.3.6.1.2.1.1.9.1.3.2",
		"1.3.6.1.2.1.1.9.1.4.1", "1.3.6.1.2.1.1.9.1.4.2",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("walk:\n got %v\nwant %v", names, want)
	}
	if !vbs[8].Value.Equal(smi.ObjectID(mib.SmMIB.OID())) {
		t.Errorf("sysORID.1 = %s, want smMIB", vbs[8].Value)
	}
	if !vbs[9].Value.Equal(smi.ObjectID(extra)) {
		t.Errorf("sysORID.2 = %s, want %s", vbs[9].Value, extra)
	}
	if d := string(vbs[10].Value.Bytes); !strings.HasPrefix(d, "SERVICE-MANAGER-MIB") {
		t.Errorf("sysORDescr.1 = %q", d)
	}
}

func TestSystemDefaults(t *testing.T) {
	tree, _, _ := newSystem(t, mib.SystemConfig{})
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	got := get(t, tree, sysDescr, sysName, sysServices)
	if !got[0].Equal(smi.String("smsnmpd")) || !got[1].Equal(smi.String(host)) || !got[2].Equal(smi.Integer(72)) {
		t.Errorf("defaults: %v", got)
	}
}

func TestSystemUpTimeWraps(t *testing.T) {
	_, s, c := newSystem(t, mib.SystemConfig{Start: epoch})
	// TimeTicks count modulo 2^32 (about 497 days).
	c.Advance((1<<32 + 5) * 10 * time.Millisecond)
	if got := s.UpTime(); got != 5 {
		t.Errorf("UpTime after 2^32+5 ticks = %d, want 5", got)
	}
	_, s, _ = newSystem(t, mib.SystemConfig{Start: epoch.Add(time.Hour)})
	if got := s.UpTime(); got != 0 {
		t.Errorf("UpTime before Start = %d, want 0", got)
	}
}

func TestSystemSetValidation(t *testing.T) {
	tree, s, _ := newSystem(t, mib.SystemConfig{Contact: "old"})
	long := strings.Repeat("x", 255)
	for _, c := range []struct {
		name string
		vb   smi.VarBind
		want smi.ErrorStatus
	}{
		{"255 octets", str(sysContact, long), smi.NoError},
		{"empty", str(sysContact, ""), smi.NoError},
		{"256 octets", str(sysContact, long+"x"), smi.WrongLength},
		{"newline", str(sysContact, "a\nb"), smi.WrongValue},
		{"NUL", str(sysContact, "a\x00"), smi.WrongValue},
		{"UTF-8", str(sysContact, "Zürich"), smi.WrongValue},
		{"DEL", str(sysContact, "\x7f"), smi.WrongValue},
		{"INTEGER", smi.VarBind{Name: sysContact, Value: smi.Integer(1)}, smi.WrongType},
		{"no such instance", str(sysContact[:len(sysContact)-1].Append(1), "x"), smi.NoCreation},
		{"sysDescr", str(sysDescr, "x"), smi.NotWritable},
		{"sysORDescr", str(sysOREntry.Append(3, 1), "x"), smi.NotWritable},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.Contact()
			err := set(tree, c.vb)
			if st, idx := smi.StatusOf(err); st != c.want || idx != 0 {
				t.Fatalf("SET = %v (%s at %d), want %s", err, st, idx, c.want)
			}
			after := s.Contact()
			if c.want == smi.NoError {
				if after != string(c.vb.Value.Bytes) {
					t.Errorf("after SET sysContact = %q, want %q", after, c.vb.Value.Bytes)
				}
			} else if after != before {
				t.Errorf("refused SET changed sysContact from %q to %q", before, after)
			}
		})
	}
}

// TestSystemSetAtomic: one bad varbind leaves the others unchanged too.
func TestSystemSetAtomic(t *testing.T) {
	tree, s, _ := newSystem(t, mib.SystemConfig{Contact: "c0", Name: "n0", Location: "l0"})
	err := set(tree, str(sysContact, "c1"), str(sysName, "n1"), str(sysLocation, "bad\t"))
	if st, idx := smi.StatusOf(err); st != smi.WrongValue || idx != 2 {
		t.Fatalf("SET = %v (%s at %d), want wrongValue at 2", err, st, idx)
	}
	if s.Contact() != "c0" || s.Name() != "n0" || s.Location() != "l0" {
		t.Errorf("after a refused SET: %q %q %q", s.Contact(), s.Name(), s.Location())
	}
	if err := set(tree, str(sysContact, "c1"), str(sysName, "n1"), str(sysLocation, "l1")); err != nil {
		t.Fatal(err)
	}
	got := get(t, tree, sysContact, sysName, sysLocation)
	if string(got[0].Bytes) != "c1" || string(got[1].Bytes) != "n1" || string(got[2].Bytes) != "l1" {
		t.Errorf("after SET: %v", got)
	}
}

func TestSystemPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	cfg := mib.SystemConfig{Contact: "configured", Name: "sm1", Location: "configured", Store: mib.NewFileStore(path)}
	tree, _, _ := newSystem(t, cfg)
	if err := set(tree, str(sysContact, "noc@example.net"), str(sysLocation, "dc2")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}

	// A restart: a new tree and store on the same file. SET values win
	// over the configuration; what was never SET keeps the configured one.
	cfg.Store = mib.NewFileStore(path)
	tree2, _, _ := newSystem(t, cfg)
	got := get(t, tree2, sysContact, sysName, sysLocation)
	for i, want := range []string{"noc@example.net", "sm1", "dc2"} {
		if string(got[i].Bytes) != want {
			t.Errorf("after restart varbind %d = %s, want %q", i, got[i], want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("state directory holds %d files, want only the state file", len(entries))
	}
}

func TestSystemBadStore(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, content string }{
		{"not JSON", "{sysContact"},
		{"not strings", `{"sysContact": 5}`},
		{"unprintable value", `{"sysName": "a\u0007b"}`},
		{"too long value", `{"sysLocation": "` + strings.Repeat("y", 256) + `"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			tree := agent.NewTree()
			_, err := mib.RegisterSystem(tree, mib.SystemConfig{Store: mib.NewFileStore(path)})
			if !errors.Is(err, mib.ErrStore) {
				t.Errorf("RegisterSystem = %v, want ErrStore", err)
			}
			if len(tree.Roots()) != 0 {
				t.Errorf("registered %v after failing", tree.Roots())
			}
		})
	}
}

// failStore fails Save for one key.
type failStore struct {
	mu    sync.Mutex
	vals  map[string]string
	fail  string
	saves int
}

func (f *failStore) Load() (map[string]string, error) { return map[string]string{}, nil }

func (f *failStore) Save(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	if key == f.fail {
		return errors.New("disk full")
	}
	if f.vals == nil {
		f.vals = map[string]string{}
	}
	f.vals[key] = value
	return nil
}

// TestSystemStoreFailure: a value that cannot be kept is not served, and a
// request that half-committed is undone, store included.
func TestSystemStoreFailure(t *testing.T) {
	st := &failStore{fail: mib.KeySysLocation}
	tree, s, _ := newSystem(t, mib.SystemConfig{Contact: "c0", Location: "l0", Store: st})
	err := set(tree, str(sysContact, "c1"), str(sysLocation, "l1"))
	if status, idx := smi.StatusOf(err); status != smi.CommitFailed || idx != 1 {
		t.Fatalf("SET = %v (%s at %d), want commitFailed at 1", err, status, idx)
	}
	if s.Contact() != "c0" || s.Location() != "l0" {
		t.Errorf("after failed commit: contact %q location %q, want c0 l0", s.Contact(), s.Location())
	}
	if st.vals[mib.KeySysContact] != "c0" {
		t.Errorf("store holds sysContact %q after undo, want c0", st.vals[mib.KeySysContact])
	}

	// Setting the value already served writes nothing.
	saves := st.saves
	if err := set(tree, str(sysContact, "c0")); err != nil {
		t.Fatal(err)
	}
	if st.saves != saves {
		t.Errorf("SET of the current value saved %d times", st.saves-saves)
	}
}

func TestSystemInvalidConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  mib.SystemConfig
	}{
		{"services 128", mib.SystemConfig{Services: 128}},
		{"services -1", mib.SystemConfig{Services: -1}},
		{"descr newline", mib.SystemConfig{Descr: "a\nb"}},
		{"contact too long", mib.SystemConfig{Contact: strings.Repeat("c", 256)}},
		{"capability descr", mib.SystemConfig{Capabilities: []mib.Capability{{ID: smi.OID{1, 3}, Descr: "\x01"}}}},
		{"capability id", mib.SystemConfig{Capabilities: []mib.Capability{{Descr: "x"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tree := agent.NewTree()
			if _, err := mib.RegisterSystem(tree, c.cfg); !errors.Is(err, mib.ErrInvalid) {
				t.Errorf("RegisterSystem = %v, want ErrInvalid", err)
			}
			if len(tree.Roots()) != 0 {
				t.Errorf("registered %v after failing", tree.Roots())
			}
		})
	}
}

func TestSystemCapabilities(t *testing.T) {
	tree, s, c := newSystem(t, mib.SystemConfig{Start: epoch})
	c.Advance(5 * time.Second)
	idx, err := s.AddCapability(smi.MustParseOID("1.3.6.1.6.3.1"), "SNMPv2-MIB")
	if err != nil {
		t.Fatal(err)
	}
	if idx != 2 {
		t.Errorf("second sysORIndex = %d, want 2", idx)
	}
	got := get(t, tree, sysORLastChange, sysOREntry.Append(4, idx), sysOREntry.Append(4, 1))
	if !got[0].Equal(smi.TimeTicks(500)) || !got[1].Equal(smi.TimeTicks(500)) || !got[2].Equal(smi.TimeTicks(0)) {
		t.Errorf("sysORLastChange, sysORUpTime.2, sysORUpTime.1 = %v, want 500 500 0", got)
	}
	c.Advance(time.Second)
	if !s.RemoveCapability(idx) || s.RemoveCapability(idx) {
		t.Error("RemoveCapability: want true once, then false")
	}
	got = get(t, tree, sysORLastChange, sysOREntry.Append(2, idx))
	if !got[0].Equal(smi.TimeTicks(600)) || got[1].Type != smi.TypeNoSuchInstance {
		t.Errorf("after removal: %v, want 600 and noSuchInstance", got)
	}
	// Indexes are not reused: an NMS that cached row 2 must not see
	// another capability under it.
	if idx3, _ := s.AddCapability(smi.MustParseOID("1.3.6.1.6.3.1"), "again"); idx3 != 3 {
		t.Errorf("index after removal = %d, want 3", idx3)
	}
}

// TestSystemConcurrent reads and writes sysContact from several
// goroutines; run with -race.
func TestSystemConcurrent(t *testing.T) {
	tree, _, _ := newSystem(t, mib.SystemConfig{Store: mib.NewFileStore(filepath.Join(t.TempDir(), "s.json"))})
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				var err error
				if g%2 == 0 {
					err = set(tree, str(sysContact, "writer"))
				} else {
					_, err = tree.Get(context.Background(), []smi.OID{sysContact, sysUpTime})
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v := get(t, tree, sysContact)[0]; string(v.Bytes) != "writer" {
		t.Errorf("sysContact = %s", v)
	}
}

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	fs := mib.NewFileStore(path)
	m, err := fs.Load()
	if err != nil || len(m) != 0 {
		t.Fatalf("Load of a missing file = %v, %v; want empty, nil", m, err)
	}
	if err := fs.Save("a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Save("b", "2"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Save("a", "3"); err != nil {
		t.Fatal(err)
	}
	m, err = mib.NewFileStore(path).Load()
	if err != nil || len(m) != 2 || m["a"] != "3" || m["b"] != "2" {
		t.Errorf("Load = %v, %v; want a=3 b=2", m, err)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(`{"a":"`+strings.Repeat("z", mib.MaxStateFile)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mib.NewFileStore(big).Load(); !errors.Is(err, mib.ErrStore) {
		t.Errorf("Load of an oversized file = %v, want ErrStore", err)
	}
	if err := mib.NewFileStore(filepath.Join(t.TempDir(), "no", "dir")).Save("a", "1"); !errors.Is(err, mib.ErrStore) {
		t.Errorf("Save into a missing directory = %v, want ErrStore", err)
	}
}
