package rmtp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
)

// mcastFarm is one manager and n engines over real UDP multicast on lo.
type mcastFarm struct {
	mgr     *rmtp.Endpoint
	engines []*rmtp.Endpoint
	imps    []*memnet.Impaired
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// newMcastFarm starts the farm; engines answer every request with echo
// (asynchronously, so a slow ACK of one reply never delays the next).
func newMcastFarm(tb testing.TB, n int, loss float64, echo bool, mtu int) *mcastFarm {
	tb.Helper()
	down, up := rmtptest.Groups(tb)
	keys := rmtptest.Keys(tb)
	f := &mcastFarm{}
	mtr, err := rmtp.ListenMulticast(rmtp.MulticastConfig{Down: down, Up: up, JoinUp: true, MTU: mtu})
	if err != nil {
		tb.Fatal(err)
	}
	if f.mgr, err = rmtp.New(mtr, rmtp.Config{Node: 1, Role: rmtp.Manager, Keys: keys, DownAfter: lenientDown}); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i := range n {
		utr, err := rmtp.ListenMulticast(rmtp.MulticastConfig{Down: down, Up: up, MTU: mtu})
		if err != nil {
			tb.Fatal(err)
		}
		var tr rmtp.Transport = utr
		if loss > 0 {
			im := memnet.Impair(utr, memnet.Faults{Loss: loss}, uint64(i+1))
			f.imps = append(f.imps, im)
			tr = im
		}
		e, err := rmtp.New(tr, rmtp.Config{Node: rmtp.NodeID(101 + i), Role: rmtp.Engine, Keys: keys, DownAfter: lenientDown})
		if err != nil {
			tb.Fatal(err)
		}
		f.engines = append(f.engines, e)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				m, err := e.Receive(ctx)
				if err != nil {
					return
				}
				if echo && m.Kind == rmtp.KindRequest {
					f.wg.Add(1)
					go func() {
						defer f.wg.Done()
						rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
						defer rcancel()
						e.Reply(rctx, m, m.Payload)
					}()
				}
			}
		}()
	}
	waitFor(tb, 30*time.Second, "manager sees every engine", func() bool { return livePeers(f.mgr) == n })
	return f
}

func (f *mcastFarm) close() {
	f.cancel()
	f.wg.Wait()
	for _, e := range f.engines {
		e.Close()
	}
	f.mgr.Close()
}

// rawRound is the baseline: one plain multicast datagram, every receiver
// answers with one unicast datagram.
type rawRound struct {
	send  *net.UDPConn
	group *net.UDPAddr
	recvs []*net.UDPConn
	wg    sync.WaitGroup
}

func newRawRound(tb testing.TB, n int) *rawRound {
	tb.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		tb.Fatal(err)
	}
	g, _ := rmtptest.Groups(tb)
	r := &rawRound{group: net.UDPAddrFromAddrPort(g)}
	if r.send, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		tb.Fatal(err)
	}
	p := ipv4.NewPacketConn(r.send)
	if err := p.SetMulticastInterface(lo); err != nil { // never out of eth0
		tb.Fatal(err)
	}
	p.SetMulticastTTL(1)
	r.send.SetReadBuffer(4 << 20)
	for range n {
		c, err := net.ListenMulticastUDP("udp4", lo, r.group)
		if err != nil {
			tb.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		r.recvs = append(r.recvs, c)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if from.Port == r.send.LocalAddr().(*net.UDPAddr).Port {
					c.WriteToUDP(buf[:n], from)
				}
			}
		}()
	}
	return r
}

func (r *rawRound) round(msg []byte) error {
	if _, err := r.send.WriteToUDP(msg, r.group); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	r.send.SetReadDeadline(time.Now().Add(time.Second))
	for range r.recvs {
		if _, _, err := r.send.ReadFromUDP(buf); err != nil {
			return err
		}
	}
	return nil
}

