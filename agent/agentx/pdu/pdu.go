package pdu

import (
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// PDU is the payload of one AgentX packet: one of the 18 types below
// (always a pointer).
type PDU interface {
	Type() Type
	decode(d *decoder) error
	encode(e *encoder) error
}

// Packet is a header, the optional context and a payload.
type Packet struct {
	Header
	// Context is the non-default context, on the wire only when Flags has
	// FlagNonDefaultContext and the type carries one (every type except
	// Open, Close, CommitSet, UndoSet, CleanupSet and Response).
	Context []byte
	PDU     PDU
}

// SearchRange is a start OID (with its include flag) and an end OID; a nil
// End is the null OID, no upper bound (RFC 2741 §5.2).
type SearchRange struct {
	Start   smi.OID
	Include bool
	End     smi.OID
}

// Open establishes a session (§6.2.1).
type Open struct {
	Timeout     uint8 // seconds; 0 = the master's default
	ID          smi.OID
	Description []byte
}

// Close ends a session (§6.2.2).
type Close struct{ Reason CloseReason }

// Register claims a subtree, or with RangeSubID != 0 a range of subtrees
// whose sub-identifier number RangeSubID (1-based) runs up to UpperBound
// (§6.2.3). Header FlagInstanceRegistration marks a fully qualified instance.
type Register struct {
	Timeout    uint8
	Priority   uint8
	RangeSubID uint8
	Subtree    smi.OID
	UpperBound uint32 // only with RangeSubID != 0
}

// Unregister releases a registration (§6.2.4).
type Unregister struct {
	Priority   uint8
	RangeSubID uint8
	Subtree    smi.OID
	UpperBound uint32
}

// Get asks for the instances named by each range's start (§6.2.5).
type Get struct{ Ranges []SearchRange }

// GetNext asks for the first instance inside each range (§6.2.6).
type GetNext struct{ Ranges []SearchRange }

// GetBulk is SNMP GETBULK over search ranges (§6.2.7).
type GetBulk struct {
	NonRepeaters   uint16
	MaxRepetitions uint16
	Ranges         []SearchRange
}

// TestSet is the first SET phase (§6.2.8).
type TestSet struct{ VarBinds []smi.VarBind }

// CommitSet, UndoSet and CleanupSet are the later SET phases (§6.2.9); the
// transaction is named by the header's transaction id.
type (
	CommitSet  struct{}
	UndoSet    struct{}
	CleanupSet struct{}
)

// Notify sends a notification through the master (§6.2.10).
type Notify struct{ VarBinds []smi.VarBind }

// Ping checks that the session is alive (§6.2.11).
type Ping struct{}

// IndexAllocate and IndexDeallocate manage shared table indexes (§6.2.12, §6.2.13).
type (
	IndexAllocate   struct{ VarBinds []smi.VarBind }
	IndexDeallocate struct{ VarBinds []smi.VarBind }
)

// AddAgentCaps advertises an AGENT-CAPABILITIES statement (§6.2.14).
type AddAgentCaps struct {
	ID          smi.OID
	Description []byte
}

// RemoveAgentCaps withdraws one (§6.2.15).
type RemoveAgentCaps struct{ ID smi.OID }

// Response answers any request (§6.2.16). Index is 1-based, 0 when Error
// is NoAgentXError.
type Response struct {
	SysUpTime uint32
	Error     ResponseError
	Index     uint16
	VarBinds  []smi.VarBind
}

func (*Open) Type() Type            { return TypeOpen }
func (*Close) Type() Type           { return TypeClose }
func (*Register) Type() Type        { return TypeRegister }
func (*Unregister) Type() Type      { return TypeUnregister }
func (*Get) Type() Type             { return TypeGet }
func (*GetNext) Type() Type         { return TypeGetNext }
func (*GetBulk) Type() Type         { return TypeGetBulk }
func (*TestSet) Type() Type         { return TypeTestSet }
func (*CommitSet) Type() Type       { return TypeCommitSet }
func (*UndoSet) Type() Type         { return TypeUndoSet }
func (*CleanupSet) Type() Type      { return TypeCleanupSet }
func (*Notify) Type() Type          { return TypeNotify }
func (*Ping) Type() Type            { return TypePing }
func (*IndexAllocate) Type() Type   { return TypeIndexAllocate }
func (*IndexDeallocate) Type() Type { return TypeIndexDeallocate }
func (*AddAgentCaps) Type() Type    { return TypeAddAgentCaps }
func (*RemoveAgentCaps) Type() Type { return TypeRemoveAgentCaps }
func (*Response) Type() Type        { return TypeResponse }

// newPDU returns an empty payload of type t.
func newPDU(t Type) PDU {
	switch t {
	case TypeOpen:
		return &Open{}
	case TypeClose:
		return &Close{}
	case TypeRegister:
		return &Register{}
	case TypeUnregister:
		return &Unregister{}
	case TypeGet:
		return &Get{}
	case TypeGetNext:
		return &GetNext{}
	case TypeGetBulk:
		return &GetBulk{}
	case TypeTestSet:
		return &TestSet{}
	case TypeCommitSet:
		return &CommitSet{}
	case TypeUndoSet:
		return &UndoSet{}
	case TypeCleanupSet:
		return &CleanupSet{}
	case TypeNotify:
		return &Notify{}
	case TypePing:
		return &Ping{}
	case TypeIndexAllocate:
		return &IndexAllocate{}
	case TypeIndexDeallocate:
		return &IndexDeallocate{}
	case TypeAddAgentCaps:
		return &AddAgentCaps{}
	case TypeRemoveAgentCaps:
		return &RemoveAgentCaps{}
	case TypeResponse:
		return &Response{}
	}
	return nil
}

// Decode decodes one whole packet: header and exactly PayloadLength bytes.
func Decode(b []byte) (*Packet, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if want := HeaderLength + int(h.PayloadLength); len(b) != want {
		if len(b) < want {
			return nil, fmt.Errorf("%w: %s payload of %d bytes, have %d", ErrTruncated, h.Type, h.PayloadLength, len(b)-HeaderLength)
		}
		return nil, fmt.Errorf("%w: %d bytes after the packet", ErrMalformed, len(b)-want)
	}
	return DecodePayload(h, b[HeaderLength:])
}

// DecodePayload decodes the payload of a packet whose header was parsed by
// ParseHeader; len(payload) must be h.PayloadLength. Nothing in the
// returned Packet aliases payload, so a reader may reuse its buffer.
func DecodePayload(h Header, payload []byte) (*Packet, error) {
	if len(payload) != int(h.PayloadLength) {
		return nil, fmt.Errorf("%w: %s payload of %d bytes, have %d", ErrTruncated, h.Type, h.PayloadLength, len(payload))
	}
	p := &Packet{Header: h, PDU: newPDU(h.Type)}
	if p.PDU == nil {
		return nil, fmt.Errorf("%w: %d", ErrType, h.Type)
	}
	d := &decoder{b: payload, bo: h.ByteOrder()}
	if h.Flags&FlagNonDefaultContext != 0 && h.Type.hasContext() {
		c, err := d.octets("context")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Type, err)
		}
		p.Context = c
	}
	if err := p.PDU.decode(d); err != nil {
		return nil, fmt.Errorf("%s: %w", h.Type, err)
	}
	if d.rest() != 0 {
		return nil, fmt.Errorf("%w: %s: %d bytes after the payload", ErrMalformed, h.Type, d.rest())
	}
	return p, nil
}

