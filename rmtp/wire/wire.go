package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Fixed sizes and caps. Every length read off the wire is checked against one
// of these before anything is allocated.
const (
	// Magic opens every datagram: "RM".
	Magic uint16 = 0x524D
	// Version is the only protocol version this codec speaks. A datagram
	// with another version is refused with ErrVersion, so a future version
	// can change anything after the version byte.
	Version uint8 = 1
	// HeaderLen is the fixed header length.
	HeaderLen = 48
	// TagLen is the authentication tag: HMAC-SHA256 truncated to 128 bits
	// (as RFC 4868 does for IPsec).
	TagLen = 16
	// Overhead is what a datagram carries besides its payload.
	Overhead = HeaderLen + TagLen
	// MaxDatagram is the largest UDP payload over IPv4.
	MaxDatagram = 65507
	// MaxPayload is the largest payload one datagram can carry.
	MaxPayload = MaxDatagram - Overhead
	// MaxSegments caps a message's segment count.
	MaxSegments = 1 << 16
	// MaxAckEntries caps the entries of one ACK vector.
	MaxAckEntries = 1024
	// MaxNakRanges caps the ranges of one NAK.
	MaxNakRanges = 512
	// MaxViewMembers caps the members of one VIEW.
	MaxViewMembers = 4096
	// MaxHelloStreams caps the stream marks of one HELLO.
	MaxHelloStreams = 512
	// MaxHelloApp caps the opaque application bytes of one HELLO.
	MaxHelloApp = 1024
)

// Type is the datagram type. Append-only: the numbers are on the wire.
type Type uint8

// Datagram types.
const (
	TypeData     Type = 1 // a segment of a one-way message
	TypeAck      Type = 2 // cumulative acknowledgement vector
	TypeNak      Type = 3 // re-send request
	TypeAbort    Type = 4 // the sender aborts one of its messages
	TypeAbortAck Type = 5 // a receiver acknowledges an abort
	TypeHello    Type = 6 // heartbeat
	TypeView     Type = 7 // membership view announced by the active manager
	TypeRequest  Type = 8 // a segment of a request (answered by responses)
	TypeResponse Type = 9 // a segment of a response to a request
)

var typeNames = [...]string{
	TypeData: "DATA", TypeAck: "ACK", TypeNak: "NAK", TypeAbort: "ABORT",
	TypeAbortAck: "ABORT_ACK", TypeHello: "HELLO", TypeView: "VIEW",
	TypeRequest: "REQUEST", TypeResponse: "RESPONSE",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is a type this version knows.
func (t Type) Valid() bool { return t >= TypeData && t <= TypeResponse }

// IsSegment reports whether datagrams of type t carry a message segment
// (and so use MsgID, Seq, Count and Ref as a message position).
func (t Type) IsSegment() bool { return t == TypeData || t == TypeRequest || t == TypeResponse }

// Flags is the flag byte. Append-only: the bits are on the wire.
type Flags uint8

// Flag bits.
const (
	FlagInit   Flags = 1 << 0 // first segment of a message (seq 0)
	FlagNoMore Flags = 1 << 1 // last segment of a message (seq count-1)
	FlagUp     Flags = 1 << 2 // the message goes up (to managers), not down
	FlagLeave  Flags = 1 << 3 // HELLO: the sender leaves the group
	flagsKnown       = FlagInit | FlagNoMore | FlagUp | FlagLeave
)

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	s := ""
	add := func(b Flags, n string) {
		if f&b != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	add(FlagInit, "INIT")
	add(FlagNoMore, "NO_MORE")
	add(FlagUp, "UP")
	add(FlagLeave, "LEAVE")
	if r := f &^ flagsKnown; r != 0 {
		if s != "" {
			s += "|"
		}
		s += fmt.Sprintf("0x%02x", uint8(r))
	}
	return s
}

// Errors returned by the decoders. Every decoder error wraps one of these.
var (
	ErrTruncated = errors.New("rmtp/wire: truncated")
	ErrMagic     = errors.New("rmtp/wire: bad magic")
	ErrVersion   = errors.New("rmtp/wire: unsupported version")
	ErrType      = errors.New("rmtp/wire: unknown type")
	ErrMalformed = errors.New("rmtp/wire: malformed")
	ErrTooLarge  = errors.New("rmtp/wire: length over cap")
	ErrAuth      = errors.New("rmtp/wire: authentication failed")
	ErrNoKey     = errors.New("rmtp/wire: unknown key id")
)

// Header is the fixed part of every datagram. See the layout in package
// rmtp's documentation.
type Header struct {
	Type        Type
	Flags       Flags
	Channel     uint8
	KeyID       uint16
	Node        uint32 // sender node id, never 0
	Incarnation uint64 // sender incarnation, changes on every restart
	MsgID       uint64 // segment types: message id; others: control sequence
	Seq         uint32 // segment number, 0-based
	Count       uint32 // segment count of the message
	Ref         uint64 // segment types: sender's low-water mark on the stream
	PayloadLen  uint16
}

// AppendHeader appends h's 48 bytes to b.
func AppendHeader(b []byte, h *Header) []byte {
	b = binary.BigEndian.AppendUint16(b, Magic)
	b = append(b, Version, byte(h.Type), byte(h.Flags), h.Channel)
	b = binary.BigEndian.AppendUint16(b, h.KeyID)
	b = binary.BigEndian.AppendUint32(b, h.Node)
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.MsgID)
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	b = binary.BigEndian.AppendUint32(b, h.Count)
	b = binary.BigEndian.AppendUint64(b, h.Ref)
	b = binary.BigEndian.AppendUint16(b, h.PayloadLen)
	return append(b, 0, 0)
}

