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
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
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

// newMcastFarm starts the farm; engines answer every request with echo,
// inline with StartReply as fanout's responder does (rmtp repairs the
// answer until acknowledged, without a goroutine per answer).
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
					e.StartReply(ctx, m, m.Payload)
				}
				m.Release()
			}
		}()
	}
	waitfor.True(tb, 30*time.Second, "manager sees every engine", func() bool { return livePeers(f.mgr) == n })
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

// BenchmarkGoodput256K sends 256 KiB messages to 4 engines with a window
// of 4 messages in flight and compares with raw multicast of the same
// bytes in the same run, at lo's MTU and at Ethernet's 1,500.
//
// The raw baselines follow the same rules: the same 4 receivers (plain
// sockets on the same group), the same pacing (at most 4 messages in
// flight; the oldest must have reached every receiver before another
// goes), loss-free (a lost datagram fails the benchmark), and the
// datagram size rmtp sends at that MTU (header and tag included, so raw
// carries 4 % more payload per datagram at 1,500). Raw is measured with
// one system call per datagram (write, read) and with sendmmsg/recvmmsg,
// as rmtp uses, and at the 1,400-byte datagrams (plain calls).
//
// The run is goodputRounds rounds, each measuring every method in turn,
// so slow drift in the shared machine's load falls on all of them; each
// method's figure is its median over the rounds, and vs-raw is rmtp's
// median against the fastest method's median. (vs-raw-max is against
// the single fastest raw sample instead, the stricter figure this
// benchmark reported before it had rounds: a maximum over noisy samples
// is biased upward.) rmtp's figure counts payload bytes only.
func BenchmarkGoodput256K(b *testing.B) {
	for _, mtu := range []int{0, 1500} {
		name := "mtu=lo"
		if mtu != 0 {
			name = fmt.Sprintf("mtu=%d", mtu)
		}
		b.Run(name, func(b *testing.B) { goodput(b, mtu) })
	}
}

