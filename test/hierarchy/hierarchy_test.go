package hierarchy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The 4-level tree of issue 8 in namespaces: what each level stores, lookups
// across levels, a data center cut off and healed, and a level-2 failover
// during a stream of updates; level 3 forwards summary.
func TestHierarchy(t *testing.T) { runHierarchy(t, "summary") }

// TestHierarchyDigest: the same tree, checks and lookups, with level 3
// forwarding a Bloom filter of its CDN's keys (issue 22): level 4 holds no
// record, and resolves every lookup through the digests.
func TestHierarchyDigest(t *testing.T) { runHierarchy(t, "digest") }

func runHierarchy(t *testing.T, l3Forward string) {
	requireRoot(t)
	begin := time.Now()
	nw := newNetwork(t)
	tr := newTree(t, nw, l3Forward)
	t.Cleanup(tr.dumpLogs) // runs after the processes were stopped: the logs are complete
	tr.checkConfigs()
	t.Logf("network: %d namespaces, %d LANs, built in %v", len(nw.hosts)+2, len(nw.lans), time.Since(begin).Round(time.Millisecond))

	t.Run("network", func(t *testing.T) { checkNetwork(withT(tr, t)) })
	if t.Failed() {
		t.FailNow()
	}

	started := time.Now()
	tr.startAll()
	t.Logf("%d processes started in %v", len(tr.order), time.Since(started).Round(time.Millisecond))

	m := &model{records: map[string][]location{}, digestTop: l3Forward == "digest"}
	publishInitial(tr, m)
	took := tr.waitCounts(m, tr.managers(), 15*time.Second)
	t.Logf("initial %d keys visible at every level %v after the last publish", len(m.records), took.Round(time.Millisecond))

	t.Run("levels", func(t *testing.T) { checkLevels(withT(tr, t), m) })
	t.Run("lookups", func(t *testing.T) { checkLookups(withT(tr, t)) })
	if m.digestTop {
		t.Run("digest objects", func(t *testing.T) { checkDigestObjects(withT(tr, t)) })
	}
	t.Run("totals", func(t *testing.T) { checkTotals(withT(tr, t)) })
	t.Run("partition", func(t *testing.T) { checkPartition(withT(tr, t), m) })
	t.Run("failover", func(t *testing.T) { checkFailover(withT(tr, t), m) })
	tr.checkAlive()
	t.Logf("total %v", time.Since(begin).Round(time.Millisecond))
}

// withT is tr reporting to a subtest.
func withT(tr *tree, t *testing.T) *tree {
	c := *tr
	c.t = t
	return &c
}

// checkNetwork proves the harness before any smsnmpd runs: unicast crosses
// the router between LANs, multicast reaches its LAN and no other.
func checkNetwork(tr *tree) {
	t := tr.t
	a, b := tr.node(seID(1, 1, 1)), tr.node(seID(1, 1, 2))
	other, top := tr.node(seID(2, 2, 1)), tr.node(l4ID)
	for _, p := range []struct{ from, to *node }{{a, top}, {top, a}, {other, a}, {tr.node(l3ID(3)), tr.node(l2ID(3, 2))}} {
		ok, err := probeUnicast(p.from.ns, p.from.ip, p.to.ns, p.to.ip, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("unicast %s -> %s (%s -> %s) did not arrive", p.from.name(), p.to.name(), p.from.ip, p.to.ip)
		}
	}
	const group, port = "239.255.99.1", 7799
	if ok, err := probeMulticast(b.ns, a.ns, group, port, 2*time.Second); err != nil {
		t.Fatal(err)
	} else if !ok {
		t.Errorf("multicast %s -> %s on one LAN did not arrive", b.name(), a.name())
	}
	if ok, err := probeMulticast(other.ns, a.ns, group, port, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	} else if ok {
		t.Errorf("multicast from %s crossed the router to %s", other.name(), a.name())
	}
}

