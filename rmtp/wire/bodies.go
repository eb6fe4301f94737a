package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/smsnmpd/smsnmpd/internal/cursor"
)

// reader consumes a body: the shared cursor, with rmtp's own reads.
type reader struct{ cursor.Reader }

// newReader reads b; a short read fails with ErrTruncated.
func newReader(b []byte) reader {
	return reader{cursor.Reader{B: b, Short: ErrTruncated}}
}

// count reads a 16-bit element count, checks it against limit and that the
// elements (elem bytes each) are present, so nothing is allocated for
// elements that are not there.
func (r *reader) count(limit, elem int, what string) int {
	n := int(r.U16())
	if r.Err != nil {
		return 0
	}
	if n > limit {
		r.Err = fmt.Errorf("%w: %d %s > %d", ErrTooLarge, n, what, limit)
		return 0
	}
	if len(r.B) < n*elem {
		r.Err = fmt.Errorf("%w: %d %s need %d bytes, have %d", ErrTruncated, n, what, n*elem, len(r.B))
		return 0
	}
	return n
}

func (r *reader) bool() bool {
	switch v := r.U8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		if r.Err == nil {
			r.Err = fmt.Errorf("%w: boolean byte %d", ErrMalformed, v)
		}
		return false
	}
}

func (r *reader) done(what string) error {
	if r.Err != nil {
		return fmt.Errorf("%s: %w", what, r.Err)
	}
	if len(r.B) != 0 {
		return fmt.Errorf("%s: %w: %d trailing bytes", what, ErrMalformed, len(r.B))
	}
	return nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// StreamID names one ordered stream: the messages one sender incarnation
// sends on one channel in one direction.
type StreamID struct {
	Node        uint32
	Incarnation uint64
	Channel     uint8
	Up          bool
}

// StreamIDLen is the encoded size of a StreamID.
const StreamIDLen = 14

func appendStreamID(b []byte, s StreamID) []byte {
	b = binary.BigEndian.AppendUint32(b, s.Node)
	b = binary.BigEndian.AppendUint64(b, s.Incarnation)
	b = append(b, s.Channel)
	return appendBool(b, s.Up)
}

func (r *reader) streamID() StreamID {
	return StreamID{Node: r.U32(), Incarnation: r.U64(), Channel: r.U8(), Up: r.bool()}
}

// AckEntry acknowledges every message of Stream with an id below Next.
type AckEntry struct {
	Stream StreamID
	Next   uint64
}

const ackEntryLen = StreamIDLen + 8

// Ack is the body of an ACK: a cumulative acknowledgement vector.
type Ack struct {
	Entries []AckEntry
}

// AppendAck appends a's encoding to b.
func AppendAck(b []byte, a *Ack) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Entries)))
	for _, e := range a.Entries {
		b = appendStreamID(b, e.Stream)
		b = binary.BigEndian.AppendUint64(b, e.Next)
	}
	return b
}

// ParseAck decodes an ACK body.
func ParseAck(p []byte) (Ack, error) {
	r := newReader(p)
	var a Ack
	if n := r.count(MaxAckEntries, ackEntryLen, "ack entries"); n > 0 {
		a.Entries = make([]AckEntry, n)
		for i := range a.Entries {
			a.Entries[i] = AckEntry{Stream: r.streamID(), Next: r.U64()}
		}
	}
	return a, r.done("ack")
}

