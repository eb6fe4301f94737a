package directory_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

const (
	farmSEs     = 5
	perSE       = 2000 // 10,000 entries in all
	lossyFaults = 0.05
)

// publishAll has every SE publish perSE entries.
func publishAll(t *testing.T, f *farmNet, n int) {
	for i, p := range f.pubs {
		for j := range n {
			if err := p.Add(directory.Entry{Key: key(i, j), Size: uint64(j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// runFarm is the farm scenario of issue 7 on any transport: 5 SEs publish
// 10,000 entries; SM and BSM end with the SEs' digest; removals and
// expiry reach both.
func runFarm(t *testing.T, f *farmNet) {
	sm, bsm := f.addManager(1), f.addManager(2)
	f.addEngines(farmSEs)
	f.waitPeers()
	publishAll(t, f, perSE)
	f.flush(60 * time.Second)
	d := f.converge("SM and BSM hold the SEs' 10,000 entries")
	if d.Count != farmSEs*perSE {
		t.Fatalf("digest counts %d entries, want %d", d.Count, farmSEs*perSE)
	}
	for _, m := range []*directory.Manager{sm, bsm} {
		if m.Store().Count() != farmSEs*perSE {
			t.Fatalf("store holds %d", m.Store().Count())
		}
		hits := m.Lookup(key(3, 77), farmUnit)
		if len(hits) != 1 || hits[0].Location.Engine != 104 || hits[0].Size != 77 {
			t.Fatalf("lookup: %+v", hits)
		}
	}

	// Removals and short expiries.
	soon := time.Now().Add(300 * time.Millisecond)
	for i, p := range f.pubs {
		for j := range 100 {
			if err := p.Remove(key(i, j)); err != nil {
				t.Fatal(err)
			}
			if err := p.Add(directory.Entry{Key: key(i, 1000+j), Size: 1, Expiry: soon}); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.flush(30 * time.Second)
	f.converge("removals and replacements reach SM and BSM")
	waitfor.True(t, 10*time.Second, "expiry", func() bool { return time.Now().After(soon) })
	d = f.converge("expiry at SM and BSM")
	if want := uint64(farmSEs * (perSE - 200)); d.Count != want {
		t.Fatalf("after removal and expiry %d entries, want %d", d.Count, want)
	}
	for _, m := range []*directory.Manager{sm, bsm} {
		if h := m.Lookup(key(0, 5), farmUnit); len(h) != 0 {
			t.Fatalf("removed key found: %+v", h)
		}
		if h := m.Lookup(key(0, 1005), farmUnit); len(h) != 0 {
			t.Fatalf("expired key found: %+v", h)
		}
	}
	waitfor.True(t, 10*time.Second, "expired entries become tombstones", func() bool {
		return sm.Store().Count() == farmSEs*(perSE-200) && bsm.Store().Count() == farmSEs*(perSE-200)
	})
}

func TestFarmMemnetLossy(t *testing.T) {
	checkNoLeak(t)
	runFarm(t, memFarm(t, memnet.Faults{Loss: lossyFaults, Dup: 0.01, Reorder: 0.01}))
}

func TestFarmMulticastLoopback(t *testing.T) {
	checkNoLeak(t)
	runFarm(t, udpFarm(t))
}

// rawEngine is an SE that speaks the wire by hand: late duplicates,
// garbage, floods.
type rawEngine struct {
	t  *testing.T
	ep *rmtp.Endpoint
}

func (r rawEngine) send(b []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.ep.Send(ctx, rmtp.ChannelDirectory, rmtp.Up, b); err != nil {
		r.t.Fatal(err)
	}
}

func (r rawEngine) update(flags wire.GroupFlags, ops ...wire.Op) []byte {
	loc := farmUnit
	loc.Engine = uint32(r.ep.Node())
	b, err := wire.AppendUpdate(nil, &wire.Update{Level: 1, Groups: []wire.Group{{Origin: loc, Incarnation: r.ep.Incarnation(), Flags: flags, Ops: ops}}})
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func TestBadInputAndFlood(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	f.mutStore = func(c *directory.StoreConfig) { c.Rate = 2000; c.Burst = 4000; c.MaxKey = 200 }
	f.addManager(1)
	f.addManager(2)
	f.addEngines(2)
	raw := rawEngine{t, f.endpoint(201, rmtp.Engine)}
	f.waitPeers()
	waitfor.True(t, 10*time.Second, "raw engine sees the managers", func() bool { return livePeers(raw.ep) >= 2 })

	// A tombstone is not resurrected by a late duplicate.
	add1 := wire.Op{Kind: wire.OpAdd, Seq: 1, Key: "victim", Size: 5}
	raw.send(raw.update(0, add1))
	raw.send(raw.update(0, wire.Op{Kind: wire.OpRemove, Seq: 2, Key: "victim"}))
	raw.send(raw.update(0, add1))

	// Malformed and wrong updates.
	raw.send([]byte{1, 1, 1})                                                                 // truncated
	raw.send([]byte{9, 1, 1, 0, 0, 0})                                                        // version 9
	raw.send(raw.update(0, wire.Op{Kind: wire.OpAdd, Seq: 3, Key: strings.Repeat("x", 201)})) // over the managers' cap
	raw.send(raw.update(0, wire.Op{Kind: wire.OpAdd, Seq: 4, Key: "ctl\x01char"}))
	forged, _ := wire.AppendUpdate(nil, &wire.Update{Level: 1, Groups: []wire.Group{{Origin: directory.Location{CDN: 1, DataCenter: 1, Farm: 1, Engine: 101},
		Incarnation: raw.ep.Incarnation(), Ops: []wire.Op{{Kind: wire.OpRemove, Seq: 1, Key: key(0, 1)}}}}})
	raw.send(forged) // SE 201 trying to remove SE 101's entry

	// A flood from the raw SE while the real SEs publish.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			var ops []wire.Op
			for j := range 1000 {
				ops = append(ops, wire.Op{Kind: wire.OpAdd, Seq: uint64(100 + i*1000 + j), Key: "flood/" + strings.Repeat("y", j%50)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			raw.ep.Send(ctx, rmtp.ChannelDirectory, rmtp.Up, raw.update(0, ops...))
			cancel()
		}
	}()
	publishAll(t, f, 1500)
	<-done
	f.flush(30 * time.Second)

	now := time.Now()
	for _, m := range f.mgrs {
		waitfor.True(t, 10*time.Second, "publishers' entries at the manager", func() bool {
			now = time.Now()
			for i, p := range f.pubs {
				if m.Store().DigestOf(rmtpLoc(101+i), now) != p.Digest(now) {
					return false
				}
			}
			return true
		})
		if h := m.Lookup("victim", farmUnit); len(h) != 0 {
			t.Errorf("tombstone resurrected: %+v", h)
		}
		c, mc := m.Store().Counters(), m.Counters()
		if mc.Malformed < 2 {
			t.Errorf("malformed %d, want 2", mc.Malformed)
		}
		if c.WrongOrigin != 1 || c.RateLimited == 0 || c.Rejected < 3 {
			t.Errorf("counters %+v", c)
		}
		var rawSrc *directory.SourceInfo
		for _, s := range m.Store().Sources() {
			if s.Location.Engine == 201 {
				rawSrc = &s
			}
			if s.Location.Engine != 201 && (s.RateLimited != 0 || s.Rejected != 0) {
				t.Errorf("a well-behaved SE was refused: %+v", s)
			}
		}
		if rawSrc == nil || rawSrc.RateLimited == 0 || rawSrc.Stale != 1 {
			t.Errorf("flooding SE: %+v", rawSrc)
		}
		if h := m.Lookup(key(0, 1), farmUnit); len(h) != 1 {
			t.Errorf("forged removal took effect: %+v", h)
		}
	}
}

func rmtpLoc(id int) directory.Location {
	l := farmUnit
	l.Engine = uint32(id)
	return l
}

// TestCatchUpAndRestart: a manager that starts late catches up by state
// transfer while SEs keep publishing; an SE that restarts re-announces,
// and what it no longer holds goes at both managers; an SE declared down
// keeps its entries, marked.
func TestCatchUpAndRestart(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{Loss: 0.01})
	sm := f.addManager(1)
	f.addEngines(3)
	f.waitPeers()
	publishAll(t, f, 3000)
	f.flush(30 * time.Second)
	f.converge("SM has everything", sm)

	late := f.addManager(2)
	f.waitPeers()
	time.Sleep(100 * time.Millisecond) // a few heartbeats: the SEs now include it in their sends
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	more := make(chan error, 1)
	go func() { // updates keep flowing during the transfer
		for j := range 500 {
			if err := f.pubs[1].Add(directory.Entry{Key: key(1, 5000+j)}); err != nil {
				more <- err
				return
			}
		}
		more <- f.pubs[0].Remove(key(0, 9))
	}()
	rep, err := late.CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-more; err != nil {
		t.Fatal(err)
	}
	if rep.Donor != 1 || rep.Records < 9000 {
		t.Fatalf("catch-up %+v", rep)
	}
	f.flush(30 * time.Second)
	f.converge("late manager converged", sm, late)
	se, le := sm.Store().Entries(0, 50, time.Now()), late.Store().Entries(0, 50, time.Now())
	for i := range se {
		if se[i].ID != le[i].ID || se[i].Key != le[i].Key {
			t.Fatalf("row %d differs: %+v vs %+v (ids must survive a failover)", i, se[i], le[i])
		}
	}

	// SE 101 restarts holding only its first 1000 entries.
	f.pubs[0].Close()
	f.engEPs[0].Close()
	var initial []directory.Entry
	for j := range 1000 {
		if j != 9 {
			initial = append(initial, directory.Entry{Key: key(0, j), Size: uint64(j)})
		}
	}
	ep := f.endpoint(101, rmtp.Engine)
	f.engEPs[0] = ep
	f.pubs[0] = f.publisher(ep, initial)
	f.flush(30 * time.Second)
	d := f.converge("restart re-announced and swept")
	if want := uint64(999 + 3500 + 3000); d.Count != want {
		t.Fatalf("%d entries after the restart, want %d", d.Count, want)
	}

	// SE 103 dies: its entries stay, marked down.
	f.pubs[2].Close()
	f.engEPs[2].Close() // LEAVE: declared gone at once
	for _, m := range []*directory.Manager{sm, late} {
		waitfor.True(t, 10*time.Second, "entries of the dead SE marked", func() bool {
			h := m.Lookup(key(2, 7), farmUnit)
			return len(h) == 1 && h[0].Down
		})
		if m.Store().Count() != 999+3500+3000 {
			t.Fatalf("entries lost with the SE: %d", m.Store().Count())
		}
	}
}

// TestResyncWithoutDonor: a lone manager that restarted with nothing
// finds no donor and asks the SEs to re-announce.
func TestResyncWithoutDonor(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	old := f.addManager(1)
	f.addEngines(2)
	f.waitPeers()
	publishAll(t, f, 300)
	f.flush(30 * time.Second)
	f.converge("first manager has everything", old)
	old.Close()
	f.mgrEPs[0].Close()
	f.mgrs, f.mgrEPs = nil, nil

	m := f.addManager(1) // the same node restarted: new incarnation, empty store
	f.waitPeers()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.CatchUp(ctx); !errors.Is(err, directory.ErrNoDonor) {
		t.Fatalf("CatchUp alone = %v, want ErrNoDonor", err)
	}
	if m.Store().Count() != 0 {
		t.Fatalf("restarted manager holds %d entries before the resync", m.Store().Count())
	}
	if err := m.RequestResync(ctx); err != nil {
		t.Fatal(err)
	}
	f.flush(30 * time.Second)
	if d := f.converge("re-announced after RESYNC"); d.Count != 600 {
		t.Fatalf("digest counts %d", d.Count)
	}
	if s := f.pubs[0].Stats(); s.Resyncs != 2 {
		t.Fatalf("publisher stats %+v", s)
	}
}

func TestPublisherRefusals(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	f.addEngines(1)
	p := f.pubs[0]
	if err := p.Add(directory.Entry{Key: strings.Repeat("k", directory.DefaultMaxKey+1)}); !errors.Is(err, directory.ErrKeyTooLong) {
		t.Errorf("long key: %v", err)
	}
	if err := p.Add(directory.Entry{Key: ""}); !errors.Is(err, directory.ErrBadKey) {
		t.Errorf("empty key: %v", err)
	}
	if err := p.Remove("never-added"); !errors.Is(err, directory.ErrNotHeld) {
		t.Errorf("remove unknown: %v", err)
	}
	if _, err := directory.NewPublisher(f.engEPs[0], directory.PublisherConfig{}); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("no location: %v", err)
	}
	// With no manager the operations wait (coalesced), they do not vanish.
	for range 3 {
		p.Add(directory.Entry{Key: "k"})
	}
	time.Sleep(50 * time.Millisecond)
	if s := p.Stats(); s.Pending != 1 || s.Ops != 0 || s.Coalesced < 2 {
		t.Fatalf("stats %+v", s)
	}
	m := f.addManager(1)
	f.waitPeers()
	f.flush(30 * time.Second)
	f.converge("queued operations delivered once a manager exists", m)
	p.Close()
	if err := p.Add(directory.Entry{Key: "x"}); !errors.Is(err, directory.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}
