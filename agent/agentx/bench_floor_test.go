package agentx_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// The instances the floor responders serve, beside the test tree.
var (
	floorOID    = smi.MustParseOID("1.3.6.1.4.1.8072.9999.4245.1.0")
	rawFloorOID = smi.MustParseOID("1.3.6.1.4.1.8072.9999.4246.1.0")
)

// floorSession opens an AgentX session on the master at socket and
// registers oid's parent, with blocking calls on conn; it returns the
// session id and the canned Response (oid = 7) with that session id, for a
// responder that patches in each request's transaction and packet ids.
func floorSession(b *testing.B, conn io.ReadWriter, oid smi.OID) []byte {
	b.Helper()
	br := bufio.NewReader(conn)
	rt := func(p *pdu.Packet) *pdu.Packet {
		out, err := pdu.Encode(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Write(out); err != nil {
			b.Fatal(err)
		}
		hdr := make([]byte, pdu.HeaderLength)
		if _, err := io.ReadFull(br, hdr); err != nil {
			b.Fatal(err)
		}
		h, err := pdu.ParseHeader(hdr)
		if err != nil {
			b.Fatal(err)
		}
		body := make([]byte, h.PayloadLength)
		if _, err := io.ReadFull(br, body); err != nil {
			b.Fatal(err)
		}
		r, err := pdu.DecodePayload(h, body)
		if err != nil {
			b.Fatal(err)
		}
		if resp, ok := r.PDU.(*pdu.Response); !ok || resp.Error != pdu.NoAgentXError {
			b.Fatalf("floor responder: %s refused: %+v", p.Type, r.PDU)
		}
		return r
	}
	const nbo = pdu.FlagNetworkByteOrder
	open := rt(&pdu.Packet{Header: pdu.Header{Flags: nbo, TransactionID: 1, PacketID: 1}, PDU: &pdu.Open{Description: []byte("floor")}})
	sid := open.SessionID
	rt(&pdu.Packet{Header: pdu.Header{Flags: nbo, SessionID: sid, TransactionID: 2, PacketID: 2},
		PDU: &pdu.Register{Priority: 127, Subtree: oid[:len(oid)-2]}})
	// net-snmp sends in network byte order; the canned answer is too.
	canned, err := pdu.Encode(&pdu.Packet{Header: pdu.Header{Flags: nbo, SessionID: sid},
		PDU: &pdu.Response{VarBinds: []smi.VarBind{{Name: oid, Value: smi.Integer(7)}}}})
	if err != nil {
		b.Fatal(err)
	}
	return canned
}

// startFloorResponder connects the least a Go subagent can be to the
// master at socket: a session serving oid, then one goroutine that reads a
// request (header, then payload, from one buffered reader over the same
// socket I/O as the session's) and writes a canned Response with the
// request's ids patched in. No decoding, no handler, no bookkeeping: a GET
// through it is the floor of any Go subagent on this master and machine.
func startFloorResponder(b *testing.B, socket string, oid smi.OID) {
	network, address, err := agentx.ParseSocket(socket)
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	canned := floorSession(b, c, oid)
	c.SetDeadline(time.Time{})
	rw := agentx.NewSysConn(c)
	done := make(chan struct{})
	b.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(rw, 64<<10)
		hdr := make([]byte, pdu.HeaderLength)
		body := make([]byte, 64<<10)
		for {
			if _, err := io.ReadFull(br, hdr); err != nil {
				return
			}
			n := binary.BigEndian.Uint32(hdr[16:])
			if n > uint32(len(body)) || hdr[2]&byte(pdu.FlagNetworkByteOrder) == 0 {
				return // not what snmpd sends for this benchmark
			}
			if _, err := io.ReadFull(br, body[:n]); err != nil {
				return
			}
			copy(canned[8:16], hdr[8:16]) // transaction and packet id
			if _, err := rw.Write(canned); err != nil {
				return
			}
		}
	}()
}
