package directory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// scaleKeys is the keys per CDN of the level-4 and lookup benchmarks:
// 10^7 unless DIRECTORY_BENCH_KEYS says otherwise (the 10^7 runs need a
// few GB and minutes; run them one at a time).
func scaleKeys(b *testing.B) int {
	if v := os.Getenv("DIRECTORY_BENCH_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("DIRECTORY_BENCH_KEYS=%q", v)
		}
		return n
	}
	return 10_000_000
}

func cdnKey(c, i int) string { return fmt.Sprintf("http://cdn%d.example/c/%08d.obj", c, i) }

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// summaryUpdates feeds store what a CDN's level 3 sends under summary
// (one record per key, origin the CDN) in the forwarder's batches, and
// returns the bytes those UPDATEs take on the wire.
func summaryUpdates(b *testing.B, store *Store, c, n int) int {
	wireBytes := 0
	g := wire.Group{Origin: Location{CDN: uint32(c)}, Incarnation: 1}
	size := wire.UpdateOverhead + wire.GroupOverhead
	flush := func() {
		u := &wire.Update{Level: 4, Groups: []wire.Group{g}}
		enc, err := wire.AppendUpdate(nil, u)
		if err != nil {
			b.Fatal(err)
		}
		wireBytes += len(enc)
		if r := store.Apply(u, 0, 0, time.Now()); r.Applied != len(g.Ops) {
			b.Fatalf("summary: %+v", r)
		}
		g.Ops, size = g.Ops[:0], wire.UpdateOverhead+wire.GroupOverhead
	}
	for i := range n {
		op := wire.Op{Kind: wire.OpAdd, Seq: uint64(i + 1), Key: cdnKey(c, i)}
		if size+op.Len() > DefaultMaxBatchBytes || len(g.Ops) == wire.MaxOps {
			flush()
		}
		g.Ops = append(g.Ops, op)
		size += op.Len()
	}
	flush()
	return wireBytes
}

// digestFor builds what a CDN's level 3 keeps under digest for n keys (a
// counting filter at 1 %), sends it whole as its forwarder does (pieces
// between BEGIN and END, encoded and decoded), applies it to store, and
// returns the wire bytes and the child's filter bytes.
func digestFor(b *testing.B, store *Store, c, n int) (wireBytes, childBytes int) {
	m, k := bloomSize(n, DefaultFPRate)
	cb := newCountingBloom(bloomParams{k: k, seed: uint64(c), m: m})
	var buf []uint32
	for i := range n {
		buf = cb.add(cdnKey(c, i), buf, nil)
	}
	total := int((m + 7) / 8)
	for off := 0; off < total; off += digestPieceBytes {
		piece := make([]byte, min(digestPieceBytes, total-off))
		cb.bitsAt(off, piece)
		var flags wire.DigestFlags
		if off == 0 {
			flags |= wire.DigestBegin
		}
		if off+len(piece) == total {
			flags |= wire.DigestEnd
		}
		enc, err := wire.AppendDigest(nil, &wire.Digest{Level: 4, Flags: flags, Unit: Location{CDN: uint32(c)}, Generation: 1,
			Algorithm: wire.DigestFNVKM, Hashes: k, Seed: uint64(c), Bits: m, Keys: uint64(n), Offset: uint32(off), Piece: piece})
		if err != nil {
			b.Fatal(err)
		}
		wireBytes += len(enc)
		d, err := wire.ParseDigest(enc)
		if err != nil {
			b.Fatal(err)
		}
		if err := store.ApplyDigest(&d); err != nil {
			b.Fatal(err)
		}
	}
	return wireBytes, len(cb.c)
}

// BenchmarkLevel4: level 4 of 3 CDNs × N keys (N = 10^7, ~34-byte keys),
// fed synthetic input, under summary (a record per key and CDN) and under
// digest (a Bloom filter per CDN at 1 %): heap bytes per key at level 4
// (HeapAlloc after two GCs, less the same before), bytes on the wire per
// key for a whole (re-)announcement, and under digest the child's
// counting filter per key and the false-positive rate measured on 10^6
// absent keys.
func BenchmarkLevel4(b *testing.B) {
	n := scaleKeys(b)
	const cdns = 3
	for _, pol := range []string{"summary", "digest"} {
		b.Run(pol, func(b *testing.B) {
			for range b.N {
				before := heapNow()
				store, err := NewStore(StoreConfig{Level: LevelPeering, MaxEntries: cdns*n + 1})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				wireBytes, child := 0, 0
				for c := 1; c <= cdns; c++ {
					if pol == "summary" {
						wireBytes += summaryUpdates(b, store, c, n)
					} else {
						w, cb := digestFor(b, store, c, n)
						wireBytes, child = wireBytes+w, child+cb
					}
				}
				el := time.Since(start)
				after := heapNow()
				keys := float64(cdns * n)
				b.ReportMetric(float64(after-before)/keys, "L4-heap-B/key")
				b.ReportMetric(float64(after-before)/1e6, "L4-heap-MB")
				b.ReportMetric(float64(wireBytes)/keys, "wire-B/key")
				b.ReportMetric(float64(wireBytes)/1e6, "wire-MB")
				b.ReportMetric(el.Seconds(), "s-to-build")
				if pol == "digest" {
					b.ReportMetric(float64(child)/keys, "child-counters-B/key")
					fp := 0
					for i := range 1_000_000 {
						if len(store.DigestMatches(cdnKey(9, i), Location{CDN: 9})) > 0 {
							fp++
						}
					}
					b.ReportMetric(float64(fp)/1e6/cdns, "measured-FP-rate-per-digest")
				} else if store.Count() != cdns*n {
					b.Fatalf("%d records", store.Count())
				}
				runtime.KeepAlive(store)
			}
		})
	}
}

