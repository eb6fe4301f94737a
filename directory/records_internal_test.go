package directory

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// TestCompactStoreModel: random adds, removals, expiries and tombstone
// ends over 3 origins and a small key space (so keys are shared, freed,
// and their slots, key-table entries and arena bytes reused), against a
// plain map of what must be live. After every round: Count, every key's
// Lookup (location, size, expiry), the id order of Entries, the key
// table's and the id buckets' sizes agree with the model; sizes over 32
// bits and sequences past 2^48 take the exact side table; a compaction of
// the arena runs and changes nothing.
func TestCompactStoreModel(t *testing.T) {
	s, err := NewStore(StoreConfig{Unit: Location{CDN: 1, DataCenter: 1, Farm: 1}, Rate: -1, TombstoneTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type rk struct {
		key string
		e   uint32
	}
	type val struct{ size, exp uint64 }
	live := map[rk]val{}
	seq := map[uint32]uint64{103: 1<<48 - 5000} // crosses into the exact side table
	now := time.UnixMilli(1_800_000_000_000)
	keyOf := func(i int) string { return fmt.Sprintf("k/%d/%s", i, string(rune('a'+i%26))) }
	for round := range 60 {
		for range 400 {
			e := uint32(101 + rng.IntN(3))
			k := keyOf(rng.IntN(300))
			seq[e]++
			op := wire.Op{Kind: wire.OpAdd, Seq: seq[e], Key: k, Size: rng.Uint64N(1 << 20)}
			if rng.IntN(4) == 0 {
				op.Size = rng.Uint64N(1 << 40) // over 32 bits: the exact side table
			}
			switch r := rng.IntN(10); {
			case r < 4:
				op = wire.Op{Kind: wire.OpRemove, Seq: seq[e], Key: k}
				delete(live, rk{k, e})
			case r < 5:
				op.Expiry = uint64(now.UnixMilli()) + 500 // gone by the next round
				live[rk{k, e}] = val{op.Size, op.Expiry}
			default:
				live[rk{k, e}] = val{op.Size, 0}
			}
			origin := Location{CDN: 1, DataCenter: 1, Farm: 1, Engine: e}
			u := &wire.Update{Level: 1, Groups: []wire.Group{{Origin: origin, Incarnation: 1, Ops: []wire.Op{op}}}}
			if res := s.Apply(u, e, 1, now); res.Applied != 1 {
				t.Fatalf("round %d: %+v", round, res)
			}
		}
		now = now.Add(700 * time.Millisecond)
		s.Maintain(now) // expiries due; tombstones of two rounds ago gone
		for k, v := range live {
			if v.exp != 0 && v.exp <= uint64(now.UnixMilli()) {
				delete(live, k)
			}
		}
		if round%20 == 19 {
			s.mu.Lock()
			s.arena.garbage = max(s.arena.garbage, 4*arenaChunk) // force the compaction
			s.arena.used = s.arena.garbage
			s.compactArena()
			s.mu.Unlock()
		}
		if s.Count() != len(live) {
			t.Fatalf("round %d: Count %d, model %d", round, s.Count(), len(live))
		}
		for i := range 300 {
			k := keyOf(i)
			hits := s.Lookup(k, Location{}, now)
			want := 0
			for e := uint32(101); e <= 103; e++ {
				if v, ok := live[rk{k, e}]; ok {
					want++
					found := false
					for _, h := range hits {
						found = found || (h.Location.Engine == e && h.Size == v.size && expiryMillis(h.Expiry) == v.exp)
					}
					if !found {
						t.Fatalf("round %d: %s of %d (%+v) not in %+v", round, k, e, v, hits)
					}
				}
			}
			if len(hits) != want {
				t.Fatalf("round %d: %s: %d hits, model %d", round, k, len(hits), want)
			}
		}
		es := s.Entries(0, 1<<20, now)
		if len(es) != len(live) {
			t.Fatalf("round %d: %d entries listed, model %d", round, len(es), len(live))
		}
		for i := 1; i < len(es); i++ {
			if es[i].ID <= es[i-1].ID {
				t.Fatalf("round %d: ids out of order: %d then %d", round, es[i-1].ID, es[i].ID)
			}
		}
		s.mu.RLock()
		ids := 0
		for _, b := range s.ids.buckets {
			ids += len(b)
		}
		keys := map[string]bool{}
		s.eachRecord(func(ri uint32) { keys[s.arena.view(s.recs.at(ri).key)] = true })
		if ids != s.live+s.tombs || s.ktab.n != len(keys) {
			t.Fatalf("round %d: %d ids for %d records, key table %d for %d keys", round, ids, s.live+s.tombs, s.ktab.n, len(keys))
		}
		s.mu.RUnlock()
	}
}
