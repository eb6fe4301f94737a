package fanout_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"golang.org/x/net/ipv4"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/v2c"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
)

var benchBase = smi.MustParseOID("1.3.6.1.4.1.8072.9999.4243")

// benchTree is a small SE tree: what an aggregate GET reads.
func benchTree(id int) *agent.Tree {
	t := agent.NewTree()
	fillBenchTree(t, id)
	return t
}

func fillBenchTree(t *agent.Tree, id int) {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(t.RegisterScalar(benchBase.Append(1), agent.Const(smi.Integer(int32(id)))))
	must(t.RegisterScalar(benchBase.Append(2), agent.Const(smi.Counter64(1<<40+uint64(id)))))
	must(t.RegisterScalar(benchBase.Append(3), agent.Const(smi.Gauge32(uint32(id*10)))))
	must(t.RegisterScalar(benchBase.Append(4), agent.Const(smi.String("engine "+strconv.Itoa(id)))))
}

var benchNames = []smi.OID{benchBase.Append(1, 0), benchBase.Append(2, 0), benchBase.Append(3, 0), benchBase.Append(4, 0)}

// BenchmarkAggregateGet compares one aggregate GET over N SEs (fan-out on
// rmtp over real loopback multicast) with polling each SE by unicast SNMP
// (gosnmp against the built-in v2c agent serving the same tree),
// sequentially and 16 at a time, and with the floor: a raw multicast
// datagram answered by N plain sockets.
func BenchmarkAggregateGet(b *testing.B) {
	for _, n := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("engines=%d", n), func(b *testing.B) { benchAggregate(b, n) })
	}
}

// benchMinRTO lets an rmtp tuning experiment run the same benchmark:
// FANOUT_BENCH_MINRTO=20ms; unset keeps rmtp's default.
func benchMinRTO() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("FANOUT_BENCH_MINRTO"))
	return d
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds())
}

func benchAggregate(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down, up := rmtptest.Groups(b)
	keys := rmtptest.Keys(b)

	// The farm: one manager, n SEs, each with its own sockets.
	mcfg := rmtp.MulticastConfig{Interface: "lo", Down: down, Up: up, JoinUp: true}
	mtr, err := rmtp.ListenMulticast(mcfg)
	if err != nil {
		b.Skipf("no multicast on lo: %v", err)
	}
	mgr, err := rmtp.New(mtr, rmtp.Config{Node: 1, Role: rmtp.Manager, Keys: keys, MinRTO: benchMinRTO()})
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Activate(1); err != nil {
		b.Fatal(err)
	}
	coord, err := fanout.NewCoordinator(mgr, nil, fanout.CoordinatorConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer coord.Close()
	mcfg.JoinUp, mcfg.ReadBuffer = false, 1<<20
	eps := []*rmtp.Endpoint{mgr}
	for i := range n {
		tr, err := rmtp.ListenMulticast(mcfg)
		if err != nil {
			b.Fatal(err)
		}
		e, err := rmtp.New(tr, rmtp.Config{Node: rmtp.NodeID(101 + i), Role: rmtp.Engine, Keys: keys, MinRTO: benchMinRTO()})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		eps = append(eps, e)
		r, err := fanout.NewResponder(e, nil, fanout.ResponderConfig{Tree: benchTree(i)})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
	}
	waitFor(b, 30*time.Second, "every engine in the view", func() bool { return len(mgr.View().Members) == n+1 })

	// The unicast baseline: n built-in v2c agents, one gosnmp client each.
	var clients []*gosnmp.GoSNMP
	var serveWG sync.WaitGroup
	defer serveWG.Wait()
	defer cancel()
	for i := range n {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		cs := agent.NewContexts()
		fillBenchTree(cs.Default(), i)
		a, err := v2c.New(v2c.Config{ROCommunity: config.NewSecret("public"), Workers: 1}, cs, nil)
		if err != nil {
			b.Fatal(err)
		}
		serveWG.Add(1)
		go func() { defer serveWG.Done(); _ = a.Serve(ctx, conn) }()
		ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: ap.Port(), Community: "public", Version: gosnmp.Version2c,
			Timeout: time.Second, Retries: 1}
		if err := g.Connect(); err != nil {
			b.Fatal(err)
		}
		defer g.Conn.Close()
		clients = append(clients, g)
	}
	oids := make([]string, len(benchNames))
	for i, o := range benchNames {
		oids[i] = "." + o.String()
	}
	var pollErrs atomic.Int64
	poll := func(g *gosnmp.GoSNMP) {
		if p, err := g.Get(oids); err != nil || len(p.Variables) != len(oids) {
			pollErrs.Add(1)
		}
	}

	raw := newRawRound(b, n)
	defer raw.close()

	// Warm up every path once.
	if res, err := coord.Get(ctx, nil, benchNames); err != nil || !res.Complete() {
		b.Fatalf("warm-up: %v %v", err, res.Missing)
	}
	for _, g := range clients {
		poll(g)
	}
	raw.round()

	var agg, seq, par, flo []time.Duration
	incomplete := 0
	dgBefore, rtBefore := uint64(0), uint64(0)
	for _, e := range eps {
		st := e.Stats()
		dgBefore += st.DatagramsSent
		rtBefore += st.Retransmits
	}
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		res, err := coord.Get(ctx, nil, benchNames)
		agg = append(agg, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if res.Responders() != n { // also a view that lost engines
			incomplete++
		}
	}
	dgAfter, rtAfter := uint64(0), uint64(0)
	for _, e := range eps {
		st := e.Stats()
		dgAfter += st.DatagramsSent
		rtAfter += st.Retransmits
	}
	for range b.N {
		t0 := time.Now()
		for _, g := range clients {
			poll(g)
		}
		seq = append(seq, time.Since(t0))
	}
	for range b.N {
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 16 {
					poll(clients[i])
				}
			}()
		}
		wg.Wait()
		par = append(par, time.Since(t0))
	}
	for range b.N {
		t0 := time.Now()
		raw.round()
		flo = append(flo, time.Since(t0))
	}
	b.StopTimer()
	aggP50, aggP99 := pct(agg, .5), pct(agg, .99)
	b.ReportMetric(aggP50, "agg-p50-µs")
	b.ReportMetric(aggP99, "agg-p99-µs")
	b.ReportMetric(pct(seq, .5), "seq-p50-µs")
	b.ReportMetric(pct(par, .5), "par16-p50-µs")
	b.ReportMetric(pct(par, .99), "par16-p99-µs")
	b.ReportMetric(pct(flo, .5), "raw-p50-µs")
	b.ReportMetric(pct(flo, .99), "raw-p99-µs")
	b.ReportMetric(aggP50/pct(flo, .5), "agg/raw-p50")
	b.ReportMetric(aggP99/pct(flo, .99), "agg/raw-p99")
	b.ReportMetric(aggP50/pct(par, .5), "agg/par16-p50")
	b.ReportMetric(aggP50/pct(seq, .5), "agg/seq-p50")
	b.ReportMetric(float64(dgAfter-dgBefore)/float64(b.N), "agg-datagrams/op")
	b.ReportMetric(float64(rtAfter-rtBefore)/float64(b.N), "agg-retransmits/op")
	b.ReportMetric(float64(2*n), "unicast-datagrams/op")
	b.ReportMetric(float64(incomplete), "agg-incomplete")
	b.ReportMetric(float64(pollErrs.Load()), "unicast-errors")
}

