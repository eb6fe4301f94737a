package directory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// parentSender applies what a forwarder sends straight to a parent
// store, as the parent's Manager would; down makes every attempt fail
// (reaching no manager), members is the parent's manager set.
type parentSender struct {
	t       testing.TB
	parent  *directory.Store
	down    atomic.Bool
	mu      sync.Mutex
	members []rmtp.NodeID
	msgs    int
}

func (p *parentSender) Send(ctx context.Context, ch uint8, dest rmtp.Dest, b []byte) (rmtp.Report, error) {
	if ch != rmtp.ChannelDirectory || dest != rmtp.Up {
		p.t.Errorf("forwarder sent on channel %d %v", ch, dest)
	}
	if p.down.Load() {
		return rmtp.Report{Members: []rmtp.NodeID{1}, Missing: []rmtp.NodeID{1}}, errors.New("cut")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs++
	switch t, _ := wire.Peek(b); t {
	case wire.TypeUpdate:
		u, err := wire.ParseUpdate(b)
		if err != nil {
			p.t.Error(err)
		}
		if res := p.parent.Apply(&u, 0, 0, time.Now()); res.Err() != nil {
			p.t.Errorf("parent refused: %v", res.Err())
		}
	case wire.TypeSync:
		s, err := wire.ParseSync(b)
		if err != nil {
			p.t.Error(err)
		}
		if _, err := p.parent.ApplySync(&s); err != nil {
			p.t.Error(err)
		}
	default:
		p.t.Errorf("forwarder sent %v", t)
	}
	m := p.members
	if m == nil {
		m = []rmtp.NodeID{1}
	}
	return rmtp.Report{Members: m, Acked: m}, nil
}

var dcUnit = directory.Location{CDN: 1, DataCenter: 2}

func se(farm, engine uint32) directory.Location {
	return directory.Location{CDN: 1, DataCenter: 2, Farm: farm, Engine: engine}
}

// upd is one SE's group as a level-2 store receives it from level 1.
func upd(origin directory.Location, inc uint64, ops ...wire.Op) *wire.Update {
	return &wire.Update{Level: 2, Groups: []wire.Group{{Origin: origin, Incarnation: inc, Ops: ops}}}
}

func add(seq uint64, k string) wire.Op    { return wire.Op{Kind: wire.OpAdd, Seq: seq, Key: k, Size: seq} }
func remove(seq uint64, k string) wire.Op { return wire.Op{Kind: wire.OpRemove, Seq: seq, Key: k} }

func newPair(t *testing.T, policy directory.Policy, cfg directory.ForwarderConfig) (*directory.Store, *directory.Store, *parentSender, *directory.Forwarder) {
	t.Helper()
	child, err := directory.NewStore(directory.StoreConfig{Level: directory.LevelDataCenter, Unit: dcUnit})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := directory.NewStore(directory.StoreConfig{Level: directory.LevelCDN, Unit: directory.Location{CDN: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ps := &parentSender{t: t, parent: parent}
	cfg.Policy = policy
	fw, err := directory.NewForwarder(ps, child, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	return child, parent, ps, fw
}

func flushFw(t *testing.T, fw *directory.Forwarder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fw.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (%+v)", err, fw.Stats())
	}
}

// pairs lists a store's live entries as key@location.
func pairs(s *directory.Store) map[string]bool {
	out := map[string]bool{}
	for _, e := range s.Entries(0, 1<<30, time.Now()) {
		out[e.Key+"@"+e.Location.String()] = true
	}
	return out
}

func sameSet(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("%s: missing %s", what, k)
		}
	}
}

func TestForwarderFull(t *testing.T) {
	checkNoLeak(t)
	child, parent, _, fw := newPair(t, directory.PolicyFull, directory.ForwarderConfig{})
	now := time.Now()
	child.Apply(upd(se(1, 7), 5, add(1, "a"), add(2, "b")), 0, 0, now) // before activation: the re-announcement carries it
	fw.SetActive(true)
	child.Apply(upd(se(1, 8), 3, add(1, "a"), add(2, "c")), 0, 0, now)
	flushFw(t, fw)
	if parent.Digest(time.Now()) != child.Digest(time.Now()) {
		t.Fatalf("parent %v, child %v", pairs(parent), pairs(child))
	}
	// Removal, then the origin restarts without re-announcing b: the
	// parent sweeps on the forwarded SYNC_END.
	child.Apply(upd(se(1, 7), 5, remove(3, "a")), 0, 0, now)
	child.Apply(&wire.Update{Level: 2, Groups: []wire.Group{{Origin: se(1, 8), Incarnation: 4, Flags: wire.SyncBegin | wire.SyncEnd,
		Ops: []wire.Op{add(1, "c")}}}}, 0, 0, now)
	flushFw(t, fw)
	sameSet(t, "after removal and restart", pairs(parent), map[string]bool{"b@1/2/1/7": true, "c@1/2/1/8": true})
	if parent.Digest(time.Now()) != child.Digest(time.Now()) {
		t.Fatal("digests differ after removal and restart")
	}
	if st := fw.Stats(); st.Resyncs != 1 || st.Ops == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestForwarderSummary: one record per key and unit upstream, removed when
// the last live record behind it goes (removal or expiry).
func TestForwarderSummary(t *testing.T) {
	checkNoLeak(t)
	child, parent, _, fw := newPair(t, directory.PolicySummary, directory.ForwarderConfig{})
	fw.SetActive(true)
	now := time.Now()
	child.Apply(upd(se(1, 7), 5, add(1, "a"), add(2, "b")), 0, 0, now)
	child.Apply(&wire.Update{Level: 2, Groups: []wire.Group{{Origin: se(2, 9), Incarnation: 1,
		Ops: []wire.Op{add(1, "a"), {Kind: wire.OpAdd, Seq: 2, Key: "soon", Expiry: uint64(now.Add(time.Second).UnixMilli())}}}}}, 0, 0, now)
	flushFw(t, fw)
	sameSet(t, "summaries", pairs(parent), map[string]bool{"a@1/2/0/0": true, "b@1/2/0/0": true, "soon@1/2/0/0": true})
	child.Apply(upd(se(1, 7), 5, remove(3, "a")), 0, 0, now)
	flushFw(t, fw)
	if h := parent.Lookup("a", directory.Location{}, time.Now()); len(h) != 1 {
		t.Fatalf("a is still held by 1/2/2/9: %+v", h)
	}
	child.Apply(upd(se(2, 9), 1, remove(3, "a")), 0, 0, now)
	child.Maintain(now.Add(2 * time.Second)) // "soon" expires
	flushFw(t, fw)
	sameSet(t, "after the last a went", pairs(parent), map[string]bool{"b@1/2/0/0": true})
	// Takeover by a fresh forwarder on the same store (the BSM's own
	// store in real life): a new incarnation sweeps the old one's records.
	fw.SetActive(false)
	fw2, err := directory.NewForwarder(&parentSender{t: t, parent: parent}, child, directory.ForwarderConfig{Policy: directory.PolicySummary})
	if err != nil {
		t.Fatal(err)
	}
	defer fw2.Close()
	child.Apply(upd(se(1, 7), 5, remove(4, "b"), add(5, "z")), 0, 0, now) // not forwarded by anyone yet
	fw2.SetActive(true)
	flushFw(t, fw2)
	sameSet(t, "after takeover", pairs(parent), map[string]bool{"z@1/2/0/0": true})
	if parent.Count() != 1 {
		t.Fatalf("count %d", parent.Count())
	}
}

// TestForwarderOverflowAndCut: a queue overflow and a cut link each end
// with a re-announcement, and the parent converges, removals included,
// even when the child forgot the tombstones (SYNC BEGIN/END).
func TestForwarderOverflowAndCut(t *testing.T) {
	checkNoLeak(t)
	child, parent, ps, fw := newPair(t, directory.PolicyFull, directory.ForwarderConfig{MaxQueue: 10, SendTimeout: 50 * time.Millisecond})
	fw.SetActive(true)
	flushFw(t, fw)
	now := time.Now()
	var ops []wire.Op
	for i := range 100 {
		ops = append(ops, add(uint64(i+1), fmt.Sprint("k", i)))
	}
	child.Apply(upd(se(1, 7), 5, ops...), 0, 0, now)
	flushFw(t, fw)
	if st := fw.Stats(); st.Overflows == 0 {
		t.Fatalf("no overflow: %+v", st)
	}
	if parent.Digest(time.Now()) != child.Digest(time.Now()) {
		t.Fatal("no convergence after overflow")
	}
	// Cut: removals happen and their tombstones are forgotten below.
	ps.down.Store(true)
	cutOps := []wire.Op{remove(101, "k1"), remove(102, "k2"), add(103, "new")}
	for i := range 20 { // past MaxQueue: the queue holding the removals is dropped
		cutOps = append(cutOps, add(uint64(104+i), fmt.Sprint("more", i)))
	}
	child.Apply(upd(se(1, 7), 5, cutOps...), 0, 0, now)
	waitfor.True(t, 10*time.Second, "attempts fail", func() bool { return fw.Stats().Retries > 0 })
	child.Maintain(now.Add(time.Hour)) // tombstones past TombstoneTTL: the child forgets k1 and k2
	ps.down.Store(false)
	flushFw(t, fw)
	if got, want := pairs(parent), pairs(child); len(got) != len(want) || got["k1@1/2/1/7"] || !got["new@1/2/1/7"] {
		t.Fatalf("after the cut: parent %d entries (k1 %v, new %v), child %d", len(got), got["k1@1/2/1/7"], got["new@1/2/1/7"], len(want))
	}
	if c := parent.Counters(); c.Syncs < 2 || c.Resynced != 2 {
		t.Fatalf("parent counters %+v", c)
	}
}

// TestApplySync: markers of old generations, repeats and lone ENDs do
// nothing; a record named after BEGIN survives.
func TestApplySync(t *testing.T) {
	var changes []directory.Change
	s, err := directory.NewStore(directory.StoreConfig{Level: directory.LevelCDN, Unit: directory.Location{CDN: 1},
		OnChange: func(c directory.Change) { changes = append(changes, c) }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	u := func(o directory.Location, ops ...wire.Op) {
		s.Apply(&wire.Update{Level: 3, Groups: []wire.Group{{Origin: o, Incarnation: 1, Ops: ops}}}, 0, 0, now)
	}
	sy := func(end bool, gen uint64, unit directory.Location) int {
		n, err := s.ApplySync(&wire.Sync{Level: 3, End: end, Unit: unit, Generation: gen})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	other := directory.Location{CDN: 1, DataCenter: 3, Farm: 1, Engine: 1}
	u(se(1, 7), add(1, "a"), add(2, "b"))
	u(other, add(1, "x"))
	if n := sy(true, 5, dcUnit); n != 0 {
		t.Fatalf("END without BEGIN dropped %d", n)
	}
	sy(false, 5, dcUnit)
	u(se(1, 7), add(1, "a")) // named again (same version): survives
	sy(false, 5, dcUnit)     // a repeated BEGIN does not restart the window
	if n := sy(true, 5, dcUnit); n != 1 {
		t.Fatalf("dropped %d, want 1 (b)", n)
	}
	sameSet(t, "after sync", pairs(s), map[string]bool{"a@1/2/1/7": true, "x@1/3/1/1": true})
	if last := changes[len(changes)-1]; last.Reason != directory.ChangeResynced || last.Key != "b" || !last.WasLive || !last.Removed {
		t.Fatalf("last change %+v", last)
	}
	sy(false, 4, dcUnit) // older generation
	if n := sy(true, 4, dcUnit); n != 0 {
		t.Fatalf("old generation dropped %d", n)
	}
	if _, err := s.ApplySync(&wire.Sync{Level: 3, Unit: directory.Location{CDN: 2}, Generation: 9}); !errors.Is(err, directory.ErrWrongOrigin) {
		t.Fatalf("sync of a foreign unit: %v", err)
	}
	if _, err := s.ApplySync(&wire.Sync{Level: 3, Unit: directory.Location{CDN: 1}, Generation: 9}); !errors.Is(err, directory.ErrWrongOrigin) {
		t.Fatalf("sync of the store's own unit: %v", err)
	}
}
