package directory

import (
	"container/heap"
	"time"
)

// timerQueues hold what Maintain must look at: live records with an
// expiry (a min-heap by expiry) and tombstones (a FIFO by the time they
// were stored, which only grows). A record that changed after its item was
// queued leaves a stale item; items are checked against the record when
// they come out, and the queues are rebuilt when stale items dominate.
type timerQueues struct {
	exp   expHeap
	tombs []tombItem
	head  int
}

type expItem struct {
	at  uint64 // Unix ms
	r   *record
	ver Version
}

type tombItem struct {
	at  int64 // Unix ns
	r   *record
	ver Version
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

func (q *timerQueues) expire(r *record, at uint64) {
	heap.Push(&q.exp, expItem{at: at, r: r, ver: r.ver})
}

func (q *timerQueues) tombstone(r *record) {
	q.tombs = append(q.tombs, tombItem{at: r.stored, r: r, ver: r.ver})
}

// nextExpired pops the next live record whose expiry is at or before now.
func (q *timerQueues) nextExpired(nowMs uint64) (*record, bool) {
	for len(q.exp) > 0 && q.exp[0].at <= nowMs {
		it := heap.Pop(&q.exp).(expItem)
		r := it.r
		if !r.gone && !r.removed && r.ver == it.ver && r.expiry == it.at {
			return r, true
		}
	}
	return nil, false
}

// nextTombstone pops the next tombstone stored at or before cutoff.
func (q *timerQueues) nextTombstone(cutoff time.Time) (*record, bool) {
	c := cutoff.UnixNano()
	for q.head < len(q.tombs) && q.tombs[q.head].at <= c {
		it := q.tombs[q.head]
		q.tombs[q.head] = tombItem{}
		q.head++
		r := it.r
		if !r.gone && r.removed && r.ver == it.ver && r.stored == it.at {
			return r, true
		}
	}
	return nil, false
}

// compact frees the consumed FIFO prefix and drops stale heap items when
// the queues hold much more than the store has records.
func (q *timerQueues) compact(records int) {
	if q.head > 1024 && q.head > len(q.tombs)/2 {
		q.tombs = append([]tombItem(nil), q.tombs[q.head:]...)
		q.head = 0
	}
	if len(q.tombs)-q.head > 2*records+1024 {
		keep := make([]tombItem, 0, records)
		for _, it := range q.tombs[q.head:] {
			if !it.r.gone && it.r.removed && it.r.ver == it.ver && it.r.stored == it.at {
				keep = append(keep, it)
			}
		}
		q.tombs, q.head = keep, 0
	}
	if len(q.exp) > 2*records+1024 {
		keep := q.exp[:0]
		for _, it := range q.exp {
			if !it.r.gone && !it.r.removed && it.r.ver == it.ver && it.r.expiry == it.at {
				keep = append(keep, it)
			}
		}
		clear(q.exp[len(keep):])
		q.exp = keep
		heap.Init(&q.exp)
	}
}