const goodputRounds = 5

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func goodput(b *testing.B, mtu int) {
	const n, size, window = 4, 256 << 10, 4
	msg := make([]byte, size)
	dg := 65507
	if mtu != 0 {
		dg = mtu - 28
	}
	f := newMcastFarm(b, n, 0, false, mtu)
	defer f.close()
	// A warm farm: every engine has the manager's stream positions
	// (its HELLO), or the first window waits for a heartbeat.
	for _, e := range f.engines {
		waitfor.True(b, 10*time.Second, "engine sees the manager", func() bool { return livePeers(e) == 1 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// rmtpRun sends count messages, a window of them in flight as a
	// directory transfer would, and returns payload MB/s per receiver.
	rmtpRun := func(count int) float64 {
		var inflight []*rmtp.Transfer
		t0 := time.Now()
		for i := range count + window {
			if len(inflight) == window || i >= count {
				if len(inflight) == 0 {
					break
				}
				if _, err := inflight[0].Wait(); err != nil {
					b.Fatal(err)
				}
				inflight = inflight[1:]
			}
			if i < count {
				t, err := f.mgr.Start(ctx, 2, rmtp.Down, msg)
				if err != nil {
					b.Fatal(err)
				}
				inflight = append(inflight, t)
			}
		}
		return float64(size) * float64(count) / time.Since(t0).Seconds() / 1e6
	}
	var got, plain, mmsg, r1400 []float64
	var cpu, rawCPU time.Duration
	var rawMsgs int
	s0 := f.mgr.Stats()
	b.SetBytes(size)
	b.ResetTimer()
	b.StopTimer()
	left := b.N
	for r := range goodputRounds {
		count := left / (goodputRounds - r)
		left -= count
		raws := max(count, 20)
		c0 := cpuTime()
		plain = append(plain, rawGoodput(b, n, msg, dg, window, raws, false))
		rawCPU += cpuTime() - c0
		rawMsgs += raws
		mmsg = append(mmsg, rawGoodput(b, n, msg, dg, window, raws, true))
		r1400 = append(r1400, rawGoodput(b, n, msg, 1400, window, raws, false))
		if count == 0 {
			continue
		}
		c0 = cpuTime()
		b.StartTimer()
		got = append(got, rmtpRun(count))
		b.StopTimer()
		cpu += cpuTime() - c0
	}
	s1 := f.mgr.Stats()
	mbs := median(got)
	rawBest := max(median(plain), median(mmsg))
	b.ReportMetric(mbs, "MB/s/receiver")
	b.ReportMetric(rawBest, "raw-MB/s")
	b.ReportMetric(median(plain), "rawplain-MB/s")
	b.ReportMetric(median(mmsg), "rawmmsg-MB/s")
	b.ReportMetric(median(r1400), "raw1400-MB/s")
	b.ReportMetric(mbs/rawBest, "vs-raw")
	b.ReportMetric(mbs/max(slices.Max(plain), slices.Max(mmsg)), "vs-raw-max")
	b.ReportMetric(mbs/median(r1400), "vs-raw1400")
	// CPU time of the process per message, against the plain raw
	// baseline's (both include the receivers and the sender).
	b.ReportMetric(float64(cpu)/float64(b.N)/(float64(rawCPU)/float64(rawMsgs)), "cpu/rawplain")
	b.ReportMetric(float64(s1.Retransmits-s0.Retransmits)/float64(b.N), "retx/msg")
	b.ReportMetric(float64(s1.NaksReceived-s0.NaksReceived)/float64(b.N), "naks/msg")
	b.ReportMetric(float64(s1.DatagramsSent-s0.DatagramsSent)/float64(b.N), "datagrams/msg")
}

// rawGoodput is the baseline of goodput: msg as datagrams of dg bytes to
// n plain sockets on one group, at most window messages ahead of the
// slowest receiver. mmsg: the sender uses sendmmsg and the receivers
// recvmmsg (32 per call), as rmtp's UDP transport does.
func rawGoodput(b testing.TB, n int, msg []byte, dg, window, rounds int, mmsg bool) float64 {
	lo, _ := net.InterfaceByName("lo")
	g, _ := rmtptest.Groups(b)
	group := net.UDPAddrFromAddrPort(g)
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer send.Close()
	spc := ipv4.NewPacketConn(send)
	if err := spc.SetMulticastInterface(lo); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make(chan int, n*window*2)
	var recvs []*net.UDPConn
	for i := range n {
		c, err := net.ListenMulticastUDP("udp4", lo, group)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		recvs = append(recvs, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			have := 0
			count := func(k int) {
				if have += k; have >= len(msg) {
					got <- i
					have -= len(msg)
				}
			}
			if !mmsg {
				buf := make([]byte, 65536)
				for {
					k, err := c.Read(buf)
					if err != nil {
						return
					}
					count(k)
				}
			}
			pc := ipv4.NewPacketConn(c)
			ms := make([]ipv4.Message, 32)
			for j := range ms {
				ms[j].Buffers = [][]byte{make([]byte, dg+1)}
			}
			for {
				k, err := pc.ReadBatch(ms, 0)
				if err != nil {
					return
				}
				for _, m := range ms[:k] {
					count(m.N)
				}
			}
		}()
	}
	var dgs [][]byte
	for off := 0; off < len(msg); off += dg {
		dgs = append(dgs, msg[off:min(off+dg, len(msg))])
	}
	ms := make([]ipv4.Message, len(dgs))
	for j := range ms {
		ms[j] = ipv4.Message{Buffers: [][]byte{dgs[j]}, Addr: group}
	}
	done := make([]int, n) // messages each receiver has whole
	oldest := func() int { return slices.Min(done) }
	t0 := time.Now()
	for sent := 0; sent < rounds || oldest() < rounds; {
		if sent < rounds && sent-oldest() < window {
			if mmsg {
				for rest := ms; len(rest) > 0; {
					k, err := spc.WriteBatch(rest, 0)
					if err != nil {
						b.Fatal(err)
					}
					rest = rest[k:]
				}
			} else {
				for _, d := range dgs {
					if _, err := send.WriteToUDP(d, group); err != nil {
						b.Fatal(err)
					}
				}
			}
			sent++
			continue
		}
		select {
		case i := <-got:
			done[i]++
		case <-time.After(time.Second):
			b.Fatal("raw baseline lost a datagram")
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
	rawRounds := max(b.N, 200)
	rawLat := make([]time.Duration, 0, rawRounds)
	rawCPU := cpuTime()
	for range rawRounds {
		t0 := time.Now()
		if err := raw.round([]byte("get")); err != nil {
			b.Fatal(err)
		}
		rawLat = append(rawLat, time.Since(t0))
	}
	rawCPU = cpuTime() - rawCPU
	raw.close()
	f := newMcastFarm(b, n, 0, true, 0)
	defer f.close()
	before := rcvbufErrors(b)
	// A warm farm: every engine has the manager's stream positions.
	for _, e := range f.engines {
		waitfor.True(b, 30*time.Second, "engine sees the manager", func() bool { return livePeers(e) == 1 })
	}
	type tot struct{ mgrRetx, engRetx, dgrams, down, acks uint64 }
	totals := func() (t tot) {
		for i, e := range append([]*rmtp.Endpoint{f.mgr}, f.engines...) {
			st := e.Stats()
			if i == 0 {
				t.mgrRetx, t.down, t.acks = st.Retransmits, st.DatagramsSent, st.AcksSent
			} else {
				t.engRetx += st.Retransmits
			}
			t.dgrams += st.DatagramsSent
		}
		return
	}
	c0 := totals()
	lat := make([]time.Duration, 0, b.N)
	cpu := cpuTime()
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
	cpu = cpuTime() - cpu
	c1 := totals()
	per := func(v uint64) float64 { return float64(v) / float64(b.N) }
	b.ReportMetric(us(percentile(lat, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(us(percentile(rawLat, 0.5)), "raw-p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.5))/float64(percentile(rawLat, 0.5)), "p50/raw")
	b.ReportMetric(float64(percentile(lat, 0.99))/float64(percentile(rawLat, 0.99)), "p99/raw")
	b.ReportMetric(float64(rcvbufErrors(b)-before), "RcvbufErrors")
	b.ReportMetric(float64(len(f.engines[0].Stats().Peers)), "peers/engine")
	// CPU time of the whole process (manager, engines, the test) per
	// round: less at the mercy of other load on the machine than
	// latency.
	b.ReportMetric(us(cpu)/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(cpu)/float64(b.N)/(float64(rawCPU)/float64(rawRounds)), "cpu/raw")
	b.ReportMetric(per(c1.mgrRetx-c0.mgrRetx), "mgr-retransmits/op")
	b.ReportMetric(per(c1.engRetx-c0.engRetx), "engine-retransmits/op")
	b.ReportMetric(per(c1.dgrams-c0.dgrams), "datagrams/op")
	// Every datagram the manager sends down wakes every engine.
	b.ReportMetric(per(c1.down-c0.down), "mgr-datagrams/op")
	b.ReportMetric(per(c1.acks-c0.acks), "mgr-ack-vectors/op")
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