// ScanAck checks an ACK body exactly as ParseAck does and calls fn for
// each entry whose stream belongs to node, in order, without allocating.
// Every member hears every manager's vector, which covers every sender of
// the farm, and needs only its own entries: decoding all of them made the
// vectors cost O(N²) per farm. On an error fn has not been called.
func ScanAck(p []byte, node uint32, fn func(AckEntry)) error {
	r := newReader(p)
	n := r.count(MaxAckEntries, ackEntryLen, "ack entries")
	if r.Err == nil && len(r.B) != n*ackEntryLen {
		// the same error ParseAck's done reports
		return fmt.Errorf("ack: %w: %d trailing bytes", ErrMalformed, len(r.B)-n*ackEntryLen)
	}
	if r.Err != nil {
		return fmt.Errorf("ack: %w", r.Err)
	}
	body := r.B
	for i := range n { // validate first, so that fn sees nothing of a bad body
		if up := body[i*ackEntryLen+13]; up > 1 {
			return fmt.Errorf("ack: %w: boolean byte %d", ErrMalformed, up)
		}
	}
	for i := range n {
		e := body[i*ackEntryLen:]
		if binary.BigEndian.Uint32(e) != node {
			continue
		}
		er := newReader(e[:ackEntryLen])
		fn(AckEntry{Stream: er.streamID(), Next: er.U64()})
	}
	return nil
}

// SegAll as a NakRange's Last asks for every segment from First on.
const SegAll = ^uint32(0)

// NakRange asks for segments First..Last (inclusive) of message MsgID.
// First 0 and Last SegAll ask for a message whose segments were all lost.
type NakRange struct {
	MsgID uint64
	First uint32
	Last  uint32
}

const nakRangeLen = 16

// Nak is the body of a NAK: a re-send request for segments of one stream.
type Nak struct {
	Stream StreamID
	Ranges []NakRange
}

// AppendNak appends n's encoding to b.
func AppendNak(b []byte, n *Nak) []byte {
	b = appendStreamID(b, n.Stream)
	b = binary.BigEndian.AppendUint16(b, uint16(len(n.Ranges)))
	for _, g := range n.Ranges {
		b = binary.BigEndian.AppendUint64(b, g.MsgID)
		b = binary.BigEndian.AppendUint32(b, g.First)
		b = binary.BigEndian.AppendUint32(b, g.Last)
	}
	return b
}

// ParseNak decodes a NAK body.
func ParseNak(p []byte) (Nak, error) {
	r := newReader(p)
	n := Nak{Stream: r.streamID()}
	if c := r.count(MaxNakRanges, nakRangeLen, "nak ranges"); c > 0 {
		n.Ranges = make([]NakRange, c)
		for i := range n.Ranges {
			g := NakRange{MsgID: r.U64(), First: r.U32(), Last: r.U32()}
			if g.First > g.Last || g.MsgID == 0 {
				return Nak{}, fmt.Errorf("nak: %w: range %d %d..%d", ErrMalformed, g.MsgID, g.First, g.Last)
			}
			n.Ranges[i] = g
		}
	}
	return n, r.done("nak")
}

// Abort is the body of an ABORT: the sender (header node, incarnation,
// channel, FlagUp) aborts message MsgID.
type Abort struct {
	MsgID uint64
}

// AppendAbort appends a's encoding to b.
func AppendAbort(b []byte, a *Abort) []byte { return binary.BigEndian.AppendUint64(b, a.MsgID) }

// ParseAbort decodes an ABORT body.
func ParseAbort(p []byte) (Abort, error) {
	r := newReader(p)
	a := Abort{MsgID: r.U64()}
	if err := r.done("abort"); err != nil {
		return Abort{}, err
	}
	if a.MsgID == 0 {
		return Abort{}, fmt.Errorf("abort: %w: message id 0", ErrMalformed)
	}
	return a, nil
}

// AbortStatus is what a receiver did with an aborted message. Append-only.
type AbortStatus uint8

// Abort statuses.
const (
	AbortDiscarded AbortStatus = 0 // partial (or unseen) message dropped, never delivered
	AbortDelivered AbortStatus = 1 // too late: already delivered before the abort
)

func (s AbortStatus) String() string {
	switch s {
	case AbortDiscarded:
		return "discarded"
	case AbortDelivered:
		return "delivered"
	}
	return fmt.Sprintf("AbortStatus(%d)", uint8(s))
}

// AbortAck is the body of an ABORT_ACK: the header's sender acknowledges the
// abort of message MsgID of Stream.
type AbortAck struct {
	Stream StreamID
	MsgID  uint64
	Status AbortStatus
}

