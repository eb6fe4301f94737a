package rmtp

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// recTransport records what is sent (no batching, so the order is the
// endpoint's queue order) and receives nothing until closed.
type recTransport struct {
	mu     sync.Mutex
	sent   []wire.Packet
	closed chan struct{}
}

func newRecTransport() *recTransport { return &recTransport{closed: make(chan struct{})} }

func (r *recTransport) Send(_ Dest, b []byte) error {
	p, err := wire.ParsePacket(bytes.Clone(b))
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sent = append(r.sent, p)
	r.mu.Unlock()
	return nil
}
func (r *recTransport) SendTo(netip.AddrPort, []byte) error { return nil }
func (r *recTransport) Recv() (Datagram, error)             { <-r.closed; return Datagram{}, ErrClosed }
func (r *recTransport) MaxDatagram() int                    { return 1472 }
func (r *recTransport) LocalAddr() netip.AddrPort           { return netip.AddrPort{} }
func (r *recTransport) Close() error                        { close(r.closed); return nil }

// take returns the datagrams of the given types sent since the last take.
func (r *recTransport) take(types ...wire.Type) []wire.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.Packet
	for _, p := range r.sent {
		for _, t := range types {
			if p.Type == t {
				out = append(out, p)
			}
		}
	}
	r.sent = nil
	return out
}

// quietConfig keeps the timer loop out of the way: no heartbeat or ACK
// timer fires while a test drives the endpoint by hand.
func quietConfig(id NodeID, role Role) Config {
	return Config{Node: id, Role: role, Insecure: true, HelloInterval: time.Hour, AckDelay: time.Hour,
		MinRTO: time.Hour, MaxRTO: time.Hour, SuspectAfter: 1000, DownAfter: 2000}
}

// syncedPeer makes id a known, synced member of e. Caller holds e.mu.
func syncedPeer(e *Endpoint, id NodeID, role Role, now time.Time) *peer {
	pr := e.peerFor(id, 7, netip.AddrPort{}, now)
	pr.role, pr.synced = role, true
	return pr
}

func segment(t wire.Type, from NodeID, ch uint8, up bool, id uint64, seq, count uint32, payload []byte) *wire.Packet {
	f := wire.Flags(0)
	if seq == 0 {
		f |= wire.FlagInit
	}
	if seq == count-1 {
		f |= wire.FlagNoMore
	}
	if up {
		f |= wire.FlagUp
	}
	return &wire.Packet{Header: wire.Header{Type: t, Flags: f, Channel: ch, Node: uint32(from), Incarnation: 7,
		MsgID: id, Seq: seq, Count: count, Ref: 1, PayloadLen: uint16(len(payload))}, Payload: payload}
}

// TestAnswersHeldUntilRequestEnds: the requester does not acknowledge
// answers while its request collects; its end arms one vector for all
// of them, which then goes out just before the next message sent, in
// the same flush.
func TestAnswersHeldUntilRequestEnds(t *testing.T) {
	tr := newRecTransport()
	e, err := New(tr, quietConfig(1, Manager))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	now := time.Now()
	e.mu.Lock()
	syncedPeer(e, 101, Engine, now)
	syncedPeer(e, 102, Engine, now)
	e.mu.Unlock()
	req, err := e.StartRequest(ctx, 9, []byte("get"), []NodeID{101, 102})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(from NodeID) {
		ref := wire.ResponseRef{Node: 1, Incarnation: e.inc, MsgID: req.ID()}
		body := append(wire.AppendResponseRef(nil, &ref), "42"...)
		e.mu.Lock()
		e.onSegment(e.peers[from], segment(wire.TypeResponse, from, 9, true, 1, 0, 1, body), time.Now(), false)
		e.unlockAndFlush()
	}
	answer(101)
	e.mu.Lock()
	held := e.ackAt.IsZero() && !e.ackNow
	e.mu.Unlock()
	if !held {
		t.Fatal("an answer to a collecting request armed the ACK timer")
	}
	if acks := tr.take(wire.TypeAck); len(acks) != 0 {
		t.Fatalf("%d ACKs while the request collects", len(acks))
	}
	answer(102)
	<-req.Done()
	e.mu.Lock()
	armed := !e.ackAt.IsZero()
	e.mu.Unlock()
	if !armed {
		t.Fatal("the request ended without arming the ACK of its answers")
	}
	tr.take() // the request itself
	if _, err := e.Start(ctx, 9, Down, []byte("next")); err != nil {
		t.Fatal(err)
	}
	got := tr.take(wire.TypeAck, wire.TypeData)
	if len(got) != 2 || got[0].Type != wire.TypeAck || got[1].Type != wire.TypeData {
		t.Fatalf("sent %v, want the ACK vector, then the data", types(got))
	}
	covered := map[uint32]uint64{}
	if err := wire.ScanAck(got[0].Payload, 101, func(en wire.AckEntry) { covered[101] = en.Next }); err != nil {
		t.Fatal(err)
	}
	if err := wire.ScanAck(got[0].Payload, 102, func(en wire.AckEntry) { covered[102] = en.Next }); err != nil {
		t.Fatal(err)
	}
	if covered[101] != 2 || covered[102] != 2 {
		t.Fatalf("vector covers %v, want both answers (next 2)", covered)
	}
}

