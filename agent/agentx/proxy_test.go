package agentx_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
)

// pduProxy sits between the subagent and snmpd and keeps every PDU it
// forwards, raw, in order: the recorder of testdata and a witness of what
// snmpd really sent (re-sent packet ids, Close reasons).
type pduProxy struct {
	Addr string // tcp:127.0.0.1:PORT for Config.Socket
	mu   sync.Mutex
	pdus []seenPDU
	ln   net.Listener
	wg   sync.WaitGroup
}

type seenPDU struct {
	ToMaster bool
	Header   pdu.Header
	Raw      []byte
}

func startProxy(t testing.TB, master string) *pduProxy {
	t.Helper()
	network, address, err := agentx.ParseSocket(master)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pduProxy{Addr: "tcp:" + ln.Addr().String(), ln: ln}
	var conns sync.Map
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial(network, address)
			if err != nil {
				c.Close()
				continue
			}
			conns.Store(c, u)
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(u, c, true) }()
			go func() { defer p.wg.Done(); p.pipe(c, u, false) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, v any) bool { k.(net.Conn).Close(); v.(net.Conn).Close(); return true })
		p.wg.Wait()
	})
	return p
}

func (p *pduProxy) pipe(dst, src net.Conn, toMaster bool) {
	defer dst.Close()
	defer src.Close()
	for {
		hdr := make([]byte, pdu.HeaderLength)
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		h, err := pdu.ParseHeader(hdr)
		if err != nil {
			return
		}
		raw := make([]byte, pdu.HeaderLength+int(h.PayloadLength))
		copy(raw, hdr)
		if _, err := io.ReadFull(src, raw[pdu.HeaderLength:]); err != nil {
			return
		}
		p.mu.Lock()
		p.pdus = append(p.pdus, seenPDU{ToMaster: toMaster, Header: h, Raw: raw})
		p.mu.Unlock()
		if _, err := dst.Write(raw); err != nil {
			return
		}
	}
}

// Seen returns a copy of what passed so far.
func (p *pduProxy) Seen() []seenPDU {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenPDU(nil), p.pdus...)
}
