package mib

import (
	"slices"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// DefaultMaxTrackedCounters bounds the OIDs whose sums the manager keeps
// monotonic; GET works for any OID of the engines, so the set is open.
const DefaultMaxTrackedCounters = 1024

// reading is one engine's value of a counter in one fan-out.
type reading struct {
	engine fanout.NodeID
	inc    uint64 // the engine's incarnation when it answered; 0: unknown
	value  uint64
	wide   bool // Counter64: a decrease is a restart, never a wrap
}

// window is when a fan-out was in flight: sent at start, answered by done.
type window struct{ start, done time.Time }

// engineCount is what the tracker keeps of one engine's counter. What it
// adds to the sum is offset+last, modulo 2^64 like every sum here: an
// engine that joined a sum late starts with an offset of minus its first
// value, so it adds nothing it counted before it joined.
type engineCount struct {
	inc          uint64 // incarnation of the reading that set last; 0: unknown
	last, offset uint64
	seen         window // of the reading that set last
}

// counterSum is one OID's sum: every engine that ever reported it, with
// its last value and the restarts absorbed so far.
type counterSum struct {
	engines map[fanout.NodeID]*engineCount
	total   uint64 // Σ offset+last of the engines, kept incrementally
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
// Readings carry the engine's incarnation, which settles both questions
// without timing: an older incarnation is stale, a newer one restarted
// (even when its count already passed the old one's).
//
// The active manager replicates the tracker to its backups (export,
// adopt), so a backup that takes over continues every sum from the
// offsets the NMS was answered with.
type counterTracker struct {
	max int
	now func() time.Time

	mu            sync.Mutex
	sums          map[string]*counterSum
	discontinuity time.Time // zero: none since start
	changed       func()    // a sum moved: replicate soon; nil = nobody listens
}

func newCounterTracker(max int, now func() time.Time) *counterTracker {
	if max <= 0 {
		max = DefaultMaxTrackedCounters
	}
	return &counterTracker{max: max, now: now, sums: make(map[string]*counterSum)}
}

// oidList is a list of OIDs without repeats, in the order first added:
// what one fan-out asks for the varbinds of a request.
type oidList struct {
	oids []smi.OID
	pos  map[string]int
}

// add returns o's index in the list, adding it if it is new.
func (l *oidList) add(o smi.OID) int {
	k := oidKey(o)
	if j, ok := l.pos[k]; ok {
		return j
	}
	if l.pos == nil {
		l.pos = make(map[string]int)
	}
	l.pos[k] = len(l.oids)
	l.oids = append(l.oids, o)
	return len(l.oids) - 1
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
	total, ok, moved := t.updateLocked(oid, w, rs)
	changed := t.changed
	t.mu.Unlock()
	if moved && changed != nil {
		changed()
	}
	return total, ok
}

// updateLocked is update; moved reports whether anything a backup keeps
// changed.
func (t *counterTracker) updateLocked(oid smi.OID, w window, rs []reading) (total uint64, ok, moved bool) {
	key := oidKey(oid)
	s := t.sums[key]
	if s == nil {
		if len(rs) == 0 {
			return 0, false, false
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
			e := &engineCount{inc: r.inc, last: r.value, seen: w}
			if !created {
				e.offset = 0 - r.value // adds offset+last = 0 now
			}
			s.engines[r.engine] = e
			s.total += e.offset + e.last
			moved = true
			continue
		}
		known := r.inc != 0 && e.inc != 0
		if known && r.inc < e.inc {
			continue // from the incarnation before the one applied: stale
		}
		if known && r.inc > e.inc {
			// Restarted, whatever the value and the windows say: keep
			// what the old incarnation had counted.
			e.offset += e.last
			s.total += r.value
			e.inc, e.last, e.seen = r.inc, r.value, w
			moved = true
			continue
		}
		if w.start.Before(e.seen.start) {
			continue // taken before the reading applied: stale
		}
		if e.inc == 0 {
			e.inc = r.inc
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
		if after := e.offset + e.last; after != before {
			s.total += after - before
			moved = true
		}
	}
	if created {
		s.used = t.now()
	}
	return s.total, true, moved
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

// markDiscontinuity moves smAggregateDiscontinuityTime to at: the sums
// may have jumped (a takeover without the previous manager's state).
func (t *counterTracker) markDiscontinuity(at time.Time) {
	t.mu.Lock()
	if at.After(t.discontinuity) {
		t.discontinuity = at
	}
	changed := t.changed
	t.mu.Unlock()
	if changed != nil {
		changed()
	}
}

// export returns the sums for the backups, the most recently used first
// (a sender over its size cap leaves out the tail), each with its engines
// by id, and when a sum last jumped.
func (t *counterTracker) export() ([]wire.Sum, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type keyed struct {
		key string
		s   *counterSum
	}
	all := make([]keyed, 0, len(t.sums))
	for k, s := range t.sums {
		all = append(all, keyed{k, s})
	}
	slices.SortFunc(all, func(a, b keyed) int {
		if c := b.s.used.Compare(a.s.used); c != 0 {
			return c
		}
		return compareKeys(a.key, b.key)
	})
	out := make([]wire.Sum, 0, len(all))
	for _, k := range all {
		ws := wire.Sum{OID: keyOID(k.key), Engines: make([]wire.Count, 0, len(k.s.engines))}
		for id, e := range k.s.engines {
			ws.Engines = append(ws.Engines, wire.Count{Engine: uint32(id), Incarnation: e.inc, Last: e.last, Offset: e.offset})
		}
		slices.SortFunc(ws.Engines, func(a, b wire.Count) int { return int(int64(a.Engine) - int64(b.Engine)) })
		out = append(out, ws)
	}
	return out, t.discontinuity
}

// adopt takes the active manager's sums. Per engine it keeps whichever
// count is larger, the one received or its own (this manager may have read
// the engine more recently), so no sum it answers goes back; an adopted
// count is taken as read now, so a reading of this manager that was in
// flight meanwhile is ignored rather than taken for a restart.
func (t *counterTracker) adopt(sums []wire.Sum, discontinuity time.Time) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if discontinuity.After(t.discontinuity) {
		t.discontinuity = discontinuity
	}
	for _, ws := range sums {
		if len(ws.OID) == 0 {
			continue
		}
		key := oidKey(ws.OID)
		s := t.sums[key]
		if s == nil {
			if len(t.sums) >= t.max {
				t.evictLocked()
			}
			s = &counterSum{engines: make(map[fanout.NodeID]*engineCount, len(ws.Engines)), used: now}
			t.sums[key] = s
		}
		for _, c := range ws.Engines {
			id := fanout.NodeID(c.Engine)
			e := s.engines[id]
			if e != nil && e.offset+e.last > c.Offset+c.Last {
				continue
			}
			if e == nil {
				e = &engineCount{}
				s.engines[id] = e
			}
			s.total += c.Offset + c.Last - (e.offset + e.last)
			e.inc, e.last, e.offset, e.seen = c.Incarnation, c.Last, c.Offset, window{start: now, done: now}
		}
	}
}

// keyOID is oidKey's inverse.
func keyOID(k string) smi.OID {
	o := make(smi.OID, len(k)/4)
	for i := range o {
		o[i] = uint32(k[4*i])<<24 | uint32(k[4*i+1])<<16 | uint32(k[4*i+2])<<8 | uint32(k[4*i+3])
	}
	return o
}

func compareKeys(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
