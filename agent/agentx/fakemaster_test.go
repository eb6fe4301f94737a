package agentx_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// fakeMaster is an in-process AgentX master speaking through the codec, so
// session behaviour (re-sent PDUs, byte orders, Close, parse errors) is
// tested exactly and without snmpd.
type fakeMaster struct {
	t     testing.TB
	ln    net.Listener
	conns chan net.Conn
	regs  int // Registers each session sends (countRegs of the subagent's trees)
}

func countRegs(s treeSet) int {
	n := 0
	for _, t := range s {
		n += len(t.Roots())
	}
	return n
}

func newFakeMaster(t testing.TB) *fakeMaster {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{t: t, ln: ln, conns: make(chan net.Conn, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(m.conns)
				return
			}
			m.conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return m
}

func (m *fakeMaster) socket() string { return "tcp:" + m.ln.Addr().String() }

// masterConn is one accepted subagent connection.
type masterConn struct {
	t       testing.TB
	c       net.Conn
	session uint32
	roots   []smi.OID
	ctxs    []string
}

// accept waits for the subagent, answers its Open and every Register.
func (m *fakeMaster) accept(session uint32) *masterConn {
	m.t.Helper()
	var c net.Conn
	select {
	case c = <-m.conns:
	case <-time.After(10 * time.Second):
		m.t.Fatal("subagent did not connect")
	}
	m.t.Cleanup(func() { c.Close() })
	mc := &masterConn{t: m.t, c: c, session: session}
	p := mc.read()
	if _, ok := p.PDU.(*pdu.Open); !ok {
		m.t.Fatalf("first PDU %s, want Open", p.Type)
	}
	mc.reply(p, &pdu.Response{SysUpTime: 1000})
	// Registers arrive pipelined, one per root of every context.
	for len(mc.roots) < m.regs {
		p := mc.read()
		reg, ok := p.PDU.(*pdu.Register)
		if !ok {
			m.t.Fatalf("got %s, want Register %d of %d", p.Type, len(mc.roots)+1, m.regs)
		}
		if p.SessionID != session {
			m.t.Errorf("Register on session %d, want %d", p.SessionID, session)
		}
		mc.roots = append(mc.roots, reg.Subtree)
		mc.ctxs = append(mc.ctxs, string(p.Context))
		mc.reply(p, &pdu.Response{})
	}
	return mc
}

func (mc *masterConn) tryRead() (*pdu.Packet, error) {
	hdr := make([]byte, pdu.HeaderLength)
	if _, err := io.ReadFull(mc.c, hdr); err != nil {
		return nil, err
	}
	h, err := pdu.ParseHeader(hdr)
	if err != nil {
		return nil, err
	}
	body := make([]byte, h.PayloadLength)
	if _, err := io.ReadFull(mc.c, body); err != nil {
		return nil, err
	}
	return pdu.DecodePayload(h, body)
}

func (mc *masterConn) read() *pdu.Packet {
	mc.t.Helper()
	mc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer mc.c.SetReadDeadline(time.Time{})
	p, err := mc.tryRead()
	if err != nil {
		mc.t.Fatalf("fake master read: %v", err)
	}
	return p
}

// readResponse reads PDUs until a Response, answering Pings.
func (mc *masterConn) readResponse() *pdu.Packet {
	mc.t.Helper()
	for {
		p := mc.read()
		if p.Type == pdu.TypeResponse {
			return p
		}
		if p.Type == pdu.TypePing {
			mc.reply(p, &pdu.Response{})
			continue
		}
		mc.t.Fatalf("got %s, want a Response", p.Type)
	}
}

// expectSilence asserts nothing arrives for d.
func (mc *masterConn) expectSilence(d time.Duration) {
	mc.t.Helper()
	mc.c.SetReadDeadline(time.Now().Add(d))
	defer mc.c.SetReadDeadline(time.Time{})
	if p, err := mc.tryRead(); err == nil {
		mc.t.Fatalf("unexpected %s (packet %d)", p.Type, p.PacketID)
	}
}

func (mc *masterConn) reply(req *pdu.Packet, r *pdu.Response) {
	mc.t.Helper()
	h := req.Header
	h.Flags &= pdu.FlagNetworkByteOrder
	if req.Type == pdu.TypeOpen {
		h.SessionID = mc.session
	}
	mc.write(&pdu.Packet{Header: h, PDU: r})
}

func (mc *masterConn) write(p *pdu.Packet) {
	mc.t.Helper()
	b, err := pdu.Encode(p)
	if err != nil {
		mc.t.Fatal(err)
	}
	if _, err := mc.c.Write(b); err != nil {
		mc.t.Fatalf("fake master write: %v", err)
	}
}

// request sends a master request with the given ids.
func (mc *masterConn) request(flags pdu.Flags, tx, packet uint32, body pdu.PDU) {
	mc.t.Helper()
	mc.write(&pdu.Packet{Header: pdu.Header{Flags: flags, SessionID: mc.session, TransactionID: tx, PacketID: packet}, PDU: body})
}

// runSubagent runs sa until the test ends and checks Run's clean return.
func runSubagent(t testing.TB, sa *agentx.Subagent) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sa.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitOpen waits until sa has processed its registrations.
func waitOpen(t testing.TB, sa *agentx.Subagent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sa.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
}

// startSession starts a subagent serving trees (cfg with a fake master's
// socket), accepts the session it opens as session id sid and waits for
// its registrations: what most session tests begin with.
func startSession(t testing.TB, cfg agentx.Config, trees treeSet, sid uint32) (*agentx.Subagent, *masterConn) {
	t.Helper()
	return startSessionWith(t, newFakeMaster(t), cfg, trees, sid)
}

// startSessionWith is startSession on master m, for a test that has m
// accept again.
func startSessionWith(t testing.TB, m *fakeMaster, cfg agentx.Config, trees treeSet, sid uint32) (*agentx.Subagent, *masterConn) {
	t.Helper()
	cfg.Socket = m.socket()
	sa := agentx.New(cfg, trees, nil)
	m.regs = countRegs(trees)
	runSubagent(t, sa)
	return sa, m.accept(sid)
}
