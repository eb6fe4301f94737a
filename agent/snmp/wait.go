package snmp

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/smsnmpd/smsnmpd/agent"
)

// waiter is one request's way out of the worker pool. The Tree calls wait
// (through agent.WithWait) on the request's goroutine before the first
// handler that may block: the request is admitted among the at most
// MaxInFlight requests waiting on the farm, a new worker takes this
// goroutine's place in the pool, and the request goes on with the
// goroutine, answering when its handlers return. Beyond MaxInFlight it is
// refused (agent.ErrBusy) and dropped without an answer.
type waiter struct {
	s       *server
	j       job
	left    bool // admitted: counted in waiting, the pool has a new worker
	refused bool
	key     pendKey
	keyed   bool // in the pending map under key
}

func (w *waiter) wait() error {
	switch {
	case w.left:
		return nil
	case w.refused:
		return agent.ErrBusy
	}
	a := w.s.a
	if a.waiting.Add(1) > int64(a.cfg.MaxInFlight) {
		a.waiting.Add(-1)
		w.refused = true
		return agent.ErrBusy
	}
	w.left = true
	a.pend.add(w)
	w.s.startWorker()
	return nil
}

// done ends an admitted request once its answer is sent.
func (w *waiter) done() {
	w.s.a.pend.remove(w)
	w.s.a.waiting.Add(-1)
}

// pendKey names a request as its manager sends it again: where it came
// from and a hash of its bytes (so the same request-id, community or
// user, PDU and varbinds, in any version, without decoding it).
type pendKey struct {
	from netip.AddrPort
	sum  uint64
}

// pending holds the requests waiting on the farm, so that a manager's
// retransmission (same source and bytes) joins the request instead of
// starting a second farm transaction. It holds at most MaxInFlight
// entries: only admitted requests enter, and each leaves when answered.
type pending struct {
	seed maphash.Seed
	n    atomic.Int32 // entries: read without the lock by every request
	mu   sync.Mutex
	m    map[pendKey]*waiter
}

func newPending() pending {
	return pending{seed: maphash.MakeSeed(), m: make(map[pendKey]*waiter)}
}

func (p *pending) key(j job) pendKey {
	return pendKey{from: j.from, sum: maphash.Bytes(p.seed, j.pkt)}
}

func (p *pending) add(w *waiter) {
	w.key = p.key(w.j)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.m[w.key]; dup {
		return // a copy that came in before the first left the pool: served, not joinable
	}
	p.m[w.key] = w
	w.keyed = true
	p.n.Add(1)
}

func (p *pending) remove(w *waiter) {
	if !w.keyed {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[w.key] == w {
		delete(p.m, w.key)
		p.n.Add(-1)
	}
}

// join reports whether j is a copy of a request still waiting: its answer,
// when it comes, answers the copy too (the manager matches it by
// request-id), so the copy is dropped.
func (p *pending) join(j job) bool {
	if p.n.Load() == 0 {
		return false
	}
	k := p.key(j)
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.m[k]
	return w != nil && bytes.Equal(w.j.pkt, j.pkt)
}
