package v2c

import (
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file is the package's pure codec: the envelope pre-parse of a
// request and the encoder of responses and notifications. No I/O, no
// logging, no clock.

// Sizes and caps.
const (
	// MaxDatagram is the largest UDP payload over IPv4 (65535 - 20 - 8),
	// the largest request accepted and the largest response ever sent.
	MaxDatagram = 65507
	// MinMessageSize is the smallest message size every SNMP entity must
	// accept (RFC 3417 §3.2); a smaller configured maximum is refused.
	MinMessageSize = 484
	// MaxCommunity caps a community string read off the wire (net-snmp's
	// COMMUNITY_MAX_LEN is 256 with the terminator).
	MaxCommunity = 255
	// maxLengthOctets caps the long form of a BER length: 4 octets already
	// exceed any datagram.
	maxLengthOctets = 4
)

// SNMP versions on the wire (RFC 3584 §2: version field values).
const (
	versionV1  = 0
	versionV2c = 1
)

// PDUType is an SNMP PDU tag (RFC 3416 §3, RFC 1157 §4). Append-only: the
// numbers are on the wire.
type PDUType byte

// The PDU types.
const (
	PDUGet      PDUType = 0xa0
	PDUGetNext  PDUType = 0xa1
	PDUResponse PDUType = 0xa2
	PDUSet      PDUType = 0xa3
	PDUTrapV1   PDUType = 0xa4
	PDUGetBulk  PDUType = 0xa5
	PDUInform   PDUType = 0xa6
	PDUTrapV2   PDUType = 0xa7
	PDUReport   PDUType = 0xa8
)

func (p PDUType) String() string {
	switch p {
	case PDUGet:
		return "GetRequest"
	case PDUGetNext:
		return "GetNextRequest"
	case PDUResponse:
		return "Response"
	case PDUSet:
		return "SetRequest"
	case PDUTrapV1:
		return "Trap"
	case PDUGetBulk:
		return "GetBulkRequest"
	case PDUInform:
		return "InformRequest"
	case PDUTrapV2:
		return "SNMPv2-Trap"
	case PDUReport:
		return "Report"
	}
	return fmt.Sprintf("PDUType(%#x)", byte(p))
}

// BER universal tags used by the envelope.
const (
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagSequence    = 0x30
)

var (
	// ErrMalformed is returned for a datagram that is not a well-formed
	// SNMPv1/v2c message.
	ErrMalformed = errors.New("v2c: malformed message")
	// ErrVersion is returned for a well-formed message of a version this
	// agent does not serve (SNMPv3, or an unknown number).
	ErrVersion = errors.New("v2c: unsupported SNMP version")
)

// header is a request's envelope: everything but the varbinds, which
// gosnmp decodes. Slices alias the datagram.
type header struct {
	version   int
	community []byte
	pdu       PDUType
	requestID int32
	// For GETBULK: non-repeaters and max-repetitions; otherwise
	// error-status and error-index (ignored in requests).
	field2, field3 int32
	vbl            []byte // the whole varbind-list TLV, for echoing
}

// readTLV reads one BER TLV with a single-octet tag and a definite
// length. It returns the tag, the contents and the rest of b.
func readTLV(b []byte) (tag byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: truncated TLV", ErrMalformed)
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("%w: multi-octet tag", ErrMalformed)
	}
	n, i := int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > maxLengthOctets {
			return 0, nil, nil, fmt.Errorf("%w: length of %d octets", ErrMalformed, k)
		}
		if len(b) < 2+k {
			return 0, nil, nil, fmt.Errorf("%w: truncated length", ErrMalformed)
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		i += k
	}
	if n > len(b)-i {
		return 0, nil, nil, fmt.Errorf("%w: length %d beyond the %d bytes left", ErrMalformed, n, len(b)-i)
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// readInt32 reads an INTEGER TLV that must fit in 32 bits.
func readInt32(b []byte) (int32, []byte, error) {
	tag, val, rest, err := readTLV(b)
	if err != nil {
		return 0, nil, err
	}
	if tag != tagInteger || len(val) == 0 || len(val) > 4 {
		return 0, nil, fmt.Errorf("%w: want a 32-bit INTEGER", ErrMalformed)
	}
	v := int32(int8(val[0]))
	for _, c := range val[1:] {
		v = v<<8 | int32(c)
	}
	return v, rest, nil
}

// parseHeader pre-parses a request envelope. It returns ErrVersion (with
// the header's version set) for a well-formed start of a message of
// another version, so the caller can count snmpInBadVersions.
func parseHeader(b []byte) (header, error) {
	var h header
	tag, msg, rest, err := readTLV(b)
	if err != nil {
		return h, err
	}
	if tag != tagSequence || len(rest) != 0 {
		return h, fmt.Errorf("%w: not one SEQUENCE", ErrMalformed)
	}
	tag, val, msg, err := readTLV(msg)
	if err != nil {
		return h, err
	}
	if tag != tagInteger || len(val) != 1 {
		// SNMPv3's version is 3 as well, in one octet; anything longer is
		// no version at all.
		return h, fmt.Errorf("%w: bad version field", ErrMalformed)
	}
	h.version = int(int8(val[0]))
	if h.version != versionV1 && h.version != versionV2c {
		return h, fmt.Errorf("%w: %d", ErrVersion, h.version)
	}
	tag, h.community, msg, err = readTLV(msg)
	if err != nil {
		return h, err
	}
	if tag != tagOctetString || len(h.community) > MaxCommunity {
		return h, fmt.Errorf("%w: bad community field", ErrMalformed)
	}
	tag, pdu, msg, err := readTLV(msg)
	if err != nil {
		return h, err
	}
	if len(msg) != 0 {
		return h, fmt.Errorf("%w: bytes after the PDU", ErrMalformed)
	}
	h.pdu = PDUType(tag)
	if h.pdu == PDUTrapV1 {
		return h, nil // another layout; an agent drops it anyway
	}
	if h.requestID, pdu, err = readInt32(pdu); err != nil {
		return h, err
	}
	if h.field2, pdu, err = readInt32(pdu); err != nil {
		return h, err
	}
	if h.field3, pdu, err = readInt32(pdu); err != nil {
		return h, err
	}
	tag, _, rest, err = readTLV(pdu)
	if err != nil {
		return h, err
	}
	if tag != tagSequence || len(rest) != 0 {
		return h, fmt.Errorf("%w: bad varbind list", ErrMalformed)
	}
	h.vbl = pdu
	return h, nil
}

// message is an SNMPv1/v2c message to encode.
type message struct {
	version   int
	community []byte
	pdu       PDUType
	requestID int32
	// error-status and error-index, or non-repeaters and max-repetitions.
	field2, field3 int32
	vbs            []smi.VarBind
	// rawVBL, when not nil, is a complete varbind-list TLV sent instead of
	// vbs (a request's list echoed in an error response).
	rawVBL []byte
}

// lenLen is the size of a BER definite length.
func lenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	}
	return 5
}

