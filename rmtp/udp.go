package rmtp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Defaults of the UDP transports.
const (
	DefaultInterface  = "lo"
	DefaultReadBuffer = 4 << 20
	// DefaultMulticastTTL keeps the farm's traffic on its LAN.
	DefaultMulticastTTL = 1
	DefaultUnicastMTU   = 1500
	udpIPv4Overhead     = 28
	// batchLen is the most datagrams one recvmmsg/sendmmsg moves, and
	// batchBytes bounds the receive buffers a socket keeps for it, so a
	// 64 KiB MTU reads 2 at a time and Ethernet's 1,500 reads 32.
	batchLen   = 32
	batchBytes = 128 << 10
)

// Default groups: administratively scoped (RFC 2365), so nothing is routed
// off-site even with a wrong TTL.
var (
	DefaultDownGroup = netip.MustParseAddrPort("239.255.77.1:7377")
	DefaultUpGroup   = netip.MustParseAddrPort("239.255.77.2:7377")
)

// MulticastConfig configures ListenMulticast. The zero value means the
// defaults: interface lo, the default groups, TTL 1, 4 MiB receive buffer,
// not in the managers' group.
type MulticastConfig struct {
	Interface  string         // interface to join on and send from
	Down       netip.AddrPort // farm group
	Up         netip.AddrPort // managers' group
	JoinUp     bool           // receive the managers' group too (managers only)
	TTL        int            // multicast TTL, 1 keeps traffic on the LAN
	ReadBuffer int            // SO_RCVBUF asked for each socket
	MTU        int            // 0: the interface's; set lower if a path needs it
	Logger     logrus.FieldLogger
}

// UnicastConfig configures ListenUnicast: rmtp between LANs, where
// multicast does not cross (IPsec, VPN, routed WAN).
type UnicastConfig struct {
	Listen     netip.AddrPort   // local address to bind
	Peers      []netip.AddrPort // every datagram goes to each of them
	MTU        int              // path MTU, default 1500
	ReadBuffer int
	Logger     logrus.FieldLogger
}

// UDP is a Transport over real UDP sockets, multicast or unicast.
type UDP struct {
	send    *net.UDPConn // also receives: the joined groups, or unicast
	groups  []netip.Addr // joined groups when send is bound to the wildcard
	down    netip.AddrPort
	upGroup netip.AddrPort
	peers   []netip.AddrPort // unicast mode
	local   netip.AddrPort
	maxDg   int
	granted int

	pc        *ipv4.PacketConn // the socket, for batches
	toDown    []net.Addr       // sendmmsg destinations, built once
	toUp      []net.Addr
	rb        *recvBatch
	pending   []Datagram // read in a batch, not yet returned
	done      chan struct{}
	closeOnce sync.Once
}