// Append encodes p after dst. The header's Type and PayloadLength come
// from p.PDU and the encoding; its Flags choose the byte order and whether
// Context is written. On error dst is returned unchanged.
func Append(dst []byte, p *Packet) ([]byte, error) {
	if p.PDU == nil {
		return dst, fmt.Errorf("%w: no PDU", ErrEncode)
	}
	h := p.Header
	h.Type = p.PDU.Type()
	h.PayloadLength = 0
	start := len(dst)
	e := &encoder{b: appendHeader(dst, h), bo: h.appendOrder()}
	if h.Flags&FlagNonDefaultContext != 0 && h.Type.hasContext() {
		if err := e.octets(p.Context); err != nil {
			return dst, err
		}
	}
	if err := p.PDU.encode(e); err != nil {
		return dst, fmt.Errorf("%s: %w", h.Type, err)
	}
	n := len(e.b) - start - HeaderLength
	if n > MaxPayloadLength {
		return dst, fmt.Errorf("%w: %s payload of %d bytes, at most %d", ErrEncode, h.Type, n, MaxPayloadLength)
	}
	h.ByteOrder().PutUint32(e.b[start+16:], uint32(n))
	return e.b, nil
}

// Encode is Append to a new slice.
func Encode(p *Packet) ([]byte, error) { return Append(nil, p) }

func (p *Open) decode(d *decoder) error {
	b, err := d.bytes4("o.timeout")
	if err != nil {
		return err
	}
	p.Timeout = b[0]
	if p.ID, _, err = d.oid("o.id"); err != nil {
		return err
	}
	p.Description, err = d.octets("o.descr")
	return err
}

func (p *Open) encode(e *encoder) error {
	e.u8x4(p.Timeout, 0, 0, 0)
	if err := e.oid(p.ID, false); err != nil {
		return err
	}
	return e.octets(p.Description)
}

func (p *Close) decode(d *decoder) error {
	b, err := d.bytes4("c.reason")
	if err != nil {
		return err
	}
	p.Reason = CloseReason(b[0])
	return nil
}

func (p *Close) encode(e *encoder) error { e.u8x4(byte(p.Reason), 0, 0, 0); return nil }

// regTail reads subtree and, for a range registration, upper_bound.
func regTail(d *decoder, rangeSubID uint8) (smi.OID, uint32, error) {
	sub, _, err := d.oid("r.subtree")
	if err != nil || rangeSubID == 0 {
		return sub, 0, err
	}
	if int(rangeSubID) > len(sub) {
		return nil, 0, fmt.Errorf("%w: range_subid %d beyond a subtree of %d sub-identifiers", ErrMalformed, rangeSubID, len(sub))
	}
	ub, err := d.u32("r.upper_bound")
	return sub, ub, err
}

