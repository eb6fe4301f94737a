package mib_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/hoststat"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// fakeHost is a HostStats with settable numbers and failures.
type fakeHost struct {
	load hoststat.Load
	mem  hoststat.Memory
	net  hoststat.Net
	up   time.Duration
	fail bool
}

var errHost = errors.New("no /proc here")

func (h *fakeHost) err() error {
	if h.fail {
		return errHost
	}
	return nil
}
func (h *fakeHost) Load() (hoststat.Load, error)     { return h.load, h.err() }
func (h *fakeHost) Memory() (hoststat.Memory, error) { return h.mem, h.err() }
func (h *fakeHost) Net() (hoststat.Net, error)       { return h.net, h.err() }
func (h *fakeHost) Uptime() (time.Duration, error)   { return h.up, h.err() }

func newSE(t *testing.T, cfg mib.SEConfig) (*agent.Tree, *mib.SE) {
	t.Helper()
	if cfg.Host == nil {
		cfg.Host = &fakeHost{}
	}
	tree := agent.NewTree()
	s, err := mib.RegisterSE(tree, cfg)
	if err != nil {
		t.Fatalf("RegisterSE: %v", err)
	}
	return tree, s
}

func gauge(oid smi.OID, v uint32) smi.VarBind { return smi.VarBind{Name: oid, Value: smi.Gauge32(v)} }
func integer(oid smi.OID, v int32) smi.VarBind {
	return smi.VarBind{Name: oid, Value: smi.Integer(v)}
}

func TestSEValues(t *testing.T) {
	var requests atomic.Uint64
	requests.Store(5_000_000_000)
	host := &fakeHost{
		load: hoststat.Load{One: 150, Five: 10, Fifteen: 1},
		mem:  hoststat.Memory{TotalKiB: 1 << 33, AvailableKiB: 123456},
		net:  hoststat.Net{RxBytes: 1 << 40, TxBytes: 7},
		up:   90061*time.Second + 999*time.Millisecond,
	}
	tree, s := newSE(t, mib.SEConfig{
		Requests:     requests.Load,
		BytesOut:     func() uint64 { return 42 },
		ContentCount: func() uint64 { return 17 },
		Host:         host,
	})
	names := []smi.OID{inst(mib.SmSeAdminState), inst(mib.SmSeWeight), inst(mib.SmSeLoad),
		inst(mib.SmSeRequests), inst(mib.SmSeBytesOut), inst(mib.SmSeContentCount), inst(mib.SmSeMemTotal),
		inst(mib.SmSeMemAvailable), inst(mib.SmSeNetInOctets), inst(mib.SmSeNetOutOctets), inst(mib.SmSeHostUptime)}
	want := []smi.Value{smi.Integer(1), smi.Gauge32(mib.DefaultSeWeight), smi.Gauge32(150),
		smi.Counter64(5_000_000_000), smi.Counter64(42), smi.Gauge32(17),
		smi.Gauge32(1<<32 - 1), // 8 TiB latches
		smi.Gauge32(123456), smi.Counter64(1 << 40), smi.Counter64(7), smi.Gauge32(90061)}
	got := get(t, tree, names...)
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("%s = %s, want %s", names[i], got[i], want[i])
		}
	}

	if info := s.EngineInfo(); info != (wire.EngineInfo{Load: 150, Requests: 5_000_000_000, BytesOut: 42, ContentCount: 17}) {
		t.Errorf("EngineInfo = %+v", info)
	}

	// Live: the next read sees the new number.
	requests.Add(1)
	if v := get(t, tree, inst(mib.SmSeRequests))[0]; v.Uint != 5_000_000_001 {
		t.Errorf("smSeRequests after one more = %s", v)
	}

	// Each value's type is the MIB's.
	for i, n := range names {
		o, _ := mib.ByName(nameOf(t, n))
		if got[i].Type != o.Syntax.Type {
			t.Errorf("%s: type %s, MIB says %s", o.Name, got[i].Type, o.Syntax.Type)
		}
	}

	// The walk lists the group in OID order.
	vbs := walk(t, tree, mib.SmSe.OID(), 20)
	if len(vbs) != len(names) {
		t.Fatalf("walk of smSe: %d varbinds, want %d", len(vbs), len(names))
	}
	for i, vb := range vbs {
		if !vb.Name.Equal(names[i]) {
			t.Errorf("walk step %d = %s, want %s", i, vb.Name, names[i])
		}
	}
}

// nameOf returns the MIB name of an instance OID x.0.
func nameOf(t *testing.T, inst smi.OID) string {
	t.Helper()
	for _, o := range mib.Objects() {
		if o.OID.Equal(inst[:len(inst)-1]) {
			return o.Name
		}
	}
	t.Fatalf("no object for %s", inst)
	return ""
}

