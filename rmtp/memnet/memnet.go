// Package memnet is an in-memory network for rmtp's tests and benchmarks:
// nodes in the farm group or the managers' group, with loss, duplication
// and reordering injected independently per receiver, plus Impair, which
// injects the same faults below any other rmtp.Transport (real UDP
// multicast included). It owns no protocol logic.
package memnet

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Faults are the impairments applied to what one receiver gets. Each is a
// probability in [0, 1], drawn independently per datagram.
type Faults struct {
	Loss    float64
	Dup     float64
	Reorder float64       // the datagram is held back and delivered late
	Delay   time.Duration // how late a reordered datagram comes (default 300µs)
}

// Stats counts what the fault injector did.
type Stats struct {
	Delivered, Dropped, Duplicated, Reordered, Overflowed uint64
}

// injector applies Faults and feeds a bounded inbox.
type injector struct {
	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	inbox  chan rmtp.Datagram
	done   chan struct{}
	closed bool
	timers sync.WaitGroup
	stats  struct{ delivered, dropped, duplicated, reordered, overflowed atomic.Uint64 }
}

func newInjector(f Faults, seed uint64, depth int) *injector {
	if f.Delay == 0 {
		f.Delay = 300 * time.Microsecond
	}
	return &injector{faults: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		inbox: make(chan rmtp.Datagram, depth), done: make(chan struct{})}
}

func (in *injector) setFaults(f Faults) {
	if f.Delay == 0 {
		f.Delay = 300 * time.Microsecond
	}
	in.mu.Lock()
	in.faults = f
	in.mu.Unlock()
}

// put delivers d subject to the faults. Never blocks: a full inbox drops,
// as a full socket buffer would.
func (in *injector) put(d rmtp.Datagram) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	f := in.faults
	drop := in.rng.Float64() < f.Loss
	dup := in.rng.Float64() < f.Dup
	late := in.rng.Float64() < f.Reorder
	if drop {
		in.mu.Unlock()
		in.stats.dropped.Add(1)
		return
	}
	if late {
		in.stats.reordered.Add(1)
		in.timers.Add(1)
		in.mu.Unlock()
		time.AfterFunc(f.Delay, func() {
			defer in.timers.Done()
			in.push(d)
		})
	} else {
		in.mu.Unlock()
		in.push(d)
	}
	if dup {
		in.stats.duplicated.Add(1)
		in.push(rmtp.Datagram{Data: append([]byte(nil), d.Data...), From: d.From})
	}
}

func (in *injector) push(d rmtp.Datagram) {
	select {
	case <-in.done:
		return
	default:
	}
	select {
	case in.inbox <- d:
		in.stats.delivered.Add(1)
	default:
		in.stats.overflowed.Add(1)
	}
}

func (in *injector) recv() (rmtp.Datagram, error) {
	select {
	case d := <-in.inbox:
		return d, nil
	case <-in.done:
		return rmtp.Datagram{}, rmtp.ErrClosed
	}
}

func (in *injector) close() {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.done)
	}
	in.mu.Unlock()
	in.timers.Wait()
}

func (in *injector) snapshot() Stats {
	return Stats{Delivered: in.stats.delivered.Load(), Dropped: in.stats.dropped.Load(),
		Duplicated: in.stats.duplicated.Load(), Reordered: in.stats.reordered.Load(),
		Overflowed: in.stats.overflowed.Load()}
}

// Network is an in-memory LAN with the two rmtp groups.
type Network struct {
	mu     sync.Mutex
	mtu    int
	nodes  map[netip.AddrPort]*Node
	nextIP uint32
	tap    func(from netip.AddrPort, to rmtp.Dest, b []byte)
}

// New returns a network whose datagrams are at most mtu bytes (0 = 1472,
// Ethernet's UDP payload).
func New(mtu int) *Network {
	if mtu == 0 {
		mtu = 1472
	}
	return &Network{mtu: mtu, nodes: make(map[netip.AddrPort]*Node), nextIP: 1}
}