func encodeRegTail(e *encoder, sub smi.OID, rangeSubID uint8, ub uint32) error {
	if rangeSubID != 0 && int(rangeSubID) > len(sub) {
		return fmt.Errorf("%w: range_subid %d beyond a subtree of %d sub-identifiers", ErrEncode, rangeSubID, len(sub))
	}
	if err := e.oid(sub, false); err != nil {
		return err
	}
	if rangeSubID != 0 {
		e.u32(ub)
	}
	return nil
}

func (p *Register) decode(d *decoder) error {
	b, err := d.bytes4("r.timeout")
	if err != nil {
		return err
	}
	p.Timeout, p.Priority, p.RangeSubID = b[0], b[1], b[2]
	p.Subtree, p.UpperBound, err = regTail(d, p.RangeSubID)
	return err
}

func (p *Register) encode(e *encoder) error {
	e.u8x4(p.Timeout, p.Priority, p.RangeSubID, 0)
	return encodeRegTail(e, p.Subtree, p.RangeSubID, p.UpperBound)
}

func (p *Unregister) decode(d *decoder) error {
	b, err := d.bytes4("u.priority")
	if err != nil {
		return err
	}
	p.Priority, p.RangeSubID = b[1], b[2]
	p.Subtree, p.UpperBound, err = regTail(d, p.RangeSubID)
	return err
}

func (p *Unregister) encode(e *encoder) error {
	e.u8x4(0, p.Priority, p.RangeSubID, 0)
	return encodeRegTail(e, p.Subtree, p.RangeSubID, p.UpperBound)
}

func (p *Get) decode(d *decoder) (err error)     { p.Ranges, err = d.searchRangeList(); return }
func (p *Get) encode(e *encoder) error           { return e.searchRangeList(p.Ranges) }
func (p *GetNext) decode(d *decoder) (err error) { p.Ranges, err = d.searchRangeList(); return }
func (p *GetNext) encode(e *encoder) error       { return e.searchRangeList(p.Ranges) }

func (p *GetBulk) decode(d *decoder) (err error) {
	if p.NonRepeaters, p.MaxRepetitions, err = d.u16pair("g.non_repeaters"); err != nil {
		return err
	}
	p.Ranges, err = d.searchRangeList()
	return err
}

func (p *GetBulk) encode(e *encoder) error {
	e.u16x2(p.NonRepeaters, p.MaxRepetitions)
	return e.searchRangeList(p.Ranges)
}

func (p *TestSet) decode(d *decoder) (err error)         { p.VarBinds, err = d.varBindList(); return }
func (p *TestSet) encode(e *encoder) error               { return e.varBindList(p.VarBinds) }
func (p *Notify) decode(d *decoder) (err error)          { p.VarBinds, err = d.varBindList(); return }
func (p *Notify) encode(e *encoder) error                { return e.varBindList(p.VarBinds) }
func (p *IndexAllocate) decode(d *decoder) (err error)   { p.VarBinds, err = d.varBindList(); return }
func (p *IndexAllocate) encode(e *encoder) error         { return e.varBindList(p.VarBinds) }
func (p *IndexDeallocate) decode(d *decoder) (err error) { p.VarBinds, err = d.varBindList(); return }
func (p *IndexDeallocate) encode(e *encoder) error       { return e.varBindList(p.VarBinds) }

func (*CommitSet) decode(*decoder) error  { return nil }
func (*CommitSet) encode(*encoder) error  { return nil }
func (*UndoSet) decode(*decoder) error    { return nil }
func (*UndoSet) encode(*encoder) error    { return nil }
func (*CleanupSet) decode(*decoder) error { return nil }
func (*CleanupSet) encode(*encoder) error { return nil }
func (*Ping) decode(*decoder) error       { return nil }
func (*Ping) encode(*encoder) error       { return nil }

func (p *AddAgentCaps) decode(d *decoder) (err error) {
	if p.ID, _, err = d.oid("a.id"); err != nil {
		return err
	}
	p.Description, err = d.octets("a.descr")
	return err
}

func (p *AddAgentCaps) encode(e *encoder) error {
	if err := e.oid(p.ID, false); err != nil {
		return err
	}
	return e.octets(p.Description)
}

func (p *RemoveAgentCaps) decode(d *decoder) (err error) { p.ID, _, err = d.oid("a.id"); return }
func (p *RemoveAgentCaps) encode(e *encoder) error       { return e.oid(p.ID, false) }

func (p *Response) decode(d *decoder) (err error) {
	if p.SysUpTime, err = d.u32("res.sysUpTime"); err != nil {
		return err
	}
	var ec uint16
	if ec, p.Index, err = d.u16pair("res.error"); err != nil {
		return err
	}
	p.Error = ResponseError(ec)
	p.VarBinds, err = d.varBindList()
	return err
}

func (p *Response) encode(e *encoder) error {
	e.u32(p.SysUpTime)
	e.u16x2(uint16(p.Error), p.Index)
	return e.varBindList(p.VarBinds)
}
