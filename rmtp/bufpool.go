package rmtp

import "sync"

// Reassembly buffers handed back by Message.Release wait here for the next
// message split into segments. At a high message rate each such message
// otherwise allocates its size afresh, on every receiver: with 256 KiB
// messages and a heap of a few MiB the garbage collector then runs every
// few messages, and the runtime keeps returning the freed pages to the
// kernel and faulting them back in. Measured with BenchmarkGoodput256K:
// see the package README.
const (
	poolBuffers = 16      // buffers kept at most
	poolBytes   = 8 << 20 // bytes kept at most
	// poolMin: smaller buffers are cheap to allocate and not worth
	// the lock.
	poolMin = 16 << 10
)

// bufPool is a bounded free list of reassembly buffers. Its own lock, not
// the endpoint's: Release runs on the application's goroutines.
type bufPool struct {
	mu    sync.Mutex
	free  [][]byte
	bytes int
}

// get returns a buffer of length n, reused when one fits without wasting
// more than half of n again (a 1 MiB buffer is not spent on 20 KiB).
// A reused buffer is not zeroed: reassembly writes every byte of the
// message before it is delivered, and only the message's bytes are.
func (p *bufPool) get(n int) []byte {
	if n >= poolMin {
		p.mu.Lock()
		for i, b := range p.free {
			if c := cap(b); c >= n && c <= n+n/2 {
				last := len(p.free) - 1
				p.free[i], p.free[last] = p.free[last], nil
				p.free = p.free[:last]
				p.bytes -= c
				p.mu.Unlock()
				return b[:n]
			}
		}
		p.mu.Unlock()
	}
	return make([]byte, n)
}

// put keeps b for a later get if there is room; otherwise it is left to
// the garbage collector.
func (p *bufPool) put(b []byte) {
	c := cap(b)
	if c < poolMin {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) >= poolBuffers || p.bytes+c > poolBytes {
		return
	}
	p.free = append(p.free, b[:0])
	p.bytes += c
}

// Release hands the message's payload buffer back to the endpoint that
// received it, for a later message to reuse. Calling it is optional: a
// message never released is garbage collected as usual. It pays off for
// a receiver of large messages at a high rate (bulk directory transfers),
// where it saves the allocation of every message's size and the garbage
// collections that follow. After Release, neither m.Payload nor any slice
// of it may be used: the bytes will be overwritten. Release is safe to
// call from any goroutine; a second call does nothing.
func (m *Message) Release() {
	if m.pool != nil {
		m.pool.put(m.whole)
	}
	m.pool, m.whole, m.Payload = nil, nil, nil
}