// SetTap installs a function that sees every datagram sent to a group
// (tests use it to observe protocol order). It runs on the sender's
// goroutine and must not block, nor keep b once it returns (Send may not).
func (n *Network) SetTap(f func(from netip.AddrPort, to rmtp.Dest, b []byte)) {
	n.mu.Lock()
	n.tap = f
	n.mu.Unlock()
}

// Node is one attachment to the network; it implements rmtp.Transport.
type Node struct {
	net    *Network
	addr   netip.AddrPort
	joinUp bool
	in     *injector
	closed atomic.Bool
}

// Attach adds a node. joinUp puts it in the managers' group as well as the
// farm group. Faults apply to what this node receives; seed makes them
// reproducible.
func (n *Network) Attach(joinUp bool, f Faults, seed uint64) *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	ip := n.nextIP
	n.nextIP++
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(ip >> 16), byte(ip >> 8), byte(ip)}), 7377)
	node := &Node{net: n, addr: addr, joinUp: joinUp, in: newInjector(f, seed, 8192)}
	n.nodes[addr] = node
	return node
}

// SetFaults changes the faults applied to what this node receives.
func (nd *Node) SetFaults(f Faults) { nd.in.setFaults(f) }

// Stats returns the fault injector's counters for this node.
func (nd *Node) Stats() Stats { return nd.in.snapshot() }

// Send implements rmtp.Transport: every node of the group gets a copy,
// the sender included (multicast loopback).
func (nd *Node) Send(to rmtp.Dest, b []byte) error {
	if nd.closed.Load() {
		return rmtp.ErrClosed
	}
	n := nd.net
	n.mu.Lock()
	tap := n.tap
	dst := make([]*Node, 0, len(n.nodes))
	for _, o := range n.nodes {
		if to == rmtp.Down || o.joinUp {
			dst = append(dst, o)
		}
	}
	n.mu.Unlock()
	if tap != nil {
		tap(nd.addr, to, b)
	}
	for _, o := range dst {
		o.in.put(rmtp.Datagram{Data: append([]byte(nil), b...), From: nd.addr})
	}
	return nil
}

// SendTo implements rmtp.Transport.
func (nd *Node) SendTo(to netip.AddrPort, b []byte) error {
	if nd.closed.Load() {
		return rmtp.ErrClosed
	}
	nd.net.mu.Lock()
	o := nd.net.nodes[to]
	nd.net.mu.Unlock()
	if o != nil {
		o.in.put(rmtp.Datagram{Data: append([]byte(nil), b...), From: nd.addr})
	}
	return nil
}

// Recv implements rmtp.Transport.
func (nd *Node) Recv() (rmtp.Datagram, error) { return nd.in.recv() }

// MaxDatagram implements rmtp.Transport.
func (nd *Node) MaxDatagram() int { return nd.net.mtu }

// LocalAddr implements rmtp.Transport.
func (nd *Node) LocalAddr() netip.AddrPort { return nd.addr }

// Close implements rmtp.Transport: the node leaves the network.
func (nd *Node) Close() error {
	if nd.closed.Swap(true) {
		return nil
	}
	nd.net.mu.Lock()
	delete(nd.net.nodes, nd.addr)
	nd.net.mu.Unlock()
	nd.in.close()
	return nil
}

// Impaired wraps another transport and injects faults into what it
// receives, below the protocol.
type Impaired struct {
	rmtp.Transport
	in *injector
	wg sync.WaitGroup
}

// Impair wraps t: a goroutine reads t and feeds the fault injector, until
// Close.
func Impair(t rmtp.Transport, f Faults, seed uint64) *Impaired {
	im := &Impaired{Transport: t, in: newInjector(f, seed, 8192)}
	im.wg.Add(1)
	go func() {
		defer im.wg.Done()
		for {
			d, err := t.Recv()
			if err != nil {
				return
			}
			im.in.put(d)
		}
	}()
	return im
}

// Recv implements rmtp.Transport.
func (im *Impaired) Recv() (rmtp.Datagram, error) { return im.in.recv() }

// Stats returns the fault injector's counters.
func (im *Impaired) Stats() Stats { return im.in.snapshot() }

// Close closes the wrapped transport and stops the reader.
func (im *Impaired) Close() error {
	err := im.Transport.Close()
	im.wg.Wait()
	im.in.close()
	return err
}
