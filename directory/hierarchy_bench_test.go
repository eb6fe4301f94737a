package directory_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// seenAt records when each key first appeared live at each level.
type seenAt struct {
	mu   sync.Mutex
	when [5]map[string]time.Time
}

func (s *seenAt) hook(l directory.Level, c *directory.StoreConfig) {
	c.OnChange = func(ch directory.Change) {
		if ch.Removed {
			return
		}
		now := time.Now()
		s.mu.Lock()
		if _, ok := s.when[l][ch.Key]; !ok {
			s.when[l][ch.Key] = now
		}
		s.mu.Unlock()
	}
}

// BenchmarkHierarchyPropagation: SEs publish 1,000 new entries per second
// in the 3 × 2 × 1 × 2 tree (memnet, no loss); each entry's delay from
// Add at its SE until it is live at level 4, against the delay until it
// is live at its farm manager (level 1) in the same run; and the bytes
// each level sends upward per update: LN-up is the directory payload the
// level-N forwarders sent to level N+1 (their counters); lanN-wire is
// every datagram on the LANs of level N (the farms: the SEs' UPDATEs and
// the level-1 managers' traffic; the data centers' SM farms: the level-1
// forwarders' UPDATEs and the level-2 managers' traffic; ...), rmtp
// headers, ACKs and heartbeats included, less the same LANs' idle
// traffic over the same time.
func BenchmarkHierarchyPropagation(b *testing.B) {
	for _, pol := range []directory.Policy{directory.PolicyFull, directory.PolicySummary, directory.PolicyDigest} {
		b.Run("level3-"+pol.String(), func(b *testing.B) { benchPropagation(b, pol) })
	}
}

func benchPropagation(b *testing.B, pol directory.Policy) {
	seen := &seenAt{}
	for l := range seen.when {
		seen.when[l] = map[string]time.Time{}
	}
	tr := buildTree(b, 3, 2, 2, memnet.Faults{}, func(uint32) directory.Policy { return pol }, seen.hook, nil)
	var watch *digestWatch
	if pol == directory.PolicyDigest {
		// Level 4 holds no record: a key is visible there when its CDN's
		// digest matches it.
		watch = newDigestWatch(tr.active(directory.Location{}).m.Store(), seen)
		defer watch.stop()
	}
	// Wire bytes per LAN level: taps on every network.
	var wireBytes [5]atomic.Uint64
	for u, n := range tr.nets {
		lvl := lanLevel(u)
		n.SetTap(func(_ netip.AddrPort, _ rmtp.Dest, p []byte) { wireBytes[lvl].Add(uint64(len(p))) })
	}
	tr.flushSEs()
	time.Sleep(300 * time.Millisecond) // members known everywhere
	idle := func(d time.Duration) (out [5]uint64) {
		var a [5]uint64
		for i := range a {
			a[i] = wireBytes[i].Load()
		}
		time.Sleep(d)
		for i := range a {
			out[i] = wireBytes[i].Load() - a[i]
		}
		return out
	}
	var fwBefore [5]uint64
	for _, nds := range tr.nodes {
		for _, nd := range nds {
			if nd.fw != nil {
				fwBefore[nd.level] += nd.fw.Stats().Bytes
			}
		}
	}
	var wireBefore [5]uint64
	for i := range wireBefore {
		wireBefore[i] = wireBytes[i].Load()
	}
	published := make([]time.Time, b.N)
	keys := make([]string, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		s := tr.ses[i%len(tr.ses)]
		keys[i] = fmt.Sprintf("http://bench.example/%d/%d", s.loc.Engine, i)
		if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		published[i] = time.Now()
		if watch != nil {
			watch.add(keys[i])
		}
		if err := s.pub.Add(directory.Entry{Key: keys[i], Size: 1 << 20}); err != nil {
			b.Fatal(err)
		}
	}
	waitfor.True(b, 60*time.Second, "every entry at level 4", func() bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		return len(seen.when[4]) >= b.N
	})
	elapsed := time.Since(start)
	b.StopTimer()
	var wire [5]uint64
	for i := range wire {
		wire[i] = wireBytes[i].Load() - wireBefore[i]
	}
	base := idle(elapsed)
	var fw [5]uint64
	for _, nds := range tr.nodes {
		for _, nd := range nds {
			if nd.fw != nil {
				fw[nd.level] += nd.fw.Stats().Bytes - fwBefore[nd.level]
			}
		}
	}
	lat := func(l directory.Level) (p50, p99 time.Duration) {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		d := make([]time.Duration, 0, b.N)
		for i, k := range keys {
			if t, ok := seen.when[l][k]; ok {
				d = append(d, t.Sub(published[i]))
			}
		}
		return percentile(d, 0.5), percentile(d, 0.99)
	}
	p50, p99 := lat(4)
	f50, _ := lat(1)
	n := float64(b.N)
	b.ReportMetric(float64(p50.Microseconds()), "L4-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "L4-p99-µs")
	b.ReportMetric(float64(f50.Microseconds()), "L1-p50-µs")
	b.ReportMetric(float64(p50)/float64(f50), "L4/L1-p50")
	for l := 1; l <= 3; l++ {
		b.ReportMetric(float64(fw[l])/n, fmt.Sprintf("L%d-up-B/op", l))
	}
	for l := 1; l <= 4; l++ {
		b.ReportMetric((float64(wire[l])-float64(base[l]))/n, fmt.Sprintf("lan%d-wire-B/op", l))
	}
}