// publishInitial has every SE publish keysPerSE keys named after itself,
// and two SEs in different CDNs the key "shared".
func publishInitial(tr *tree, m *model) {
	tr.t.Helper()
	for _, n := range tr.order {
		if n.kind != kindSE {
			continue
		}
		var keys []string
		for i := 1; i <= keysPerSE; i++ {
			keys = append(keys, fmt.Sprintf("c%dd%de%d-k%d", n.cdn, n.dc, n.se, i))
		}
		if n.id == seID(1, 1, 1) || n.id == seID(3, 2, 1) {
			keys = append(keys, "shared")
		}
		tr.publish(n, keys...)
		for _, k := range keys {
			m.add(k, seLocation(n.cdn, n.dc, n.se))
		}
	}
}

// checkLevels: each level stores exactly what Fig 1 and Fig 2a say, and
// managers that must hold the same records hold the same digest.
func checkLevels(tr *tree, m *model) {
	t := tr.t
	ms := tr.managers()
	tr.verifyLocal(m, ms, append(m.keys(), "no-such-key"))

	// Digests add over (key, location, version): under full forwarding a
	// data center's level-1 and level-2 managers, the level-2 backup and
	// level 3 restricted to that data center hold the very same records.
	for c := 1; c <= cdns; c++ {
		for d := 1; d <= dcsPerCDN; d++ {
			ref := tr.digest(tr.node(l2ID(c, d)), "")
			same := map[string]digest{
				tr.node(l1ID(c, d)).name():                                       tr.digest(tr.node(l1ID(c, d)), ""),
				fmt.Sprintf("%s -unit %d/%d/0/0", tr.node(l3ID(c)).name(), c, d): tr.digest(tr.node(l3ID(c)), fmt.Sprintf("%d/%d/0/0", c, d)),
			}
			if c == failoverCDN && d == failoverDC {
				same[tr.node(l2BID(c, d)).name()] = tr.digest(tr.node(l2BID(c, d)), "")
			}
			for who, dg := range same {
				if dg != ref {
					t.Errorf("%s digest %s (%d entries), %s has %s (%d)", who, dg.Digest, dg.Entries, tr.node(l2ID(c, d)).name(), ref.Digest, ref.Entries)
				}
			}
		}
		// Level 4 holds CDN c as summaries only: restricted to the CDN, it
		// counts one record per key the CDN holds.
		want := 0
		for _, k := range m.keys() {
			if slices.Contains(m.stores(tr.node(l4ID), k), location{CDN: uint32(c)}) {
				want++
			}
		}
		if got := tr.digest(tr.node(l4ID), fmt.Sprintf("%d/0/0/0", c)).Entries; got != uint64(want) {
			t.Errorf("level 4 digest -unit %d/0/0/0: %d entries, want %d (one summary per key)", c, got, want)
		}
	}
}