func discard(l logrus.FieldLogger) logrus.FieldLogger {
	if l == nil {
		nl := logrus.New()
		nl.Out = nopWriter{}
		return nl
	}
	return l
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// bindGroup opens a UDP socket bound to g: an engine's one group address
// itself, or the wildcard for a manager's socket that joins both groups.
// The net package cannot do the former: for a multicast address it binds
// the wildcard, and such a socket receives every group joined anywhere on
// the host on that port (engines would get the managers' group), plus
// unicast. SO_REUSEADDR lets several members share a host;
// IP_MULTICAST_ALL off keeps the socket to its own joins (and a manager's
// wildcard socket gets a filter for the rest, see socketFilter).
func bindGroup(g netip.AddrPort) (*net.UDPConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) (*net.UDPConn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("SO_REUSEADDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return fail("IP_MULTICAST_ALL", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(g.Port()), Addr: g.Addr().As4()}); err != nil {
		return fail("bind", err)
	}
	f := os.NewFile(uintptr(fd), "rmtp-"+g.String())
	defer f.Close() // FilePacketConn dups the descriptor
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// ListenMulticast opens the farm group (and the managers' group when
// JoinUp) on one interface, with one socket: an engine's is bound to the
// group address, so it receives nothing else; a manager's joins both
// groups (they share the port) and drops anything else with a socket
// filter, so one goroutine reads both with no hand-off. Groups are joined
// on the named interface; the outgoing interface is set explicitly
// (IP_MULTICAST_IF with the interface's address, so sending works even
// without a multicast route); TTL and loopback are set.
func ListenMulticast(cfg MulticastConfig) (*UDP, error) {
	log := discard(cfg.Logger)
	if cfg.Interface == "" {
		cfg.Interface = DefaultInterface
	}
	if !cfg.Down.IsValid() {
		cfg.Down = DefaultDownGroup
	}
	if !cfg.Up.IsValid() {
		cfg.Up = DefaultUpGroup
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultMulticastTTL
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	for _, g := range []netip.AddrPort{cfg.Down, cfg.Up} {
		if !g.Addr().Is4() || !g.Addr().IsMulticast() {
			return nil, fmt.Errorf("rmtp: group %s is not an IPv4 multicast address", g)
		}
	}
	if cfg.Down.Port() != cfg.Up.Port() || cfg.Down.Addr() == cfg.Up.Addr() {
		return nil, fmt.Errorf("rmtp: groups %s and %s must be two addresses on one port", cfg.Down, cfg.Up)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("rmtp: interface %q: %w", cfg.Interface, err)
	}
	ifAddr, err := interfaceIPv4(ifi)
	if err != nil {
		return nil, err
	}
	t := &UDP{down: cfg.Down, upGroup: cfg.Up, done: make(chan struct{})}
	mtu := ifi.MTU
	if cfg.MTU > 0 && cfg.MTU < mtu {
		mtu = cfg.MTU
	}
	t.maxDg = min(mtu-udpIPv4Overhead, wire.MaxDatagram)
	groups := []netip.Addr{cfg.Down.Addr()}
	if cfg.JoinUp {
		groups = append(groups, cfg.Up.Addr())
	}
	if t.send, err = openGroups(groups, cfg.Down.Port(), ifi, ifAddr, cfg.TTL); err != nil {
		return nil, err
	}
	if len(groups) > 1 {
		t.groups = groups
		prog, err := socketFilter(groups, nil)
		if err == nil {
			err = ipv4.NewPacketConn(t.send).SetBPF(prog)
		}
		if err != nil {
			t.send.Close()
			return nil, fmt.Errorf("rmtp: socket filter: %w", err)
		}
	}
	t.local = netip.AddrPortFrom(ifAddr, cfg.Down.Port())
	t.granted = t.setReadBuffer(cfg.ReadBuffer, log)
	if err := t.start(); err != nil {
		t.send.Close()
		return nil, err
	}
	return t, nil
}

func interfaceIPv4(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("rmtp: interface %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("rmtp: interface %s has no IPv4 address", ifi.Name)
}

// openGroups opens the socket of ListenMulticast: bound to the group
// when there is one, to the wildcard when there are more, joined to each.
func openGroups(groups []netip.Addr, port uint16, ifi *net.Interface, ifAddr netip.Addr, ttl int) (*net.UDPConn, error) {
	g := netip.AddrPortFrom(groups[0], port)
	bind := g
	if len(groups) > 1 {
		bind = netip.AddrPortFrom(netip.IPv4Unspecified(), port)
	}
	c, err := bindGroup(bind)
	if err != nil {
		return nil, fmt.Errorf("rmtp: bind %s: %w", bind, err)
	}
	p := ipv4.NewPacketConn(c)
	fail := func(what string, err error) (*net.UDPConn, error) {
		c.Close()
		return nil, fmt.Errorf("rmtp: %s on %s (%s): %w", what, g, ifi.Name, err)
	}
	for _, a := range groups {
		if err := p.JoinGroup(ifi, &net.UDPAddr{IP: a.AsSlice()}); err != nil {
			g = netip.AddrPortFrom(a, port)
			return fail("join", err)
		}
	}
	// IP_MULTICAST_IF with address and index: x/net sets only the index,
	// and a fresh network namespace has no multicast route without the
	// address.
	rc, err := c.SyscallConn()
	if err != nil {
		return fail("syscall conn", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
			&unix.IPMreqn{Address: ifAddr.As4(), Ifindex: int32(ifi.Index)})
	}); err != nil {
		return fail("IP_MULTICAST_IF", err)
	}
	if serr != nil {
		return fail("IP_MULTICAST_IF", serr)
	}
	if err := p.SetMulticastTTL(ttl); err != nil {
		return fail("TTL", err)
	}
	if err := p.SetMulticastLoopback(true); err != nil {
		return fail("loopback", err)
	}
	return c, nil
}

// ListenUnicast opens one UDP socket for rmtp over unicast: every
// datagram for either group goes to each configured peer.
func ListenUnicast(cfg UnicastConfig) (*UDP, error) {
	log := discard(cfg.Logger)
	if cfg.MTU == 0 {
		cfg.MTU = DefaultUnicastMTU
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if len(cfg.Peers) == 0 {
		return nil, errors.New("rmtp: unicast mode needs at least one peer")
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, fmt.Errorf("rmtp: bind %s: %w", cfg.Listen, err)
	}
	t := &UDP{send: c, peers: append([]netip.AddrPort(nil), cfg.Peers...), done: make(chan struct{})}
	t.local = c.LocalAddr().(*net.UDPAddr).AddrPort()
	t.maxDg = min(cfg.MTU-udpIPv4Overhead, wire.MaxDatagram)
	t.granted = t.setReadBuffer(cfg.ReadBuffer, log)
	if err := t.start(); err != nil {
		t.send.Close()
		return nil, err
	}
	return t, nil
}

// setReadBuffer asks for n bytes of SO_RCVBUF on each socket and returns
// what the kernel granted (it doubles the request for bookkeeping and caps
// it at net.core.rmem_max).
func (t *UDP) setReadBuffer(n int, log logrus.FieldLogger) int {
	granted := 0
	if err := t.send.SetReadBuffer(n); err != nil {
		log.WithError(err).Warn("rmtp: setting the receive buffer failed")
	}
	if rc, err := t.send.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
				granted = v
			}
		})
	}
	l := log.WithFields(logrus.Fields{"asked": n, "granted": granted})
	if granted < n {
		l.Warn("rmtp: receive buffer smaller than asked; raise net.core.rmem_max (see rmtp/README.md)")
	} else {
		l.Info("rmtp: receive buffer")
	}
	return granted
}

