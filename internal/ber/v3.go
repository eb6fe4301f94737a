package ber

import (
	"fmt"
)

// This file is SNMPv3's message format (RFC 3412 §6) and the User-based
// Security Model's parameters (RFC 3414 §2.4). Authentication and
// encryption are the agent's: the decoders say where the bytes to
// authenticate are (offsets into the message), and the encoders where to
// write the MAC.

// Message flags (RFC 3412 §6.4).
const (
	FlagAuth       byte = 0x01
	FlagPriv       byte = 0x02
	FlagReportable byte = 0x04
)

// SecurityModelUSM is msgSecurityModel for USM (RFC 3411 §5).
const SecurityModelUSM = 3

// Caps on the USM fields (RFC 3414 §2.4, RFC 3411 §5).
const (
	MaxEngineID     = 32 // SnmpEngineID is 5..32 octets; empty in discovery
	MaxUserName     = 32 // SnmpAdminString (SIZE(1..32)) for usmUserName
	MaxAuthParams   = 48 // the longest truncated MAC: HMAC-SHA-512's (RFC 7860)
	MaxPrivParams   = 8  // the salt of DES and AES
	MaxContextName  = 32 // SnmpAdminString (SIZE(0..32))
	MinEngineID     = 5
	maxSecurityData = 256
)

// V3Message is an SNMPv3 message (RFC 3412 §6). Its security parameters
// are the security model's (for USM, DecodeUSMParams); its data is a
// plaintext ScopedPDU TLV or, with FlagPriv, the content of the
// encryptedPDU OCTET STRING.
type V3Message struct {
	MsgID         int32
	MaxSize       int32
	Flags         byte
	SecurityModel int32
	// SecurityParameters is the content of msgSecurityParameters; decoding
	// sets SecurityOffset to its position in the message.
	SecurityParameters []byte
	SecurityOffset     int
	// Exactly one of ScopedPDU (the whole plaintext SEQUENCE) and
	// Encrypted is set.
	ScopedPDU []byte
	Encrypted []byte
}

// DecodeV3Message decodes an SNMPv3 message that must fill b; it returns
// ErrVersion for another version. Slices alias b; fields' ranges (msgID,
// msgMaxSize, the model) are the caller's to check, as RFC 3412 §7.2
// counts them apart from parse errors.
func DecodeV3Message(b []byte) (V3Message, error) {
	var m V3Message
	v, msg, err := splitMessage(b)
	if err != nil {
		return m, err
	}
	if v != Version3 {
		return m, fmt.Errorf("%w: %s", ErrVersion, v)
	}
	tag, hdr, msg, err := readTLV(msg)
	if err != nil {
		return m, fmt.Errorf("header: %w", err)
	}
	if tag != tagSequence {
		return m, fmt.Errorf("%w: header tag 0x%02x", ErrMalformed, tag)
	}
	if m.MsgID, hdr, err = readInt32(hdr); err != nil {
		return m, fmt.Errorf("msgID: %w", err)
	}
	if m.MaxSize, hdr, err = readInt32(hdr); err != nil {
		return m, fmt.Errorf("msgMaxSize: %w", err)
	}
	tag, flags, hdr, err := readTLV(hdr)
	if err != nil {
		return m, fmt.Errorf("msgFlags: %w", err)
	}
	if tag != tagOctetString || len(flags) != 1 {
		return m, fmt.Errorf("%w: msgFlags: tag 0x%02x, %d octets", ErrMalformed, tag, len(flags))
	}
	m.Flags = flags[0]
	if m.SecurityModel, hdr, err = readInt32(hdr); err != nil {
		return m, fmt.Errorf("msgSecurityModel: %w", err)
	}
	if len(hdr) != 0 {
		return m, fmt.Errorf("%w: %d bytes after the header", ErrMalformed, len(hdr))
	}
	tag, sec, msg, err := readTLV(msg)
	if err != nil {
		return m, fmt.Errorf("msgSecurityParameters: %w", err)
	}
	if tag != tagOctetString {
		return m, fmt.Errorf("%w: msgSecurityParameters tag 0x%02x", ErrMalformed, tag)
	}
	m.SecurityParameters = sec
	// The parameters' content ends where msg now starts.
	m.SecurityOffset = len(b) - len(msg) - len(sec)
	tag, data, rest, err := readTLV(msg)
	if err != nil {
		return m, fmt.Errorf("msgData: %w", err)
	}
	if len(rest) != 0 {
		return m, fmt.Errorf("%w: %d bytes after msgData", ErrMalformed, len(rest))
	}
	switch tag {
	case tagSequence:
		m.ScopedPDU = msg
	case tagOctetString:
		m.Encrypted = data
	default:
		return m, fmt.Errorf("%w: msgData tag 0x%02x", ErrMalformed, tag)
	}
	return m, nil
}

