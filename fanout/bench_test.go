package fanout_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"golang.org/x/net/ipv4"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
	rwire "github.com/smsnmpd/smsnmpd/rmtp/wire"
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
// datagram answered by N plain sockets. All four run in the same process
// at the same N, interleaved: iteration i runs each method once, in an
// order rotated by i, so background work one method leaves behind (rmtp's
// trailing acknowledgements, the Go scheduler, the kernel) falls on every
// method alike. FANOUT_BENCH_ONLY=agg (or seq, par16, raw; comma
// separated) runs a subset, for profiling one path; FANOUT_BENCH_TYPES=1
// logs the datagrams of a GET by type and the responders' counters;
// FANOUT_BENCH_BSM=1 adds a backup manager, as in production.
func BenchmarkAggregateGet(b *testing.B) {
	for _, n := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("engines=%d", n), func(b *testing.B) { benchAggregate(b, n) })
	}
}

// benchRMTP is every endpoint's rmtp config. Tuning experiments run the
// same benchmark with FANOUT_BENCH_MINRTO=20ms, FANOUT_BENCH_ACKDELAY=
// 500us or FANOUT_BENCH_ANSWERACK=50ms; unset keeps rmtp's defaults.
func benchRMTP(id rmtp.NodeID, role rmtp.Role, keys *rmtp.Keyring) rmtp.Config {
	minRTO, _ := time.ParseDuration(os.Getenv("FANOUT_BENCH_MINRTO"))
	ackDelay, _ := time.ParseDuration(os.Getenv("FANOUT_BENCH_ACKDELAY"))
	answerAck, _ := time.ParseDuration(os.Getenv("FANOUT_BENCH_ANSWERACK"))
	return rmtp.Config{Node: id, Role: role, Keys: keys, MinRTO: minRTO, AckDelay: ackDelay, AnswerAckDelay: answerAck}
}

func benchWanted(name string) bool {
	only := os.Getenv("FANOUT_BENCH_ONLY")
	return only == "" || slices.Contains(strings.Split(only, ","), name)
}

// cpuTime is the CPU the process has used (user and system). The whole
// farm runs in this process, so what a method adds while it runs is what
// one read of every SE costs the machine; work it leaves behind (late
// acknowledgements) lands on whatever runs next, and the rotation spreads
// that evenly.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// goroutinesCreated counts the goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// side labels the calling goroutine and those it starts from now on.
func side(name string) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("side", name)))
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds())
}

// countingTransport counts the datagrams an endpoint sends, by rmtp type,
// so the benchmark reports what one GET puts on the wire. It embeds the
// UDP transport itself, not the Transport interface, so every optional
// method rmtp looks for (batched sends and receives) stays visible and
// rmtp runs exactly as it does unwrapped; the count is checked against
// rmtp's own DatagramsSent, so a send path this wrapper does not see
// shows up as a mismatch instead of a low figure.
type countingTransport struct {
	*rmtp.UDP
	byType *[16]atomic.Uint64
}

func (c countingTransport) count(b []byte) {
	if len(b) > 3 && b[3] < 16 {
		c.byType[b[3]].Add(1)
	}
}

func (c countingTransport) Send(to rmtp.Dest, b []byte) error {
	c.count(b)
	return c.UDP.Send(to, b)
}

func (c countingTransport) SendTo(to netip.AddrPort, b []byte) error {
	c.count(b)
	return c.UDP.SendTo(to, b)
}

func (c countingTransport) SendBatch(to rmtp.Dest, bs [][]byte) error {
	for _, b := range bs {
		c.count(b)
	}
	return c.UDP.SendBatch(to, bs)
}

// benchMethod is one way of reading the benchmark's varbinds from every
// SE.
type benchMethod struct {
	name  string
	run   func()
	lat   []time.Duration
	cpu   time.Duration // process CPU (user + system) spent while it ran
	gor   uint64        // goroutines started while it ran
	dgram func() uint64 // datagrams sent so far by this method
}

