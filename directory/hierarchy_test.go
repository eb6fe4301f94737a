package directory_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// cutTransport wraps a transport; while cut nothing goes out and
// nothing comes in (a data center's WAN link down).
type cutTransport struct {
	rmtp.Transport
	cut atomic.Bool
}

func (c *cutTransport) Send(to rmtp.Dest, b []byte) error {
	if c.cut.Load() {
		return nil
	}
	return c.Transport.Send(to, b)
}

func (c *cutTransport) SendTo(to netip.AddrPort, b []byte) error {
	if c.cut.Load() {
		return nil
	}
	return c.Transport.SendTo(to, b)
}

func (c *cutTransport) Recv() (rmtp.Datagram, error) {
	for {
		d, err := c.Transport.Recv()
		if err != nil || !c.cut.Load() {
			return d, err
		}
	}
}

// tnode is one manager of the tree: its endpoint in its own level's SM
// farm (for level 1: the farm with its SEs) and, below level 4, its
// uplink endpoint in the parent level's SM farm, where it is an engine.
type tnode struct {
	unit  directory.Location
	level directory.Level
	ep    *rmtp.Endpoint
	up    *rmtp.Endpoint
	cut   *cutTransport
	m     *directory.Manager
	fw    *directory.Forwarder
	res   *directory.Resolver
	// local resolves with the other nodes' resolvers called in process
	// (the baseline of lookups over rmtp); res itself when !tree.links.
	local *directory.Resolver
	link  *directory.Uplink // with tree.links
	dead  bool
}

type tse struct {
	loc directory.Location
	ep  *rmtp.Endpoint
	pub *directory.Publisher
}

// tree is levels 1-4 in memory: CDNs × data centers × 1 farm × SEs, one
// memnet LAN per unit.
type tree struct {
	t       testing.TB
	faults  memnet.Faults
	nets    map[directory.Location]*memnet.Network
	nextID  rmtp.NodeID
	nodes   map[directory.Location][]*tnode
	ses     []*tse
	cdns    int
	policy3 func(cdn uint32) directory.Policy // level 3 → 4
	store   func(l directory.Level, c *directory.StoreConfig)
	fwd     func(l directory.Level, c *directory.ForwarderConfig)
	// links: lookups between levels go over rmtp (Uplink, Downlink on
	// rmtp.ChannelLookup) instead of calling the other node's resolver.
	links bool
}

func (tr *tree) net(u directory.Location) *memnet.Network {
	n := tr.nets[u]
	if n == nil {
		n = memnet.New(1472)
		tr.nets[u] = n
	}
	return n
}

func (tr *tree) endpoint(n *memnet.Network, role rmtp.Role, wrap bool) (*rmtp.Endpoint, *cutTransport) {
	tr.nextID++
	id := tr.nextID
	var tp rmtp.Transport = n.Attach(role == rmtp.Manager, tr.faults, uint64(id))
	var ct *cutTransport
	if wrap {
		ct = &cutTransport{Transport: tp}
		tp = ct
	}
	cfg := rmtpConfig(id, role)
	cfg.DropUnclaimed = tr.links // each protocol reads its channel, as in smsnmpd
	ep, err := rmtp.New(tp, cfg)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.t.Cleanup(func() { ep.Close() })
	return ep, ct
}

