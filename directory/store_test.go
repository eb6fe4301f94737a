package directory

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

var (
	farm = Location{CDN: 1, DataCenter: 2, Farm: 3}
	t0   = time.Unix(1_800_000_000, 0)
)

func se(id uint32) Location { l := farm; l.Engine = id; return l }

func newStore(t testing.TB, mut func(*StoreConfig)) *Store {
	t.Helper()
	cfg := StoreConfig{Unit: farm, Rate: -1}
	if mut != nil {
		mut(&cfg)
	}
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func add(seq uint64, key string) wire.Op {
	return wire.Op{Kind: wire.OpAdd, Seq: seq, Key: key, Size: seq * 10}
}

func rm(seq uint64, key string) wire.Op { return wire.Op{Kind: wire.OpRemove, Seq: seq, Key: key} }

func upd(engine uint32, inc uint64, flags wire.GroupFlags, ops ...wire.Op) *wire.Update {
	return &wire.Update{Level: 1, Groups: []wire.Group{{Origin: se(engine), Incarnation: inc, Flags: flags, Ops: ops}}}
}

func apply(t testing.TB, s *Store, u *wire.Update, at time.Time) ApplyResult {
	t.Helper()
	g := u.Groups[0]
	return s.Apply(u, g.Origin.Engine, g.Incarnation, at)
}

func keysOf(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Location.String())
	}
	return out
}

func TestApplyVersionsAndTombstones(t *testing.T) {
	s := newStore(t, nil)
	r := apply(t, s, upd(7, 1, 0, add(1, "a"), add(2, "b"), rm(3, "a")), t0)
	if r.Applied != 3 || r.Err() != nil {
		t.Fatalf("apply: %+v", r)
	}
	if s.Count() != 1 || s.Tombstones() != 1 {
		t.Fatalf("count %d tombstones %d, want 1 and 1", s.Count(), s.Tombstones())
	}
	// The same update again (a duplicate): nothing changes.
	d := s.Digest(t0)
	if r := apply(t, s, upd(7, 1, 0, add(1, "a"), add(2, "b"), rm(3, "a")), t0); r.Applied != 0 || r.Stale != 3 {
		t.Fatalf("duplicate: %+v", r)
	}
	// A late copy of the add that the removal replaced: the tombstone wins.
	if r := apply(t, s, upd(7, 1, 0, add(1, "a")), t0); r.Stale != 1 {
		t.Fatalf("late add: %+v", r)
	}
	if h := s.Lookup("a", se(7), t0); len(h) != 0 {
		t.Fatalf("tombstone resurrected: %+v", h)
	}
	if s.Digest(t0) != d {
		t.Fatal("digest changed by duplicates")
	}
	// A newer add revives it.
	apply(t, s, upd(7, 1, 0, add(4, "a")), t0)
	if h := s.Lookup("a", se(7), t0); len(h) != 1 || h[0].Version != (Version{1, 4}) {
		t.Fatalf("re-add: %+v", h)
	}
	// Tombstones go after TombstoneTTL, not before.
	apply(t, s, upd(7, 1, 0, rm(5, "b")), t0)
	s.Maintain(t0.Add(DefaultTombstoneTTL - time.Second))
	if s.Tombstones() != 1 {
		t.Fatalf("tombstone gone early: %d", s.Tombstones())
	}
	s.Maintain(t0.Add(DefaultTombstoneTTL))
	if s.Tombstones() != 0 || s.Counters().TombstonesGone != 1 {
		t.Fatalf("tombstone kept: %d %+v", s.Tombstones(), s.Counters())
	}
}

