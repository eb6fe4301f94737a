package hierarchy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/smsnmpd/smsnmpd/test/netns"
)

// lan is one broadcast domain: a bridge in the switch namespace, a /24,
// and the router's leg on it (.254, the LAN's default gateway).
type lan struct {
	name   string // short, used in interface names: "d11", "c1", "l4"
	prefix string // "10.1.1": hosts are prefix.N
	bridge string // in the switch namespace
	rtIf   string // the router's interface on this LAN (in the router namespace)
}

func (l *lan) addr(host int) string { return fmt.Sprintf("%s.%d", l.prefix, host) }
func (l *lan) gateway() string      { return l.addr(254) }

// network is the namespaces of one run: a switch holding every bridge, a
// router with a leg on every LAN, and one namespace per host. Every name
// carries the run's suffix, so parallel runs never meet.
type network struct {
	t      *testing.T
	suffix string
	sw, rt string
	lans   map[string]*lan
	hosts  []string // host namespaces, for cleanup
}

// ipCmd runs ip with a deadline; in is its standard input (batch mode).
func ipCmd(in string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	if in != "" {
		cmd.Stdin = strings.NewReader(in)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// batch runs ip commands (one per line) inside namespace ns in one ip
// process: ip reports the failing line number.
func (n *network) batch(ns string, lines ...string) {
	n.t.Helper()
	if err := ipCmd(strings.Join(lines, "\n")+"\n", "-n", ns, "-batch", "-"); err != nil {
		n.t.Fatalf("%v\ninput:\n%s", err, strings.Join(lines, "\n"))
	}
}

// addNetns creates a namespace, deleted at cleanup.
func (n *network) addNetns(name string) {
	n.t.Helper()
	netns.Add(n.t, name)
}

// newNetwork builds the switch and the router. The router forwards
// unicast between its legs and drops multicast (it runs no multicast
// routing anyway; the nft rule makes the boundary explicit and counts
// what hit it).
func newNetwork(t *testing.T) *network {
	t.Helper()
	n := &network{t: t, suffix: fmt.Sprintf("%05x", rand.IntN(1<<20)), lans: map[string]*lan{}}
	n.sw = "smh" + n.suffix + "-sw"
	n.rt = "smh" + n.suffix + "-rt"
	n.addNetns(n.sw)
	n.addNetns(n.rt)
	n.exec(n.rt, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	rules := `table inet smhrouter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 224.0.0.0/4 counter drop
  }
}
`
	netns.Nft(t, n.rt, rules)
	return n
}

// exec runs a command inside namespace ns.
func (n *network) exec(ns string, name string, args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s %s in %s: %v: %s", name, strings.Join(args, " "), ns, err, out)
	}
	return string(out)
}

// addLAN creates a bridge in the switch and the router's leg on it.
// Snooping is off: with no IGMP querier on the segment, a snooping bridge
// would depend on timers this test does not control.
func (n *network) addLAN(name, prefix string) *lan {
	n.t.Helper()
	l := &lan{name: name, prefix: prefix, bridge: "b" + name, rtIf: "r" + name}
	n.batch(n.sw,
		fmt.Sprintf("link add %s type bridge mcast_snooping 0", l.bridge),
		fmt.Sprintf("link set %s up", l.bridge),
		fmt.Sprintf("link add s%s type veth peer name %s netns %s", name, l.rtIf, n.rt),
		fmt.Sprintf("link set s%s master %s up", name, l.bridge),
	)
	n.batch(n.rt,
		fmt.Sprintf("addr add %s/24 dev %s", l.gateway(), l.rtIf),
		fmt.Sprintf("link set %s up", l.rtIf),
	)
	n.lans[name] = l
	return l
}

// addHost creates the namespace of one process, with eth0 on l's bridge at
// l.prefix.host and the router as default gateway: unicast to every other
// LAN goes through it, and multicast (sent on eth0 explicitly) stays on
// the bridge.
func (n *network) addHost(l *lan, id uint32, host int) string {
	n.t.Helper()
	ns := fmt.Sprintf("smh%s-n%d", n.suffix, id)
	n.addNetns(ns)
	port := fmt.Sprintf("h%d", id)
	n.batch(n.sw,
		fmt.Sprintf("link add %s type veth peer name eth0 netns %s", port, ns),
		fmt.Sprintf("link set %s master %s up", port, l.bridge),
	)
	n.batch(ns,
		fmt.Sprintf("addr add %s/24 dev eth0", l.addr(host)),
		"link set eth0 up",
		fmt.Sprintf("route add default via %s", l.gateway()),
	)
	n.hosts = append(n.hosts, ns)
	return ns
}

// setLink sets the router's leg on l up or down: the LAN keeps its own
// traffic (multicast included) but is cut off from every other LAN. It
// returns its error (subtests call it; the network belongs to their parent).
func (n *network) setLink(l *lan, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ipCmd("", "-n", n.rt, "link", "set", l.rtIf, state)
}

// probeUnicast sends one UDP datagram from namespace from (bound to
// fromIP) to toIP in namespace to and reports whether it arrived within
// wait.
func probeUnicast(from, fromIP, to, toIP string, wait time.Duration) (bool, error) {
	var rx, tx net.PacketConn
	if err := netns.Do(to, func() (err error) {
		rx, err = net.ListenPacket("udp4", toIP+":0")
		return err
	}); err != nil {
		return false, err
	}
	defer rx.Close()
	if err := netns.Do(from, func() (err error) {
		tx, err = net.ListenPacket("udp4", fromIP+":0")
		return err
	}); err != nil {
		return false, err
	}
	defer tx.Close()
	msg := []byte("smsnmpd-hierarchy-probe")
	if _, err := tx.WriteTo(msg, rx.LocalAddr()); err != nil {
		return false, err
	}
	return received(rx, msg, wait), nil
}

// probeMulticast sends one datagram to group on eth0 from namespace from
// (TTL 8, so only the router's policy can stop it) and reports whether a
// member joined on eth0 in namespace to received it within wait.
func probeMulticast(from, to, group string, port int, wait time.Duration) (bool, error) {
	var rx *net.UDPConn
	if err := netns.Do(to, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(group), Port: port})
		if err != nil {
			return err
		}
		if err := ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.ParseIP(group)}); err != nil {
			c.Close()
			return err
		}
		rx = c
		return nil
	}); err != nil {
		return false, err
	}
	defer rx.Close()
	var tx *net.UDPConn
	if err := netns.Do(from, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			return err
		}
		p := ipv4.NewPacketConn(c)
		if err := p.SetMulticastInterface(ifi); err != nil {
			c.Close()
			return err
		}
		if err := p.SetMulticastTTL(8); err != nil {
			c.Close()
			return err
		}
		tx = c
		return nil
	}); err != nil {
		return false, err
	}
	defer tx.Close()
	msg := []byte("smsnmpd-hierarchy-mprobe")
	if _, err := tx.WriteTo(msg, &net.UDPAddr{IP: net.ParseIP(group), Port: port}); err != nil {
		return false, err
	}
	return received(rx, msg, wait), nil
}

func received(c net.PacketConn, msg []byte, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == string(msg) {
			return true
		}
	}
}
