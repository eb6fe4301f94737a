package ber

import (
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// PDUType is an SNMP PDU's tag (RFC 3416 §3, RFC 1157 §4). Append-only:
// the numbers are on the wire.
type PDUType byte

// The PDU types.
const (
	PDUGet      PDUType = 0xa0
	PDUGetNext  PDUType = 0xa1
	PDUResponse PDUType = 0xa2
	PDUSet      PDUType = 0xa3
	PDUTrapV1   PDUType = 0xa4 // SNMPv1 Trap-PDU: another layout, recognized but not decoded
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

// Confirmed reports whether a PDU of type p is answered: RFC 3411 §2.8's
// Confirmed Class (the requests and InformRequest). SNMPv3 sets the
// reportable flag for exactly these.
func (p PDUType) Confirmed() bool {
	switch p {
	case PDUGet, PDUGetNext, PDUSet, PDUGetBulk, PDUInform:
		return true
	}
	return false
}

var (
	// ErrUnsupportedPDU is returned, with the PDU's Type set, for an
	// SNMPv1 Trap-PDU: its layout is not the others', and an agent only
	// counts and drops it.
	ErrUnsupportedPDU = errors.New("ber: unsupported PDU")
)

// EncodeError is a varbind that has no BER encoding (it matches
// ErrMalformed): an agent answers genErr naming Index, 0-based.
type EncodeError struct {
	Index int
	err   error
}

func (e *EncodeError) Error() string { return fmt.Sprintf("varbind %d: %v", e.Index+1, e.err) }
func (e *EncodeError) Unwrap() error { return e.err }

// PDU is any SNMP PDU but SNMPv1's Trap-PDU (RFC 3416 §3): every one of
// them has the same layout.
type PDU struct {
	Type      PDUType
	RequestID int32
	// ErrorStatus and ErrorIndex are, in a GetBulkRequest, non-repeaters
	// and max-repetitions (NonRepeaters, MaxRepetitions). They are kept as
	// the 32-bit integers of the wire: a request may carry any value.
	ErrorStatus, ErrorIndex int32
	VarBinds                []smi.VarBind
	// RawVarBinds, when not nil, is a complete encoded VarBindList sent
	// instead of VarBinds: a request's list echoed in an error response as
	// it came. Decoding sets it to the received list (aliasing the input).
	RawVarBinds []byte
	// BadValues is set by decoding only, and only when a value is a
	// well-formed TLV that does not decode as its tag says: per varbind,
	// the error-status a SET of it is answered with (see ValueError),
	// noError for the values that decoded. Such a value is NULL in
	// VarBinds.
	BadValues []smi.ErrorStatus
}

// NonRepeaters is a GetBulkRequest's non-repeaters field.
func (p *PDU) NonRepeaters() int32 { return p.ErrorStatus }

// MaxRepetitions is a GetBulkRequest's max-repetitions field.
func (p *PDU) MaxRepetitions() int32 { return p.ErrorIndex }

// DecodePDU decodes one PDU TLV that must fill b exactly. The result
// aliases b (RawVarBinds; names and values are copies).
func DecodePDU(b []byte) (PDU, error) {
	tag, body, rest, err := readTLV(b)
	if err != nil {
		return PDU{}, fmt.Errorf("pdu: %w", err)
	}
	if len(rest) != 0 {
		return PDU{}, fmt.Errorf("%w: %d bytes after the PDU", ErrMalformed, len(rest))
	}
	return decodePDU(PDUType(tag), body)
}

func decodePDU(t PDUType, body []byte) (PDU, error) {
	p := PDU{Type: t}
	switch t {
	case PDUGet, PDUGetNext, PDUResponse, PDUSet, PDUGetBulk, PDUInform, PDUTrapV2, PDUReport:
	case PDUTrapV1:
		return p, fmt.Errorf("%w: %s", ErrUnsupportedPDU, t)
	default:
		return p, fmt.Errorf("%w: PDU tag 0x%02x", ErrMalformed, byte(t))
	}
	var err error
	if p.RequestID, body, err = readInt32(body); err != nil {
		return p, fmt.Errorf("request-id: %w", err)
	}
	if p.ErrorStatus, body, err = readInt32(body); err != nil {
		return p, fmt.Errorf("error-status: %w", err)
	}
	if p.ErrorIndex, body, err = readInt32(body); err != nil {
		return p, fmt.Errorf("error-index: %w", err)
	}
	if p.VarBinds, p.BadValues, err = decodeVarBindList(body, 0, true); err != nil {
		return p, err
	}
	p.RawVarBinds = body
	return p, nil
}

// readInt32 reads an INTEGER TLV that must fit in 32 bits.
func readInt32(b []byte) (int32, []byte, error) {
	tag, val, rest, err := readTLV(b)
	if err != nil {
		return 0, nil, err
	}
	if tag != tagInteger {
		return 0, nil, fmt.Errorf("%w: tag 0x%02x, want INTEGER", ErrMalformed, tag)
	}
	v, err := decodeInt(val, 4)
	return int32(v), rest, err
}

// vblContentLen is the size of the contents of p's varbind list.
func (p *PDU) vblContentLen() (int, error) {
	if p.RawVarBinds != nil {
		_, c, _, err := readTLV(p.RawVarBinds)
		return len(c), err
	}
	n := 0
	for i, vb := range p.VarBinds {
		l, err := varBindLen(vb)
		if err != nil {
			return 0, &EncodeError{Index: i, err: err}
		}
		n += l
	}
	return n, nil
}

// contentLenWith is the size of p's contents with a varbind list of vbl
// content octets.
func (p *PDU) contentLenWith(vbl int) int {
	return tlvLen(intLen(int64(p.RequestID))) + tlvLen(intLen(int64(p.ErrorStatus))) +
		tlvLen(intLen(int64(p.ErrorIndex))) + tlvLen(vbl)
}

// Len is the size of p's encoding, or an *EncodeError for the first
// varbind that has none.
func (p *PDU) Len() (int, error) {
	vbl, err := p.vblContentLen()
	if err != nil {
		return 0, err
	}
	return tlvLen(p.contentLenWith(vbl)), nil
}

// Append appends p's encoding to b, or returns b and an *EncodeError for
// the first varbind that has none.
func (p *PDU) Append(b []byte) ([]byte, error) {
	vbl, err := p.vblContentLen()
	if err != nil {
		return b, err
	}
	return p.appendWith(b, vbl), nil
}

func (p *PDU) appendWith(b []byte, vbl int) []byte {
	b = append(b, byte(p.Type))
	b = appendLen(b, p.contentLenWith(vbl))
	b = appendInt(b, int64(p.RequestID))
	b = appendInt(b, int64(p.ErrorStatus))
	b = appendInt(b, int64(p.ErrorIndex))
	b = append(b, tagSequence)
	b = appendLen(b, vbl)
	if p.RawVarBinds != nil {
		_, c, _, _ := readTLV(p.RawVarBinds)
		return append(b, c...)
	}
	for _, vb := range p.VarBinds {
		b = appendVarBind(b, vb)
	}
	return b
}

// Fit returns how many leading varbinds of p fit in a PDU encoding of at
// most limit octets: a GETBULK response drops the trailing ones that do
// not (RFC 3416 §4.2.3). It returns an *EncodeError for a varbind that has
// no encoding among those that would fit.
func (p *PDU) Fit(limit int) (int, error) {
	n := 0
	for i, vb := range p.VarBinds {
		l, err := varBindLen(vb)
		if err != nil {
			return i, &EncodeError{Index: i, err: err}
		}
		if tlvLen(p.contentLenWith(n+l)) > limit {
			return i, nil
		}
		n += l
	}
	return len(p.VarBinds), nil
}

// maxContent is the largest n such that a TLV of fixed+n content octets
// takes at most limit octets (-1 if none does): how much room an
// envelope of fixed content octets leaves for its last field.
func maxContent(limit, fixed int) int {
	best := -1
	for k := 1; k <= 5; k++ {
		n := limit - 1 - k - fixed
		if n >= 0 && lenLen(fixed+n) <= k && n > best {
			best = n
		}
	}
	return best
}