func (r *rawRound) close() {
	r.send.Close()
	for _, c := range r.recvs {
		c.Close()
	}
	r.wg.Wait()
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkRequest16 times a 200-byte request answered by 16 engines
// against a raw multicast round to 16 plain sockets, both in this run.
func BenchmarkRequest16(b *testing.B) {
	for _, loss := range []float64{0, 0.05} {
		b.Run(fmt.Sprintf("loss=%g%%", loss*100), func(b *testing.B) {
			const n = 16
			msg := make([]byte, 200)
			raw := newRawRound(b, n)
			rawLat := make([]time.Duration, 0, b.N)
			for range max(b.N, 200) {
				t0 := time.Now()
				if err := raw.round(msg); err != nil {
					b.Fatal(err)
				}
				rawLat = append(rawLat, time.Since(t0))
			}
			raw.close()
			f := newMcastFarm(b, n, loss, true, 0)
			defer f.close()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				t0 := time.Now()
				r, err := f.mgr.Request(ctx, 1, msg, nil)
				lat = append(lat, time.Since(t0))
				cancel()
				if err != nil || len(r.Responses) != n {
					b.Fatalf("%v: %d responses", err, len(r.Responses))
				}
			}
			b.StopTimer()
			b.ReportMetric(us(percentile(lat, 0.5)), "p50-µs")
			b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
			b.ReportMetric(us(percentile(rawLat, 0.5)), "raw-p50-µs")
			b.ReportMetric(us(percentile(rawLat, 0.99)), "raw-p99-µs")
			b.ReportMetric(float64(percentile(lat, 0.5))/float64(percentile(rawLat, 0.5)), "p50/raw")
		})
	}
}

// BenchmarkGoodput256K sends 256 KiB messages to 4 engines (a window of
// 4 in flight) and compares with the same bytes sent as raw multicast in
// the same run, each message paced by every receiver having all of it
// (loss-free): at 1,400-byte datagrams (the baseline) and at
// rmtp's own segment size.
func BenchmarkGoodput256K(b *testing.B) {
	for _, mtu := range []int{0, 1500} {
		name := "mtu=lo"
		if mtu != 0 {
			name = fmt.Sprintf("mtu=%d", mtu)
		}
		b.Run(name, func(b *testing.B) { goodput(b, mtu) })
	}
}

func goodput(b *testing.B, mtu int) {
	const n, size = 4, 256 << 10
	msg := make([]byte, size)
	raw1400 := rawGoodput(b, n, msg, 1400, max(b.N, 50))
	seg := 65507 - 64
	if mtu != 0 {
		seg = mtu - 28 - 64
	}
	rawSeg := rawGoodput(b, n, msg, seg, max(b.N, 50))
	f := newMcastFarm(b, n, 0, false, mtu)
	defer f.close()
	b.SetBytes(size)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	t0 := time.Now()
	// A window of messages in flight, as a directory transfer would.
	const window = 4
	var inflight []*rmtp.Transfer
	for i := range b.N + window {
		if len(inflight) == window || i >= b.N {
			if len(inflight) == 0 {
				break
			}
			if _, err := inflight[0].Wait(); err != nil {
				b.Fatal(err)
			}
			inflight = inflight[1:]
		}
		if i < b.N {
			t, err := f.mgr.Start(ctx, 2, rmtp.Down, msg)
			if err != nil {
				b.Fatal(err)
			}
			inflight = append(inflight, t)
		}
	}
	el := time.Since(t0)
	b.StopTimer()
	mbs := float64(size) * float64(b.N) / el.Seconds() / 1e6
	b.ReportMetric(mbs, "MB/s/receiver")
	b.ReportMetric(raw1400, "raw1400-MB/s")
	b.ReportMetric(rawSeg, "rawseg-MB/s")
	b.ReportMetric(mbs/raw1400, "vs-raw1400")
	b.ReportMetric(mbs/rawSeg, "vs-rawseg")
	s := f.mgr.Stats()
	b.ReportMetric(float64(s.Retransmits)/float64(b.N), "retx/msg")
	b.ReportMetric(float64(s.NaksReceived)/float64(b.N), "naks/msg")
}