func TestExpiry(t *testing.T) {
	s := newStore(t, nil)
	exp := uint64(t0.Add(time.Minute).UnixMilli())
	older := wire.Op{Kind: wire.OpAdd, Seq: 1, Key: "k", Size: 1, Expiry: exp + 3_600_000}
	newer := wire.Op{Kind: wire.OpAdd, Seq: 2, Key: "k", Size: 1, Expiry: exp}
	apply(t, s, upd(1, 1, 0, newer), t0)
	if len(s.Lookup("k", farm, t0)) != 1 {
		t.Fatal("live entry not found")
	}
	after := t0.Add(time.Minute)
	if h := s.Lookup("k", farm, after); len(h) != 0 {
		t.Fatalf("expired entry returned: %+v", h)
	}
	if d := s.Digest(after); d.Count != 0 {
		t.Fatalf("expired entry in digest: %v", d)
	}
	if e := s.Entries(0, 10, after); len(e) != 0 {
		t.Fatalf("expired entry listed: %+v", e)
	}
	s.Maintain(after)
	if s.Count() != 0 || s.Counters().Expired != 1 {
		t.Fatalf("count %d counters %+v", s.Count(), s.Counters())
	}
	// An older add with a later expiry, arriving late, must not return.
	if r := apply(t, s, upd(1, 1, 0, older), after); r.Stale != 1 {
		t.Fatalf("late older add: %+v", r)
	}
	if len(s.Lookup("k", farm, after)) != 0 {
		t.Fatal("expired entry resurrected")
	}
}

func TestRestartRule(t *testing.T) {
	s := newStore(t, nil)
	apply(t, s, upd(5, 100, wire.SyncBegin|wire.SyncEnd, add(1, "a"), add(2, "b")), t0)
	// Restart: incarnation 200 re-announces only "a".
	apply(t, s, upd(5, 200, wire.SyncBegin, add(1, "a")), t0)
	if s.Count() != 2 {
		t.Fatalf("old incarnation's entries dropped before SYNC_END: %d", s.Count())
	}
	apply(t, s, upd(5, 200, wire.SyncEnd), t0)
	if h := s.Lookup("b", farm, t0); len(h) != 0 {
		t.Fatalf("b not re-announced but kept: %+v", h)
	}
	if h := s.Lookup("a", farm, t0); len(h) != 1 || h[0].Version.Incarnation != 200 {
		t.Fatalf("a: %+v", h)
	}
	// Operations of the old incarnation are refused from now on.
	if r := s.Apply(upd(5, 100, 0, add(9, "b")), 5, 100, t0); r.Stale != 1 {
		t.Fatalf("old incarnation accepted: %+v", r)
	}

	// Without SYNC_END the sweep comes after the grace period.
	apply(t, s, upd(6, 100, 0, add(1, "x")), t0)
	apply(t, s, upd(6, 300, 0, add(1, "y")), t0)
	s.Maintain(t0.Add(DefaultReannounceGrace / 2))
	if len(s.Lookup("x", farm, t0)) != 1 {
		t.Fatal("swept before the grace period")
	}
	s.Maintain(t0.Add(DefaultReannounceGrace))
	if len(s.Lookup("x", farm, t0)) != 0 || len(s.Lookup("y", farm, t0)) != 1 {
		t.Fatal("grace sweep wrong")
	}
}

func TestRefusals(t *testing.T) {
	s := newStore(t, func(c *StoreConfig) { c.MaxKey = 16; c.MaxEntries = 3 })
	long := strings.Repeat("k", 17)
	r := apply(t, s, upd(1, 1, 0, add(1, "ok1"), add(2, long), add(3, "bad\nkey"), add(4, "ok2")), t0)
	if r.Applied != 2 || r.Rejected != 2 {
		t.Fatalf("result %+v", r)
	}
	if !errors.Is(r.Err(), ErrKeyTooLong) || !errors.Is(r.Err(), ErrBadKey) {
		t.Fatalf("errors %v", r.Err())
	}
	// Node 2 sending entries of SE 1, or under another incarnation.
	if r := s.Apply(upd(1, 1, 0, add(5, "forged")), 2, 1, t0); r.Rejected != 1 || !errors.Is(r.Err(), ErrWrongOrigin) {
		t.Fatalf("forged origin: %+v", r)
	}
	if r := s.Apply(upd(1, 1, 0, add(5, "forged")), 1, 2, t0); r.Rejected != 1 || !errors.Is(r.Err(), ErrWrongOrigin) {
		t.Fatalf("forged incarnation: %+v", r)
	}
	out := &wire.Update{Level: 1, Groups: []wire.Group{{Origin: Location{CDN: 9, Engine: 4}, Incarnation: 1, Ops: []wire.Op{add(1, "x")}}}}
	if r := s.Apply(out, 4, 1, t0); r.Rejected != 1 || !errors.Is(r.Err(), ErrWrongOrigin) {
		t.Fatalf("outside the farm: %+v", r)
	}
	// Entry cap: one more fits, the next is refused, the others stay.
	apply(t, s, upd(2, 1, 0, add(1, "x")), t0)
	if r := apply(t, s, upd(3, 1, 0, add(1, "y")), t0); r.Rejected != 1 || !errors.Is(r.Err(), ErrFull) {
		t.Fatalf("over the cap: %+v", r)
	}
	if s.Count() != 3 || s.Counters().Full != 1 {
		t.Fatalf("count %d, counters %+v", s.Count(), s.Counters())
	}
}

