package snmp

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/leaktest"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

// farmGate stands for the farm: a handler that is not agent.Local, whose
// GETs block until released (or until their context ends).
type farmGate struct {
	calls   atomic.Int32
	release chan struct{}
}

func (g *farmGate) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	g.calls.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]smi.Value, len(names))
	for i := range out {
		out[i] = smi.Gauge32(42)
	}
	return out, nil
}

func (g *farmGate) GetNext(_ context.Context, rs []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(rs))
	for i, r := range rs {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
	}
	return out, nil
}

var (
	gateRoot  = smi.OID{1, 3, 6, 1, 4, 1, 99999, 1}
	localOID  = smi.OID{1, 3, 6, 1, 4, 1, 99999, 2}
	gateInst  = gateRoot.Append(1, 0)
	localInst = localOID.Append(0)
)

// gated is an agent with one worker serving a farm gate and a local
// scalar, on a loopback socket.
type gated struct {
	a      *Agent
	gate   *farmGate
	addr   *net.UDPAddr
	cancel context.CancelFunc
	done   chan error
}

func serveGated(t *testing.T, maxInFlight int) *gated {
	t.Helper()
	ctxs := agent.NewContexts()
	g := &gated{gate: &farmGate{release: make(chan struct{})}, done: make(chan error, 1)}
	if err := ctxs.Default().Register(gateRoot, g.gate); err != nil {
		t.Fatal(err)
	}
	if err := ctxs.Default().RegisterScalar(localOID, agent.Const(smi.Integer(7))); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Workers, cfg.MaxInFlight = 1, maxInFlight
	a, err := New(cfg, ctxs, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.a, g.addr, g.cancel = a, conn.LocalAddr().(*net.UDPAddr), cancel
	go func() { g.done <- a.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		conn.Close()
	})
	return g
}

// manager is a raw UDP client: it sends exact datagrams and reads answers.
type manager struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newManager(t *testing.T, to *net.UDPAddr) *manager {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &manager{t: t, conn: c, to: to}
}

func getPacket(id int32, oid smi.OID) []byte {
	return encode(ber.Version2c, "public", ber.PDUGet, id, 0, 0, names(oid))
}

func (m *manager) send(pkt []byte) {
	m.t.Helper()
	if _, err := m.conn.WriteToUDP(pkt, m.to); err != nil {
		m.t.Fatal(err)
	}
}

// read returns the next answer, or nil when none comes within d.
func (m *manager) read(d time.Duration) *gosnmp.SnmpPacket {
	m.t.Helper()
	buf := make([]byte, MaxDatagram)
	m.conn.SetReadDeadline(time.Now().Add(d))
	n, err := m.conn.Read(buf)
	if err != nil {
		return nil
	}
	p, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(buf[:n])
	if err != nil {
		m.t.Fatalf("answer does not decode: %v", err)
	}
	return p
}

// Requests waiting on the farm hold no worker: with one worker and three
// requests waiting, a local object is still answered; a fourth waiting
// request is dropped and counted; a retransmission of a waiting request
// joins it (one farm call, one answer); when the farm answers, each
// waiting request is answered once.
func TestWaitingRequestsHoldNoWorker(t *testing.T) {
	leaktest.Check(t, "smsnmpd/agent")
	g := serveGated(t, 3)
	m := newManager(t, g.addr)
	first := getPacket(1, gateInst)
	m.send(first)
	m.send(getPacket(2, gateInst))
	m.send(getPacket(3, gateInst))
	waitfor.True(t, 10*time.Second, "three requests waiting", func() bool { return g.a.Counters().Waiting == 3 })

	m.send(getPacket(4, gateInst))
	waitfor.True(t, 10*time.Second, "the fourth dropped", func() bool { return g.a.Counters().BusyDrops == 1 })
	if c := g.a.Counters(); c.SilentDrops != 1 {
		t.Errorf("snmpSilentDrops %d, want 1 (the busy drop)", c.SilentDrops)
	}

	m.send(getPacket(5, localInst))
	if p := m.read(10 * time.Second); p == nil || p.RequestID != 5 || p.Variables[0].Value != 7 {
		t.Fatalf("local scalar while the farm is busy: %+v", p)
	}

	m.send(first) // the manager's retry: same source, request-id and bytes
	waitfor.True(t, 10*time.Second, "the retry joined", func() bool { return g.a.Counters().Joined == 1 })

	close(g.gate.release)
	var ids []int
	for range 3 {
		p := m.read(10 * time.Second)
		if p == nil {
			t.Fatalf("answers %v, want 1, 2 and 3", ids)
		}
		if p.Error != gosnmp.NoError || p.Variables[0].Value != uint(42) {
			t.Errorf("answer %d: %v %v", p.RequestID, p.Error, p.Variables)
		}
		ids = append(ids, int(p.RequestID))
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int{1, 2, 3}) {
		t.Errorf("answered %v, want 1, 2 and 3", ids)
	}
	if p := m.read(200 * time.Millisecond); p != nil {
		t.Errorf("extra answer %d: the joined retry or the dropped request was answered", p.RequestID)
	}
	if n := g.gate.calls.Load(); n != 3 {
		t.Errorf("the farm was asked %d times, want 3 (the retry joined, the fourth was dropped)", n)
	}
	waitfor.True(t, 10*time.Second, "nothing waiting", func() bool { return g.a.Counters().Waiting == 0 })

	// Once there is room again, the dropped request's retry is served.
	m.send(getPacket(4, gateInst))
	if p := m.read(10 * time.Second); p == nil || p.RequestID != 4 {
		t.Fatalf("retry of the dropped request: %+v", p)
	}
}