func (tr *tree) addManager(level directory.Level, unit directory.Location) *tnode {
	nd := &tnode{unit: unit, level: level}
	first := len(tr.nodes[unit]) == 0
	nd.ep, _ = tr.endpoint(tr.net(unit), rmtp.Manager, false)
	var own, up rmtp.Receiver = nd.ep, nil
	if first {
		if err := nd.ep.Activate(1); err != nil {
			tr.t.Fatal(err)
		}
	}
	sc := directory.StoreConfig{Level: level, Unit: unit}
	if tr.store != nil {
		tr.store(level, &sc)
	}
	inboxes := []rmtp.Receiver{own}
	if tr.links {
		inboxes = []rmtp.Receiver{nd.ep.Channel(rmtp.ChannelDirectory), nd.ep.Channel(rmtp.ChannelTransfer)}
	}
	m, err := directory.NewManager(nd.ep, directory.ManagerConfig{Store: sc, MaintainInterval: 50 * time.Millisecond,
		WatchInterval: 20 * time.Millisecond, Logger: testLogger(tr.t)}, inboxes...)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.t.Cleanup(func() { m.Close() })
	nd.m = m
	if level < directory.LevelPeering {
		nd.up, nd.cut = tr.endpoint(tr.net((level + 1).Unit(unit)), rmtp.Engine, true)
		up = nd.up
		if tr.links {
			up = nd.up.Channel(rmtp.ChannelDirectory)
		}
		pol := directory.PolicyFull
		if level == directory.LevelCDN {
			pol = tr.policy3(unit.CDN)
		}
		ep := nd.ep
		fc := directory.ForwarderConfig{Policy: pol, Resync: up,
			SendTimeout: 500 * time.Millisecond, Epoch: func() uint64 { return ep.Term() << 32 }, Logger: testLogger(tr.t)}
		if tr.fwd != nil {
			tr.fwd(level, &fc)
		}
		fw, err := directory.NewForwarder(nd.up, m.Store(), fc)
		if err != nil {
			tr.t.Fatal(err)
		}
		tr.t.Cleanup(func() { fw.Close() })
		nd.fw = fw
		if first {
			fw.SetActive(true)
		}
	}
	rc := directory.ResolverConfig{Node: uint32(nd.ep.Node()), Store: m.Store(),
		Parent: tr.parentPeer(level, unit), Child: tr.childPeer}
	local, err := directory.NewResolver(rc)
	if err != nil {
		tr.t.Fatal(err)
	}
	nd.local = local
	var uplink *directory.Uplink
	var downlink *directory.Downlink
	if tr.links {
		rc.Parent, rc.Child = nil, nil
		if nd.up != nil {
			uplink = directory.NewUplink(nd.up, nd.up.Channel(rmtp.ChannelLookup), directory.LinkConfig{Logger: testLogger(tr.t)})
			tr.t.Cleanup(func() { uplink.Close() })
			rc.Parent = uplink
			nd.link = uplink
		}
		if level > directory.LevelFarm {
			downlink = directory.NewDownlink(nd.ep, nd.ep.Channel(rmtp.ChannelLookup), m.ChildNode,
				directory.LinkConfig{Answering: nd.ep.Active, Logger: testLogger(tr.t)})
			tr.t.Cleanup(func() { downlink.Close() })
			rc.Child = downlink.Child
		}
	}
	res, err := directory.NewResolver(rc)
	if err != nil {
		tr.t.Fatal(err)
	}
	nd.res = res
	if uplink != nil {
		uplink.Serve(res)
	}
	if downlink != nil {
		downlink.Serve(res)
	}
	tr.nodes[unit] = append(tr.nodes[unit], nd)
	return nd
}

// active is the live manager of unit whose endpoint owns the view.
func (tr *tree) active(unit directory.Location) *tnode {
	for _, nd := range tr.nodes[unit] {
		if !nd.dead && nd.ep.Active() {
			return nd
		}
	}
	return nil
}

// peerFunc adapts a function to directory.Peer (in real life: a client
// of the other node's control socket or an rmtp request).
type peerFunc func(ctx context.Context, q directory.Query) (directory.Resolution, error)

func (f peerFunc) Resolve(ctx context.Context, q directory.Query) (directory.Resolution, error) {
	return f(ctx, q)
}

func (tr *tree) parentPeer(level directory.Level, unit directory.Location) directory.Peer {
	if level == directory.LevelPeering {
		return nil
	}
	pu := (level + 1).Unit(unit)
	return peerFunc(func(ctx context.Context, q directory.Query) (directory.Resolution, error) {
		nd := tr.active(pu)
		if nd == nil {
			return directory.Resolution{}, fmt.Errorf("no active manager of %v", pu)
		}
		return nd.local.Resolve(ctx, q)
	})
}