// ReadBufferGranted is the SO_RCVBUF the kernel granted.
func (t *UDP) ReadBufferGranted() int { return t.granted }

// start prepares the socket's batches: a read takes every datagram
// waiting, up to batchLen, in one system call (recvmmsg), on the caller's
// goroutine.
func (t *UDP) start() error {
	t.pc = ipv4.NewPacketConn(t.send)
	switch {
	case t.peers != nil:
		for _, p := range t.peers {
			t.toDown = append(t.toDown, net.UDPAddrFromAddrPort(p))
		}
		t.toUp = t.toDown
	default:
		t.toDown = []net.Addr{net.UDPAddrFromAddrPort(t.down)}
		t.toUp = []net.Addr{net.UDPAddrFromAddrPort(t.upGroup)}
	}
	var err error
	if t.rb, err = newRecvBatch(t.send, t.maxDg); err != nil {
		return fmt.Errorf("rmtp: receive batch: %w", err)
	}
	return nil
}

// recvBatch is one socket's recvmmsg state: the buffers are reused, and
// what a call read is copied out into few allocations (bytes.Join: no
// zeroing), so a datagram costs no allocation of its own and holds no
// more memory than its length.
type recvBatch struct {
	bufs  [][]byte
	lens  []int
	froms []netip.AddrPort
	mm    *mmsgReader
	join  [][]byte
}

// slabMax keeps the copies' allocations below the runtime's large-object
// size (32 KiB), which costs a span of its own and zeroing.
const slabMax = 32 << 10