func TestRateLimitPerOrigin(t *testing.T) {
	s := newStore(t, func(c *StoreConfig) { c.Rate = 100; c.Burst = 100 })
	var ops []wire.Op
	for i := range 100 {
		ops = append(ops, add(uint64(i+1), fmt.Sprintf("k%d", i)))
	}
	if r := apply(t, s, upd(1, 1, 0, ops...), t0); r.Applied != 100 {
		t.Fatalf("within the burst: %+v", r)
	}
	r := apply(t, s, upd(1, 1, 0, add(101, "more")), t0)
	if r.RateLimited != 1 || !errors.Is(r.Err(), ErrRateLimited) {
		t.Fatalf("over the burst: %+v", r)
	}
	// Another origin is not affected.
	if r := apply(t, s, upd(2, 1, 0, add(1, "other")), t0); r.Applied != 1 {
		t.Fatalf("other origin: %+v", r)
	}
	// Tokens come back with time.
	if r := apply(t, s, upd(1, 1, 0, add(102, "later")), t0.Add(time.Second)); r.Applied != 1 {
		t.Fatalf("after refill: %+v", r)
	}
	src := s.Sources()[0]
	if src.Location != se(1) || src.RateLimited != 1 || src.Ops != 101 {
		t.Fatalf("source counters %+v", src)
	}
}

