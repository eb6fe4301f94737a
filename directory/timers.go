package directory

import (
	"container/heap"
	"time"
)

// timerQueues hold what Maintain must look at: live records with an
// expiry (a min-heap by expiry) and tombstones (a FIFO by the time they
// were stored, which only grows). A record that changed after its item was
// queued leaves a stale item; an item names its record by slot, id and
// version, is checked against the slot when it comes out (a slot freed and
// given to another record fails the check), and the queues are rebuilt
// when stale items dominate.
type timerQueues struct {
	exp   expHeap
	tombs []tombItem
	head  int
}

// timerRef names one version of one record.
type timerRef struct {
	ri  uint32
	id  uint32
	ver Version
}

type expItem struct {
	at uint64 // Unix ms
	timerRef
}

type tombItem struct {
	at int64 // Unix ns
	timerRef
}

type expHeap []expItem

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expItem)) }
func (h *expHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (s *Store) ref(ri uint32) timerRef {
	return timerRef{ri: ri, id: s.recs.at(ri).id, ver: s.version(ri)}
}

// current reports whether t still names its record's current state, and
// that the record is a tombstone (removed) or live (!removed).
func (s *Store) current(t timerRef, removed bool) bool {
	if t.ri >= s.recs.n {
		return false
	}
	r := s.recs.at(t.ri)
	return r.bits&recInUse != 0 && r.id == t.id && (r.bits&recRemoved != 0) == removed && s.version(t.ri) == t.ver
}

func (s *Store) queueExpiry(ri uint32, at uint64) {
	heap.Push(&s.timers.exp, expItem{at: at, timerRef: s.ref(ri)})
}

func (s *Store) queueTombstone(ri uint32, now time.Time) {
	s.timers.tombs = append(s.timers.tombs, tombItem{at: now.UnixNano(), timerRef: s.ref(ri)})
}

// nextExpired pops the next live record whose expiry is at or before now.
func (s *Store) nextExpired(nowMs uint64) (uint32, bool) {
	q := &s.timers
	for len(q.exp) > 0 && q.exp[0].at <= nowMs {
		it := heap.Pop(&q.exp).(expItem)
		if s.current(it.timerRef, false) {
			if _, _, e := s.recs.values(it.ri); e == it.at {
				return it.ri, true
			}
		}
	}
	return 0, false
}

// nextTombstone pops the next tombstone stored at or before cutoff.
func (s *Store) nextTombstone(cutoff time.Time) (uint32, bool) {
	q := &s.timers
	c := cutoff.UnixNano()
	for q.head < len(q.tombs) && q.tombs[q.head].at <= c {
		it := q.tombs[q.head]
		q.tombs[q.head] = tombItem{}
		q.head++
		if s.current(it.timerRef, true) {
			return it.ri, true
		}
	}
	return 0, false
}

// compactTimers frees the consumed FIFO prefix and drops stale heap items
// when the queues hold much more than the store has records.
func (s *Store) compactTimers(records int) {
	q := &s.timers
	if q.head > 1024 && q.head > len(q.tombs)/2 {
		q.tombs = append([]tombItem(nil), q.tombs[q.head:]...)
		q.head = 0
	}
	if len(q.tombs)-q.head > 2*records+1024 {
		keep := make([]tombItem, 0, records)
		for _, it := range q.tombs[q.head:] {
			if s.current(it.timerRef, true) {
				keep = append(keep, it)
			}
		}
		q.tombs, q.head = keep, 0
	}
	if len(q.exp) > 2*records+1024 {
		keep := q.exp[:0]
		for _, it := range q.exp {
			if s.current(it.timerRef, false) {
				keep = append(keep, it)
			}
		}
		clear(q.exp[len(keep):])
		q.exp = keep
		heap.Init(&q.exp)
	}
}