func newRecvBatch(c *net.UDPConn, maxDg int) (*recvBatch, error) {
	n := max(1, min(batchLen, batchBytes/(maxDg+1)))
	r := &recvBatch{bufs: make([][]byte, n), lens: make([]int, n), froms: make([]netip.AddrPort, n)}
	for i := range r.bufs {
		// One byte over the largest datagram: a longer one shows up
		// with the wrong length and fails to parse.
		r.bufs[i] = make([]byte, maxDg+1)
	}
	var err error
	r.mm, err = newMmsgReader(c, r.bufs)
	return r, err
}

// borrow blocks for at least one datagram and returns up to k, their
// Data the receive buffers themselves (valid until the next read).
func (r *recvBatch) borrow(ds []Datagram) (int, error) {
	n, err := r.mm.read(min(len(ds), len(r.bufs)), r.lens, r.froms)
	for i := range n {
		ds[i] = Datagram{Data: r.bufs[i][:r.lens[i]:r.lens[i]], From: r.froms[i]}
	}
	return n, err
}

// read blocks for at least one datagram and appends copies of what it
// read to out.
func (r *recvBatch) read(out []Datagram) ([]Datagram, error) {
	n, err := r.mm.read(len(r.bufs), r.lens, r.froms)
	if err != nil {
		return out, err
	}
	var slab []byte
	for i := range n {
		if len(slab) < r.lens[i] {
			// Copy this datagram and the following ones that fit under
			// slabMax together.
			r.join = r.join[:0]
			size := 0
			for j := i; j < n; j++ {
				if size > 0 && size+r.lens[j] > slabMax {
					break
				}
				r.join = append(r.join, r.bufs[j][:r.lens[j]])
				size += r.lens[j]
			}
			slab = bytes.Join(r.join, nil)
			clear(r.join)
		}
		l := r.lens[i]
		out = append(out, Datagram{Data: slab[:l:l], From: r.froms[i]})
		slab = slab[l:]
	}
	return out, nil
}

// readErr decides whether a read error ends the transport.
func (t *UDP) readErr(err error) bool {
	select {
	case <-t.done:
		return true
	default:
	}
	// Anything else (e.g. ECONNREFUSED from a unicast peer) is one
	// datagram's problem, not the socket's.
	return errors.Is(err, net.ErrClosed)
}

