package agentx_test

import (
	"bufio"
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
func BenchmarkSessionRoundTrip(b *testing.B) {
	m := newFakeMaster(b)
	tree := agenttest.New(agenttest.Options{})
	sa := agentx.New(agentx.Config{Socket: m.socket()}, treeSet{"": tree.Tree}, nil)
	m.regs = countRegs(treeSet{"": tree.Tree})
	runSubagent(b, sa)
	mc := m.accept(1)
	get := &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.ScalarInt.Append(0)}}}
	rt := func(i int) time.Duration {
		t0 := time.Now()
		mc.request(be, uint32(i), uint32(i), get)
		if r := mc.readResponse(); r.PDU.(*pdu.Response).VarBinds[0].Value.Type != smi.TypeInteger {
			b.Fatal("bad answer")
		}
		return time.Since(t0)
	}
	for i := 0; i < 100; i++ {
		rt(i + 1)
	}
	// The floor: the same request bytes echoed by a goroutine (read the
	// header, read the payload, write back) over loopback TCP.
	echo := startEcho(b)
	req, _ := pdu.Encode(&pdu.Packet{Header: pdu.Header{Flags: be, SessionID: 1, TransactionID: 1, PacketID: 1}, PDU: get})
	buf := make([]byte, len(req))
	floor := func() time.Duration {
		t0 := time.Now()
		if _, err := echo.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(echo, buf); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var lat, base []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = append(lat, rt(i+1000))
		base = append(base, floor())
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(percentile(lat, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(us(percentile(base, 0.5)), "echo-p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.5))/float64(percentile(base, 0.5)), "p50-ratio")
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
		hdr := make([]byte, pdu.HeaderLength)
		for {
			if _, err := io.ReadFull(br, hdr); err != nil {
				return
			}
			h, _ := pdu.ParseHeader(hdr)
			body := make([]byte, h.PayloadLength)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			if _, err := c.Write(append(hdr, body...)); err != nil {
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