// lanLevel is the level whose managers own a LAN of unit u: a farm LAN
// is level 1, a data center's SM farm level 2, and so on.
func lanLevel(u directory.Location) int {
	switch {
	case u.Farm != 0:
		return 1
	case u.DataCenter != 0:
		return 2
	case u.CDN != 0:
		return 3
	}
	return 4
}

// BenchmarkHierarchyLookup: a lookup from an SE's farm manager by how far
// it climbs, over rmtp between the levels (LOOKUP up, answers down,
// requests to a child unit's manager; memnet, no loss), against the same
// lookup with the resolvers calling each other in process (the library's
// own cost per level), alternating in the same run: "rmtp-µs" and
// "inproc-µs" are means, "rmtp/inproc" their ratio.
func BenchmarkHierarchyLookup(b *testing.B) {
	tr := buildTreeLinks(b, 3, 2, 2, memnet.Faults{}, func(c uint32) directory.Policy {
		if c == 3 {
			return directory.PolicyFull
		}
		return directory.PolicySummary
	}, nil, nil, true)
	for _, s := range tr.ses {
		for i := range 100 {
			if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, i)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	tr.flushSEs()
	tr.converge("bench tree")
	asker := tr.ses[0]
	l1 := tr.active(directory.Level(1).Unit(asker.loc))
	cases := []struct {
		name string
		key  string
		path int
	}{
		{"own-farm", hkey(asker.loc, 1), 1},
		{"other-data-center-L3", hkey(tr.sesIn(directory.Location{CDN: 1, DataCenter: 2})[0].loc, 1), 3},
		{"other-cdn-summary-L4-down", hkey(tr.sesIn(directory.Location{CDN: 2})[0].loc, 1), 5},
		{"other-cdn-full-L4", hkey(tr.sesIn(directory.Location{CDN: 3})[0].loc, 1), 4},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			var over, in time.Duration
			for range b.N {
				for _, r := range []*directory.Resolver{l1.res, l1.local} {
					start := time.Now()
					res, err := r.Lookup(ctx, c.key, asker.loc)
					d := time.Since(start)
					if err != nil || len(res.Hits) != 1 || len(res.Path) != c.path {
						b.Fatalf("%+v %v", res, err)
					}
					if r == l1.res {
						over += d
					} else {
						in += d
					}
				}
			}
			b.ReportMetric(float64(c.path), "nodes-asked")
			b.ReportMetric(float64(over.Microseconds())/float64(b.N), "rmtp-µs")
			b.ReportMetric(float64(in.Microseconds())/float64(b.N), "inproc-µs")
			b.ReportMetric(float64(over)/float64(max(in, 1)), "rmtp/inproc")
		})
	}
}

// digestWatch polls a level-4 store for the keys waiting to match a
// digest and records when each first does (as seenAt's hook does for
// records).
type digestWatch struct {
	mu      sync.Mutex
	pending []string
	done    chan struct{}
	wg      sync.WaitGroup
}

func newDigestWatch(s *directory.Store, seen *seenAt) *digestWatch {
	w := &digestWatch{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.done:
				return
			default:
			}
			w.mu.Lock()
			keep := w.pending[:0]
			for _, k := range w.pending {
				if len(s.DigestMatches(k, directory.Location{})) > 0 {
					now := time.Now()
					seen.mu.Lock()
					seen.when[4][k] = now
					seen.mu.Unlock()
				} else {
					keep = append(keep, k)
				}
			}
			w.pending = keep
			w.mu.Unlock()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return w
}

func (w *digestWatch) add(k string) {
	w.mu.Lock()
	w.pending = append(w.pending, k)
	w.mu.Unlock()
}

func (w *digestWatch) stop() {
	close(w.done)
	w.wg.Wait()
}