func (m *V3Message) headerContentLen() int {
	return tlvLen(intLen(int64(m.MsgID))) + tlvLen(intLen(int64(m.MaxSize))) + tlvLen(1) +
		tlvLen(intLen(int64(m.SecurityModel)))
}

func (m *V3Message) headerLen() int { return tlvLen(m.headerContentLen()) }

func (m *V3Message) dataLen() int {
	if m.Encrypted != nil {
		return tlvLen(len(m.Encrypted))
	}
	return len(m.ScopedPDU)
}

func (m *V3Message) contentLenWith(sec, data int) int {
	return tlvLen(intLen(int64(Version3))) + m.headerLen() + tlvLen(sec) + data
}

// Len is the size of m's encoding.
func (m *V3Message) Len() int {
	return tlvLen(m.contentLenWith(len(m.SecurityParameters), m.dataLen()))
}

// Append appends m's encoding to b and returns the offset of the
// security parameters' content in it (counted from the start of the
// message, not of b).
func (m *V3Message) Append(b []byte) ([]byte, int) {
	start := len(b)
	b = append(b, tagSequence)
	b = appendLen(b, m.contentLenWith(len(m.SecurityParameters), m.dataLen()))
	b = appendInt(b, int64(Version3))
	b = append(b, tagSequence)
	b = appendLen(b, m.headerContentLen())
	b = appendInt(b, int64(m.MsgID))
	b = appendInt(b, int64(m.MaxSize))
	b = append(b, tagOctetString, 1, m.Flags)
	b = appendInt(b, int64(m.SecurityModel))
	b = append(b, tagOctetString)
	b = appendLen(b, len(m.SecurityParameters))
	off := len(b) - start
	b = append(b, m.SecurityParameters...)
	if m.Encrypted != nil {
		b = append(b, tagOctetString)
		b = appendLen(b, len(m.Encrypted))
		return append(b, m.Encrypted...), off
	}
	return append(b, m.ScopedPDU...), off
}

// MaxScopedPDULen is the size of the largest ScopedPDU encoding that fits
// with m's header and security parameters in a message of at most limit
// octets: as msgData itself or, with FlagPriv, encrypted to as many
// octets (a stream cipher, as every AES privacy protocol is) inside the
// encryptedPDU OCTET STRING.
func (m *V3Message) MaxScopedPDULen(limit int) int {
	data := maxContent(limit, m.contentLenWith(len(m.SecurityParameters), 0))
	if m.Flags&FlagPriv != 0 {
		return maxContent(data, 0)
	}
	return data
}

// ScopedPDU is an SNMPv3 scoped PDU (RFC 3412 §6.8).
type ScopedPDU struct {
	ContextEngineID []byte
	ContextName     []byte
	PDU             PDU
}

// DecodeScopedPDU decodes the ScopedPDU SEQUENCE at the start of b.
// Bytes after it are ignored: a block cipher may have padded the
// plaintext. Slices alias b.
func DecodeScopedPDU(b []byte) (ScopedPDU, error) {
	var s ScopedPDU
	tag, body, _, err := readTLV(b)
	if err != nil {
		return s, fmt.Errorf("scoped PDU: %w", err)
	}
	if tag != tagSequence {
		return s, fmt.Errorf("%w: scoped PDU tag 0x%02x", ErrMalformed, tag)
	}
	tag, s.ContextEngineID, body, err = readTLV(body)
	if err != nil {
		return s, fmt.Errorf("contextEngineID: %w", err)
	}
	if tag != tagOctetString || len(s.ContextEngineID) > MaxEngineID {
		return s, fmt.Errorf("%w: contextEngineID: tag 0x%02x, %d octets", ErrMalformed, tag, len(s.ContextEngineID))
	}
	tag, s.ContextName, body, err = readTLV(body)
	if err != nil {
		return s, fmt.Errorf("contextName: %w", err)
	}
	if tag != tagOctetString || len(s.ContextName) > MaxContextName {
		return s, fmt.Errorf("%w: contextName: tag 0x%02x, %d octets", ErrMalformed, tag, len(s.ContextName))
	}
	tag, pdu, rest, err := readTLV(body)
	if err != nil {
		return s, fmt.Errorf("pdu: %w", err)
	}
	if len(rest) != 0 {
		return s, fmt.Errorf("%w: %d bytes after the PDU", ErrMalformed, len(rest))
	}
	s.PDU, err = decodePDU(PDUType(tag), pdu)
	return s, err
}

func (s *ScopedPDU) contentLenWith(pdu int) int {
	return tlvLen(len(s.ContextEngineID)) + tlvLen(len(s.ContextName)) + pdu
}