func TestSEHostFailure(t *testing.T) {
	tree, s := newSE(t, mib.SEConfig{Host: &fakeHost{fail: true}, Requests: func() uint64 { return 3 }})
	if info := s.EngineInfo(); info != (wire.EngineInfo{Requests: 3}) {
		t.Errorf("EngineInfo without a host = %+v", info)
	}
	got := get(t, tree, inst(mib.SmSeLoad), inst(mib.SmSeRequests), inst(mib.SmSeNetInOctets))
	if got[0].Type != smi.TypeNoSuchInstance || got[2].Type != smi.TypeNoSuchInstance {
		t.Errorf("host objects without /proc = %s, %s; want noSuchInstance", got[0], got[2])
	}
	if !got[1].Equal(smi.Counter64(3)) {
		t.Errorf("smSeRequests beside failing host objects = %s", got[1])
	}
	// A nil function leaves the object out.
	if v := get(t, tree, inst(mib.SmSeBytesOut))[0]; v.Type != smi.TypeNoSuchObject {
		t.Errorf("smSeBytesOut without a source = %s, want noSuchObject", v)
	}
}

func TestSEWeightMax(t *testing.T) {
	tree, s := newSE(t, mib.SEConfig{MaxWeight: 5})
	if s.Weight() != 5 {
		t.Errorf("default weight with max_weight 5 = %d, want 5", s.Weight())
	}
	if err := set(tree, gauge(inst(mib.SmSeWeight), 3)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []uint32{6, 1000, 1001, 1 << 31} {
		err := set(tree, gauge(inst(mib.SmSeWeight), w))
		st, idx := smi.StatusOf(err)
		if st != smi.WrongValue || idx != 0 {
			t.Errorf("SET smSeWeight %d = %v (%s), want wrongValue", w, err, st)
		}
		var se *smi.Error
		if !errors.As(err, &se) || se.Err == nil || !strings.Contains(se.Err.Error(), "smSeWeight") {
			t.Errorf("SET smSeWeight %d: reason %v does not name the object", w, err)
		}
	}
	if err := set(tree, gauge(inst(mib.SmSeWeight), 6)); err == nil || !strings.Contains(err.Error(), "max_weight 5") {
		t.Errorf("refusal %v does not name max_weight 5", err)
	}
	if v := get(t, tree, inst(mib.SmSeWeight))[0]; !v.Equal(smi.Gauge32(3)) {
		t.Errorf("smSeWeight after refused SETs = %s, want 3", v)
	}
	// Wrong type: INTEGER is not Unsigned32.
	if st, _ := smi.StatusOf(set(tree, integer(inst(mib.SmSeWeight), 2))); st != smi.WrongType {
		t.Errorf("SET smSeWeight INTEGER: %s, want wrongType", st)
	}
	// All or nothing: a refused weight keeps the admin state of the same
	// request from changing.
	err := set(tree, integer(inst(mib.SmSeAdminState), 2), gauge(inst(mib.SmSeWeight), 9))
	if st, idx := smi.StatusOf(err); st != smi.WrongValue || idx != 1 {
		t.Errorf("SET admin+bad weight = %v, want wrongValue at 1", err)
	}
	if s.AdminState() != mib.InService {
		t.Errorf("admin state %s after a refused request", s.AdminState())
	}
}

func TestSEAdminState(t *testing.T) {
	tree, s := newSE(t, mib.SEConfig{})
	for _, bad := range []int32{0, 4, -1} {
		if st, _ := smi.StatusOf(set(tree, integer(inst(mib.SmSeAdminState), bad))); st != smi.WrongValue {
			t.Errorf("SET smSeAdminState %d: %s, want wrongValue", bad, st)
		}
	}
	if err := set(tree, integer(inst(mib.SmSeAdminState), 3)); err != nil {
		t.Fatal(err)
	}
	if s.AdminState() != mib.OutOfService {
		t.Errorf("admin state %s", s.AdminState())
	}
	for _, c := range []struct {
		in   string
		want mib.AdminState
	}{{"drain", mib.Drain}, {"1", mib.InService}, {"outOfService", mib.OutOfService}} {
		if a, err := mib.ParseAdminState(c.in); err != nil || a != c.want {
			t.Errorf("ParseAdminState(%q) = %v, %v", c.in, a, err)
		}
	}
	if _, err := mib.ParseAdminState("up"); !errors.Is(err, mib.ErrInvalid) {
		t.Errorf("ParseAdminState(up) = %v", err)
	}
}

// TestAdminStateMatchesMIB keeps the Go enumeration and the MIB's labels
// equal, and the weight limits.
func TestAdminStateMatchesMIB(t *testing.T) {
	enum := mib.SmSeAdminState.Object().Syntax.Enum
	if len(enum) != 3 {
		t.Fatalf("smSeAdminState has %d labels", len(enum))
	}
	for _, e := range enum {
		if a := mib.AdminState(e.Value); !a.Valid() || a.String() != e.Label {
			t.Errorf("%s(%d): AdminState says %q", e.Label, e.Value, a)
		}
	}
	if w := mib.SmSeWeight.Object().Syntax; w.Max != mib.MaxSeWeight || w.Min != 0 {
		t.Errorf("smSeWeight %d..%d in the table, MaxSeWeight %d", w.Min, w.Max, mib.MaxSeWeight)
	}
}

func TestSEPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.json")
	cfg := mib.SEConfig{MaxWeight: 500, Store: mib.NewFileStore(path)}
	tree, _ := newSE(t, cfg)
	if err := set(tree, gauge(inst(mib.SmSeWeight), 7), integer(inst(mib.SmSeAdminState), 2)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"smSeWeight": "7"`) || !strings.Contains(string(b), `"smSeAdminState": "drain"`) {
		t.Errorf("state file:\n%s", b)
	}

	// A restart keeps both.
	cfg.Store = mib.NewFileStore(path)
	_, s2 := newSE(t, cfg)
	if s2.Weight() != 7 || s2.AdminState() != mib.Drain {
		t.Errorf("after restart weight %d state %s, want 7 drain", s2.Weight(), s2.AdminState())
	}

	// A max_weight lowered below the kept value wins.
	cfg.Store, cfg.MaxWeight = mib.NewFileStore(path), 5
	_, s3 := newSE(t, cfg)
	if s3.Weight() != 5 {
		t.Errorf("kept 7 with max_weight 5: weight %d, want 5", s3.Weight())
	}
}

func TestSEStoreFailure(t *testing.T) {
	st := &failStore{fail: mib.KeySeWeight}
	tree, s := newSE(t, mib.SEConfig{Store: st})
	err := set(tree, integer(inst(mib.SmSeAdminState), 2), gauge(inst(mib.SmSeWeight), 9))
	if status, idx := smi.StatusOf(err); status != smi.CommitFailed || idx != 1 {
		t.Fatalf("SET = %v, want commitFailed at 1", err)
	}
	if s.Weight() != mib.DefaultSeWeight || s.AdminState() != mib.InService {
		t.Errorf("after failed commit: weight %d state %s", s.Weight(), s.AdminState())
	}
	if st.vals[mib.KeySeAdminState] != "inService" {
		t.Errorf("store holds %q after undo, want inService", st.vals[mib.KeySeAdminState])
	}
}

func TestSEBadStoreAndConfig(t *testing.T) {
	dir := t.TempDir()
	for i, content := range []string{`{"smSeWeight": "1001"}`, `{"smSeWeight": "-1"}`, `{"smSeAdminState": "up"}`} {
		path := filepath.Join(dir, string(rune('a'+i)))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		tree := agent.NewTree()
		if _, err := mib.RegisterSE(tree, mib.SEConfig{Store: mib.NewFileStore(path), Host: &fakeHost{}}); !errors.Is(err, mib.ErrStore) {
			t.Errorf("%s: RegisterSE = %v, want ErrStore", content, err)
		}
		if len(tree.Roots()) != 0 {
			t.Errorf("%s: registered %v after failing", content, tree.Roots())
		}
	}
	for _, cfg := range []mib.SEConfig{{MaxWeight: 1001}, {MaxWeight: 5, Weight: 6}, {AdminState: 4}} {
		if _, err := mib.RegisterSE(agent.NewTree(), cfg); !errors.Is(err, mib.ErrInvalid) {
			t.Errorf("RegisterSE(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}

func TestSEConcurrentSet(t *testing.T) {
	st := &failStore{}
	tree, s := newSE(t, mib.SEConfig{Store: st})
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				_ = set(tree, gauge(inst(mib.SmSeWeight), uint32(g*50+i)))
				_, _ = tree.Get(context.Background(), []smi.OID{inst(mib.SmSeWeight)})
			}
		}()
	}
	for range 4 {
		<-done
	}
	// The store's order of writes is memory's: the last value kept is the
	// one served.
	if got, want := st.vals[mib.KeySeWeight], strconv.FormatUint(uint64(s.Weight()), 10); got != want {
		t.Errorf("store holds weight %q, memory %s", got, want)
	}
}
