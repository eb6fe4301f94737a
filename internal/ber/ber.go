// Package ber is smsnmpd's one SNMP codec (X.690 basic encoding rules as
// SNMP uses them): variable bindings (RFC 3416's VarBindList), PDUs, and
// the messages that carry them: SNMPv1/v2c's community message and, for
// SNMPv3, the message header, the scoped PDU and USM's security
// parameters (with the offsets of the MAC). Bytes in, structs out: no
// I/O, no logger, no clock, no cryptography (the agent authenticates and
// decrypts around it).
//
// Each type has a Decode function, Append and Len; every length read off
// the wire is checked against what is left and a named cap before
// anything is allocated for it, and every truncated input is an error.
// Encoding writes minimal lengths and integers, as net-snmp and gosnmp
// do, so a decoded message re-encodes to the same bytes.
//
// Two rules are settled here for every caller. An OBJECT IDENTIFIER of
// fewer than two arcs, a first arc above 2, or a second of 40 or more
// under 0 and 1 has no encoding: it is refused (CheckOID says so
// beforehand), never padded to two arcs as net-snmp pads it; names
// decoded from the wire always have at least two arcs. And a value is
// encoded only within its type's range (Integer32, 32-bit unsigned
// types), never truncated. DecodeVarBinds is strict (the fan-out payloads
// carry values smsnmpd encoded); a PDU decoded from a message keeps a
// value that is a well-formed TLV but not what its tag says as NULL, with
// the error-status a SET of it deserves in BadValues.
package ber

import (
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Caps on what a decoder accepts, checked before allocating.
const (
	// MaxVarBinds bounds one list: SNMP messages fit in 65,507 bytes and a
	// varbind takes at least 6, so no real list is longer.
	MaxVarBinds = 65507 / 6
	// maxLengthOctets bounds the long form of a length: 4 octets already
	// exceed any message.
	maxLengthOctets = 4
)

// Errors. Decoders wrap them with the position at fault.
var (
	ErrTruncated = errors.New("ber: truncated")
	ErrMalformed = errors.New("ber: malformed")
	ErrTooMany   = errors.New("ber: too many varbinds")
)

// BER universal tags of the envelopes.
const (
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagSequence    = 0x30
)

// AppendVarBinds appends the VarBindList encoding of vbs to b.
func AppendVarBinds(b []byte, vbs []smi.VarBind) ([]byte, error) {
	n := 0
	for i, vb := range vbs {
		l, err := varBindLen(vb)
		if err != nil {
			return b, &EncodeError{Index: i, err: err}
		}
		n += l
	}
	b = append(b, tagSequence)
	b = appendLen(b, n)
	for _, vb := range vbs {
		b = appendVarBind(b, vb)
	}
	return b, nil
}

// VarBindsLen is the encoded length of vbs' VarBindList.
func VarBindsLen(vbs []smi.VarBind) (int, error) {
	n := 0
	for i, vb := range vbs {
		l, err := varBindLen(vb)
		if err != nil {
			return 0, &EncodeError{Index: i, err: err}
		}
		n += l
	}
	return tlvLen(n), nil
}

// DecodeVarBinds decodes a VarBindList that must fill b exactly, accepting
// at most max varbinds (0 means MaxVarBinds). Every value must decode as
// its tag says.
func DecodeVarBinds(b []byte, max int) ([]smi.VarBind, error) {
	vbs, _, err := decodeVarBindList(b, max, false)
	return vbs, err
}

// decodeVarBindList is DecodeVarBinds; with lenient, a value that is a
// well-formed TLV but does not decode as its tag says (a *ValueError) is
// returned as NULL, and bad (allocated at the first) holds each varbind's
// Status, noError for the others: a SET request is answered with it
// rather than dropped.
func decodeVarBindList(b []byte, max int, lenient bool) (out []smi.VarBind, bad []smi.ErrorStatus, err error) {
	if max <= 0 || max > MaxVarBinds {
		max = MaxVarBinds
	}
	tag, body, rest, err := readTLV(b)
	if err != nil {
		return nil, nil, fmt.Errorf("varbind list: %w", err)
	}
	if tag != tagSequence || len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: varbind list: tag 0x%02x, %d trailing bytes", ErrMalformed, tag, len(rest))
	}
	// A first pass sizes the list and one array for every name's
	// sub-identifiers, so decoding costs two allocations plus the
	// values' own, not one per name and per growth of the list. A
	// malformed list is left to the main pass to report.
	var slab []uint32
	n, subIDs, ok := countVarBinds(body, max)
	if ok {
		out = make([]smi.VarBind, 0, n)
		slab = make([]uint32, subIDs)
	}
	for len(body) > 0 {
		if len(out) == max {
			return nil, nil, fmt.Errorf("%w: more than %d", ErrTooMany, max)
		}
		tag, vb, next, err := readTLV(body)
		if err != nil {
			return nil, nil, fmt.Errorf("varbind %d: %w", len(out)+1, err)
		}
		if tag != tagSequence {
			return nil, nil, fmt.Errorf("%w: varbind %d: tag 0x%02x", ErrMalformed, len(out)+1, tag)
		}
		v, err := decodeVarBind(vb, &slab)
		var ve *ValueError
		if err != nil && lenient && errors.As(err, &ve) {
			if bad == nil {
				bad = make([]smi.ErrorStatus, len(out), cap(out))
			}
			bad = append(bad, ve.Status)
			out = append(out, v)
			body = next
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("varbind %d: %w", len(out)+1, err)
		}
		out = append(out, v)
		if bad != nil {
			bad = append(bad, smi.NoError)
		}
		body = next
	}
	return out, bad, nil
}

