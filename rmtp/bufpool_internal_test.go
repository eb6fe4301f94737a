package rmtp

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

func TestBufPool(t *testing.T) {
	const big = 64 << 10
	tests := []struct {
		name   string
		put    []int // capacities handed back, in order
		get    int
		reused bool // get returns one of them
		left   int  // buffers kept afterwards
	}{
		{"fits", []int{big}, big, true, 0},
		{"smaller fits", []int{big}, big * 3 / 4, true, 0},
		{"too small", []int{big}, big + 1, false, 1},
		{"too wasteful", []int{big}, big/2 - 1, false, 1},
		{"below the minimum is not kept", []int{poolMin - 1}, poolMin - 1, false, 0},
		{"count cap", repeat(poolBuffers+3, big), big, true, poolBuffers - 1},
		{"byte cap", repeat(poolBytes/(1<<20)+2, 1<<20), 1 << 20, true, poolBytes/(1<<20) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p bufPool
			mine := map[*byte]bool{}
			for _, c := range tt.put {
				b := make([]byte, c)
				mine[&b[:1][0]] = true
				p.put(b)
			}
			b := p.get(tt.get)
			if len(b) != tt.get {
				t.Fatalf("len %d, want %d", len(b), tt.get)
			}
			if got := len(b) > 0 && mine[&b[:1][0]]; got != tt.reused {
				t.Fatalf("reused %v, want %v", got, tt.reused)
			}
			if len(p.free) != tt.left {
				t.Fatalf("%d kept, want %d", len(p.free), tt.left)
			}
			total := 0
			for _, f := range p.free {
				total += cap(f)
			}
			if total != p.bytes || p.bytes > poolBytes {
				t.Fatalf("bytes %d, counted %d, cap %d", total, p.bytes, poolBytes)
			}
		})
	}
}

func repeat(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// gateTransport holds the first DATA datagram's send until open is closed, and records
// every datagram as it was when sent.
type gateTransport struct {
	*recTransport
	first   atomic.Bool
	waiting chan struct{}
	open    chan struct{}
}

func (g *gateTransport) Send(d Dest, b []byte) error {
	if p, err := wire.ParsePacket(b); err == nil && p.Type == wire.TypeData && g.first.CompareAndSwap(false, true) {
		close(g.waiting)
		<-g.open
	}
	return g.recTransport.Send(d, b)
}

// A message that finishes before its first transmission is out (here: no
// members, so at once) gives its slab back only after it was sent: another
// Start meanwhile gets a buffer of its own, and what went out is what the
// caller gave.
func TestSlabNotReusedWhileSent(t *testing.T) {
	g := &gateTransport{recTransport: newRecTransport(), waiting: make(chan struct{}), open: make(chan struct{})}
	e, err := New(g, quietConfig(1, Manager))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a, b := bytes.Repeat([]byte{'a'}, 64<<10), bytes.Repeat([]byte{'b'}, 64<<10)
	ctx := context.Background()
	started := make(chan error, 1)
	go func() {
		_, err := e.Start(ctx, 1, Down, a)
		started <- err
	}()
	<-g.waiting // a's first segment is being sent
	if _, err := e.Start(ctx, 1, Down, b); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	got := map[uint64][]byte{}
	for _, p := range g.take(wire.TypeData) {
		got[p.MsgID] = append(got[p.MsgID], p.Payload...)
	}
	if !bytes.Equal(got[1], a) || !bytes.Equal(got[2], b) {
		t.Fatalf("sent %d and %d bytes, not the two messages as given", len(got[1]), len(got[2]))
	}
	// Both slabs are back once their sends are over.
	if len(e.bufs.free) != 2 {
		t.Fatalf("%d slabs in the pool, want 2", len(e.bufs.free))
	}
	if _, err := e.Start(ctx, 1, Down, a); err != nil {
		t.Fatal(err)
	}
	if len(e.bufs.free) != 2 {
		t.Fatalf("%d slabs in the pool after a third message, want 2 (one taken, one given back)", len(e.bufs.free))
	}
}