// checkLookups: misses climb, summary hits resolve downward to concrete
// SEs, the nearest first, and the path shows it.
func checkLookups(tr *tree) {
	t := tr.t
	type want struct {
		via   string
		level int
		nodes []uint32 // any of these (a level with a backup)
	}
	l2 := func(c, d int) []uint32 {
		if c == failoverCDN && d == failoverDC {
			return []uint32{l2ID(c, d), l2BID(c, d)}
		}
		return []uint32{l2ID(c, d)}
	}
	one := func(id uint32) []uint32 { return []uint32{id} }
	checkPath := func(r resolution, from *node, steps []want) {
		t.Helper()
		ok := len(r.Path) == len(steps)
		for i := 0; ok && i < len(steps); i++ {
			p := r.Path[i]
			ok = p.Via == steps[i].via && p.Level == steps[i].level && slices.Contains(steps[i].nodes, p.Node) && p.Error == ""
		}
		if !ok {
			var w []string
			for _, s := range steps {
				w = append(w, fmt.Sprintf("%s(L%d %v)", s.via, s.level, s.nodes))
			}
			t.Errorf("lookup %q from %s: path %s, want %s", r.Key, from.name(), r.pathString(), strings.Join(w, " -> "))
		}
	}

	// Another CDN's key from a farm: up to level 4, down to that CDN.
	for _, q := range []struct {
		from    *node
		c, d, e int
	}{{tr.node(l1ID(1, 1)), 2, 1, 1}, {tr.node(l1ID(3, 2)), 1, 2, 2}} {
		key := fmt.Sprintf("c%dd%de%d-k1", q.c, q.d, q.e)
		r, code := tr.lookup(q.from, key, false)
		if code != 0 || !slices.Equal(r.locations(), []location{seLocation(q.c, q.d, q.e)}) {
			t.Errorf("lookup %q from %s: exit %d, hits %v unresolved %v, want [%v]", key, q.from.name(), code, r.locations(), r.Unresolved, seLocation(q.c, q.d, q.e))
		}
		t.Logf("lookup %q from %s: hits %v path %s", key, q.from.name(), r.locations(), r.pathString())
		checkPath(r, q.from, []want{
			{"self", 1, one(q.from.id)}, {"parent", 2, l2(q.from.cdn, q.from.dc)}, {"parent", 3, one(l3ID(q.from.cdn))},
			{"parent", 4, one(l4ID)}, {"child", 3, one(l3ID(q.c))},
		})
	}

	// The other data center of the same CDN: level 3 answers concretely.
	from := tr.node(l1ID(1, 1))
	r, code := tr.lookup(from, "c1d2e1-k2", false)
	if code != 0 || !slices.Equal(r.locations(), []location{seLocation(1, 2, 1)}) {
		t.Errorf("lookup %q from %s: exit %d, hits %v", r.Key, from.name(), code, r.locations())
	}
	checkPath(r, from, []want{{"self", 1, one(from.id)}, {"parent", 2, l2(1, 1)}, {"parent", 3, one(l3ID(1))}})

	// "shared" is held in CDN 1 and CDN 3. From CDN 3 the CDN-3 copy is
	// nearer: level 3 of CDN 3 answers it without climbing further.
	from = tr.node(l1ID(3, 1))
	r, code = tr.lookup(from, "shared", false)
	if code != 0 || len(r.Hits) == 0 || r.Hits[0].Location != seLocation(3, 2, 1) {
		t.Errorf("lookup shared from %s: exit %d, hits %v, want %v first", from.name(), code, r.locations(), seLocation(3, 2, 1))
	}
	t.Logf("lookup shared from %s: hits %v path %s", from.name(), r.locations(), r.pathString())
	checkPath(r, from, []want{{"self", 1, one(from.id)}, {"parent", 2, l2(3, 1)}, {"parent", 3, one(l3ID(3))}})
	// From CDN 2 both copies are as far (through level 4): both come
	// back, the tie broken by the lowest location.
	from = tr.node(l1ID(2, 1))
	r, code = tr.lookup(from, "shared", false)
	if want := []location{seLocation(1, 1, 1), seLocation(3, 2, 1)}; code != 0 || !slices.Equal(r.locations(), want) {
		t.Errorf("lookup shared from %s: exit %d, hits %v, want %v", from.name(), code, r.locations(), want)
	} else if r.Hits[0].Hops != r.Hits[1].Hops {
		t.Errorf("lookup shared from %s: hops %d and %d, want equal", from.name(), r.Hits[0].Hops, r.Hits[1].Hops)
	}

	// An unknown key climbs to the top and is a miss (exit 1).
	from = tr.node(l1ID(2, 2))
	r, code = tr.lookup(from, "no-such-key", false)
	if code != 1 || len(r.Hits) != 0 || len(r.Unresolved) != 0 {
		t.Errorf("lookup no-such-key from %s: exit %d, hits %v, unresolved %v; want a miss", from.name(), code, r.locations(), r.Unresolved)
	}
	checkPath(r, from, []want{{"self", 1, one(from.id)}, {"parent", 2, l2(2, 2)}, {"parent", 3, one(l3ID(2))}, {"parent", 4, one(l4ID)}})

	// Asked higher up: level 4 resolves its summary through the CDN's
	// level 3; a level 3 climbs to level 4 for another CDN's key.
	for _, q := range []struct {
		from  *node
		key   string
		want  location
		steps []want
	}{
		{tr.node(l4ID), "c2d2e2-k3", seLocation(2, 2, 2), []want{{"self", 4, one(l4ID)}, {"child", 3, one(l3ID(2))}}},
		{tr.node(l3ID(1)), "c3d1e1-k2", seLocation(3, 1, 1), []want{{"self", 3, one(l3ID(1))}, {"parent", 4, one(l4ID)}, {"child", 3, one(l3ID(3))}}},
	} {
		r, code := tr.lookup(q.from, q.key, false)
		if code != 0 || !slices.Equal(r.locations(), []location{q.want}) {
			t.Errorf("lookup %q from %s: exit %d, hits %v unresolved %v, want [%v]", q.key, q.from.name(), code, r.locations(), r.Unresolved, q.want)
		}
		checkPath(r, q.from, q.steps)
	}
}

