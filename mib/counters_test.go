package mib

import (
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func win(startMs, doneMs int) window {
	return window{start: t0.Add(time.Duration(startMs) * time.Millisecond), done: t0.Add(time.Duration(doneMs) * time.Millisecond)}
}

func one(v uint64) []reading { return []reading{{engine: 1, value: v, wide: true}} }

// TestTrackerOrder: readings of overlapping fan-outs that arrive out of
// order, and snapshots served again, never look like a restart.
func TestTrackerOrder(t *testing.T) {
	tr := newCounterTracker(0, func() time.Time { return t0 })
	o := smi.OID{1, 2}
	steps := []struct {
		name string
		w    window
		v    uint64
		want uint64
	}{
		{"first", win(0, 10), 100, 100},
		{"grows", win(20, 30), 150, 150},
		{"older fan-out answered late", win(15, 40), 120, 150},   // started before the applied one
		{"overlapping, lower", win(25, 45), 140, 150},            // overlapped it: reordering
		{"same snapshot again", win(20, 30), 150, 150},           // idempotent
		{"restart seen by a later fan-out", win(50, 60), 5, 155}, // does not overlap: restart
		{"grows after restart", win(70, 80), 25, 175},
		{"stale pre-restart reading", win(40, 90), 150, 175}, // started before the applied one
	}
	for _, s := range steps {
		got, ok := tr.update(o, s.w, one(s.v))
		if !ok || got != s.want {
			t.Errorf("%s: sum %d, want %d", s.name, got, s.want)
		}
	}
	if got, ok := tr.update(o, win(100, 110), nil); !ok || got != 175 {
		t.Errorf("nobody answering: %d %v, want 175", got, ok)
	}
	if _, ok := tr.update(smi.OID{9}, win(100, 110), nil); ok {
		t.Error("an OID nobody ever reported has a sum")
	}
}

func TestTrackerCounter32(t *testing.T) {
	tr := newCounterTracker(0, func() time.Time { return t0 })
	o := smi.OID{1}
	c32 := func(v uint64) []reading { return []reading{{engine: 1, value: v}} }
	tr.update(o, win(0, 1), c32(4_000_000_000))
	if got, _ := tr.update(o, win(2, 3), c32(100)); got != 4_000_000_000+(1<<32-4_000_000_000)+100 {
		t.Errorf("wrap: %d", got)
	}
	// A Counter32 that goes back from low values restarted.
	tr2 := newCounterTracker(0, func() time.Time { return t0 })
	tr2.update(o, win(0, 1), c32(1000))
	if got, _ := tr2.update(o, win(2, 3), c32(10)); got != 1010 {
		t.Errorf("restart of a Counter32: %d, want 1010", got)
	}
}

func TestTrackerEviction(t *testing.T) {
	now := t0
	tr := newCounterTracker(2, func() time.Time { return now })
	tr.update(smi.OID{1}, win(0, 1), one(10))
	now = now.Add(time.Second)
	tr.update(smi.OID{2}, win(0, 1), one(20))
	now = now.Add(time.Second)
	tr.update(smi.OID{1}, win(2, 3), one(11)) // 1 is now the most recent
	if !tr.lastDiscontinuity().IsZero() {
		t.Fatal("discontinuity before any eviction")
	}
	now = now.Add(time.Second)
	tr.update(smi.OID{3}, win(4, 5), one(30))
	if tr.tracked() != 2 {
		t.Errorf("%d sums tracked, cap 2", tr.tracked())
	}
	if !tr.lastDiscontinuity().Equal(now) {
		t.Errorf("discontinuity %v, want %v", tr.lastDiscontinuity(), now)
	}
	if _, ok := tr.update(smi.OID{2}, win(6, 7), nil); ok {
		t.Error("the least recently used sum was kept")
	}
	if got, ok := tr.update(smi.OID{1}, win(6, 7), nil); !ok || got != 11 {
		t.Errorf("the recently used sum: %d %v", got, ok)
	}
}

// at is a reading of engine e in incarnation inc.
func at(e fanout.NodeID, inc, v uint64) reading {
	return reading{engine: e, inc: inc, value: v, wide: true}
}

// TestTrackerIncarnation: the incarnation settles what timing cannot: a
// new one restarted even when its count already passed the old one's, an
// old one answering late is stale.
func TestTrackerIncarnation(t *testing.T) {
	tr := newCounterTracker(0, func() time.Time { return t0 })
	o := smi.OID{1, 2}
	steps := []struct {
		name string
		w    window
		r    reading
		want uint64
	}{
		{"first", win(0, 10), at(1, 100, 50), 50},
		{"grows", win(20, 30), at(1, 100, 80), 80},
		{"restarted and already past the old count", win(40, 50), at(1, 200, 90), 170},
		{"the old incarnation answering late", win(60, 70), at(1, 100, 85), 170},
		{"overlapping fan-out of the same incarnation, lower", win(45, 75), at(1, 200, 88), 170},
		{"grows", win(80, 90), at(1, 200, 100), 180},
	}
	for _, s := range steps {
		if got, ok := tr.update(o, s.w, []reading{s.r}); !ok || got != s.want {
			t.Errorf("%s: sum %d, want %d", s.name, got, s.want)
		}
	}
}

// replicate runs a tracker's state through the wire codec into another,
// as the replication does.
func replicate(t *testing.T, from, to *counterTracker) {
	t.Helper()
	sums, disc := from.export()
	st := &wire.State{Node: 1, Sums: sums}
	if !disc.IsZero() {
		st.Discontinuity = disc.UnixNano()
	}
	b, err := wire.Append(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var d time.Time
	if got.Discontinuity != 0 {
		d = time.Unix(0, got.Discontinuity)
	}
	to.adopt(got.Sums, d)
}

// TestTrackerRestoredFromReplica: a backup that adopted the active
// manager's tracker continues its sums, restart offsets included: the
// figure of issue 14 (4,137,465 before the SM's SIGKILL, 513,858 after)
// came from a backup that started its sums afresh.
func TestTrackerRestoredFromReplica(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	sm := newCounterTracker(0, clock)
	o := smi.OID{1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 42, 1, 3, 4, 0}
	sm.update(o, win(0, 1), []reading{at(1, 10, 3_000_000), at(2, 20, 600_000)})
	sm.update(o, win(10, 11), []reading{at(1, 11, 400_000), at(2, 20, 700_000)})               // engine 1 restarted
	sm.update(o, win(20, 21), []reading{at(1, 11, 420_000), at(2, 20, 710_000), at(3, 30, 5)}) // engine 3 joins
	want, _ := sm.update(o, win(30, 31), []reading{at(1, 11, 430_000), at(2, 20, 717_465), at(3, 30, 7)})
	if want != 3_000_000+430_000+717_465+2 {
		t.Fatalf("the active manager's sum is %d", want)
	}

	bsm := newCounterTracker(0, clock)
	replicate(t, sm, bsm)
	if got, ok := bsm.update(o, win(40, 41), nil); !ok || got != want {
		t.Fatalf("the backup answers %d (%v) before any reading of its own, want the active manager's %d", got, ok, want)
	}
	// The backup takes over and reads the engines: the sum goes on from
	// the active manager's, offsets and the late joiner's base included.
	now = now.Add(time.Second)
	got, _ := bsm.update(o, win(1100, 1101), []reading{at(1, 11, 431_000), at(2, 20, 718_000), at(3, 30, 9)})
	if wantNext := want + 1000 + 535 + 2; got != wantNext {
		t.Errorf("after the takeover the sum is %d, want %d", got, wantNext)
	}
	if !bsm.lastDiscontinuity().IsZero() {
		t.Error("a replicated sum moved the discontinuity time")
	}
}

// TestTrackerAdoptNeverGoesBack: a backup that read an engine more
// recently than the state it receives keeps its own count, and a reading
// of its own in flight while the state arrived is not taken for a
// restart.
func TestTrackerAdoptNeverGoesBack(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	o := smi.OID{1, 2}
	sm := newCounterTracker(0, clock)
	sm.update(o, win(0, 1), []reading{at(1, 10, 100)})
	bsm := newCounterTracker(0, clock)
	bsm.update(o, win(0, 1), []reading{at(1, 10, 100)})
	bsm.update(o, win(5, 6), []reading{at(1, 10, 150)}) // the backup was read too
	replicate(t, sm, bsm)
	if got, _ := bsm.update(o, win(7, 8), nil); got != 150 {
		t.Errorf("the backup's sum after adopting an older count: %d, want 150", got)
	}
	sm.update(o, win(9, 10), []reading{at(1, 10, 200)})
	now = t0.Add(20 * time.Millisecond)
	replicate(t, sm, bsm)
	// A fan-out of the backup's that started before the state arrived
	// answers 180 < 200: late, not a restart.
	if got, _ := bsm.update(o, win(15, 30), []reading{at(1, 10, 180)}); got != 200 {
		t.Errorf("an in-flight reading after the adopt: sum %d, want 200", got)
	}
}