type resolverPeer struct{ r *Resolver }

func (p resolverPeer) Resolve(ctx context.Context, q Query) (Resolution, error) {
	return p.r.Resolve(ctx, q)
}

func pctl(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkLookupScale: lookup latency p50/p99 with N = 10^7 entries at a
// CDN's level 3 (one SE per key, 16 SEs): "local" is the level's own
// Resolver; "digest-down" asks level 4, whose digest of the CDN matches,
// and level 4 resolves it one level down (in process); "summary-down"
// is the same with a summary record at level 4 instead (a level-4 store
// holding only the summaries of the keys asked). 100,000 lookups of
// random held keys each, interleaved.
func BenchmarkLookupScale(b *testing.B) {
	n := scaleKeys(b)
	cdn := Location{CDN: 1}
	l3, err := NewStore(StoreConfig{Level: LevelCDN, Unit: cdn, Rate: -1, MaxEntries: n + 1})
	if err != nil {
		b.Fatal(err)
	}
	const engines = 16
	for e := range engines {
		origin := Location{CDN: 1, DataCenter: 1, Farm: 1, Engine: uint32(101 + e)}
		g := wire.Group{Origin: origin, Incarnation: 1}
		for i := e; i < n; i += engines {
			g.Ops = append(g.Ops, wire.Op{Kind: wire.OpAdd, Seq: uint64(i + 1), Key: cdnKey(1, i), Size: uint64(i)})
			if len(g.Ops) == 4096 || i+engines >= n {
				if r := l3.Apply(&wire.Update{Level: 3, Groups: []wire.Group{g}}, 0, 0, time.Now()); r.Applied != len(g.Ops) {
					b.Fatalf("fill: %+v", r)
				}
				g.Ops = g.Ops[:0]
			}
		}
	}
	l4d, _ := NewStore(StoreConfig{Level: LevelPeering})
	digestFor(b, l4d, 1, n)
	const asks = 100_000
	keys := make([]string, asks)
	for i := range keys {
		keys[i] = cdnKey(1, rand.IntN(n))
	}
	l4s, _ := NewStore(StoreConfig{Level: LevelPeering})
	g := wire.Group{Origin: cdn, Incarnation: 1}
	for i, k := range keys {
		g.Ops = append(g.Ops, wire.Op{Kind: wire.OpAdd, Seq: uint64(i + 1), Key: k})
		if len(g.Ops) == 4096 || i == len(keys)-1 {
			l4s.Apply(&wire.Update{Level: 4, Groups: []wire.Group{g}}, 0, 0, time.Now())
			g.Ops = g.Ops[:0]
		}
	}
	r3, _ := NewResolver(ResolverConfig{Node: 1900, Store: l3})
	child := func(u Location) (Peer, bool) { return resolverPeer{r3}, u == cdn }
	r4d, _ := NewResolver(ResolverConfig{Node: 9000, Store: l4d, Child: child})
	r4s, _ := NewResolver(ResolverConfig{Node: 9000, Store: l4s, Child: child})
	asker := Location{CDN: 2, DataCenter: 1, Farm: 1, Engine: 7}
	ctx := context.Background()
	cases := []struct {
		name string
		r    *Resolver
		path int
	}{{"local", r3, 1}, {"digest-down", r4d, 2}, {"summary-down", r4s, 2}}
	lat := make([][]time.Duration, len(cases))
	b.ResetTimer()
	for range b.N {
		for i, k := range keys {
			for ci, c := range cases {
				start := time.Now()
				res, err := c.r.Lookup(ctx, k, asker)
				d := time.Since(start)
				if err != nil || len(res.Hits) != 1 || len(res.Path) != c.path {
					b.Fatalf("%s lookup %d %s: %+v %v", c.name, i, k, res, err)
				}
				lat[ci] = append(lat[ci], d)
			}
		}
	}
	b.StopTimer()
	p50 := make([]time.Duration, len(cases))
	for ci, c := range cases {
		p50[ci] = pctl(lat[ci], 0.5)
		b.ReportMetric(float64(p50[ci].Nanoseconds())/1e3, c.name+"-p50-µs")
		b.ReportMetric(float64(pctl(lat[ci], 0.99).Nanoseconds())/1e3, c.name+"-p99-µs")
	}
	b.ReportMetric(float64(p50[1])/float64(p50[2]), "digest/summary-p50")
	b.ReportMetric(float64(p50[1])/float64(p50[0]), "digest-down/local-p50")
	if st := r4d.Stats(); st.FalseHits != 0 || st.DigestFound == 0 {
		b.Fatalf("digest resolver %+v", st)
	}
}