// Send implements Transport.
func (t *UDP) Send(to Dest, b []byte) error {
	if t.peers != nil {
		var first error
		for _, p := range t.peers {
			if _, err := t.send.WriteToUDPAddrPort(b, p); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	g := t.down
	if to == Up {
		g = t.upGroup
	}
	_, err := t.send.WriteToUDPAddrPort(b, g)
	return err
}

// SendBatch sends datagrams to one group with as few system calls as the
// kernel allows (sendmmsg). The endpoint uses it for bursts.
func (t *UDP) SendBatch(to Dest, bs [][]byte) error {
	addrs := t.toDown
	if to == Up {
		addrs = t.toUp
	}
	ms := make([]ipv4.Message, 0, len(bs)*len(addrs))
	for i := range bs {
		for _, a := range addrs {
			// Buffers views bs itself: no slice per message.
			ms = append(ms, ipv4.Message{Buffers: bs[i : i+1 : i+1], Addr: a})
		}
	}
	for len(ms) > 0 {
		n, err := t.pc.WriteBatch(ms, 0)
		if err != nil {
			return err
		}
		ms = ms[n:]
	}
	return nil
}

// SendTo implements Transport.
func (t *UDP) SendTo(to netip.AddrPort, b []byte) error {
	_, err := t.send.WriteToUDPAddrPort(b, to)
	return err
}

// Recv implements Transport. It must not be called concurrently with
// itself or RecvBatch.
func (t *UDP) Recv() (Datagram, error) {
	var one [1]Datagram
	if _, err := t.RecvBatch(one[:]); err != nil {
		return Datagram{}, err
	}
	return one[0], nil
}

// RecvBatch blocks for the next datagram and returns it with any others
// already waiting, up to len(ds): the endpoint then handles them under one
// lock. It must not be called concurrently with itself or Recv.
func (t *UDP) RecvBatch(ds []Datagram) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	for len(t.pending) == 0 {
		var err error
		if t.pending, err = t.rb.read(t.pending[:0]); err != nil {
			if t.readErr(err) {
				return 0, ErrClosed
			}
		}
	}
	n := copy(ds, t.pending)
	clear(t.pending[:n]) // the caller owns them now
	t.pending = t.pending[n:]
	return n, nil
}

// recvBorrowed is RecvBatch without the copy, for the endpoint's own
// receive loop (borrowingReceiver): the datagrams are the receive buffers
// themselves, valid until the next call.
func (t *UDP) recvBorrowed(ds []Datagram) (int, error) {
	if len(t.pending) > 0 {
		return t.RecvBatch(ds)
	}
	for {
		n, err := t.rb.borrow(ds)
		if err != nil {
			if t.readErr(err) {
				return 0, ErrClosed
			}
			continue
		}
		return n, nil
	}
}

// IgnoreSender makes the kernel drop the datagrams whose header names
// node and incarnation as their sender: the endpoint's own multicast
// loopback, which would otherwise be read, copied and thrown away one
// by one (a sender of 256 KiB messages would read back every segment).
// A socket filter (classic BPF) compares header bytes 8..19 before the
// datagram is queued; anything shorter than a header passes, for the
// endpoint to count.
func (t *UDP) IgnoreSender(node NodeID, incarnation uint64) error {
	prog, err := socketFilter(t.groups, &sender{uint32(node), incarnation})
	if err != nil {
		return err
	}
	if err := t.pc.SetBPF(prog); err != nil {
		return fmt.Errorf("rmtp: socket filter: %w", err)
	}
	return nil
}

// sender is a datagram's origin as its header names it.
type sender struct {
	node uint32
	inc  uint64
}

// socketFilter is the classic BPF program of a socket: with groups, a
// datagram whose IP destination is none of them is dropped (a manager's
// wildcard-bound socket would otherwise take unicast to its port); with
// own, so is one whose header names that sender. A UDP socket's filter
// sees the datagram from its UDP header on, so rmtp's byte k is at 8+k;
// the IP header is reached through the kernel's negative offset
// (SKF_NET_OFF). A datagram too short for a header passes, for the
// endpoint to count.
func socketFilter(groups []netip.Addr, own *sender) ([]bpf.RawInstruction, error) {
	const (
		udpHeader = 8
		netOff    = 0xFFF00000 // SKF_NET_OFF, -0x100000 as a uint32
		ipDst     = 16         // offset of the destination in the IP header
	)
	drop, keep := bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 0xFFFFFFFF}
	var prog []bpf.Instruction
	if len(groups) > 0 {
		prog = append(prog, bpf.LoadAbsolute{Off: netOff + ipDst, Size: 4})
		for i, g := range groups {
			a := g.As4()
			// On a match, skip the remaining comparisons and the drop.
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a[:]),
				SkipTrue: uint8(len(groups) - i)})
		}
		prog = append(prog, drop)
	}
	if own == nil {
		return bpf.Assemble(append(prog, keep))
	}
	return bpf.Assemble(append(prog,
		bpf.LoadExtension{Num: bpf.ExtLen},
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: udpHeader + wire.HeaderLen, SkipTrue: 7},
		bpf.LoadAbsolute{Off: udpHeader + 8, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: own.node, SkipTrue: 5},
		bpf.LoadAbsolute{Off: udpHeader + 12, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(own.inc >> 32), SkipTrue: 3},
		bpf.LoadAbsolute{Off: udpHeader + 16, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(own.inc), SkipTrue: 1},
		drop, // ours
		keep, // anyone else's, whole
	))
}

// MaxDatagram implements Transport.
func (t *UDP) MaxDatagram() int { return t.maxDg }

// LocalAddr implements Transport.
func (t *UDP) LocalAddr() netip.AddrPort { return t.local }

// Close implements Transport.
func (t *UDP) Close() error {
	t.closeOnce.Do(func() {
		close(t.done)
		t.send.Close()
	})
	return nil
}
