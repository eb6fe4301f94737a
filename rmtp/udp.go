package rmtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Defaults of the UDP transports.
const (
	DefaultInterface   = "lo"
	DefaultReadBuffer  = 4 << 20
	DefaultUnicastMTU  = 1500
	udpIPv4Overhead    = 28
	recvQueueDatagrams = 1024
	// Batched receive (recvmmsg) is used up to jumbo-frame datagrams;
	// beyond, the datagrams are few and the buffers would be large.
	batchMaxDatagram = 9000
	batchLen         = 32
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
	send    *net.UDPConn // also receives (the down group, or the unicast socket)
	up      *net.UDPConn // managers' group; nil if not joined
	down    netip.AddrPort
	upGroup netip.AddrPort
	peers   []netip.AddrPort // unicast mode
	local   netip.AddrPort
	maxDg   int
	granted int

	buf       []byte           // single socket: Recv reads directly
	pc        *ipv4.PacketConn // the sending socket, for batches
	batch     []ipv4.Message   // small MTU: Recv reads batches
	pending   []Datagram       // read in a batch, not yet returned
	in        chan Datagram
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
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

// bindGroup opens a UDP socket bound to the group address itself. The
// net package cannot do this: for a multicast address it binds the
// wildcard, and such a socket receives every group joined anywhere on the
// host on that port (engines would get the managers' group, and both of a
// manager's sockets every datagram), plus unicast. SO_REUSEADDR lets
// several members share a host; IP_MULTICAST_ALL off keeps the socket to
// its own joins.
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
// JoinUp) on one interface: each socket is bound to its group address, so
// it receives nothing else; the group is joined on the named interface; the
// outgoing interface is set explicitly (IP_MULTICAST_IF with the
// interface's address, so sending works even without a multicast route);
// TTL and loopback are set.
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
		cfg.TTL = 1
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	for _, g := range []netip.AddrPort{cfg.Down, cfg.Up} {
		if !g.Addr().Is4() || !g.Addr().IsMulticast() {
			return nil, fmt.Errorf("rmtp: group %s is not an IPv4 multicast address", g)
		}
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("rmtp: interface %q: %w", cfg.Interface, err)
	}
	ifAddr, err := interfaceIPv4(ifi)
	if err != nil {
		return nil, err
	}
	t := &UDP{down: cfg.Down, upGroup: cfg.Up, in: make(chan Datagram, recvQueueDatagrams), done: make(chan struct{})}
	mtu := ifi.MTU
	if cfg.MTU > 0 && cfg.MTU < mtu {
		mtu = cfg.MTU
	}
	t.maxDg = min(mtu-udpIPv4Overhead, wire.MaxDatagram)
	if t.send, err = openGroup(cfg.Down, ifi, ifAddr, cfg.TTL); err != nil {
		return nil, err
	}
	if cfg.JoinUp {
		if t.up, err = openGroup(cfg.Up, ifi, ifAddr, cfg.TTL); err != nil {
			t.send.Close()
			return nil, err
		}
	}
	t.local = netip.AddrPortFrom(ifAddr, cfg.Down.Port())
	t.granted = t.setReadBuffer(cfg.ReadBuffer, log)
	t.start()
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

func openGroup(g netip.AddrPort, ifi *net.Interface, ifAddr netip.Addr, ttl int) (*net.UDPConn, error) {
	c, err := bindGroup(g)
	if err != nil {
		return nil, fmt.Errorf("rmtp: bind %s: %w", g, err)
	}
	p := ipv4.NewPacketConn(c)
	fail := func(what string, err error) (*net.UDPConn, error) {
		c.Close()
		return nil, fmt.Errorf("rmtp: %s on %s (%s): %w", what, g, ifi.Name, err)
	}
	if err := p.JoinGroup(ifi, &net.UDPAddr{IP: g.Addr().AsSlice()}); err != nil {
		return fail("join", err)
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
	t := &UDP{send: c, peers: append([]netip.AddrPort(nil), cfg.Peers...),
		in: make(chan Datagram, recvQueueDatagrams), done: make(chan struct{})}
	t.local = c.LocalAddr().(*net.UDPAddr).AddrPort()
	t.maxDg = min(cfg.MTU-udpIPv4Overhead, wire.MaxDatagram)
	t.granted = t.setReadBuffer(cfg.ReadBuffer, log)
	t.start()
	return t, nil
}

// setReadBuffer asks for n bytes of SO_RCVBUF on each socket and returns
// what the kernel granted (it doubles the request for bookkeeping and caps
// it at net.core.rmem_max).
func (t *UDP) setReadBuffer(n int, log logrus.FieldLogger) int {
	granted := 0
	for _, c := range []*net.UDPConn{t.send, t.up} {
		if c == nil {
			continue
		}
		if err := c.SetReadBuffer(n); err != nil {
			log.WithError(err).Warn("rmtp: setting the receive buffer failed")
		}
		rc, err := c.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			if err == nil && (granted == 0 || v < granted) {
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

// ReadBufferGranted is the SO_RCVBUF the kernel granted (the smallest over
// the sockets).
func (t *UDP) ReadBufferGranted() int { return t.granted }

// start runs a reader per socket when there are two (a manager's groups)
// to merge them; with one socket Recv reads it directly, saving a
// goroutine hand-off per datagram, and on Ethernet-sized MTUs it reads a
// batch per system call (recvmmsg).
func (t *UDP) start() {
	t.pc = ipv4.NewPacketConn(t.send)
	if t.up == nil {
		t.buf = make([]byte, wire.MaxDatagram+1)
		if t.maxDg <= batchMaxDatagram {
			t.batch = make([]ipv4.Message, batchLen)
			for i := range t.batch {
				t.batch[i].Buffers = [][]byte{make([]byte, t.maxDg+1)}
			}
		}
		return
	}
	for _, c := range []*net.UDPConn{t.send, t.up} {
		t.wg.Add(1)
		go t.readLoop(c)
	}
}

func (t *UDP) readLoop(c *net.UDPConn) {
	defer t.wg.Done()
	buf := make([]byte, wire.MaxDatagram+1)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-t.done:
				return
			default:
				continue // e.g. ECONNREFUSED from a unicast peer
			}
		}
		d := Datagram{Data: append([]byte(nil), buf[:n]...), From: from}
		select {
		case t.in <- d:
		case <-t.done:
			return
		}
	}
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
	var addrs []netip.AddrPort
	switch {
	case t.peers != nil:
		addrs = t.peers
	case to == Up:
		addrs = []netip.AddrPort{t.upGroup}
	default:
		addrs = []netip.AddrPort{t.down}
	}
	ms := make([]ipv4.Message, 0, len(bs)*len(addrs))
	for _, b := range bs {
		for _, a := range addrs {
			ms = append(ms, ipv4.Message{Buffers: [][]byte{b}, Addr: net.UDPAddrFromAddrPort(a)})
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

// Recv implements Transport. It must not be called concurrently.
func (t *UDP) Recv() (Datagram, error) {
	if len(t.pending) > 0 {
		d := t.pending[0]
		t.pending = t.pending[1:]
		return d, nil
	}
	if t.batch != nil {
		for {
			n, err := t.pc.ReadBatch(t.batch, 0)
			if err != nil {
				select {
				case <-t.done:
					return Datagram{}, ErrClosed
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return Datagram{}, ErrClosed
				}
				continue
			}
			if n == 0 {
				continue
			}
			for _, m := range t.batch[:n] {
				d := Datagram{Data: append([]byte(nil), m.Buffers[0][:m.N]...)}
				if ua, ok := m.Addr.(*net.UDPAddr); ok {
					d.From = ua.AddrPort()
				}
				t.pending = append(t.pending, d)
			}
			d := t.pending[0]
			t.pending = t.pending[1:]
			return d, nil
		}
	}
	if t.buf != nil {
		for {
			n, from, err := t.send.ReadFromUDPAddrPort(t.buf)
			if err != nil {
				select {
				case <-t.done:
					return Datagram{}, ErrClosed
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return Datagram{}, ErrClosed
				}
				continue // e.g. ECONNREFUSED from a unicast peer
			}
			return Datagram{Data: append([]byte(nil), t.buf[:n]...), From: from}, nil
		}
	}
	select {
	case d := <-t.in:
		return d, nil
	case <-t.done:
		return Datagram{}, ErrClosed
	}
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
		if t.up != nil {
			t.up.Close()
		}
	})
	t.wg.Wait()
	return nil
}
