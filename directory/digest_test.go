package directory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// findFrom resolves key at the active level-1 manager of the asker's farm
// and reports whether the SE at want is among the hits.
func (tr *tree) findFrom(asker *tse, key string, want directory.Location) (bool, directory.Resolution) {
	l1 := tr.active(directory.LevelFarm.Unit(asker.loc))
	res, err := l1.res.Lookup(context.Background(), key, asker.loc)
	if err != nil {
		return false, res
	}
	for _, h := range res.Hits {
		if h.Location == want {
			return true, res
		}
	}
	return false, res
}

// crossCDN checks every held key of every SE from one SE of each other
// CDN: held ones are found (no false negative), gone ones are not.
func (tr *tree) crossCDN(gone map[string]bool) string {
	for _, s := range tr.ses {
		for _, e := range s.pub.Entries() {
			for c := 1; c <= tr.cdns; c++ {
				if uint32(c) == s.loc.CDN {
					continue
				}
				asker := tr.sesIn(directory.Location{CDN: uint32(c)})[0]
				if ok, res := tr.findFrom(asker, e.Key, s.loc); !ok {
					return fmt.Sprintf("%s of %v not found from CDN %d: %+v", e.Key, s.loc, c, res)
				}
			}
		}
	}
	for k := range gone {
		for c := 1; c <= tr.cdns; c++ {
			asker := tr.sesIn(directory.Location{CDN: uint32(c)})[0]
			l1 := tr.active(directory.LevelFarm.Unit(asker.loc))
			if res, _ := l1.res.Lookup(context.Background(), k, asker.loc); len(res.Hits) != 0 {
				return fmt.Sprintf("removed %s still resolves from CDN %d: %+v", k, c, res.Hits)
			}
		}
	}
	return ""
}