// countVarBinds is DecodeVarBinds' sizing pass: how many varbinds the
// list body holds and the most sub-identifiers their names can decode to
// (a byte at most yields one, the first two); ok false if the list does
// not parse that far or holds more than max.
func countVarBinds(body []byte, max int) (n, subIDs int, ok bool) {
	for len(body) > 0 {
		tag, vb, next, err := readTLV(body)
		if err != nil || tag != tagSequence || n == max {
			return 0, 0, false
		}
		_, name, _, err := readTLV(vb)
		if err != nil {
			return 0, 0, false
		}
		n++
		subIDs += len(name) + 1
		body = next
	}
	return n, subIDs, true
}

// decodeVarBind decodes one varbind, its name carved from *slab when that
// has room (see decodeOIDIn).
func decodeVarBind(b []byte, slab *[]uint32) (smi.VarBind, error) {
	tag, name, rest, err := readTLV(b)
	if err != nil {
		return smi.VarBind{}, fmt.Errorf("name: %w", err)
	}
	if tag != byte(smi.TypeObjectIdentifier) {
		return smi.VarBind{}, fmt.Errorf("%w: name tag 0x%02x", ErrMalformed, tag)
	}
	oid, err := decodeOIDIn(name, slab)
	if err != nil {
		return smi.VarBind{}, fmt.Errorf("name: %w", err)
	}
	tag, val, rest, err := readTLV(rest)
	if err != nil {
		return smi.VarBind{}, fmt.Errorf("value: %w", err)
	}
	if len(rest) != 0 {
		return smi.VarBind{}, fmt.Errorf("%w: %d bytes after the value", ErrMalformed, len(rest))
	}
	v, err := decodeValue(smi.Type(tag), val)
	if err != nil {
		// The name is good: a lenient caller keeps it beside a NULL.
		return smi.VarBind{Name: oid, Value: smi.Null()}, fmt.Errorf("value of %s: %w", oid, err)
	}
	return smi.VarBind{Name: oid, Value: v}, nil
}

func decodeValue(t smi.Type, b []byte) (smi.Value, error) {
	switch t {
	case smi.TypeInteger:
		v, err := decodeInt(b, 4)
		return smi.Value{Type: t, Int: v}, err
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		v, err := decodeUint(b, 4)
		return smi.Value{Type: t, Uint: v}, err
	case smi.TypeCounter64:
		v, err := decodeUint(b, 8)
		return smi.Value{Type: t, Uint: v}, err
	case smi.TypeOctetString, smi.TypeOpaque:
		if len(b) > smi.MaxOctetString {
			return smi.Value{}, valueErr(smi.WrongLength, "%d-octet string", len(b))
		}
		return smi.Value{Type: t, Bytes: append([]byte{}, b...)}, nil
	case smi.TypeIPAddress:
		if len(b) != 4 {
			return smi.Value{}, valueErr(smi.WrongLength, "%d-octet IpAddress", len(b))
		}
		return smi.Value{Type: t, Bytes: append([]byte{}, b...)}, nil
	case smi.TypeObjectIdentifier:
		o, err := decodeOID(b)
		if err != nil {
			return smi.Value{}, &ValueError{Status: smi.WrongEncoding, err: err}
		}
		return smi.Value{Type: t, OID: o}, nil
	case smi.TypeNull, smi.TypeNoSuchObject, smi.TypeNoSuchInstance, smi.TypeEndOfMibView:
		if len(b) != 0 {
			return smi.Value{}, valueErr(smi.WrongEncoding, "%s with %d content octets", t, len(b))
		}
		return smi.Value{Type: t}, nil
	}
	return smi.Value{}, valueErr(smi.WrongType, "unknown value tag 0x%02x", byte(t))
}