func (tr *tree) childPeer(unit directory.Location) (directory.Peer, bool) {
	nd := tr.active(unit)
	if nd == nil {
		return nil, false
	}
	return nd.local, true
}

// buildTree: cdns × dcs × 1 farm × ses, one manager per unit, plus a
// backup at level 2 of data center 1/1.
func buildTree(t testing.TB, cdns, dcs, ses int, f memnet.Faults, policy3 func(uint32) directory.Policy,
	store func(directory.Level, *directory.StoreConfig), fwd func(directory.Level, *directory.ForwarderConfig)) *tree {
	return buildTreeLinks(t, cdns, dcs, ses, f, policy3, store, fwd, false)
}

func buildTreeLinks(t testing.TB, cdns, dcs, ses int, f memnet.Faults, policy3 func(uint32) directory.Policy,
	store func(directory.Level, *directory.StoreConfig), fwd func(directory.Level, *directory.ForwarderConfig), links bool) *tree {
	tr := &tree{t: t, faults: f, nets: map[directory.Location]*memnet.Network{}, nodes: map[directory.Location][]*tnode{},
		cdns: cdns, policy3: policy3, store: store, fwd: fwd, links: links}
	tr.addManager(directory.LevelPeering, directory.Location{})
	for c := 1; c <= cdns; c++ {
		tr.addManager(directory.LevelCDN, directory.Location{CDN: uint32(c)})
		for d := 1; d <= dcs; d++ {
			dc := directory.Location{CDN: uint32(c), DataCenter: uint32(d)}
			tr.addManager(directory.LevelDataCenter, dc)
			if c == 1 && d == 1 {
				tr.addManager(directory.LevelDataCenter, dc) // BSM
			}
			farm := directory.Location{CDN: uint32(c), DataCenter: uint32(d), Farm: 1}
			tr.addManager(directory.LevelFarm, farm)
			for range ses {
				ep, _ := tr.endpoint(tr.net(farm), rmtp.Engine, false)
				loc := farm
				loc.Engine = uint32(ep.Node())
				var in rmtp.Receiver = ep
				if links {
					in = ep.Channel(rmtp.ChannelDirectory)
				}
				pub, err := directory.NewPublisher(ep, directory.PublisherConfig{Location: loc, Incarnation: ep.Incarnation(), Inbox: in})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pub.Close() })
				tr.ses = append(tr.ses, &tse{loc: loc, ep: ep, pub: pub})
			}
		}
	}
	return tr
}