func (tr *tree) eventually(what string, check func() string) {
	tr.t.Helper()
	var bad string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if bad = check(); bad == "" {
			return
		}
		if time.Now().After(deadline) {
			tr.t.Fatalf("%s: %s", what, bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHierarchyDigest: 3 CDNs × 2 data centers × 1 farm × 2 SEs over lossy
// in-memory LANs, levels 1→2 and 2→3 full, 3→4 digest (issue 22), a
// backup at level 3 of CDN 1. Every key is found from every other CDN two
// seconds after it was published, and again after removals, after a CDN
// cut off from level 4 and healed, and after a takeover at level 3;
// removed keys stop resolving; level 4 holds no record, only the three
// digests; a false positive of a digest resolves to a miss, with the
// child that said no in the path, and is counted.
func TestHierarchyDigest(t *testing.T) {
	checkNoLeak(t)
	policy3 := func(uint32) directory.Policy { return directory.PolicyDigest }
	tr := buildTree(t, 3, 2, 2, memnet.Faults{Loss: 0.02, Dup: 0.01, Reorder: 0.01}, policy3, nil,
		func(l directory.Level, c *directory.ForwarderConfig) {
			if l == directory.LevelCDN {
				// Small and loose, so that false positives are easy to find
				// and the filters rebuild as they grow.
				c.FPRate, c.MinDigestKeys = 0.2, 16
			}
		})
	bsm3 := tr.addManager(directory.LevelCDN, directory.Location{CDN: 1})
	for _, s := range tr.ses {
		for i := range 20 {
			if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, i), Size: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr.flushSEs()
	published := time.Now()
	tr.converge("levels 1-3 hold their units, level 4 no record")
	time.Sleep(time.Until(published.Add(2 * time.Second)))
	if bad := tr.crossCDN(nil); bad != "" {
		t.Fatalf("2 s after publishing: %s", bad)
	}
	l4 := tr.active(directory.Location{})
	if ds := l4.m.Store().Digests(); len(ds) != 3 || ds[0].Keys != 80 || ds[0].Bits == 0 || ds[0].Fill <= 0 {
		t.Fatalf("level 4 digests %+v", ds)
	}
	if st := tr.active(directory.Location{CDN: 1}).fw.Stats(); st.DigestKeys != 80 || st.DigestRebuilds == 0 || st.Bytes == 0 {
		t.Fatalf("level 3 forwarder %+v (80 keys, rebuilt from 16 as it grew)", st)
	}

	gone := map[string]bool{}
	t.Run("removals", func(t *testing.T) {
		for _, s := range tr.ses {
			for i := range 5 {
				if err := s.pub.Remove(hkey(s.loc, i)); err != nil {
					t.Fatal(err)
				}
				gone[hkey(s.loc, i)] = true
			}
		}
		tr.flushSEs()
		tr.eventually("after removals", func() string { return tr.crossCDN(gone) })
	})

	t.Run("false positive", func(t *testing.T) {
		// A key no SE holds that a digest matches.
		var fp string
		for i := 0; i < 100000 && fp == ""; i++ {
			k := fmt.Sprintf("http://nowhere.example/%d", i)
			if len(l4.m.Store().DigestMatches(k, directory.Location{})) > 0 {
				fp = k
			}
		}
		if fp == "" {
			t.Fatal("no false positive among 100,000 keys at a 20 % rate")
		}
		unit := l4.m.Store().DigestMatches(fp, directory.Location{})[0].Location
		before := l4.local.Stats().FalseHits
		asker := tr.sesIn(directory.Location{CDN: unit.CDN%3 + 1})[0] // in another CDN
		l1 := tr.active(directory.LevelFarm.Unit(asker.loc))
		res, err := l1.res.Lookup(context.Background(), fp, asker.loc)
		if err != nil || len(res.Hits) != 0 || len(res.Unresolved) != 0 {
			t.Fatalf("false positive %s: %+v, %v", fp, res, err)
		}
		said := false
		for _, st := range res.Path {
			if st.Via == "child" && st.Level == directory.LevelCDN && st.Unit == unit {
				said = st.Hits == 0 && st.Error == ""
			}
		}
		if !said {
			t.Fatalf("path of the false positive %s (unit %v) does not show the child saying no: %+v", fp, unit, res.Path)
		}
		if got := l4.local.Stats().FalseHits; got <= before {
			t.Fatalf("false hits %d, before %d", got, before)
		}
	})

	t.Run("partition", func(t *testing.T) {
		l3 := tr.active(directory.Location{CDN: 2})
		before := l3.fw.Stats()
		l3.cut.cut.Store(true)
		for _, s := range tr.sesIn(directory.Location{CDN: 2}) {
			for i := 5; i < 8; i++ {
				if err := s.pub.Remove(hkey(s.loc, i)); err != nil {
					t.Fatal(err)
				}
				gone[hkey(s.loc, i)] = true
				if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, 200+i)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		tr.flushSEs()
		// Longer than the forwarder's SendTimeout (500 ms): an attempt
		// reaches no manager of level 4, the link counts as cut.
		waitfor.True(t, 30*time.Second, "a failed attempt across the cut", func() bool { return l3.fw.Stats().Retries > before.Retries })
		l3.cut.cut.Store(false)
		waitfor.True(t, 30*time.Second, "a full resend after the partition", func() bool { return l3.fw.Stats().Resyncs > before.Resyncs })
		tr.eventually("after the cut healed", func() string { return tr.crossCDN(gone) })
	})

	t.Run("takeover at level 3", func(t *testing.T) {
		sm := tr.active(directory.Location{CDN: 1})
		ses := tr.sesIn(directory.Location{CDN: 1})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 100 {
				s := ses[i%len(ses)]
				s.pub.Add(directory.Entry{Key: hkey(s.loc, 1000+i)})
				time.Sleep(2 * time.Millisecond)
			}
		}()
		time.Sleep(50 * time.Millisecond)
		sm.dead = true
		sm.fw.Close()
		sm.m.Close()
		sm.up.Close()
		sm.ep.Close()
		if err := bsm3.ep.Activate(2); err != nil {
			t.Fatal(err)
		}
		bsm3.fw.SetActive(true)
		<-done
		tr.flushSEs()
		tr.eventually("after the takeover at level 3", func() string { return tr.crossCDN(gone) })
		if st := bsm3.fw.Stats(); st.Generation>>32 != 2 || st.Resyncs == 0 {
			t.Fatalf("backup forwarder %+v", st)
		}
	})
}

// TestHierarchyMixedPolicies: one tree, three policies at level 3 → 4
// (CDN 1 digest, CDN 2 summary, CDN 3 full): level 4 holds CDN 3's
// records, CDN 2's summaries and CDN 1's digest, and every key is found
// from every other CDN, through whichever each CDN forwards.
func TestHierarchyMixedPolicies(t *testing.T) {
	checkNoLeak(t)
	policy3 := func(c uint32) directory.Policy {
		return [...]directory.Policy{1: directory.PolicyDigest, 2: directory.PolicySummary, 3: directory.PolicyFull}[c]
	}
	tr := buildTree(t, 3, 2, 2, memnet.Faults{Loss: 0.02, Dup: 0.01, Reorder: 0.01}, policy3, nil, nil)
	for _, s := range tr.ses {
		for i := range 10 {
			if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, i), Size: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr.flushSEs()
	tr.converge("level 4 holds CDN 3's records and CDN 2's summaries")
	tr.eventually("every key from every other CDN", func() string { return tr.crossCDN(nil) })
	l4 := tr.active(directory.Location{})
	if ds := l4.m.Store().Digests(); len(ds) != 1 || ds[0].Unit != (directory.Location{CDN: 1}) || ds[0].Keys != 40 {
		t.Fatalf("level 4 digests %+v, want CDN 1's of 40 keys", ds)
	}
}