func rawGoodput(b *testing.B, n int, msg []byte, dg, rounds int) float64 {
	lo, _ := net.InterfaceByName("lo")
	g, _ := rmtptest.Groups(b)
	group := net.UDPAddrFromAddrPort(g)
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer send.Close()
	if err := ipv4.NewPacketConn(send).SetMulticastInterface(lo); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make(chan int, n*4)
	var recvs []*net.UDPConn
	for range n {
		c, err := net.ListenMulticastUDP("udp4", lo, group)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		recvs = append(recvs, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			have := 0
			for {
				k, err := c.Read(buf)
				if err != nil {
					return
				}
				if have += k; have >= len(msg) {
					got <- have
					have = 0
				}
			}
		}()
	}
	t0 := time.Now()
	for range rounds {
		for off := 0; off < len(msg); off += dg {
			if _, err := send.WriteToUDP(msg[off:min(off+dg, len(msg))], group); err != nil {
				b.Fatal(err)
			}
		}
		for range n {
			select {
			case <-got:
			case <-time.After(time.Second):
				b.Fatal("raw baseline lost a datagram")
			}
		}
	}
	el := time.Since(t0)
	for _, c := range recvs {
		c.Close()
	}
	wg.Wait()
	return float64(len(msg)) * float64(rounds) / el.Seconds() / 1e6
}

// Benchmark256Answers has 256 engines answer one request at once: no
// response may be lost to receive-buffer overflow (RcvbufErrors from
// /proc/net/snmp is reported beside the transport's own counters), and
// the request's timer must not fire while the answers are still
// arriving (retransmits per request, manager's and engines').
func Benchmark256Answers(b *testing.B) {
	if testing.Short() {
		b.Skip("256 endpoints")
	}
	fanIn(b, 256)
}

// BenchmarkFanIn is Benchmark256Answers at farm sizes where the timer
// used to fire early, against a raw multicast round (one datagram
// answered by n plain sockets) in the same run.
func BenchmarkFanIn(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("engines=%d", n), func(b *testing.B) { fanIn(b, n) })
	}
}

func fanIn(b *testing.B, n int) {
	raw := newRawRound(b, n)
	rawLat := make([]time.Duration, 0, b.N)
	for range max(b.N, 200) {
		t0 := time.Now()
		if err := raw.round([]byte("get")); err != nil {
			b.Fatal(err)
		}
		rawLat = append(rawLat, time.Since(t0))
	}
	raw.close()
	f := newMcastFarm(b, n, 0, true, 0)
	defer f.close()
	before := rcvbufErrors(b)
	totals := func() (mgrRetx, engRetx, dgrams uint64) {
		for i, e := range append([]*rmtp.Endpoint{f.mgr}, f.engines...) {
			st := e.Stats()
			if i == 0 {
				mgrRetx = st.Retransmits
			} else {
				engRetx += st.Retransmits
			}
			dgrams += st.DatagramsSent
		}
		return
	}
	m0, e0, d0 := totals()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t0 := time.Now()
		r, err := f.mgr.Request(ctx, 1, []byte("get"), nil)
		lat = append(lat, time.Since(t0))
		cancel()
		if err != nil || len(r.Responses) != n {
			b.Fatalf("%v: %d responses of %d", err, len(r.Responses), n)
		}
	}
	b.StopTimer()
	m1, e1, d1 := totals()
	per := func(v uint64) float64 { return float64(v) / float64(b.N) }
	b.ReportMetric(us(percentile(lat, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(us(percentile(rawLat, 0.5)), "raw-p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.5))/float64(percentile(rawLat, 0.5)), "p50/raw")
	b.ReportMetric(float64(percentile(lat, 0.99))/float64(percentile(rawLat, 0.99)), "p99/raw")
	b.ReportMetric(float64(rcvbufErrors(b)-before), "RcvbufErrors")
	b.ReportMetric(float64(len(f.engines[0].Stats().Peers)), "peers/engine")
	b.ReportMetric(per(m1-m0), "mgr-retransmits/op")
	b.ReportMetric(per(e1-e0), "engine-retransmits/op")
	b.ReportMetric(per(d1-d0), "datagrams/op")
}

func rcvbufErrors(tb testing.TB) int64 {
	fh, err := os.Open("/proc/net/snmp")
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	var hdr []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || fs[0] != "Udp:" {
			continue
		}
		if hdr == nil {
			hdr = fs
			continue
		}
		for i, h := range hdr {
			if h == "RcvbufErrors" && i < len(fs) {
				v, _ := strconv.ParseInt(fs[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
