package agentx_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// BenchmarkSessionRoundTrip is the subagent's own share of a GET: an
// in-process master sends one Get over loopback TCP and reads the
// Response, sequentially. The baseline in the same run is a bare TCP
// echo of the same bytes, so the ratio is our cost over the socket floor.
// Both sides of both paths do the same I/O (write the request bytes, read
// a header and a payload, no deadline per read), so the difference is the
// subagent's work; CPU is the whole process's (master, subagent, echo).
func BenchmarkSessionRoundTrip(b *testing.B) {
	m := newFakeMaster(b)
	tree := agenttest.New(agenttest.Options{})
	sa := agentx.New(agentx.Config{Socket: m.socket()}, treeSet{"": tree.Tree}, nil)
	m.regs = countRegs(treeSet{"": tree.Tree})
	runSubagent(b, sa)
	mc := m.accept(1)
	get := &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.ScalarInt.Append(0)}}}
	req, err := pdu.Encode(&pdu.Packet{Header: pdu.Header{Flags: be, SessionID: mc.session}, PDU: get})
	if err != nil {
		b.Fatal(err)
	}
	roundTrip := func(c net.Conn, br *bufio.Reader, id uint32, hdr, body []byte) ([]byte, []byte) {
		binary.BigEndian.PutUint32(req[8:], id)
		binary.BigEndian.PutUint32(req[12:], id)
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, hdr); err != nil {
			b.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(hdr[16:]))
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			b.Fatal(err)
		}
		return hdr, body
	}
	hdr := make([]byte, pdu.HeaderLength)
	var body []byte
	br := bufio.NewReader(mc.c)
	rt := func(i int) time.Duration {
		t0 := time.Now()
		hdr, body = roundTrip(mc.c, br, uint32(i), hdr, body)
		return time.Since(t0)
	}
	check := func() {
		h, err := pdu.ParseHeader(hdr)
		if err != nil {
			b.Fatal(err)
		}
		p, err := pdu.DecodePayload(h, body)
		if err != nil {
			b.Fatal(err)
		}
		if r, ok := p.PDU.(*pdu.Response); !ok || len(r.VarBinds) != 1 || r.VarBinds[0].Value.Type != smi.TypeInteger {
			b.Fatalf("bad answer %+v", p.PDU)
		}
	}
	for i := 0; i < 100; i++ {
		rt(i + 1)
		check()
	}
	// The floor: the same request bytes echoed by a goroutine (read the
	// header, read the payload, write back) over loopback TCP.
	echo := startEcho(b)
	ebr := bufio.NewReader(echo)
	floor := func(i int) time.Duration {
		t0 := time.Now()
		hdr, body = roundTrip(echo, ebr, uint32(i), hdr, body)
		return time.Since(t0)
	}
	var lat, base []time.Duration
	var cpu, baseCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		lat = append(lat, rt(i+1000))
		c1 := cpuTime()
		base = append(base, floor(i))
		c2 := cpuTime()
		cpu += c1 - c0
		baseCPU += c2 - c1
	}
	b.StopTimer()
	rt(b.N + 2000) // a fresh id: ids reused with the same bytes are answered from the resend cache
	check()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(percentile(lat, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(us(percentile(base, 0.5)), "echo-p50-µs")
	b.ReportMetric(us(percentile(base, 0.99)), "echo-p99-µs")
	b.ReportMetric(float64(percentile(lat, 0.5))/float64(percentile(base, 0.5)), "p50-ratio")
	b.ReportMetric(us(cpu)/float64(b.N), "cpu-µs/req")
	b.ReportMetric(us(baseCPU)/float64(b.N), "echo-cpu-µs/req")
}

func startEcho(b *testing.B) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		buf := make([]byte, 64<<10)
		for {
			hdr := buf[:pdu.HeaderLength]
			if _, err := io.ReadFull(br, hdr); err != nil {
				return
			}
			h, err := pdu.ParseHeader(hdr)
			if err != nil || pdu.HeaderLength+int(h.PayloadLength) > len(buf) {
				return
			}
			msg := buf[:pdu.HeaderLength+int(h.PayloadLength)]
			if _, err := io.ReadFull(br, msg[pdu.HeaderLength:]); err != nil {
				return
			}
			if _, err := c.Write(msg); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