func appendLen(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// tlvLen is the size of a TLV with n content octets.
func tlvLen(n int) int { return 1 + lenLen(n) + n }

// intLen is the size of the minimal two's complement encoding of v.
func intLen(v int64) int {
	n := 1
	for v < -0x80 || v > 0x7f {
		n++
		v >>= 8
	}
	return n
}

func appendInt(b []byte, tag byte, v int64) []byte {
	n := intLen(v)
	b = append(b, tag, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// uintLen is the size of an unsigned value encoded as a non-negative
// INTEGER: a leading zero octet when the top bit would be set.
func uintLen(v uint64) int {
	n := 1
	for v > 0x7f {
		n++
		v >>= 8
	}
	return n
}

func appendUint(b []byte, tag byte, v uint64) []byte {
	n := uintLen(v)
	b = append(b, tag, byte(n))
	for i := n - 1; i >= 0; i-- {
		if i >= 8 {
			b = append(b, 0)
			continue
		}
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// subIDLen is the size of one base-128 sub-identifier.
func subIDLen(v uint32) int {
	n := 1
	for v > 0x7f {
		n++
		v >>= 7
	}
	return n
}

func appendSubID(b []byte, v uint32) []byte {
	for i := subIDLen(v) - 1; i > 0; i-- {
		b = append(b, byte(v>>(7*i))|0x80)
	}
	return append(b, byte(v&0x7f))
}

// oidFirst folds the first two arcs into one sub-identifier (X.690
// §8.19.4). An OID shorter than two arcs is padded with zeros, as net-snmp
// does; the Tree never produces one as a name.
func oidFirst(o smi.OID) uint32 {
	var a, b uint32
	if len(o) > 0 {
		a = o[0]
	}
	if len(o) > 1 {
		b = o[1]
	}
	return a*40 + b
}

// oidLen is the size of the contents of an OID encoding.
func oidLen(o smi.OID) int {
	n := subIDLen(oidFirst(o))
	for i := 2; i < len(o); i++ {
		n += subIDLen(o[i])
	}
	return n
}

func appendOID(b []byte, tag byte, o smi.OID) []byte {
	b = append(b, tag)
	b = appendLen(b, oidLen(o))
	b = appendSubID(b, oidFirst(o))
	for i := 2; i < len(o); i++ {
		b = appendSubID(b, o[i])
	}
	return b
}

// valueLen is the size of the value's TLV; ok is false for a Value whose
// Type is not an SNMP type.
func valueLen(v smi.Value) (int, bool) {
	switch v.Type {
	case smi.TypeInteger:
		return tlvLen(intLen(v.Int)), true
	case smi.TypeOctetString, smi.TypeOpaque, smi.TypeIPAddress:
		return tlvLen(len(v.Bytes)), true
	case smi.TypeNull, smi.TypeNoSuchObject, smi.TypeNoSuchInstance, smi.TypeEndOfMibView:
		return 2, true
	case smi.TypeObjectIdentifier:
		return tlvLen(oidLen(v.OID)), true
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks, smi.TypeCounter64:
		return tlvLen(uintLen(v.Uint)), true
	}
	return 0, false
}

func appendValue(b []byte, v smi.Value) []byte {
	switch v.Type {
	case smi.TypeInteger:
		return appendInt(b, byte(v.Type), v.Int)
	case smi.TypeOctetString, smi.TypeOpaque, smi.TypeIPAddress:
		b = append(b, byte(v.Type))
		b = appendLen(b, len(v.Bytes))
		return append(b, v.Bytes...)
	case smi.TypeNull, smi.TypeNoSuchObject, smi.TypeNoSuchInstance, smi.TypeEndOfMibView:
		return append(b, byte(v.Type), 0)
	case smi.TypeObjectIdentifier:
		return appendOID(b, byte(v.Type), v.OID)
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		return appendUint(b, byte(v.Type), v.Uint&0xffffffff)
	case smi.TypeCounter64:
		return appendUint(b, byte(v.Type), v.Uint)
	}
	return append(b, byte(smi.TypeNull), 0) // unreachable for checked values
}

// varBindContentLen is the size of a varbind SEQUENCE's contents.
func varBindContentLen(vb smi.VarBind) (int, bool) {
	vl, ok := valueLen(vb.Value)
	return tlvLen(oidLen(vb.Name)) + vl, ok
}

// varBindLen is the size of a varbind's TLV.
func varBindLen(vb smi.VarBind) (int, bool) {
	n, ok := varBindContentLen(vb)
	return tlvLen(n), ok
}

func appendVarBind(b []byte, vb smi.VarBind) []byte {
	n, _ := varBindContentLen(vb)
	b = append(b, tagSequence)
	b = appendLen(b, n)
	b = appendOID(b, byte(smi.TypeObjectIdentifier), vb.Name)
	return appendValue(b, vb.Value)
}

// messageLen is the size of m's encoding when its varbind list has vblContent
// octets of contents.
func (m *message) messageLen(vblContent int) int {
	pdu := tlvLen(intLen(int64(m.requestID))) + tlvLen(intLen(int64(m.field2))) +
		tlvLen(intLen(int64(m.field3))) + tlvLen(vblContent)
	msg := tlvLen(intLen(int64(m.version))) + tlvLen(len(m.community)) + tlvLen(pdu)
	return tlvLen(msg)
}

// vblContentLen is the size of the varbind list's contents.
func (m *message) vblContentLen() int {
	if m.rawVBL != nil {
		return -1
	}
	n := 0
	for _, vb := range m.vbs {
		l, _ := varBindLen(vb)
		n += l
	}
	return n
}

// Len is the size of m's encoding.
func (m *message) Len() int {
	if m.rawVBL != nil {
		// rawVBL is a whole TLV: back out its header.
		_, val, _, err := readTLV(m.rawVBL)
		if err != nil {
			return -1
		}
		return m.messageLen(len(val))
	}
	return m.messageLen(m.vblContentLen())
}

// fit returns how many leading varbinds of m fit in a message of at most
// limit octets (RFC 3416 §4.2.3: trailing varbinds are dropped).
func (m *message) fit(limit int) int {
	n := 0
	for i, vb := range m.vbs {
		l, _ := varBindLen(vb)
		if m.messageLen(n+l) > limit {
			return i
		}
		n += l
	}
	return len(m.vbs)
}

// check reports the first varbind whose value cannot be encoded.
func (m *message) check() error {
	for i, vb := range m.vbs {
		if _, ok := valueLen(vb.Value); !ok {
			return fmt.Errorf("v2c: varbind %d: cannot encode %s", i+1, vb.Value.Type)
		}
	}
	return nil
}

// appendTo appends m's encoding to b. Callers check() values first; an
// unencodable value would be sent as NULL.
func (m *message) appendTo(b []byte) []byte {
	vbl := m.vblContentLen()
	var rawContent []byte
	if m.rawVBL != nil {
		_, rawContent, _, _ = readTLV(m.rawVBL)
		vbl = len(rawContent)
	}
	pdu := tlvLen(intLen(int64(m.requestID))) + tlvLen(intLen(int64(m.field2))) +
		tlvLen(intLen(int64(m.field3))) + tlvLen(vbl)
	msg := tlvLen(intLen(int64(m.version))) + tlvLen(len(m.community)) + tlvLen(pdu)

	b = append(b, tagSequence)
	b = appendLen(b, msg)
	b = appendInt(b, tagInteger, int64(m.version))
	b = append(b, tagOctetString)
	b = appendLen(b, len(m.community))
	b = append(b, m.community...)
	b = append(b, byte(m.pdu))
	b = appendLen(b, pdu)
	b = appendInt(b, tagInteger, int64(m.requestID))
	b = appendInt(b, tagInteger, int64(m.field2))
	b = appendInt(b, tagInteger, int64(m.field3))
	b = append(b, tagSequence)
	b = appendLen(b, vbl)
	if m.rawVBL != nil {
		return append(b, rawContent...)
	}
	for _, vb := range m.vbs {
		b = appendVarBind(b, vb)
	}
	return b
}

// encode returns m's encoding in a new slice of the exact size.
func (m *message) encode() []byte {
	n := m.Len()
	if n < 0 {
		n = 0
	}
	return m.appendTo(make([]byte, 0, n))
}
