package pdu

import (
	"encoding/binary"
	"fmt"
)

// Header is the fixed 20-byte AgentX header (RFC 2741 §6.1). h.version is
// always Version and is not kept.
type Header struct {
	Type          Type
	Flags         Flags
	SessionID     uint32
	TransactionID uint32
	PacketID      uint32
	// PayloadLength is the length of what follows the header. Append
	// computes it; ParseHeader reports it so a reader knows how much to read.
	PayloadLength uint32
}

// ByteOrder is the order of every multi-byte integer of the packet, chosen
// by FlagNetworkByteOrder.
func (h Header) ByteOrder() binary.ByteOrder {
	if h.Flags&FlagNetworkByteOrder != 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// ParseHeader decodes the header at the start of b. It checks the version,
// the type, and that the payload length is a multiple of 4 and at most
// MaxPayloadLength, so a reader may allocate PayloadLength bytes after it.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLength {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrTruncated, HeaderLength, len(b))
	}
	if b[0] != Version {
		return Header{}, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	h := Header{Type: Type(b[1]), Flags: Flags(b[2])}
	bo := h.ByteOrder()
	h.SessionID = bo.Uint32(b[4:])
	h.TransactionID = bo.Uint32(b[8:])
	h.PacketID = bo.Uint32(b[12:])
	h.PayloadLength = bo.Uint32(b[16:])
	if !h.Type.Valid() {
		return h, fmt.Errorf("%w: %d", ErrType, b[1])
	}
	if h.PayloadLength > MaxPayloadLength {
		return h, fmt.Errorf("%w: payload of %d bytes, at most %d", ErrTooLong, h.PayloadLength, MaxPayloadLength)
	}
	if h.PayloadLength%4 != 0 {
		return h, fmt.Errorf("%w: payload length %d is not a multiple of 4", ErrMalformed, h.PayloadLength)
	}
	return h, nil
}

// appendOrder is ByteOrder for encoders.
func (h Header) appendOrder() binary.AppendByteOrder {
	if h.Flags&FlagNetworkByteOrder != 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func appendHeader(dst []byte, h Header) []byte {
	bo := h.appendOrder()
	dst = append(dst, Version, byte(h.Type), byte(h.Flags), 0)
	dst = bo.AppendUint32(dst, h.SessionID)
	dst = bo.AppendUint32(dst, h.TransactionID)
	dst = bo.AppendUint32(dst, h.PacketID)
	return bo.AppendUint32(dst, h.PayloadLength)
}