// ValueError is a value that does not decode as its tag says, inside a
// well-formed TLV: the list around it is intact. Status is the
// error-status RFC 3416 §4.2.5 answers a SET of it with (wrongType for a
// tag that is no SMIv2 type, wrongLength, wrongEncoding, wrongValue for a
// number out of its type's range). It matches ErrMalformed.
type ValueError struct {
	Status smi.ErrorStatus
	err    error
}

func (e *ValueError) Error() string { return e.err.Error() }
func (e *ValueError) Unwrap() error { return e.err }

func valueErr(st smi.ErrorStatus, format string, args ...any) error {
	return &ValueError{Status: st, err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)}
}

// readTLV splits one tag-length-value off b. Only single-octet tags occur
// in SNMP; the length is definite (short or long form).
func readTLV(b []byte) (tag byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, ErrTruncated
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("%w: multi-octet tag", ErrMalformed)
	}
	l, n := int(b[1]), 2
	if l&0x80 != 0 {
		k := l & 0x7f
		if k == 0 || k > maxLengthOctets {
			return 0, nil, nil, fmt.Errorf("%w: length of %d octets", ErrMalformed, k)
		}
		if len(b) < 2+k {
			return 0, nil, nil, ErrTruncated
		}
		l = 0
		for _, c := range b[2 : 2+k] {
			l = l<<8 | int(c)
		}
		n += k
	}
	if l < 0 || l > len(b)-n {
		return 0, nil, nil, ErrTruncated
	}
	return tag, b[n : n+l], b[n+l:], nil
}

func decodeInt(b []byte, size int) (int64, error) {
	switch {
	case len(b) == 0:
		return 0, valueErr(smi.WrongEncoding, "empty integer")
	case len(b) > size:
		return 0, valueErr(smi.WrongValue, "%d-octet integer", len(b))
	}
	v := int64(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int64(c)
	}
	return v, nil
}

// decodeUint accepts one leading zero octet beyond size, which BER needs
// to keep the top bit of an unsigned value clear.
func decodeUint(b []byte, size int) (uint64, error) {
	switch {
	case len(b) == 0:
		return 0, valueErr(smi.WrongEncoding, "empty unsigned")
	case len(b) > size+1 || (len(b) == size+1 && b[0] != 0):
		return 0, valueErr(smi.WrongValue, "%d-octet unsigned", len(b))
	case b[0]&0x80 != 0:
		return 0, valueErr(smi.WrongValue, "negative unsigned")
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func decodeOID(b []byte) (smi.OID, error) { return decodeOIDIn(b, nil) }

// decodeOIDIn decodes an object identifier into the front of *slab when it
// has room for the most b can hold (len(b)+1), and moves *slab past it;
// otherwise into an allocation of its own. The result's capacity is its
// length, so appending to one name never overwrites the next.
func decodeOIDIn(b []byte, slab *[]uint32) (smi.OID, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty object identifier", ErrMalformed)
	}
	var o smi.OID
	carved := slab != nil && len(*slab) >= len(b)+1
	if carved {
		o = (*slab)[: 0 : len(b)+1]
	} else {
		o = make(smi.OID, 0, len(b)+1)
	}
	var v uint64
	first := true
	for i, c := range b {
		if v == 0 && c == 0x80 {
			return nil, fmt.Errorf("%w: non-minimal sub-identifier", ErrMalformed)
		}
		v = v<<7 | uint64(c&0x7f)
		if v > 0xffffffff+80 {
			return nil, fmt.Errorf("%w: sub-identifier over 32 bits", ErrMalformed)
		}
		if c&0x80 != 0 {
			if i == len(b)-1 {
				return nil, ErrTruncated
			}
			continue
		}
		if first {
			switch {
			case v < 40:
				o = append(o, 0, uint32(v))
			case v < 80:
				o = append(o, 1, uint32(v-40))
			default:
				if v-80 > 0xffffffff {
					return nil, fmt.Errorf("%w: sub-identifier over 32 bits", ErrMalformed)
				}
				o = append(o, 2, uint32(v-80))
			}
			first = false
		} else {
			if v > 0xffffffff {
				return nil, fmt.Errorf("%w: sub-identifier over 32 bits", ErrMalformed)
			}
			o = append(o, uint32(v))
		}
		if len(o) > smi.MaxSubIDs {
			return nil, fmt.Errorf("%w: more than %d sub-identifiers", ErrMalformed, smi.MaxSubIDs)
		}
		v = 0
	}
	if carved {
		*slab = (*slab)[len(o):]
	}
	return o[:len(o):len(o)], nil
}
