package directory_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// scaleKey is a 33-byte key, as in the figures.
func scaleKey(i int) string { return fmt.Sprintf("http://cdn.example/c/%08d.obj", i) }

// fillOrigins puts n distinct keys into s, each held by `origins` SEs
// (of 16), through Apply as updates would: n*origins records.
func fillOrigins(b *testing.B, s *directory.Store, n, origins int) {
	const engines = 16
	seqs := make([]uint64, engines)
	ops := make([][]wire.Op, engines)
	flush := func(e int) {
		loc := farmUnit
		loc.Engine = uint32(101 + e)
		u := &wire.Update{Level: 1, Groups: []wire.Group{{Origin: loc, Incarnation: 1, Ops: ops[e]}}}
		if r := s.Apply(u, loc.Engine, 1, time.Now()); r.Applied != len(ops[e]) {
			b.Fatalf("fill: %+v", r)
		}
		ops[e] = ops[e][:0]
	}
	for i := range n {
		k := scaleKey(i)
		for o := range origins {
			e := (i + o) % engines
			seqs[e]++
			ops[e] = append(ops[e], wire.Op{Kind: wire.OpAdd, Seq: seqs[e], Key: k, Size: uint64(i)})
			if len(ops[e]) == 4096 {
				flush(e)
			}
		}
	}
	for e := range engines {
		flush(e)
	}
}

// BenchmarkStoreHeap: heap bytes per record of a farm store holding 10^5,
// 10^6 and 10^7 records of 33-byte keys, each key held by 1 or 3 SEs
// (HeapAlloc after two GCs, less the same before the fill), and the bytes
// beyond the key's own (per record: the key's bytes divided by its
// origins). The 10^7 cases need about 1 GB each and a few minutes; run
// them alone: -bench 'StoreHeap/n=10000000'.
func BenchmarkStoreHeap(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000, 10_000_000} {
		for _, origins := range []int{1, 3} {
			b.Run("n="+strconv.Itoa(n)+"/origins="+strconv.Itoa(origins), func(b *testing.B) {
				keys := n / origins
				for range b.N {
					before := heapInUse()
					s, err := directory.NewStore(directory.StoreConfig{Unit: farmUnit, Rate: -1, MaxEntries: n + 1})
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					fillOrigins(b, s, keys, origins)
					el := time.Since(start)
					after := heapInUse()
					recs := keys * origins
					if s.Count() != recs {
						b.Fatalf("%d entries, want %d", s.Count(), recs)
					}
					per := float64(after-before) / float64(recs)
					b.ReportMetric(per, "heap-B/entry")
					b.ReportMetric(per-33/float64(origins), "beyond-key-B/entry")
					b.ReportMetric(float64(el.Nanoseconds())/float64(recs), "ns/add")
					runtime.KeepAlive(s)
				}
			})
		}
	}
}
