package ber

import (
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

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
	switch k := lenLen(n) - 1; k {
	case 0:
		return append(b, byte(n))
	default:
		b = append(b, 0x80|byte(k))
		for i := k - 1; i >= 0; i-- {
			b = append(b, byte(n>>(8*i)))
		}
		return b
	}
}

func tlvLen(n int) int { return 1 + lenLen(n) + n }

func intLen(v int64) int {
	n := 1
	for v > 127 || v < -128 {
		v >>= 8
		n++
	}
	return n
}

// appendInt appends an INTEGER TLV in its minimal encoding.
func appendInt(b []byte, v int64) []byte {
	n := intLen(v)
	b = append(b, tagInteger, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendOctets appends an OCTET STRING TLV.
func appendOctets(b, v []byte) []byte {
	b = append(b, tagOctetString)
	b = appendLen(b, len(v))
	return append(b, v...)
}

func uintLen(v uint64) int {
	n := 1
	for v > 127 {
		v >>= 8
		n++
	}
	return n
}

func subIDLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendSubID(b []byte, v uint64) []byte {
	for i := subIDLen(v) - 1; i > 0; i-- {
		b = append(b, byte(v>>(7*i))|0x80)
	}
	return append(b, byte(v&0x7f))
}

// CheckOID reports why o has no BER encoding (wrapping ErrMalformed), or
// nil when it has one: at least 2 and at most smi.MaxSubIDs arcs, the
// first 0, 1 or 2, the second below 40 under 0 and 1 (X.690 §8.19.4).
// Such an OID names no object any agent can hold, so callers answer it
// as an instance that does not exist rather than fail a whole list on it.
func CheckOID(o smi.OID) error {
	_, err := oidHead(o)
	return err
}

// oidHead folds the first two arcs into one sub-identifier (X.690 §8.19.4).
func oidHead(o smi.OID) (uint64, error) {
	switch {
	case len(o) < 2:
		return 0, fmt.Errorf("%w: object identifier %q has fewer than 2 arcs", ErrMalformed, o.String())
	case o[0] > 2 || (o[0] < 2 && o[1] >= 40):
		return 0, fmt.Errorf("%w: object identifier %s has an invalid first arc", ErrMalformed, o)
	case len(o) > smi.MaxSubIDs:
		return 0, fmt.Errorf("%w: object identifier of %d arcs", ErrMalformed, len(o))
	}
	return uint64(o[0])*40 + uint64(o[1]), nil
}

func oidContentLen(o smi.OID) (int, error) {
	h, err := oidHead(o)
	if err != nil {
		return 0, err
	}
	n := subIDLen(h)
	for _, v := range o[2:] {
		n += subIDLen(uint64(v))
	}
	return n, nil
}

func appendOID(b []byte, tag byte, o smi.OID, n int) []byte {
	h, _ := oidHead(o)
	b = append(b, tag)
	b = appendLen(b, n)
	b = appendSubID(b, h)
	for _, v := range o[2:] {
		b = appendSubID(b, uint64(v))
	}
	return b
}

func valueContentLen(v smi.Value) (int, error) {
	switch v.Type {
	case smi.TypeInteger:
		if v.Int < -1<<31 || v.Int > 1<<31-1 {
			return 0, fmt.Errorf("%w: INTEGER %d outside Integer32", ErrMalformed, v.Int)
		}
		return intLen(v.Int), nil
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		if v.Uint > 0xffffffff {
			return 0, fmt.Errorf("%w: %s %d over 32 bits", ErrMalformed, v.Type, v.Uint)
		}
		return uintLen(v.Uint), nil
	case smi.TypeCounter64:
		return uintLen(v.Uint), nil
	case smi.TypeOctetString, smi.TypeOpaque:
		if len(v.Bytes) > smi.MaxOctetString {
			return 0, fmt.Errorf("%w: %d-octet string", ErrMalformed, len(v.Bytes))
		}
		return len(v.Bytes), nil
	case smi.TypeIPAddress:
		if len(v.Bytes) != 4 {
			return 0, fmt.Errorf("%w: %d-octet IpAddress", ErrMalformed, len(v.Bytes))
		}
		return 4, nil
	case smi.TypeObjectIdentifier:
		return oidContentLen(v.OID)
	case smi.TypeNull, smi.TypeNoSuchObject, smi.TypeNoSuchInstance, smi.TypeEndOfMibView:
		return 0, nil
	}
	return 0, fmt.Errorf("%w: value type %s", ErrMalformed, v.Type)
}

func appendValue(b []byte, v smi.Value, n int) []byte {
	b = append(b, byte(v.Type))
	b = appendLen(b, n)
	switch v.Type {
	case smi.TypeInteger:
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(v.Int>>(8*i)))
		}
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks, smi.TypeCounter64:
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(v.Uint>>(8*i)))
		}
	case smi.TypeOctetString, smi.TypeOpaque, smi.TypeIPAddress:
		b = append(b, v.Bytes...)
	case smi.TypeObjectIdentifier:
		b = appendOID(b[:len(b)-1-lenLen(n)], byte(smi.TypeObjectIdentifier), v.OID, n)
	}
	return b
}

func varBindLen(vb smi.VarBind) (int, error) {
	nl, err := oidContentLen(vb.Name)
	if err != nil {
		return 0, fmt.Errorf("name: %w", err)
	}
	vl, err := valueContentLen(vb.Value)
	if err != nil {
		return 0, fmt.Errorf("value of %s: %w", vb.Name, err)
	}
	return tlvLen(tlvLen(nl) + tlvLen(vl)), nil
}

func appendVarBind(b []byte, vb smi.VarBind) []byte {
	nl, _ := oidContentLen(vb.Name)
	vl, _ := valueContentLen(vb.Value)
	b = append(b, tagSequence)
	b = appendLen(b, tlvLen(nl)+tlvLen(vl))
	b = appendOID(b, byte(smi.TypeObjectIdentifier), vb.Name, nl)
	return appendValue(b, vb.Value, vl)
}