// checkPartition: data center (2,2) cut off from the router; an SE there
// adds and removes entries; after the heal levels 3 and 4 converge by
// state transfer.
func checkPartition(tr *tree, m *model) {
	t := tr.t
	dc := tr.net.lans["d22"]
	se := tr.node(seID(2, 2, 1))
	l1, l3, l4 := tr.node(l1ID(2, 2)), tr.node(l3ID(2)), tr.node(l4ID)
	added := []string{"c2d2e1-p1", "c2d2e1-p2", "c2d2e1-p3"}
	removed := "c2d2e1-k1"
	loc := seLocation(2, 2, 1)

	if err := tr.net.setLink(dc, false); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	healed := false
	defer func() {
		if !healed {
			if err := tr.net.setLink(dc, true); err != nil {
				t.Error(err)
			}
		}
	}()
	tr.publish(se, added...)
	tr.unpublish(se, removed)
	for _, k := range added {
		m.add(k, loc)
	}
	m.remove(removed, loc)

	// Inside the data center the farm hears it (multicast on its LAN).
	waitUntil(t, 5*time.Second, "the farm's level-1 manager holds the partition's updates", func() string {
		for _, k := range append(slices.Clone(added), removed) {
			if e := tr.checkLocal(m, l1, k); e != "" {
				return e
			}
		}
		return ""
	})
	// Levels 3 and 4 must not: the cut is real, and what they hold after
	// the heal had to cross it then.
	time.Sleep(time.Until(cut.Add(3 * time.Second)))
	for _, n := range []*node{l3, l4} {
		if r, code := tr.lookup(n, added[0], true); code == 0 {
			t.Errorf("during the cut %s already holds %q at %v: the link was not cut", n.name(), added[0], r.locations())
		}
		if n == l4 && m.digestTop {
			continue // level 4 holds no record under digest
		}
		if _, code := tr.lookup(n, removed, true); code != 0 {
			t.Errorf("during the cut %s already dropped %q: the link was not cut", n.name(), removed)
		}
	}
	// A lookup from inside the cut-off data center for another CDN's key
	// cannot climb past level 2: it must come back in bounded time as a
	// miss whose path names the failed step, not hang, with exit code 4
	// (not found, but a level did not answer) rather than 1 (not found).
	asked := time.Now()
	r, code := tr.lookup(l1, "c1d1e1-k1", false)
	took := time.Since(asked)
	failed := slices.ContainsFunc(r.Path, func(s step) bool { return s.Error != "" })
	if code != 4 || !failed || took > 6*time.Second {
		t.Errorf("lookup c1d1e1-k1 from %s during the cut: exit %d, hits %v, path %s after %v; want a miss with the failed step in the path within 6 s",
			l1.name(), code, r.locations(), r.pathString(), took.Round(time.Millisecond))
	} else {
		t.Logf("partition: lookup from inside the cut: miss after %v, path %s", took.Round(time.Millisecond), r.pathString())
	}
	if err := tr.net.setLink(dc, true); err != nil {
		t.Fatal(err)
	}
	healed = true
	heal := time.Now()
	waitUntil(t, 20*time.Second, "levels 3 and 4 converge after the heal", func() string {
		for _, n := range []*node{l3, l4} {
			for _, k := range append(slices.Clone(added), removed) {
				if e := tr.checkLocal(m, n, k); e != "" {
					return e
				}
			}
		}
		return ""
	})
	if m.digestTop {
		// Level 4's digest of CDN 2 follows: another CDN finds the added
		// keys and no longer the removed one.
		from := tr.node(l1ID(1, 1))
		waitUntil(t, 20*time.Second, "another CDN resolves the partition's updates through level 4's digest", func() string {
			for _, k := range added {
				if r, code := tr.lookup(from, k, false); code != 0 || !slices.Equal(r.locations(), []location{loc}) {
					return fmt.Sprintf("lookup %q from %s: exit %d, hits %v, path %s", k, from.name(), code, r.locations(), r.pathString())
				}
			}
			if r, code := tr.lookup(from, removed, false); code != 1 {
				return fmt.Sprintf("removed %q from %s: exit %d, hits %v", removed, from.name(), code, r.locations())
			}
			return ""
		})
	}
	t.Logf("partition: cut %v, levels 3 and 4 converged %v after the heal",
		heal.Sub(cut).Round(time.Millisecond), time.Since(heal).Round(time.Millisecond))
	tr.waitCounts(m, tr.managers(), 5*time.Second)
}