// Len is the size of s's encoding, or an *EncodeError.
func (s *ScopedPDU) Len() (int, error) {
	p, err := s.PDU.Len()
	if err != nil {
		return 0, err
	}
	return tlvLen(s.contentLenWith(p)), nil
}

// Append appends s's encoding to b, or returns b and an *EncodeError.
func (s *ScopedPDU) Append(b []byte) ([]byte, error) {
	vbl, err := s.PDU.vblContentLen()
	if err != nil {
		return b, err
	}
	b = append(b, tagSequence)
	b = appendLen(b, s.contentLenWith(tlvLen(s.PDU.contentLenWith(vbl))))
	b = appendOctets(b, s.ContextEngineID)
	b = appendOctets(b, s.ContextName)
	return s.PDU.appendWith(b, vbl), nil
}

// MaxPDULen is the size of the largest PDU that fits in a ScopedPDU of at
// most limit octets.
func (s *ScopedPDU) MaxPDULen(limit int) int {
	return maxContent(limit, s.contentLenWith(0))
}

// USMParams are UsmSecurityParameters (RFC 3414 §2.4).
type USMParams struct {
	EngineID   []byte
	Boots      int32
	Time       int32
	UserName   []byte
	AuthParams []byte
	PrivParams []byte
	// AuthOffset is, after decoding, the position of AuthParams' content
	// in the decoded bytes: the MAC is computed with it zeroed.
	AuthOffset int
}

// DecodeUSMParams decodes msgSecurityParameters' content, which must be
// one UsmSecurityParameters SEQUENCE. Slices alias b.
func DecodeUSMParams(b []byte) (USMParams, error) {
	var p USMParams
	if len(b) > maxSecurityData {
		return p, fmt.Errorf("%w: %d octets of USM parameters", ErrMalformed, len(b))
	}
	tag, body, rest, err := readTLV(b)
	if err != nil {
		return p, fmt.Errorf("usm: %w", err)
	}
	if tag != tagSequence || len(rest) != 0 {
		return p, fmt.Errorf("%w: usm: tag 0x%02x, %d trailing bytes", ErrMalformed, tag, len(rest))
	}
	octets := func(name string, max int) ([]byte, error) {
		tag, v, r, err := readTLV(body)
		if err != nil {
			return nil, fmt.Errorf("usm %s: %w", name, err)
		}
		if tag != tagOctetString || len(v) > max {
			return nil, fmt.Errorf("%w: usm %s: tag 0x%02x, %d octets", ErrMalformed, name, tag, len(v))
		}
		body = r
		return v, nil
	}
	if p.EngineID, err = octets("engine ID", MaxEngineID); err != nil {
		return p, err
	}
	if p.Boots, body, err = readInt32(body); err != nil {
		return p, fmt.Errorf("usm engine boots: %w", err)
	}
	if p.Time, body, err = readInt32(body); err != nil {
		return p, fmt.Errorf("usm engine time: %w", err)
	}
	if p.UserName, err = octets("user name", MaxUserName); err != nil {
		return p, err
	}
	if p.AuthParams, err = octets("authentication parameters", MaxAuthParams); err != nil {
		return p, err
	}
	p.AuthOffset = len(b) - len(body) - len(p.AuthParams)
	if p.PrivParams, err = octets("privacy parameters", MaxPrivParams); err != nil {
		return p, err
	}
	if len(body) != 0 {
		return p, fmt.Errorf("%w: %d bytes after the USM parameters", ErrMalformed, len(body))
	}
	return p, nil
}

func (p *USMParams) contentLen() int {
	return tlvLen(len(p.EngineID)) + tlvLen(intLen(int64(p.Boots))) + tlvLen(intLen(int64(p.Time))) +
		tlvLen(len(p.UserName)) + tlvLen(len(p.AuthParams)) + tlvLen(len(p.PrivParams))
}

// Len is the size of p's encoding.
func (p *USMParams) Len() int { return tlvLen(p.contentLen()) }

// Append appends p's encoding to b and returns the offset of AuthParams'
// content in it (counted from the start of p's encoding).
func (p *USMParams) Append(b []byte) ([]byte, int) {
	start := len(b)
	b = append(b, tagSequence)
	b = appendLen(b, p.contentLen())
	b = appendOctets(b, p.EngineID)
	b = appendInt(b, int64(p.Boots))
	b = appendInt(b, int64(p.Time))
	b = appendOctets(b, p.UserName)
	b = append(b, tagOctetString)
	b = appendLen(b, len(p.AuthParams))
	off := len(b) - start
	b = append(b, p.AuthParams...)
	return appendOctets(b, p.PrivParams), off
}