// AppendAbortAck appends a's encoding to b.
func AppendAbortAck(b []byte, a *AbortAck) []byte {
	b = appendStreamID(b, a.Stream)
	b = binary.BigEndian.AppendUint64(b, a.MsgID)
	return append(b, byte(a.Status))
}

// ParseAbortAck decodes an ABORT_ACK body.
func ParseAbortAck(p []byte) (AbortAck, error) {
	r := newReader(p)
	a := AbortAck{Stream: r.streamID(), MsgID: r.U64(), Status: AbortStatus(r.U8())}
	if err := r.done("abort ack"); err != nil {
		return AbortAck{}, err
	}
	if a.Status > AbortDelivered || a.MsgID == 0 {
		return AbortAck{}, fmt.Errorf("abort ack: %w: status %d, message id %d", ErrMalformed, a.Status, a.MsgID)
	}
	return a, nil
}

// Role is a member's role. Append-only.
type Role uint8

// Roles.
const (
	RoleEngine  Role = 1 // SE: in the farm group only
	RoleManager Role = 2 // SM or BSM: in the farm and managers' groups
)

func (r Role) String() string {
	switch r {
	case RoleEngine:
		return "engine"
	case RoleManager:
		return "manager"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// StreamMark tells receivers where a sender's stream stands: Next is the id
// its next message will get, Low the oldest id it still holds for repair
// (ids below Low will never be repaired).
type StreamMark struct {
	Channel uint8
	Up      bool
	Next    uint64
	Low     uint64
}

const streamMarkLen = 18

// Hello is the body of a HELLO heartbeat.
type Hello struct {
	Role     Role
	Priority uint8
	Level    uint8
	Term     uint64         // the view term the sender holds (an engine: 0 while its view's owner is not alive)
	Time     int64          // sender's clock, Unix nanoseconds: freshness against replay
	Addr     netip.AddrPort // the sender's unicast address; zero if none
	Streams  []StreamMark
	App      []byte // opaque to rmtp (counters for the MIB), at most MaxHelloApp
}

// AppendHello appends h's encoding to b.
func AppendHello(b []byte, h *Hello) []byte {
	b = append(b, byte(h.Role), h.Priority, h.Level)
	b = binary.BigEndian.AppendUint64(b, h.Term)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time))
	switch a := h.Addr.Addr(); {
	case !h.Addr.IsValid():
		b = append(b, 0)
	case a.Is4():
		b = append(b, 4)
		b = append(b, a.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, h.Addr.Port())
	default:
		b = append(b, 6)
		s := a.As16()
		b = append(b, s[:]...)
		b = binary.BigEndian.AppendUint16(b, h.Addr.Port())
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Streams)))
	for _, s := range h.Streams {
		b = append(b, s.Channel)
		b = appendBool(b, s.Up)
		b = binary.BigEndian.AppendUint64(b, s.Next)
		b = binary.BigEndian.AppendUint64(b, s.Low)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.App)))
	return append(b, h.App...)
}

// ParseHello decodes a HELLO body. App aliases p.
func ParseHello(p []byte) (Hello, error) {
	r := newReader(p)
	h := Hello{Role: Role(r.U8()), Priority: r.U8(), Level: r.U8(), Term: r.U64(), Time: int64(r.U64())}
	switch fam := r.U8(); fam {
	case 0:
	case 4:
		if v := r.Take(4); v != nil {
			h.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(v)), r.U16())
		}
	case 6:
		if v := r.Take(16); v != nil {
			h.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(v)), r.U16())
		}
	default:
		if r.Err == nil {
			r.Err = fmt.Errorf("%w: address family %d", ErrMalformed, fam)
		}
	}
	if n := r.count(MaxHelloStreams, streamMarkLen, "hello streams"); n > 0 {
		h.Streams = make([]StreamMark, n)
		for i := range h.Streams {
			h.Streams[i] = StreamMark{Channel: r.U8(), Up: r.bool(), Next: r.U64(), Low: r.U64()}
		}
	}
	if n := r.count(MaxHelloApp, 1, "hello app bytes"); n > 0 {
		h.App = r.Take(n)
	}
	if err := r.done("hello"); err != nil {
		return Hello{}, err
	}
	if h.Role != RoleEngine && h.Role != RoleManager {
		return Hello{}, fmt.Errorf("hello: %w: role %d", ErrMalformed, h.Role)
	}
	return h, nil
}