// Only a true copy joins: the same bytes from another source port, or a
// request reusing the id with other varbinds, is a request of its own.
func TestOnlyRetransmissionsJoin(t *testing.T) {
	g := serveGated(t, 8)
	a, b := newManager(t, g.addr), newManager(t, g.addr)
	pkt := getPacket(9, gateInst)
	a.send(pkt)
	waitfor.True(t, 10*time.Second, "one waiting", func() bool { return g.a.Counters().Waiting == 1 })
	b.send(pkt)
	a.send(getPacket(9, gateRoot.Append(2, 0)))
	waitfor.True(t, 10*time.Second, "three waiting", func() bool { return g.a.Counters().Waiting == 3 })
	if c := g.a.Counters(); c.Joined != 0 {
		t.Errorf("joined %d, want 0", c.Joined)
	}
	close(g.gate.release)
	for _, m := range []*manager{a, a, b} {
		if p := m.read(10 * time.Second); p == nil || p.RequestID != 9 {
			t.Fatalf("answer %+v", p)
		}
	}
	if n := g.gate.calls.Load(); n != 3 {
		t.Errorf("farm asked %d times, want 3", n)
	}
}

// Serve returns on cancel while requests wait on the farm: their contexts
// end, and no goroutine is left.
func TestServeStopsWithRequestsWaiting(t *testing.T) {
	leaktest.Check(t, "smsnmpd/agent")
	g := serveGated(t, 8)
	m := newManager(t, g.addr)
	for id := range int32(5) {
		m.send(getPacket(id+1, gateInst))
	}
	waitfor.True(t, 10*time.Second, "five waiting", func() bool { return g.a.Counters().Waiting == 5 })
	g.cancel()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatal(err)
		}
		g.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return with requests waiting")
	}
	if c := g.a.Counters(); c.Waiting != 0 {
		t.Errorf("%d still counted waiting after Serve returned", c.Waiting)
	}
}

// instant is a handler that is not agent.Local but answers at once: what
// leaving the worker pool costs a request, without a farm behind it.
type instant struct{}

func (instant) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, len(names))
	for i := range out {
		out[i] = smi.Gauge32(1)
	}
	return out, nil
}

func (instant) GetNext(_ context.Context, rs []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(rs))
	for i, r := range rs {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
	}
	return out, nil
}

// BenchmarkServeGet: a GET round trip over loopback UDP (gosnmp client) to
// a local scalar, and to a handler that may block, which takes its
// request out of the worker pool (a new goroutine per request). Reports
// the p50 round trip.
func BenchmarkServeGet(b *testing.B) {
	for _, c := range []struct {
		name string
		oid  smi.OID
	}{{"local", localInst}, {"blocking", gateInst}} {
		b.Run(c.name, func(b *testing.B) {
			ctxs := agent.NewContexts()
			if err := ctxs.Default().Register(gateRoot, instant{}); err != nil {
				b.Fatal(err)
			}
			if err := ctxs.Default().RegisterScalar(localOID, agent.Const(smi.Integer(7))); err != nil {
				b.Fatal(err)
			}
			a, err := New(testConfig(), ctxs, nil)
			if err != nil {
				b.Fatal(err)
			}
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Serve(ctx, conn) }()
			defer func() { cancel(); <-done }()
			g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(conn.LocalAddr().(*net.UDPAddr).Port), Community: "public",
				Version: gosnmp.Version2c, Timeout: 2 * time.Second, Retries: 1}
			if err := g.Connect(); err != nil {
				b.Fatal(err)
			}
			defer g.Conn.Close()
			oid := []string{"." + c.oid.String()}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := g.Get(oid); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		})
	}
}
