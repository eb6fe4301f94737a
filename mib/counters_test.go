package mib

import (
	"testing"
	"time"

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