// ParseHeader decodes and checks the fixed header at the start of b. It
// checks the header's own consistency (type, flags against seq and count,
// reserved bits), not the payload.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("%w: header needs %d bytes, have %d", ErrTruncated, HeaderLen, len(b))
	}
	if m := binary.BigEndian.Uint16(b); m != Magic {
		return h, fmt.Errorf("%w: 0x%04x", ErrMagic, m)
	}
	if b[2] != Version {
		return h, fmt.Errorf("%w: %d", ErrVersion, b[2])
	}
	h.Type = Type(b[3])
	if !h.Type.Valid() {
		return h, fmt.Errorf("%w: %d", ErrType, b[3])
	}
	h.Flags = Flags(b[4])
	h.Channel = b[5]
	h.KeyID = binary.BigEndian.Uint16(b[6:])
	h.Node = binary.BigEndian.Uint32(b[8:])
	h.Incarnation = binary.BigEndian.Uint64(b[12:])
	h.MsgID = binary.BigEndian.Uint64(b[20:])
	h.Seq = binary.BigEndian.Uint32(b[28:])
	h.Count = binary.BigEndian.Uint32(b[32:])
	h.Ref = binary.BigEndian.Uint64(b[36:])
	h.PayloadLen = binary.BigEndian.Uint16(b[44:])
	if b[46] != 0 || b[47] != 0 {
		return h, fmt.Errorf("%w: reserved bytes not zero", ErrMalformed)
	}
	if h.Flags&^flagsKnown != 0 {
		return h, fmt.Errorf("%w: unknown flags %s", ErrMalformed, h.Flags)
	}
	if h.Node == 0 {
		return h, fmt.Errorf("%w: node id 0", ErrMalformed)
	}
	if int(h.PayloadLen) > MaxPayload {
		return h, fmt.Errorf("%w: payload length %d > %d", ErrTooLarge, h.PayloadLen, MaxPayload)
	}
	if h.Type.IsSegment() {
		if h.Count == 0 || h.Count > MaxSegments {
			return h, fmt.Errorf("%w: segment count %d not in 1..%d", ErrTooLarge, h.Count, MaxSegments)
		}
		if h.Seq >= h.Count {
			return h, fmt.Errorf("%w: seq %d >= count %d", ErrMalformed, h.Seq, h.Count)
		}
		if h.MsgID == 0 {
			return h, fmt.Errorf("%w: message id 0", ErrMalformed)
		}
		if (h.Seq == 0) != (h.Flags&FlagInit != 0) || (h.Seq == h.Count-1) != (h.Flags&FlagNoMore != 0) {
			return h, fmt.Errorf("%w: flags %s disagree with seq %d of %d", ErrMalformed, h.Flags, h.Seq, h.Count)
		}
		if h.Flags&FlagLeave != 0 {
			return h, fmt.Errorf("%w: LEAVE on a segment", ErrMalformed)
		}
	} else {
		if h.Flags&(FlagInit|FlagNoMore) != 0 || h.Seq != 0 || h.Count != 0 {
			return h, fmt.Errorf("%w: segment fields on %s", ErrMalformed, h.Type)
		}
		if h.Flags&FlagLeave != 0 && h.Type != TypeHello {
			return h, fmt.Errorf("%w: LEAVE on %s", ErrMalformed, h.Type)
		}
	}
	return h, nil
}

// Packet is one decoded datagram: the header and its payload. Payload
// aliases the buffer it was decoded from.
type Packet struct {
	Header
	Payload []byte
}

// AppendPacket appends header, payload and an all-zero tag to b; Sign fills
// the tag in. It sets h.PayloadLen from payload. The payload must not exceed
// MaxPayload.
func AppendPacket(b []byte, h Header, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return b, fmt.Errorf("%w: payload %d > %d", ErrTooLarge, len(payload), MaxPayload)
	}
	h.PayloadLen = uint16(len(payload))
	b = AppendHeader(b, &h)
	b = append(b, payload...)
	var zero [TagLen]byte
	return append(b, zero[:]...), nil
}

// ParsePacket decodes a whole datagram without checking its tag (Open does
// both). The datagram must be exactly header + payload + tag long.
func ParsePacket(b []byte) (Packet, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Packet{}, err
	}
	want := HeaderLen + int(h.PayloadLen) + TagLen
	if len(b) < want {
		return Packet{}, fmt.Errorf("%w: datagram needs %d bytes, have %d", ErrTruncated, want, len(b))
	}
	if len(b) > want {
		return Packet{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-want)
	}
	return Packet{Header: h, Payload: b[HeaderLen : HeaderLen+int(h.PayloadLen)]}, nil
}
