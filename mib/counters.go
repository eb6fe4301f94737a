package mib

import (
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// DefaultMaxTrackedCounters bounds the OIDs whose sums the manager keeps
// monotonic; GET works for any OID of the engines, so the set is open.
const DefaultMaxTrackedCounters = 1024

// reading is one engine's value of a counter in one fan-out.
type reading struct {
	engine fanout.NodeID
	value  uint64
	wide   bool // Counter64: a decrease is a restart, never a wrap
}

// window is when a fan-out was in flight: sent at start, answered by done.
type window struct{ start, done time.Time }

// engineCount is what the tracker keeps of one engine's counter.
type engineCount struct {
	last, offset uint64
	seen         window // of the reading that set last
}

// counterSum is one OID's sum: every engine that ever reported it, with
// its last value and the restarts absorbed so far.
type counterSum struct {
	engines map[fanout.NodeID]*engineCount
	total   uint64 // Σ offset+last, kept incrementally
	used    time.Time
}

// counterTracker makes sums of engine counters monotonic (smAggregateSum
// of counters): it keeps every engine's last value and, when a value goes
// back, takes it for a restart and adds the value before it to an offset.
// An engine that leaves keeps its last value in the sum.
//
// Readings arrive from fan-outs that may overlap and complete out of
// order, and from walk snapshots served more than once. A reading taken
// before the one applied is stale and ignored; a decrease seen by a
// fan-out that overlapped the one applied is a reordering, not a restart,
// and is ignored too. An engine restarts in seconds, far longer than a
// fan-out lasts, so the next fan-out that does not overlap sees it.
type counterTracker struct {
	max int
	now func() time.Time

	mu            sync.Mutex
	sums          map[string]*counterSum
	discontinuity time.Time // zero: none since start
}

func newCounterTracker(max int, now func() time.Time) *counterTracker {
	if max <= 0 {
		max = DefaultMaxTrackedCounters
	}
	return &counterTracker{max: max, now: now, sums: make(map[string]*counterSum)}
}

func oidKey(o smi.OID) string {
	b := make([]byte, 0, 4*len(o))
	for _, v := range o {
		b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return string(b)
}

// update applies the readings of one fan-out of oid and returns the sum,
// and whether the OID has a sum at all (some engine ever reported it).
func (t *counterTracker) update(oid smi.OID, w window, rs []reading) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := oidKey(oid)
	s := t.sums[key]
	if s == nil {
		if len(rs) == 0 {
			return 0, false
		}
		if len(t.sums) >= t.max {
			t.evictLocked()
		}
		s = &counterSum{engines: make(map[fanout.NodeID]*engineCount, len(rs))}
		t.sums[key] = s
	} else if len(rs) > 0 {
		s.used = t.now()
	}
	created := len(s.engines) == 0
	for _, r := range rs {
		e := s.engines[r.engine]
		if e == nil {
			// The engines of the first reading bring their whole count:
			// the sum starts as the farm's total. An engine joining later
			// brings only what it counts from now on, so that a rate
			// computed from the sum never sees a burst that was not
			// traffic.
			s.engines[r.engine] = &engineCount{last: r.value, seen: w}
			if created {
				s.total += r.value
			}
			continue
		}
		if w.start.Before(e.seen.start) {
			continue // taken before the reading applied: stale
		}
		before := e.offset + e.last
		switch {
		case r.value >= e.last:
			e.last = r.value
		case w.start.Before(e.seen.done):
			continue // overlapping fan-outs answered out of order
		case !r.wide && e.last >= 1<<31 && e.last-r.value >= 1<<31:
			// A Counter32 that went back by more than half its range
			// wrapped (RFC 2578 §7.1.6); a restart from so high is
			// rarer than a wrap.
			e.offset += 1 << 32
			e.last = r.value
		default:
			e.offset += e.last // restart: keep what it had counted
			e.last = r.value
		}
		e.seen = w
		s.total += e.offset + e.last - before
	}
	if created {
		s.used = t.now()
	}
	return s.total, true
}

// evictLocked drops the least recently used sum. Its OID starts again
// from the engines' current values when asked next, a jump that
// smAggregateDiscontinuityTime reports.
func (t *counterTracker) evictLocked() {
	var oldKey string
	var oldest time.Time
	first := true
	for k, s := range t.sums {
		if first || s.used.Before(oldest) {
			oldKey, oldest, first = k, s.used, false
		}
	}
	delete(t.sums, oldKey)
	t.discontinuity = t.now()
}

// lastDiscontinuity returns when a sum last jumped (zero: never).
func (t *counterTracker) lastDiscontinuity() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.discontinuity
}

// tracked returns the number of OIDs with a sum.
func (t *counterTracker) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sums)
}
