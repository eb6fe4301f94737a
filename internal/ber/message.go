package ber

import (
	"errors"
	"fmt"
	"strconv"
)

// Version is a message's version field (RFC 3584 §2, RFC 3412 §6).
// Append-only: the numbers are on the wire.
type Version int32

// The versions.
const (
	Version1  Version = 0
	Version2c Version = 1
	Version3  Version = 3
)

func (v Version) String() string {
	switch v {
	case Version1:
		return "SNMPv1"
	case Version2c:
		return "SNMPv2c"
	case Version3:
		return "SNMPv3"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// MaxCommunity caps a community string read off the wire (net-snmp's
// COMMUNITY_MAX_LEN is 256 with the terminator).
const MaxCommunity = 255

// ErrVersion is returned for a well-formed message start of a version the
// decoder called does not decode.
var ErrVersion = errors.New("ber: unsupported SNMP version")

// PeekVersion reads a message's version, the first field of the SEQUENCE
// that must fill b, so the caller can hand the message to the model of
// that version. Any version number is returned; only a message that is
// not one SEQUENCE starting with an INTEGER is an error.
func PeekVersion(b []byte) (Version, error) {
	v, _, err := splitMessage(b)
	return v, err
}

// splitMessage reads the outer SEQUENCE and the version, returning what
// follows the version inside the SEQUENCE.
func splitMessage(b []byte) (Version, []byte, error) {
	tag, msg, rest, err := readTLV(b)
	if err != nil {
		return 0, nil, fmt.Errorf("message: %w", err)
	}
	if tag != tagSequence || len(rest) != 0 {
		return 0, nil, fmt.Errorf("%w: message is not one SEQUENCE", ErrMalformed)
	}
	v, msg, err := readInt32(msg)
	if err != nil {
		return 0, nil, fmt.Errorf("version: %w", err)
	}
	return Version(v), msg, nil
}

// CommunityMessage is an SNMPv1 or SNMPv2c message (RFC 1157 §4, RFC 1901
// §3): the version, the community and one PDU.
type CommunityMessage struct {
	Version   Version
	Community []byte
	PDU       PDU
}

// DecodeCommunityMessage decodes an SNMPv1 or SNMPv2c message that must
// fill b. It returns ErrVersion for another version, and
// ErrUnsupportedPDU (with PDU.Type set, and the rest of the envelope) for
// an SNMPv1 Trap-PDU. The result aliases b.
func DecodeCommunityMessage(b []byte) (CommunityMessage, error) {
	var m CommunityMessage
	v, msg, err := splitMessage(b)
	if err != nil {
		return m, err
	}
	m.Version = v
	if v != Version1 && v != Version2c {
		return m, fmt.Errorf("%w: %s", ErrVersion, v)
	}
	tag, c, msg, err := readTLV(msg)
	if err != nil {
		return m, fmt.Errorf("community: %w", err)
	}
	if tag != tagOctetString || len(c) > MaxCommunity {
		return m, fmt.Errorf("%w: community: tag 0x%02x, %d octets", ErrMalformed, tag, len(c))
	}
	m.Community = c
	tag, body, msg, err := readTLV(msg)
	if err != nil {
		return m, fmt.Errorf("pdu: %w", err)
	}
	if len(msg) != 0 {
		return m, fmt.Errorf("%w: %d bytes after the PDU", ErrMalformed, len(msg))
	}
	m.PDU, err = decodePDU(PDUType(tag), body)
	return m, err
}

func (m *CommunityMessage) contentLenWith(pdu int) int {
	return tlvLen(intLen(int64(m.Version))) + tlvLen(len(m.Community)) + pdu
}

// Len is the size of m's encoding, or an *EncodeError.
func (m *CommunityMessage) Len() (int, error) {
	p, err := m.PDU.Len()
	if err != nil {
		return 0, err
	}
	return tlvLen(m.contentLenWith(p)), nil
}

// Append appends m's encoding to b, or returns b and an *EncodeError for
// the first varbind that has none.
func (m *CommunityMessage) Append(b []byte) ([]byte, error) {
	vbl, err := m.PDU.vblContentLen()
	if err != nil {
		return b, err
	}
	pdu := tlvLen(m.PDU.contentLenWith(vbl))
	return m.appendWith(b, m.contentLenWith(pdu), vbl), nil
}

// Encode returns m's encoding in a slice of its exact size, or an
// *EncodeError: Len and Append in one pass over the varbinds' lengths.
func (m *CommunityMessage) Encode() ([]byte, error) {
	vbl, err := m.PDU.vblContentLen()
	if err != nil {
		return nil, err
	}
	pdu := tlvLen(m.PDU.contentLenWith(vbl))
	content := m.contentLenWith(pdu)
	return m.appendWith(make([]byte, 0, tlvLen(content)), content, vbl), nil
}

func (m *CommunityMessage) appendWith(b []byte, content, vbl int) []byte {
	b = append(b, tagSequence)
	b = appendLen(b, content)
	b = appendInt(b, int64(m.Version))
	b = appendOctets(b, m.Community)
	return m.PDU.appendWith(b, vbl)
}

// MaxPDULen is the size of the largest PDU encoding that fits, with m's
// version and community, in a message of at most limit octets (-1 if
// none does).
func (m *CommunityMessage) MaxPDULen(limit int) int {
	return maxContent(limit, m.contentLenWith(0))
}
