package pdu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// internetPrefix is 1.3.6.1, which an AgentX OID may compress into its
// prefix field (RFC 2741 §5.1).
var internetPrefix = [4]uint32{1, 3, 6, 1}

// decoder reads the fields of one payload. Every method checks the length
// it needs first, so a short input is an ErrTruncated, never a panic.
type decoder struct {
	b   []byte
	off int
	bo  binary.ByteOrder
}

func (d *decoder) rest() int { return len(d.b) - d.off }

func (d *decoder) need(n int, what string) error {
	if d.rest() < n {
		return fmt.Errorf("%w: %s needs %d bytes at offset %d, %d left", ErrTruncated, what, n, d.off, d.rest())
	}
	return nil
}

func (d *decoder) bytes4(what string) ([]byte, error) {
	if err := d.need(4, what); err != nil {
		return nil, err
	}
	b := d.b[d.off : d.off+4]
	d.off += 4
	return b, nil
}

func (d *decoder) u16pair(what string) (uint16, uint16, error) {
	b, err := d.bytes4(what)
	if err != nil {
		return 0, 0, err
	}
	return d.bo.Uint16(b), d.bo.Uint16(b[2:]), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.bytes4(what)
	if err != nil {
		return 0, err
	}
	return d.bo.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	v := d.bo.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

// oid reads an Object Identifier (RFC 2741 §5.1) and its include field. A
// null OID decodes as nil.
func (d *decoder) oid(what string) (smi.OID, bool, error) {
	b, err := d.bytes4(what)
	if err != nil {
		return nil, false, err
	}
	n, prefix, include := int(b[0]), b[1], b[2] != 0
	total := n
	if prefix != 0 {
		total += 5
	}
	if total > smi.MaxSubIDs {
		return nil, false, fmt.Errorf("%w: %s has %d sub-identifiers, at most %d", ErrTooLong, what, total, smi.MaxSubIDs)
	}
	if err := d.need(4*n, what); err != nil {
		return nil, false, err
	}
	if total == 0 {
		return nil, include, nil
	}
	o := make(smi.OID, 0, total)
	if prefix != 0 {
		o = append(o, internetPrefix[:]...)
		o = append(o, uint32(prefix))
	}
	for i := 0; i < n; i++ {
		o = append(o, d.bo.Uint32(d.b[d.off:]))
		d.off += 4
	}
	return o, include, nil
}

// octets reads an Octet String (RFC 2741 §5.3): a length, the data and
// padding to a multiple of 4. The data is copied out of the input.
func (d *decoder) octets(what string) ([]byte, error) {
	l, err := d.u32(what + " length")
	if err != nil {
		return nil, err
	}
	if l > MaxOctetStringLength {
		return nil, fmt.Errorf("%w: %s of %d bytes, at most %d", ErrTooLong, what, l, MaxOctetStringLength)
	}
	padded := (int(l) + 3) &^ 3
	if err := d.need(padded, what); err != nil {
		return nil, err
	}
	s := make([]byte, l)
	copy(s, d.b[d.off:])
	d.off += padded
	return s, nil
}

// varBind reads one VarBind (RFC 2741 §5.4).
func (d *decoder) varBind() (smi.VarBind, error) {
	b, err := d.bytes4("varbind type")
	if err != nil {
		return smi.VarBind{}, err
	}
	raw := d.bo.Uint16(b)
	if raw > 0xff || !smi.Type(raw).Valid() {
		return smi.VarBind{}, fmt.Errorf("%w: varbind type %d", ErrMalformed, raw)
	}
	name, _, err := d.oid("varbind name")
	if err != nil {
		return smi.VarBind{}, err
	}
	vb := smi.VarBind{Name: name}
	t := smi.Type(raw)
	vb.Value.Type = t
	switch t {
	case smi.TypeInteger:
		v, err := d.u32("Integer")
		vb.Value.Int = int64(int32(v))
		return vb, err
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		v, err := d.u32(t.String())
		vb.Value.Uint = uint64(v)
		return vb, err
	case smi.TypeCounter64:
		vb.Value.Uint, err = d.u64("Counter64")
		return vb, err
	case smi.TypeOctetString, smi.TypeOpaque:
		vb.Value.Bytes, err = d.octets(t.String())
		return vb, err
	case smi.TypeIPAddress:
		vb.Value.Bytes, err = d.octets("IpAddress")
		if err == nil && len(vb.Value.Bytes) != 4 {
			err = fmt.Errorf("%w: IpAddress of %d bytes", ErrMalformed, len(vb.Value.Bytes))
		}
		return vb, err
	case smi.TypeObjectIdentifier:
		vb.Value.OID, _, err = d.oid("Object Identifier value")
		return vb, err
	}
	return vb, nil // Null and the exceptions carry no data
}

func (d *decoder) varBindList() ([]smi.VarBind, error) {
	var out []smi.VarBind
	for d.rest() > 0 {
		if len(out) == MaxVarBinds {
			return nil, fmt.Errorf("%w: more than %d varbinds", ErrTooLong, MaxVarBinds)
		}
		vb, err := d.varBind()
		if err != nil {
			return nil, fmt.Errorf("varbind %d: %w", len(out)+1, err)
		}
		out = append(out, vb)
	}
	return out, nil
}

func (d *decoder) searchRangeList() ([]SearchRange, error) {
	var out []SearchRange
	for d.rest() > 0 {
		if len(out) == MaxVarBinds {
			return nil, fmt.Errorf("%w: more than %d search ranges", ErrTooLong, MaxVarBinds)
		}
		start, include, err := d.oid("search range start")
		if err == nil {
			var end smi.OID
			end, _, err = d.oid("search range end")
			if err == nil {
				out = append(out, SearchRange{Start: start, Include: include, End: end})
				continue
			}
		}
		return nil, fmt.Errorf("search range %d: %w", len(out)+1, err)
	}
	return out, nil
}

// encoder appends fields in one byte order.
type encoder struct {
	b  []byte
	bo binary.AppendByteOrder
}

func (e *encoder) u8x4(a, b, c, d byte) { e.b = append(e.b, a, b, c, d) }
func (e *encoder) u16x2(a, b uint16) {
	e.b = e.bo.AppendUint16(e.b, a)
	e.b = e.bo.AppendUint16(e.b, b)
}
func (e *encoder) u32(v uint32) { e.b = e.bo.AppendUint32(e.b, v) }

func (e *encoder) oid(o smi.OID, include bool) error {
	if len(o) > smi.MaxSubIDs {
		return fmt.Errorf("%w: OID of %d sub-identifiers, at most %d", ErrEncode, len(o), smi.MaxSubIDs)
	}
	var prefix byte
	subs := o
	if len(o) >= 5 && [4]uint32(o[:4]) == internetPrefix && o[4] >= 1 && o[4] <= 255 {
		prefix, subs = byte(o[4]), o[5:]
	}
	var inc byte
	if include {
		inc = 1
	}
	e.u8x4(byte(len(subs)), prefix, inc, 0)
	for _, s := range subs {
		e.u32(s)
	}
	return nil
}

func (e *encoder) octets(s []byte) error {
	if len(s) > MaxOctetStringLength {
		return fmt.Errorf("%w: octet string of %d bytes, at most %d", ErrEncode, len(s), MaxOctetStringLength)
	}
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
	return nil
}

func (e *encoder) varBind(vb smi.VarBind) error {
	v := vb.Value
	if !v.Type.Valid() {
		return fmt.Errorf("%w: %s: value type %d", ErrEncode, vb.Name, v.Type)
	}
	e.u16x2(uint16(v.Type), 0)
	if err := e.oid(vb.Name, false); err != nil {
		return err
	}
	switch v.Type {
	case smi.TypeInteger:
		if v.Int < math.MinInt32 || v.Int > math.MaxInt32 {
			return fmt.Errorf("%w: %s: Integer %d outside Integer32", ErrEncode, vb.Name, v.Int)
		}
		e.u32(uint32(int32(v.Int)))
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		if v.Uint > math.MaxUint32 {
			return fmt.Errorf("%w: %s: %s %d above 2^32-1", ErrEncode, vb.Name, v.Type, v.Uint)
		}
		e.u32(uint32(v.Uint))
	case smi.TypeCounter64:
		e.b = e.bo.AppendUint64(e.b, v.Uint)
	case smi.TypeOctetString, smi.TypeOpaque:
		return e.octets(v.Bytes)
	case smi.TypeIPAddress:
		if len(v.Bytes) != 4 {
			return fmt.Errorf("%w: %s: IpAddress of %d bytes", ErrEncode, vb.Name, len(v.Bytes))
		}
		return e.octets(v.Bytes)
	case smi.TypeObjectIdentifier:
		return e.oid(v.OID, false)
	}
	return nil
}

func (e *encoder) varBindList(vbs []smi.VarBind) error {
	if len(vbs) > MaxVarBinds {
		return fmt.Errorf("%w: %d varbinds, at most %d", ErrEncode, len(vbs), MaxVarBinds)
	}
	for _, vb := range vbs {
		if err := e.varBind(vb); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) searchRangeList(rs []SearchRange) error {
	if len(rs) > MaxVarBinds {
		return fmt.Errorf("%w: %d search ranges, at most %d", ErrEncode, len(rs), MaxVarBinds)
	}
	for _, r := range rs {
		if err := e.oid(r.Start, r.Include); err != nil {
			return err
		}
		if err := e.oid(r.End, false); err != nil {
			return err
		}
	}
	return nil
}