func TestLookupOrder(t *testing.T) {
	s := newStore(t, func(c *StoreConfig) { c.Level = LevelPeering; c.Unit = Location{} })
	locs := []Location{L(1, 2, 3, 9), L(1, 2, 3, 4), L(1, 2, 5, 1), L(1, 7, 1, 1), L(2, 1, 1, 1), L(1, 2, 0, 0)}
	for _, l := range locs {
		u := &wire.Update{Level: 4, Groups: []wire.Group{{Origin: l, Incarnation: 1, Ops: []wire.Op{add(1, "k")}}}}
		if r := s.Apply(u, 1, 1, t0); r.Applied != 1 {
			t.Fatalf("%v: %+v", l, r)
		}
	}
	s.SetDown(L(1, 2, 3, 4), true)
	got := keysOf(s.Lookup("k", L(1, 2, 3, 1), t0))
	want := []string{"1/2/3/9", "1/2/0/0", "1/2/5/1", "1/7/1/1", "2/1/1/1", "1/2/3/4"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	h := s.Lookup("k", L(1, 2, 3, 1), t0)
	if !h[len(h)-1].Down || h[0].Hops != 2 {
		t.Fatalf("hits %+v", h)
	}
	s.SetDown(L(1, 2, 3, 4), false)
	if got := keysOf(s.Lookup("k", L(1, 2, 3, 1), t0)); got[0] != "1/2/3/4" {
		t.Fatalf("after up: %v (equal hops: lowest id first)", got)
	}
}

func TestEntriesInIDOrder(t *testing.T) {
	s := newStore(t, nil)
	var ops []wire.Op
	for i := range 500 {
		ops = append(ops, add(uint64(i+1), fmt.Sprintf("key-%d", i)))
	}
	apply(t, s, upd(1, 1, 0, ops...), t0)
	apply(t, s, upd(1, 1, 0, rm(1000, "key-7")), t0)
	var all []EntryInfo
	var after uint32
	for {
		page := s.Entries(after, 37, t0)
		if len(page) == 0 {
			break
		}
		if len(page) > 37 {
			t.Fatalf("page of %d over the cap", len(page))
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != 499 {
		t.Fatalf("%d entries, want 499", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("ids not increasing at %d", i)
		}
	}
	for _, e := range all {
		if e.ID == 0 || e.ID != hashOrProbe(s, e) || e.Key == "key-7" {
			t.Fatalf("bad entry %+v", e)
		}
	}
}

// hashOrProbe returns the id the store gave e, checking it is the hash of
// its identity or a probe just above it.
func hashOrProbe(s *Store, e EntryInfo) uint32 {
	h := hashID(e.Key, e.Location)
	if e.ID-h < 16 {
		return e.ID
	}
	return h
}

// TestDigestOrderIndependent: the same operations applied in different
// orders (one op per update, shuffled) give the same records.
func TestDigestOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ops []wire.Op
	for i := range 400 {
		k := fmt.Sprintf("k%d", rng.IntN(120))
		if rng.IntN(4) == 0 {
			ops = append(ops, rm(uint64(i+1), k))
		} else {
			ops = append(ops, add(uint64(i+1), k))
		}
	}
	a, b := newStore(t, nil), newStore(t, nil)
	for _, op := range ops {
		apply(t, a, upd(1, 1, 0, op), t0)
	}
	perm := rng.Perm(len(ops))
	for _, i := range perm {
		apply(t, b, upd(1, 1, 0, ops[i]), t0)
		if rng.IntN(3) == 0 { // and duplicates
			apply(t, b, upd(1, 1, 0, ops[rng.IntN(len(ops))]), t0)
		}
	}
	if a.Digest(t0) != b.Digest(t0) || a.Count() != b.Count() {
		t.Fatalf("digests %v vs %v", a.Digest(t0), b.Digest(t0))
	}
	if a.Digest(t0).Count == 0 {
		t.Fatal("nothing live: the test proves nothing")
	}
}

// TestSnapshotMerge: a chunked transfer, interleaved with live updates,
// converges, and keeps the donor's ids.
func TestSnapshotMerge(t *testing.T) {
	donor := newStore(t, nil)
	for e := uint32(1); e <= 3; e++ {
		var ops []wire.Op
		for i := range 2000 {
			ops = append(ops, add(uint64(i+1), fmt.Sprintf("/content/%d/%d", e, i)))
		}
		ops = append(ops, rm(5000, "/content/1/1"))
		apply(t, donor, upd(e, 10, wire.SyncBegin|wire.SyncEnd, ops...), t0)
	}
	fresh := newStore(t, nil)
	var after uint32
	chunks := 0
	for {
		c := donor.Snapshot(after, MinChunkBytes)
		b, err := wire.AppendSnapshotChunk(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MinChunkBytes {
			t.Fatalf("chunk of %d bytes over the budget", len(b))
		}
		c2, err := wire.ParseSnapshotChunk(b)
		if err != nil {
			t.Fatal(err)
		}
		fresh.Merge(&c2, t0)
		chunks++
		if chunks == 3 { // live updates interleave with the transfer
			u := upd(2, 10, 0, add(9000, "/content/2/5"), rm(9001, "/content/3/7"))
			apply(t, donor, u, t0)
			apply(t, fresh, u, t0)
		}
		if c.Last {
			break
		}
		after = c.Next
	}
	if chunks < 10 {
		t.Fatalf("only %d chunks: the budget was not applied", chunks)
	}
	if donor.Digest(t0) != fresh.Digest(t0) {
		t.Fatalf("digests differ: %v vs %v", donor.Digest(t0), fresh.Digest(t0))
	}
	if donor.Tombstones() != fresh.Tombstones() {
		t.Fatalf("tombstones %d vs %d", donor.Tombstones(), fresh.Tombstones())
	}
	de, fe := donor.Entries(0, 10000, t0), fresh.Entries(0, 10000, t0)
	if len(de) != len(fe) {
		t.Fatalf("%d vs %d entries", len(de), len(fe))
	}
	for i := range de {
		if de[i].ID != fe[i].ID || de[i].Key != fe[i].Key {
			t.Fatalf("row %d: %d %q vs %d %q", i, de[i].ID, de[i].Key, fe[i].ID, fe[i].Key)
		}
	}
	// The late duplicate of a removed key does not come back after a merge.
	if r := apply(t, fresh, upd(1, 10, 0, add(2, "/content/1/1")), t0); r.Stale != 1 {
		t.Fatalf("resurrected after merge: %+v", r)
	}
}

func TestModel(t *testing.T) {
	if err := CheckKey("", 0); !errors.Is(err, ErrBadKey) {
		t.Error(err)
	}
	if err := CheckKey(strings.Repeat("x", DefaultMaxKey+1), 0); !errors.Is(err, ErrKeyTooLong) {
		t.Error(err)
	}
	if err := CheckKey("http://a/b?c=d é", 0); err != nil {
		t.Error(err)
	}
	if err := CheckKey("a\x00b", 0); !errors.Is(err, ErrBadKey) {
		t.Error(err)
	}
	for _, p := range []Policy{PolicyFull, PolicySummary, PolicyNone} {
		if q, err := ParsePolicy(p.String()); err != nil || q != p {
			t.Errorf("policy %v: %v %v", p, q, err)
		}
	}
	if _, err := ParsePolicy("most"); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
	l := L(1, 2, 3, 4)
	if u := LevelDataCenter.Unit(l); u != (L(1, 2, 0, 0)) || !Contains(u, l) || Contains(u, L(1, 3, 3, 4)) {
		t.Errorf("unit %v", u)
	}
	if s := Summarize(LevelCDN.Unit(l), l); s != (L(1, 0, 0, 0)) {
		t.Errorf("summary %v", s)
	}
	if Hops(l, l) != 0 || Hops(l, L(1, 2, 3, 5)) != 2 || Hops(l, L(1, 2, 4, 4)) != 4 ||
		Hops(l, L(1, 9, 3, 4)) != 6 || Hops(l, L(2, 2, 3, 4)) != 8 {
		t.Error("hops")
	}
	if (Version{1, 9}).Less(Version{1, 9}) || !(Version{1, 9}).Less(Version{2, 0}) || (Version{3, 4}).String() != "3.4" {
		t.Error("version order")
	}
	for _, c := range []StoreConfig{{MaxKey: wire.MaxKey + 1}, {Level: 5}} {
		if _, err := NewStore(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func L(c, d, f, e uint32) Location { return Location{CDN: c, DataCenter: d, Farm: f, Engine: e} }

func TestChangeFeed(t *testing.T) {
	var got []string
	s := newStore(t, func(c *StoreConfig) {
		c.OnChange = func(ch Change) {
			got = append(got, fmt.Sprintf("%v %s %v removed=%v", ch.Reason, ch.Key, ch.Version, ch.Removed))
		}
	})
	exp := uint64(t0.Add(time.Second).UnixMilli())
	apply(t, s, upd(1, 1, 0, add(1, "a"), wire.Op{Kind: wire.OpAdd, Seq: 2, Key: "e", Expiry: exp}, rm(3, "a")), t0)
	apply(t, s, upd(1, 1, 0, add(1, "a")), t0) // stale: no change
	apply(t, s, upd(1, 2, wire.SyncEnd, add(1, "b")), t0)
	s.Maintain(t0.Add(2 * time.Second))
	want := []string{
		"applied a 1.1 removed=false", "applied e 1.2 removed=false", "applied a 1.3 removed=true",
		"applied b 2.1 removed=false",
	}
	if !slices.Equal(got[:4], want) {
		t.Fatalf("feed %v", got)
	}
	// The sweep of incarnation 1 removes "a" (a tombstone) and "e".
	rest := slices.Clone(got[4:])
	slices.Sort(rest)
	if !slices.Equal(rest, []string{"swept a 1.3 removed=true", "swept e 1.2 removed=true"}) {
		t.Fatalf("sweep feed %v", rest)
	}
}

func TestMaxSources(t *testing.T) {
	s := newStore(t, func(c *StoreConfig) { c.Level = LevelCDN; c.Unit = L(1, 0, 0, 0); c.MaxSources = 2 })
	for i, l := range []Location{L(1, 1, 0, 0), L(1, 2, 0, 0), L(1, 3, 0, 0)} {
		u := &wire.Update{Level: 3, Groups: []wire.Group{{Origin: l, Incarnation: 1, Ops: []wire.Op{add(1, "k")}}}}
		r := s.Apply(u, 9, 1, t0)
		if (i < 2) != (r.Applied == 1) || (i == 2 && !errors.Is(r.Err(), ErrWrongOrigin)) {
			t.Fatalf("origin %d: %+v", i, r)
		}
	}
	if len(s.Sources()) != 2 {
		t.Fatalf("%d sources", len(s.Sources()))
	}
}