// checkFailover: the level-2 SM of data center (1,1) is killed while an SE
// there publishes a stream of keys; the BSM takes over and levels 3 and 4
// end with every entry.
func checkFailover(tr *tree, m *model) {
	t := tr.t
	sm, bsm := tr.node(l2ID(failoverCDN, failoverDC)), tr.node(l2BID(failoverCDN, failoverDC))
	se := tr.node(seID(failoverCDN, failoverDC, 2))
	l3, l4 := tr.node(l3ID(failoverCDN)), tr.node(l4ID)
	waitLog(t, sm, 5*time.Second, `msg="northbound role"`, "role=manager")
	// Only the active manager of a level forwards upward, and says so in
	// smDirectoryForwardActive (TruthValue: 1 true, 2 false).
	const fwdActive = ".1.3.6.1.4.1.8072.9999.9999.42.1.7.4.2.0"
	for _, c := range []struct {
		n    *node
		want string
	}{{sm, "1"}, {bsm, "2"}} {
		if got, err := tr.snmpGet(c.n, fwdActive); err != nil || got != c.want {
			t.Errorf("smDirectoryForwardActive.0 on %s = %q (%v), want %s", c.n.name(), got, err, c.want)
		}
	}

	// 300 keys at about 100 per second, 5 per publish call; the SM dies
	// after the first 100.
	const total, batch, killAfter = 300, 5, 100
	var keys []string
	for i := 0; i < total; i++ {
		keys = append(keys, fmt.Sprintf("c%dd%de%d-s%03d", se.cdn, se.dc, se.se, i))
	}
	loc := seLocation(se.cdn, se.dc, se.se)
	unitSE := loc.String()
	unitCDN := fmt.Sprintf("%d/0/0/0", failoverCDN)
	// Level 3's count of the SE's records, sampled throughout: its
	// longest stall while the stream runs is the outage the failover
	// causes upstream.
	var samples []countSample
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		samples = tr.sampleCount(l3, unitSE, 100*time.Millisecond, stop)
	}()
	stopSampling := sync.OnceFunc(func() { close(stop); <-done })
	defer stopSampling() // also when a check below fails the subtest
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var killed time.Time
	var totalsBefore totals // level 3's smSubtree just before the kill
	streamStart := time.Now()
	for i := 0; i < total; i += batch {
		if i == killAfter {
			totalsBefore = tr.subtree(l3)
			tr.kill(sm)
			killed = time.Now()
		}
		tr.publish(se, keys[i:i+batch]...)
		for _, k := range keys[i : i+batch] {
			m.add(k, loc)
		}
		<-tick.C
	}
	streamEnd := time.Now()
	t.Logf("failover: %d keys published in %v; SM %d killed after %d", total, streamEnd.Sub(streamStart).Round(time.Millisecond), sm.id, killAfter)

	waitLog(t, bsm, 5*time.Second, `msg="northbound role"`, "role=manager", "cause=takeover")
	if at, ok := logTime(bsm, `msg="northbound role"`, "cause=takeover"); ok {
		t.Logf("failover: BSM %d active %v after the kill (its log)", bsm.id, at.Sub(killed).Round(time.Millisecond))
	}
	wantSE, wantCDN := 0, 0
	for _, k := range m.keys() {
		if slices.Contains(m.records[k], loc) {
			wantSE++
		}
		if slices.Contains(m.stores(l4, k), location{CDN: uint32(failoverCDN)}) {
			wantCDN++
		}
	}
	waitUntil(t, 30*time.Second, "levels 3 and 4 hold every entry of the stream", func() string {
		if got := tr.digest(l3, unitSE).Entries; got != uint64(wantSE) {
			return fmt.Sprintf("%s holds %d records of SE %d, want %d", l3.name(), got, se.id, wantSE)
		}
		if got := tr.digest(l4, unitCDN).Entries; got != uint64(wantCDN) {
			return fmt.Sprintf("%s holds %d summaries of CDN %d, want %d", l4.name(), got, failoverCDN, wantCDN)
		}
		return ""
	})
	converged := time.Now()
	stopSampling()
	// Level 3 counted the data center through the SM, now through the
	// BSM: its counters did not go back, and it still counts every SE.
	if x := tr.subtree(l3); x.requests < totalsBefore.requests || x.bytes < totalsBefore.bytes || x.up != totalsBefore.up {
		t.Errorf("%s smSubtree after the level-2 takeover: %v; before the kill: %v", l3.name(), x, totalsBefore)
	} else {
		t.Logf("failover: %s smSubtree before the kill %v, after the takeover %v", l3.name(), totalsBefore, x)
	}
	stall, stallAt := longestStall(samples, uint64(wantSE))
	t.Logf("failover: levels 3 and 4 complete %v after the kill, %v after the stream's end; level 3's longest stall %v, from %v after the kill",
		converged.Sub(killed).Round(time.Millisecond), converged.Sub(streamEnd).Round(time.Millisecond),
		stall.Round(time.Millisecond), stallAt.Sub(killed).Round(time.Millisecond))
	tr.verifyLocal(m, []*node{bsm, l3, l4}, keys)
	if got, err := tr.snmpGet(bsm, fwdActive); err != nil || got != "1" {
		t.Errorf("smDirectoryForwardActive.0 on %s after the takeover = %q (%v), want 1", bsm.name(), got, err)
	}

	// The farm's lookups climb through the new active manager.
	from := tr.node(l1ID(failoverCDN, failoverDC))
	r, code := tr.lookup(from, "c2d1e1-k2", false)
	if code != 0 || !slices.Equal(r.locations(), []location{seLocation(2, 1, 1)}) || len(r.Path) < 2 || r.Path[1].Node != bsm.id {
		t.Errorf("lookup c2d1e1-k2 from %s after the failover: exit %d, hits %v, path %s; want 2/1/1/2101 through %d",
			from.name(), code, r.locations(), r.pathString(), bsm.id)
	}
	live := []*node{}
	for _, n := range tr.managers() {
		if n != sm {
			live = append(live, n)
		}
	}
	tr.waitCounts(m, live, 5*time.Second)
}