// expect is what the captions say a unit's directory holds under the
// policies: levels 1-3 every entry of their unit with its SE; level 4
// every CDN's, per SE where level 3 forwards full, per CDN where summary,
// none where digest.
func (tr *tree) expect(level directory.Level, unit directory.Location) map[string]bool {
	out := map[string]bool{}
	for _, s := range tr.ses {
		if !directory.Contains(unit, s.loc) {
			continue
		}
		at := s.loc
		if level == directory.LevelPeering && tr.policy3(s.loc.CDN) == directory.PolicySummary {
			at = directory.Location{CDN: s.loc.CDN}
		}
		if level == directory.LevelPeering && tr.policy3(s.loc.CDN) == directory.PolicyDigest {
			continue // a Bloom filter, no records
		}
		for _, e := range s.pub.Entries() {
			out[e.Key+"@"+at.String()] = true
		}
	}
	return out
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// converge waits until every live manager holds exactly what expect says.
func (tr *tree) converge(what string) {
	tr.t.Helper()
	var bad string
	deadline := time.Now().Add(60 * time.Second)
	for {
		bad = ""
		for u, nds := range tr.nodes {
			for _, nd := range nds {
				if nd.dead {
					continue
				}
				if got, want := pairs(nd.m.Store()), tr.expect(nd.level, u); !equalSets(got, want) {
					bad = fmt.Sprintf("level %d unit %v node %d: %d entries, want %d", nd.level, u, nd.ep.Node(), len(got), len(want))
				}
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			tr.t.Fatalf("%s: %s", what, bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tr *tree) flushSEs() {
	tr.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range tr.ses {
		if err := s.pub.Flush(ctx); err != nil {
			tr.t.Fatalf("flush of SE %v: %v", s.loc, err)
		}
	}
}

func hkey(loc directory.Location, i int) string {
	return fmt.Sprintf("http://cdn%d.example/dc%d/se%d/%04d", loc.CDN, loc.DataCenter, loc.Engine, i)
}

func (tr *tree) sesIn(unit directory.Location) []*tse {
	var out []*tse
	for _, s := range tr.ses {
		if directory.Contains(unit, s.loc) {
			out = append(out, s)
		}
	}
	return out
}

func levels(p []directory.Step) []directory.Level {
	var out []directory.Level
	for _, s := range p {
		out = append(out, s.Level)
	}
	return out
}

// TestHierarchyMemnetLossy: 3 CDNs × 2 data centers × 1 farm × 2 SEs over
// lossy in-memory LANs; level 1 and 2 forward full, level 3 summary
// (CDNs 1 and 2) or full (CDN 3). Every level holds exactly what the
// captions of Fig 1 and Fig 2a say; misses resolve through the parent; a
// data center cut off and healed converges upstream, removals included,
// even after it forgot their tombstones; a takeover at level 2 during a
// stream of updates loses nothing.
func TestHierarchyMemnetLossy(t *testing.T) {
	checkNoLeak(t)
	policy3 := func(cdn uint32) directory.Policy {
		if cdn == 3 {
			return directory.PolicyFull
		}
		return directory.PolicySummary
	}
	tr := buildTree(t, 3, 2, 2, memnet.Faults{Loss: 0.02, Dup: 0.01, Reorder: 0.01}, policy3,
		func(l directory.Level, c *directory.StoreConfig) {
			if l == directory.LevelDataCenter {
				c.TombstoneTTL = 200 * time.Millisecond // forgotten during the cut below
			}
		},
		func(l directory.Level, c *directory.ForwarderConfig) {
			if l == directory.LevelDataCenter {
				c.MaxQueue = 8 // the cut below overflows it: only the re-announcement tells level 3
			}
		})
	for _, s := range tr.ses {
		for i := range 20 {
			if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, i), Size: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One object in CDN 2 only; one in CDN 1 data center 2 and CDN 2.
	cdn2 := tr.sesIn(directory.Location{CDN: 2})[0]
	dc12 := tr.sesIn(directory.Location{CDN: 1, DataCenter: 2})[1]
	for _, s := range []*tse{cdn2, dc12} {
		if err := s.pub.Add(directory.Entry{Key: "http://peered.example/movie", Size: 7}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cdn2.pub.Add(directory.Entry{Key: "http://cdn2-only.example/x", Size: 1}); err != nil {
		t.Fatal(err)
	}
	tr.flushSEs()
	tr.converge("every level holds what the captions say")

	t.Run("lookup", func(t *testing.T) {
		asker := tr.sesIn(directory.Location{CDN: 1, DataCenter: 1})[0]
		l1 := tr.active(directory.Location{CDN: 1, DataCenter: 1, Farm: 1})
		ctx := context.Background()
		res, err := l1.res.Lookup(ctx, "http://cdn2-only.example/x", asker.loc)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 || res.Hits[0].Location != cdn2.loc || res.Hits[0].Hops != 8 {
			t.Fatalf("hits %+v", res.Hits)
		}
		if got, want := levels(res.Path), []directory.Level{1, 2, 3, 4, 3}; !slices.Equal(got, want) {
			t.Fatalf("path levels %v, want %v (%+v)", got, want, res.Path)
		}
		if res.Path[3].Summaries != 1 || res.Path[4].Via != "child" || res.Path[4].Hits != 1 || res.Path[1].Via != "parent" {
			t.Fatalf("path %+v", res.Path)
		}
		// Nearest: the copy in the asker's own CDN is found at level 3;
		// nothing climbs to level 4.
		res, err = l1.res.Lookup(ctx, "http://peered.example/movie", asker.loc)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 || res.Hits[0].Location != dc12.loc || res.Hits[0].Hops != 6 || len(res.Path) != 3 {
			t.Fatalf("nearest: %+v path %+v", res.Hits, res.Path)
		}
		// From CDN 3, both copies are 8 hops away: ties by lowest location.
		l1c3 := tr.active(directory.Location{CDN: 3, DataCenter: 1, Farm: 1})
		res, err = l1c3.res.Lookup(ctx, "http://peered.example/movie", tr.sesIn(directory.Location{CDN: 3})[0].loc)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 2 || res.Hits[0].Location != dc12.loc || res.Hits[1].Location != cdn2.loc {
			t.Fatalf("tie: %+v path %+v", res.Hits, res.Path)
		}
		if res, _ := l1.res.Lookup(ctx, "http://nowhere.example/", asker.loc); len(res.Hits) != 0 || len(res.Path) != 4 {
			t.Fatalf("unknown key: %+v", res)
		}
	})

	t.Run("partition", func(t *testing.T) {
		dc := directory.Location{CDN: 1, DataCenter: 1}
		l2 := tr.active(dc)
		l3 := tr.active(directory.Location{CDN: 1})
		before := l3.m.Store().Counters()
		l2.cut.cut.Store(true)
		for _, s := range tr.sesIn(dc) {
			for i := range 5 {
				if err := s.pub.Remove(hkey(s.loc, i)); err != nil {
					t.Fatal(err)
				}
				if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, 100+i)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		tr.flushSEs()
		newKey := hkey(tr.sesIn(dc)[0].loc, 100)
		waitfor.True(t, 30*time.Second, "level 2 has the new entries and forgot the tombstones", func() bool {
			return equalSets(pairs(l2.m.Store()), tr.expect(directory.LevelDataCenter, dc)) && l2.m.Store().Tombstones() == 0
		})
		if h := l3.m.Lookup(newKey, directory.Location{}); len(h) != 0 {
			t.Fatalf("level 3 saw %s across the cut", newKey)
		}
		l2.cut.cut.Store(false)
		tr.converge("healed data center converges at levels 3 and 4")
		// The removals reach level 3 through the re-announcement: the
		// records it no longer names are dropped at SYNC END (Resynced).
		// Not always all ten: the forwarder may take the first changes
		// as a batch before the queue overflows (it runs between two
		// changes); that batch is retried across the cut and delivered
		// as ordinary removals after the heal. (Shown by sleeping 300 µs
		// after each change: 9 of 10 then come through the
		// re-announcement, every time.) converge above checks that
		// every removal arrived, whichever way.
		if c := l3.m.Store().Counters(); c.Syncs == before.Syncs || c.Resynced == before.Resynced {
			t.Fatalf("level 3 applied no re-announcement: %+v (before %+v)", c, before)
		}
	})

	t.Run("takeover", func(t *testing.T) {
		dc := directory.Location{CDN: 1, DataCenter: 1}
		sm := tr.active(dc)
		var bsm *tnode
		for _, nd := range tr.nodes[dc] {
			if nd != sm {
				bsm = nd
			}
		}
		ses := tr.sesIn(dc)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 200 {
				s := ses[i%len(ses)]
				s.pub.Add(directory.Entry{Key: hkey(s.loc, 1000+i)})
				if i%10 == 0 {
					s.pub.Remove(hkey(s.loc, 1000+i-5))
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		time.Sleep(100 * time.Millisecond)
		sm.dead = true
		sm.fw.Close()
		sm.m.Close()
		sm.up.Close()
		sm.ep.Close()
		if err := bsm.ep.Activate(2); err != nil {
			t.Fatal(err)
		}
		bsm.fw.SetActive(true)
		<-done
		tr.flushSEs()
		tr.converge("levels 3 and 4 hold every entry after the takeover")
		if st := bsm.fw.Stats(); st.Generation>>32 != 2 || st.Resyncs == 0 {
			t.Fatalf("backup forwarder %+v", st)
		}
	})
}

// TestLookupLinksOverRmtp: the same lookups as TestHierarchyMemnetLossy,
// but every question between levels travels over rmtp (LOOKUP up to the
// parent's managers, answers down; LOOKUP down to a child unit's manager
// as a request, answers as its reply), on lossy LANs. A parent cut off
// costs the asker its budget, not a hang, and the path says so.
func TestLookupLinksOverRmtp(t *testing.T) {
	checkNoLeak(t)
	policy3 := func(uint32) directory.Policy { return directory.PolicySummary }
	tr := buildTreeLinks(t, 2, 2, 2, memnet.Faults{Loss: 0.02, Dup: 0.01, Reorder: 0.01}, policy3, nil, nil, true)
	for _, s := range tr.ses {
		for i := range 3 {
			if err := s.pub.Add(directory.Entry{Key: hkey(s.loc, i), Size: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cdn2 := tr.sesIn(directory.Location{CDN: 2})[0]
	if err := cdn2.pub.Add(directory.Entry{Key: "http://cdn2-only.example/x", Size: 1}); err != nil {
		t.Fatal(err)
	}
	tr.flushSEs()
	tr.converge("every level holds what the captions say")

	asker := tr.sesIn(directory.Location{CDN: 1, DataCenter: 1})[0]
	l1 := tr.active(directory.Location{CDN: 1, DataCenter: 1, Farm: 1})
	ctx := context.Background()
	var res directory.Resolution
	var err error
	// The first questions may race the view (a child not yet known to
	// the parent's forwarder map): retry briefly.
	waitfor.True(t, 10*time.Second, "a cross-CDN lookup over rmtp", func() bool {
		res, err = l1.res.Lookup(ctx, "http://cdn2-only.example/x", asker.loc)
		return err == nil && len(res.Hits) == 1
	})
	if res.Hits[0].Location != cdn2.loc || res.Hits[0].Hops != 8 || res.Hits[0].Size != 1 {
		t.Fatalf("hits %+v", res.Hits)
	}
	if got, want := levels(res.Path), []directory.Level{1, 2, 3, 4, 3}; !slices.Equal(got, want) {
		t.Fatalf("path levels %v, want %v (%+v)", got, want, res.Path)
	}
	l4 := tr.active(directory.Location{})
	l3c2 := tr.active(directory.Location{CDN: 2})
	if res.Path[3].Node != uint32(l4.ep.Node()) || res.Path[3].Summaries != 1 || res.Path[4].Via != "child" ||
		res.Path[4].Node != uint32(l3c2.ep.Node()) || res.Path[4].Hits != 1 || res.Path[1].Via != "parent" {
		t.Fatalf("path %+v", res.Path)
	}
	// A miss climbs to the top and comes back empty, without error.
	res, err = l1.res.Lookup(ctx, "http://nowhere.example/", asker.loc)
	if err != nil || len(res.Hits) != 0 || len(res.Path) != 4 {
		t.Fatalf("unknown key: %+v, %v", res, err)
	}
	// The level-1 manager cut off from level 2: the lookup ends within
	// its deadline with the failure in the path.
	l1.cut.cut.Store(true)
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	res, err = l1.res.Lookup(qctx, "http://cdn2-only.example/x", asker.loc)
	cancel()
	l1.cut.cut.Store(false)
	if err != nil || len(res.Hits) != 0 || len(res.Path) != 2 || res.Path[1].Error == "" {
		t.Fatalf("cut off: %+v, %v", res, err)
	}
	if st := l1.link.Stats(); st.Asked < 3 || st.AskFailed < 1 {
		t.Fatalf("level-1 uplink counters %+v", st)
	}
	if st := tr.active(directory.Location{CDN: 2}).link.Stats(); st.Served < 1 || st.Failed != 0 {
		t.Fatalf("level-3 uplink (answering level 4's downward question) counters %+v", st)
	}
}