func benchAggregate(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down, up := rmtptest.Groups(b)
	keys := rmtptest.Keys(b)
	var sent [16]atomic.Uint64
	counted := func(tr *rmtp.UDP) countingTransport { return countingTransport{tr, &sent} }

	// Goroutines inherit pprof labels: a CPU profile of the benchmark
	// splits by side (go tool pprof -tagfocus side=se).
	defer pprof.SetGoroutineLabels(context.Background())
	// The farm: one manager, n SEs, each with its own sockets.
	side("manager")
	mcfg := rmtp.MulticastConfig{Interface: "lo", Down: down, Up: up, JoinUp: true}
	mtr, err := rmtp.ListenMulticast(mcfg)
	if err != nil {
		b.Skipf("no multicast on lo: %v", err)
	}
	var msent [16]atomic.Uint64
	mgr, err := rmtp.New(countingTransport{mtr, &msent}, benchRMTP(1, rmtp.Manager, keys))
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Activate(1); err != nil {
		b.Fatal(err)
	}
	coord, err := fanout.NewCoordinator(mgr, fanout.CoordinatorConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer coord.Close()
	eps := []*rmtp.Endpoint{mgr}
	members := n + 1
	if os.Getenv("FANOUT_BENCH_BSM") != "" {
		// A backup manager, as in production: it hears every request
		// and reply and acknowledges them.
		btr, err := rmtp.ListenMulticast(mcfg)
		if err != nil {
			b.Fatal(err)
		}
		bsm, err := rmtp.New(countingTransport{btr, &msent}, benchRMTP(2, rmtp.Manager, keys))
		if err != nil {
			b.Fatal(err)
		}
		defer bsm.Close()
		eps = append(eps, bsm)
		bc, err := fanout.NewCoordinator(bsm, fanout.CoordinatorConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer bc.Close()
		members++
	}
	mcfg.JoinUp, mcfg.ReadBuffer = false, 1<<20
	var resps []*fanout.Responder
	side("se")
	for i := range n {
		tr, err := rmtp.ListenMulticast(mcfg)
		if err != nil {
			b.Fatal(err)
		}
		e, err := rmtp.New(counted(tr), benchRMTP(rmtp.NodeID(101+i), rmtp.Engine, keys))
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		eps = append(eps, e)
		r, err := fanout.NewResponder(e, fanout.ResponderConfig{Tree: benchTree(i)})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		resps = append(resps, r)
	}
	waitfor.True(b, 30*time.Second, "every engine in the view", func() bool { return len(mgr.View().Members) == members })

	// The unicast baseline: n built-in v2c agents, one gosnmp client each.
	side("unicast")
	var clients []*gosnmp.GoSNMP
	var serveWG sync.WaitGroup
	defer serveWG.Wait()
	defer cancel()
	var uniDgrams atomic.Uint64
	countUni := func(*gosnmp.GoSNMP) { uniDgrams.Add(1) }
	for i := range n {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		cs := agent.NewContexts()
		fillBenchTree(cs.Default(), i)
		a, err := snmp.New(snmp.Config{ROCommunity: config.NewSecret("public"), Workers: 1}, cs, nil)
		if err != nil {
			b.Fatal(err)
		}
		serveWG.Add(1)
		go func() { defer serveWG.Done(); _ = a.Serve(ctx, conn) }()
		ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: ap.Port(), Community: "public", Version: gosnmp.Version2c,
			Timeout: time.Second, Retries: 1, OnSent: countUni, OnRecv: countUni}
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

	side("raw")
	raw := newRawRound(b, n)
	side("caller")
	defer raw.close()

	// Membership heartbeats (HELLO, VIEW) run whether or not anyone
	// reads: they are not a GET's datagrams.
	rmtpDgrams := func() uint64 {
		var s uint64
		for t := range sent {
			if rwire.Type(t) != rwire.TypeHello && rwire.Type(t) != rwire.TypeView {
				s += sent[t].Load() + msent[t].Load()
			}
		}
		return s
	}
	incomplete := 0
	var rounds int
	methods := []*benchMethod{
		{name: "agg", dgram: rmtpDgrams, run: func() {
			res, err := coord.Get(ctx, nil, benchNames)
			if err != nil {
				b.Fatal(err)
			}
			rounds += res.Rounds
			if res.Responders() != n { // also a view that lost engines
				incomplete++
			}
		}},
		{name: "seq", dgram: uniDgrams.Load, run: func() {
			for _, g := range clients {
				poll(g)
			}
		}},
		{name: "par16", dgram: uniDgrams.Load, run: func() {
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
		}},
		{name: "raw", dgram: raw.datagrams, run: raw.round},
	}
	methods = slices.DeleteFunc(methods, func(m *benchMethod) bool { return !benchWanted(m.name) })

	// Warm up every path once.
	if res, err := coord.Get(ctx, nil, benchNames); err != nil || !res.Complete() {
		b.Fatalf("warm-up: %v %v", err, res.Missing)
	}
	for _, m := range methods {
		m.run()
	}
	rounds, incomplete = 0, 0
	dgrams := make(map[string]uint64)
	for _, m := range methods {
		if m.name != "par16" { // seq and par16 share the unicast counter
			dgrams[m.name] = m.dgram()
		}
	}
	var seqPar uint64
	// Every datagram rmtp sent, by its own count, to check the wrapper's.
	rmtpSent := func() (stats, seen uint64) {
		for _, e := range eps {
			stats += e.Stats().DatagramsSent
		}
		for t := range sent {
			seen += sent[t].Load() + msent[t].Load()
		}
		return stats, seen
	}
	stats0, seen0 := rmtpSent()
	byType := func() (se, mg [16]uint64) {
		for t := range sent {
			se[t], mg[t] = sent[t].Load(), msent[t].Load()
		}
		return se, mg
	}
	se0, mg0 := byType()
	b.ResetTimer()
	for i := range b.N {
		for j := range methods {
			m := methods[(i+j)%len(methods)]
			g0, c0, t0 := goroutinesCreated(), cpuTime(), time.Now()
			m.run()
			m.lat = append(m.lat, time.Since(t0))
			m.cpu += cpuTime() - c0
			m.gor += goroutinesCreated() - g0
		}
	}
	b.StopTimer()
	stats1, seen1 := rmtpSent()
	se1, mg1 := byType()
	for t := range se1 {
		se1[t] -= se0[t]
		mg1[t] -= mg0[t]
	}
	for _, m := range methods {
		if m.name != "par16" {
			dgrams[m.name] = m.dgram() - dgrams[m.name]
		}
	}
	seqPar = dgrams["seq"]
	lat := make(map[string][]time.Duration)
	for _, m := range methods {
		lat[m.name] = m.lat
		b.ReportMetric(pct(m.lat, .5), m.name+"-p50-µs")
		b.ReportMetric(pct(m.lat, .99), m.name+"-p99-µs")
		b.ReportMetric(float64(m.cpu.Microseconds())/float64(len(m.lat)), m.name+"-cpu-µs/op")
		b.ReportMetric(float64(m.gor)/float64(len(m.lat)), m.name+"-goroutines/op")
	}
	if lat["agg"] != nil {
		per := float64(b.N)
		b.ReportMetric(float64(dgrams["agg"])/per, "agg-datagrams/op")
		// Segments of requests and responses beyond one request and n
		// replies per round: what rmtp re-sent.
		segs := mg1[rwire.TypeRequest] + se1[rwire.TypeResponse]
		b.ReportMetric((float64(segs)-float64(rounds)-per*float64(n))/per, "agg-resent/op")
		b.ReportMetric(float64(rounds)/per, "agg-rounds/op")
		b.ReportMetric(float64(incomplete), "agg-incomplete")
		// Datagrams rmtp counted as sent that the wrapper did not see (a
		// send path it misses; a few may be in flight at the snapshot).
		b.ReportMetric((float64(stats1-stats0)-float64(seen1-seen0))/per, "agg-unseen-datagrams/op")
		if os.Getenv("FANOUT_BENCH_TYPES") != "" {
			var rc fanout.ResponderCounters
			for _, r := range resps {
				c := r.Counters()
				rc.Requests += c.Requests
				rc.Inline += c.Inline
				rc.Takeovers += c.Takeovers
				rc.CacheHits += c.CacheHits
				rc.Busy += c.Busy
			}
			b.Logf("responders: %d requests, %d inline, %d takeovers, %d cache hits, %d shed",
				rc.Requests, rc.Inline, rc.Takeovers, rc.CacheHits, rc.Busy)
			for t := range se1 {
				if v := se1[t] + mg1[t]; v > 0 {
					b.Logf("%-8v per GET: %6.1f from SEs, %6.1f from managers", rwire.Type(t), float64(se1[t])/per, float64(mg1[t])/per)
				}
			}
		}
	}
	if lat["raw"] != nil {
		b.ReportMetric(float64(dgrams["raw"])/float64(b.N), "raw-datagrams/op")
	}
	if lat["seq"] != nil || lat["par16"] != nil {
		polls := 0
		for _, name := range []string{"seq", "par16"} {
			if lat[name] != nil {
				polls += b.N
			}
		}
		b.ReportMetric(float64(seqPar)/float64(polls), "unicast-datagrams/op")
		b.ReportMetric(float64(pollErrs.Load()), "unicast-errors")
	}
	ratio := func(a, base string, p float64, unit string) {
		if lat[a] != nil && lat[base] != nil && pct(lat[base], p) > 0 {
			b.ReportMetric(pct(lat[a], p)/pct(lat[base], p), unit)
		}
	}
	ratio("agg", "raw", .5, "agg/raw-p50")
	ratio("agg", "raw", .99, "agg/raw-p99")
	ratio("agg", "par16", .5, "agg/par16-p50")
	ratio("agg", "seq", .5, "agg/seq-p50")
}

// rawRound is the floor: one multicast datagram, answered by n plain
// sockets with one unicast datagram each; no protocol at all.
type rawRound struct {
	b      testing.TB
	n      int
	send   *net.UDPConn
	pc     *ipv4.PacketConn
	group  *net.UDPAddr
	recvs  []*net.UDPConn
	wg     sync.WaitGroup
	buf    []byte
	seq    uint32
	dgrams atomic.Uint64
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
				if _, err := c.WriteToUDPAddrPort(buf[:k], from); err == nil {
					r.dgrams.Add(1)
				}
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
	r.dgrams.Add(1)
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

// datagrams is what the rounds put on the wire: the requests and the
// replies.
func (r *rawRound) datagrams() uint64 { return r.dgrams.Load() }

func (r *rawRound) close() {
	for _, c := range r.recvs {
		c.Close()
	}
	r.send.Close()
	r.wg.Wait()
}