// rawRound is the floor: one multicast datagram, answered by n plain
// sockets with one unicast datagram each; no protocol at all.
type rawRound struct {
	b     testing.TB
	n     int
	send  *net.UDPConn
	pc    *ipv4.PacketConn
	group *net.UDPAddr
	recvs []*net.UDPConn
	wg    sync.WaitGroup
	buf   []byte
	seq   uint32
}

func newRawRound(b testing.TB, n int) *rawRound {
	down, _ := rmtptest.Groups(b)
	group := net.UDPAddrFromAddrPort(netip.AddrPortFrom(down.Addr().Next().Next(), down.Port()))
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		b.Fatal(err)
	}
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = send.SetReadBuffer(4 << 20)
	pc := ipv4.NewPacketConn(send)
	// Never let the floor's multicast leave through a real interface.
	if err := pc.SetMulticastInterface(lo); err != nil {
		b.Fatal(err)
	}
	_ = pc.SetMulticastLoopback(true)
	_ = pc.SetMulticastTTL(1)
	r := &rawRound{b: b, n: n, send: send, pc: pc, group: group, buf: make([]byte, 64)}
	for range n {
		c, err := net.ListenMulticastUDP("udp4", lo, group)
		if err != nil {
			b.Fatal(err)
		}
		r.recvs = append(r.recvs, c)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 64)
			for {
				k, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				_, _ = c.WriteToUDPAddrPort(buf[:k], from)
			}
		}()
	}
	return r
}

func (r *rawRound) round() {
	r.seq++
	msg := []byte(strconv.FormatUint(uint64(r.seq), 10))
	if _, err := r.send.WriteToUDP(msg, r.group); err != nil {
		r.b.Fatal(err)
	}
	_ = r.send.SetReadDeadline(time.Now().Add(time.Second))
	for got := 0; got < r.n; {
		k, err := r.send.Read(r.buf)
		if err != nil {
			return // a lost reply: the round ends at the deadline
		}
		if string(r.buf[:k]) == string(msg) {
			got++
		}
	}
}

func (r *rawRound) close() {
	for _, c := range r.recvs {
		c.Close()
	}
	r.send.Close()
	r.wg.Wait()
}