// checkDigestObjects: level 3 says it forwards digest(5) with a filter of
// its keys, and level 4 resolved the cross-CDN lookups without a false
// hit at this size (a filter sized for at least 1,024 keys holding a few
// dozen has a false-positive rate far below 10^-6).
func checkDigestObjects(tr *tree) {
	t := tr.t
	const h = ".1.3.6.1.4.1.8072.9999.9999.42.1.7.4."
	for c := 1; c <= cdns; c++ {
		n := tr.node(l3ID(c))
		v, err := tr.snmpGetAll(n, h+"1.0", h+"11.0", h+"12.0", h+"15.0")
		if err != nil || len(v) != 4 || v[0] != "5" || v[1] == "0" || v[2] == "0" || v[3] == "0" {
			t.Errorf("%s smDirectoryForwardPolicy, DigestSize, DigestKeys, DigestBytesSent = %v (%v), want 5 and non-zero", n.name(), v, err)
		} else {
			t.Logf("%s: digest of %s octets, %s keys, %s octets sent", n.name(), v[1], v[2], v[3])
		}
	}
	if v, err := tr.snmpGet(tr.node(l4ID), h+"16.0"); err != nil || v != "0" {
		t.Errorf("level 4 smDirectoryDigestFalseHits = %q (%v), want 0", v, err)
	}
}