// MemberState is a member's state in a view. Append-only.
type MemberState uint8

// Member states.
const (
	StateAlive   MemberState = 1
	StateSuspect MemberState = 2
)

func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	}
	return fmt.Sprintf("MemberState(%d)", uint8(s))
}

// Member is one entry of a view.
type Member struct {
	Node        uint32
	Incarnation uint64
	Role        Role
	State       MemberState
}

const memberLen = 14

// View is the body of a VIEW: the members the active manager (the header's
// sender) counts, under its term. Version orders views within one term.
type View struct {
	Term    uint64
	Version uint64
	Members []Member
}

// AppendView appends v's encoding to b.
func AppendView(b []byte, v *View) []byte {
	b = binary.BigEndian.AppendUint64(b, v.Term)
	b = binary.BigEndian.AppendUint64(b, v.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.Members)))
	for _, m := range v.Members {
		b = binary.BigEndian.AppendUint32(b, m.Node)
		b = binary.BigEndian.AppendUint64(b, m.Incarnation)
		b = append(b, byte(m.Role), byte(m.State))
	}
	return b
}

// ParseView decodes a VIEW body.
func ParseView(p []byte) (View, error) {
	r := newReader(p)
	v := View{Term: r.U64(), Version: r.U64()}
	if n := r.count(MaxViewMembers, memberLen, "view members"); n > 0 {
		v.Members = make([]Member, n)
		for i := range v.Members {
			m := Member{Node: r.U32(), Incarnation: r.U64(), Role: Role(r.U8()), State: MemberState(r.U8())}
			if m.Node == 0 || (m.Role != RoleEngine && m.Role != RoleManager) || (m.State != StateAlive && m.State != StateSuspect) {
				return View{}, fmt.Errorf("view: %w: member %d role %d state %d", ErrMalformed, m.Node, m.Role, m.State)
			}
			v.Members[i] = m
		}
	}
	return v, r.done("view")
}

// ResponseRef opens the body of every response message: which request it
// answers (the requester's stream and message id; the channel is the
// response's own).
type ResponseRef struct {
	Node        uint32
	Incarnation uint64
	MsgID       uint64
	Up          bool
}

// ResponseRefLen is the encoded size of a ResponseRef.
const ResponseRefLen = 21

// AppendResponseRef appends r's encoding to b.
func AppendResponseRef(b []byte, r *ResponseRef) []byte {
	b = binary.BigEndian.AppendUint32(b, r.Node)
	b = binary.BigEndian.AppendUint64(b, r.Incarnation)
	b = binary.BigEndian.AppendUint64(b, r.MsgID)
	return appendBool(b, r.Up)
}

// ParseResponseRef decodes the ref at the start of a response body and
// returns the rest (the response payload, aliasing p).
func ParseResponseRef(p []byte) (ResponseRef, []byte, error) {
	if len(p) < ResponseRefLen {
		return ResponseRef{}, nil, fmt.Errorf("response ref: %w: need %d bytes, have %d", ErrTruncated, ResponseRefLen, len(p))
	}
	r := newReader(p[:ResponseRefLen])
	ref := ResponseRef{Node: r.U32(), Incarnation: r.U64(), MsgID: r.U64(), Up: r.bool()}
	if err := r.done("response ref"); err != nil {
		return ResponseRef{}, nil, err
	}
	if ref.Node == 0 || ref.MsgID == 0 {
		return ResponseRef{}, nil, fmt.Errorf("response ref: %w: node %d message %d", ErrMalformed, ref.Node, ref.MsgID)
	}
	return ref, p[ResponseRefLen:], nil
}