func types(ps []wire.Packet) []wire.Type {
	var ts []wire.Type
	for _, p := range ps {
		ts = append(ts, p.Type)
	}
	return ts
}

// TestDuplicateRequestResendsAnswer: an engine that sees a request again
// re-sends its answer while that is unacknowledged (the manager lost it),
// and sends nothing once it was acknowledged (the re-send was for
// others): never an ACK of the request, which its answer already is.
func TestDuplicateRequestResendsAnswer(t *testing.T) {
	tr := newRecTransport()
	e, err := New(tr, quietConfig(101, Engine))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	now := time.Now()
	e.mu.Lock()
	mgr := syncedPeer(e, 1, Manager, now)
	req := segment(wire.TypeRequest, 1, 9, false, 1, 0, 1, []byte("get"))
	e.onSegment(mgr, req, now, false)
	e.unlockAndFlush()
	m, err := e.Receive(context.Background())
	if err != nil || m.Kind != KindRequest {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := e.StartReply(context.Background(), m, []byte("42")); err != nil {
		t.Fatal(err)
	}
	if got := tr.take(wire.TypeResponse, wire.TypeAck); len(got) != 1 || got[0].Type != wire.TypeResponse {
		t.Fatalf("answering sent %v", types(got))
	}

	again := func() []wire.Packet {
		e.mu.Lock()
		e.onSegment(mgr, req, time.Now().Add(2*time.Hour), false) // past the one-per-round guard (MinRTO/2)
		e.unlockAndFlush()
		return tr.take(wire.TypeResponse, wire.TypeAck)
	}
	if got := again(); len(got) != 1 || got[0].Type != wire.TypeResponse || got[0].MsgID != 1 {
		t.Fatalf("request re-sent while the answer is unacknowledged: sent %v, want the answer", types(got))
	}
	e.mu.Lock()
	e.onAckEntry(mgr, wire.AckEntry{Stream: wire.StreamID{Node: 101, Incarnation: e.inc, Channel: 9, Up: true}, Next: 2}, time.Now())
	e.mu.Unlock()
	if got := again(); len(got) != 0 {
		t.Fatalf("request re-sent after the answer was acknowledged: sent %v, want nothing", types(got))
	}
	if e.Stats().Duplicates != 2 {
		t.Fatalf("duplicates %d, want 2", e.Stats().Duplicates)
	}
}

// TestReassemblyInPlace: segments are copied into their message as they
// come, in any order, so a transport may reuse a datagram's buffer at
// once (borrowed); a segment whose length contradicts the others is
// refused; the peer's memory is charged for the whole message and freed
// on delivery.
func TestReassemblyInPlace(t *testing.T) {
	tr := newRecTransport()
	e, err := New(tr, quietConfig(101, Engine))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := make([]byte, 240)
	for i := range want {
		want[i] = byte(i)
	}
	segs := [][]byte{want[:100], want[100:200], want[200:]}
	scratch := make([]byte, 100) // the "transport's" buffer, reused
	feed := func(seq uint32, b []byte) {
		n := copy(scratch, b)
		e.mu.Lock()
		e.onSegment(e.peers[1], segment(wire.TypeData, 1, 3, false, 1, seq, 3, scratch[:n]), time.Now(), true)
		e.unlockAndFlush()
		clear(scratch) // the next read overwrites it
	}
	e.mu.Lock()
	syncedPeer(e, 1, Manager, time.Now())
	e.mu.Unlock()

	feed(2, append(bytes.Clone(segs[2]), 0xEE, 0xEE)) // the last first (42 bytes): kept for now
	feed(1, segs[1][:40])                             // sets the segment size to 40: the last is too long...
	feed(0, segs[0])                                  // ...and 100 is not 40: refused
	s := e.Stats()
	if s.Malformed != 2 {
		t.Fatalf("malformed %d, want 2 (the 42-byte last once 40 was known, then the 100)", s.Malformed)
	}
	// The sender's real segments repair it: drop the bogus message.
	e.mu.Lock()
	pr := e.peers[1]
	st := pr.stream(streamKey{3, false})
	pr.mem -= st.parts[1].size
	delete(st.parts, 1)
	e.mu.Unlock()

	feed(2, segs[2])
	feed(0, segs[0])
	e.mu.Lock()
	held := e.peers[1].mem
	e.mu.Unlock()
	if held < 300 {
		t.Fatalf("peer memory %d while reassembling, want the whole message charged (≥ 300)", held)
	}
	feed(1, segs[1])
	m, err := e.Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Payload, want) || cap(m.Payload) != len(want) {
		t.Fatalf("delivered %d bytes (cap %d), want the 240 sent", len(m.Payload), cap(m.Payload))
	}
	if mem := e.Stats().Peers[0].Memory; mem != 0 {
		t.Fatalf("peer memory %d after delivery", mem)
	}
}
