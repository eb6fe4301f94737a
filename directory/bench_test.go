package directory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkPublishVisible: one Add at an SE until the entry is visible at
// both SM and BSM (memnet, no loss), against a baseline of a bare rmtp
// Send of the same update to both managers in the same process.
func BenchmarkPublishVisible(b *testing.B) {
	f := memFarm(b, memnet.Faults{})
	sm, bsm := f.addManager(1), f.addManager(2)
	f.addEngines(1)
	f.waitPeers()
	p := f.pubs[0]
	visible := func(k string) bool { return len(sm.Lookup(k, farmUnit)) == 1 && len(bsm.Lookup(k, farmUnit)) == 1 }

	// Baseline: the transport alone (send, every manager acknowledged).
	raw := f.endpoint(900, rmtp.Engine)
	waitfor.True(b, 10*time.Second, "raw engine sees the managers", func() bool { return livePeers(raw) >= 2 })
	// It reads what comes down (the managers' verdicts), as every SE does:
	// a member that stops reading stops acknowledging, and the managers'
	// verdicts then wait for it (bounded, see TestVerdictsWedgedMember).
	dctx, dcancel := context.WithCancel(context.Background())
	defer dcancel()
	go func() {
		for {
			m, err := raw.Receive(dctx)
			if err != nil {
				return
			}
			m.Release()
		}
	}()
	payload, _ := wire.AppendUpdate(nil, &wire.Update{Level: 1, Groups: []wire.Group{{Origin: farmUnit,
		Ops: []wire.Op{{Kind: wire.OpAdd, Seq: 1, Key: key(0, 0)}}}}})
	var base []time.Duration
	for range 200 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := raw.Send(ctx, 77, rmtp.Up, payload); err != nil {
			b.Fatal(err)
		}
		cancel()
		base = append(base, time.Since(start))
	}

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		k := key(0, i)
		start := time.Now()
		if err := p.Add(directory.Entry{Key: k}); err != nil {
			b.Fatal(err)
		}
		deadline := start.Add(10 * time.Second)
		for !visible(k) {
			if time.Now().After(deadline) {
				b.Fatalf("entry %d never visible", i)
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	bp50 := percentile(base, 0.5)
	b.ReportMetric(float64(bp50.Microseconds()), "rmtp-send-p50-µs")
	b.ReportMetric(float64(p50)/float64(bp50), "p50/rmtp-send")
}

// fill puts n entries of 16 SEs into a store, as updates would.
func fill(b testing.TB, s *directory.Store, n int) {
	const engines = 16
	for e := range engines {
		loc := farmUnit
		loc.Engine = uint32(101 + e)
		var ops []wire.Op
		seq := uint64(0)
		flush := func() {
			u := &wire.Update{Level: 1, Groups: []wire.Group{{Origin: loc, Incarnation: 1, Ops: ops}}}
			if r := s.Apply(u, loc.Engine, 1, time.Now()); r.Applied != len(ops) {
				b.Fatalf("fill: %+v", r)
			}
			ops = ops[:0]
		}
		for i := e; i < n; i += engines {
			seq++
			ops = append(ops, wire.Op{Kind: wire.OpAdd, Seq: seq, Key: fmt.Sprintf("http://cdn.example/c/%08d.obj", i), Size: uint64(i)})
			if len(ops) == wire.MaxOps {
				flush()
			}
		}
		flush()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkCatchUp: a fresh manager pulls 1,000,000 entries (no rate cap)
// or 10,000,000 (at the default DefaultTransferRate, 32 MiB/s) by state
// transfer over memnet (1472-byte datagrams), against a baseline of the
// same bytes as bare rmtp requests and replies in the same process. The
// 10^7 case needs about 4 GB and minutes: run it alone.
func BenchmarkCatchUp(b *testing.B) {
	b.Run("n=1000000", func(b *testing.B) { benchCatchUp(b, 1_000_000, -1) })
	b.Run("n=10000000", func(b *testing.B) { benchCatchUp(b, 10_000_000, 0) })
}

func benchCatchUp(b *testing.B, n, rate int) {
	f := memFarm(b, memnet.Faults{})
	f.mutStore = func(c *directory.StoreConfig) { c.Rate, c.MaxEntries = -1, n+1 }
	f.mutMgr = func(c *directory.ManagerConfig) { c.TransferRate = rate }
	donor := f.addManager(1)
	fill(b, donor.Store(), n)
	for i := range b.N {
		fresh := f.addManager(rmtp.NodeID(10 + i))
		f.waitPeers()
		before := heapInUse()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		b.ResetTimer()
		rep, err := fresh.CatchUpFrom(ctx, 1)
		b.StopTimer()
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if fresh.Store().Count() != n || fresh.Store().Digest(time.Now()) != donor.Store().Digest(time.Now()) {
			b.Fatalf("caught up %d entries, digest differs", fresh.Store().Count())
		}
		after := heapInUse()
		b.ReportMetric(rep.Elapsed.Seconds(), "s/catch-up")
		b.ReportMetric(float64(rep.Bytes)/1e6, "MB-on-wire")
		b.ReportMetric(float64(rep.Bytes)/float64(n), "bytes/entry")
		b.ReportMetric(float64(after-before)/float64(n), "heap-bytes/entry")
		b.ReportMetric(float64(rep.Bytes)/rep.Elapsed.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(rep.Chunks), "chunks")

		// Baseline: the same number of bytes moved as bare request/reply
		// pairs of the same size.
		chunk := make([]byte, rep.Bytes/rep.Chunks)
		mgr := f.endpoint(rmtp.NodeID(500+2*i), rmtp.Manager)
		donorEP := f.endpoint(rmtp.NodeID(501+2*i), rmtp.Manager)
		waitfor.True(b, 10*time.Second, "baseline endpoints see each other", func() bool { return livePeers(mgr) >= len(f.mgrEPs)+1 })
		bctx, bcancel := context.WithCancel(context.Background())
		go func() {
			for {
				m, err := donorEP.Receive(bctx)
				if err != nil {
					return
				}
				if m.Kind == rmtp.KindRequest && m.Channel == 99 {
					rctx, c := context.WithTimeout(bctx, 10*time.Second)
					donorEP.Reply(rctx, m, chunk)
					c()
				}
			}
		}()
		start := time.Now()
		for range rep.Chunks {
			rctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := mgr.Request(rctx, 99, []byte("x"), []rmtp.NodeID{donorEP.Node()}); err != nil {
				b.Fatal(err)
			}
			c()
		}
		base := time.Since(start)
		bcancel()
		b.ReportMetric(base.Seconds(), "s/rmtp-baseline")
		b.ReportMetric(rep.Elapsed.Seconds()/base.Seconds(), "catch-up/rmtp")
	}
}

// BenchmarkLookup: lookups per second per core in a store of 1,000,000
// entries, against a bare map lookup of the same keys in the same process.
func BenchmarkLookup(b *testing.B) {
	const n = 1_000_000
	s, err := directory.NewStore(directory.StoreConfig{Unit: farmUnit, Rate: -1})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, n)
	keys := make([]string, 4096)
	base := make(map[string]int, n)
	for i := range n {
		base[fmt.Sprintf("http://cdn.example/c/%08d.obj", i)] = i
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("http://cdn.example/c/%08d.obj", rand.IntN(n))
	}
	from := farmUnit
	from.Engine = 101
	now := time.Now()
	start := time.Now()
	sink := 0
	for i := range 1_000_000 {
		sink += base[keys[i%len(keys)]]
	}
	basePer := time.Since(start) / 1_000_000
	b.ResetTimer()
	start = time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			if len(s.Lookup(keys[i%len(keys)], from, now)) != 1 {
				b.Error("miss")
				return
			}
			i++
		}
	})
	el := time.Since(start)
	b.StopTimer()
	procs := runtime.GOMAXPROCS(0)
	perCore := float64(b.N) / el.Seconds() / float64(procs)
	b.ReportMetric(perCore, "lookups/s/core")
	b.ReportMetric(float64(el)/float64(b.N)*float64(procs)/float64(basePer), "lookup/map-lookup")
	_ = sink
}
