package v2c

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file converts between gosnmp's decoded PDUs and smi varbinds, the
// one place that knows gosnmp's value representation.

// parseName parses gosnmp's dotted OID text (".1.3.6.1"), refusing more
// than smi.MaxSubIDs sub-identifiers: a name net-snmp could not decode
// either (MAX_OID_LEN 128).
func parseName(s string) (smi.OID, error) {
	if len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	if s == "" {
		return smi.OID{}, nil
	}
	n := 1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			n++
		}
	}
	if n > smi.MaxSubIDs {
		return nil, fmt.Errorf("%w: %d sub-identifiers, at most %d", smi.ErrBadOID, n, smi.MaxSubIDs)
	}
	o := make(smi.OID, 0, n)
	var v uint64
	digits := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 {
				return nil, fmt.Errorf("%w: empty sub-identifier", smi.ErrBadOID)
			}
			o = append(o, uint32(v))
			v, digits = 0, 0
			continue
		}
		c := s[i] - '0'
		if c > 9 {
			return nil, fmt.Errorf("%w: not a digit", smi.ErrBadOID)
		}
		v = v*10 + uint64(c)
		digits++
		if v > math.MaxUint32 {
			return nil, fmt.Errorf("%w: sub-identifier above 2^32-1", smi.ErrBadOID)
		}
	}
	return o, nil
}

// fromPDU converts one decoded request varbind. The name error is fatal to
// the request (the message is undecodable for us); status is the SET
// error-status the value deserves when it cannot be an SMIv2 value
// (ignored for retrievals, whose values are not used).
func fromPDU(p gosnmp.SnmpPDU) (vb smi.VarBind, status smi.ErrorStatus, err error) {
	vb.Name, err = parseName(p.Name)
	if err != nil {
		return vb, smi.NoError, err
	}
	vb.Value, status = valueFromPDU(p)
	return vb, status, nil
}

func valueFromPDU(p gosnmp.SnmpPDU) (smi.Value, smi.ErrorStatus) {
	switch p.Type {
	case gosnmp.Integer:
		v, ok := p.Value.(int)
		if !ok {
			return smi.Null(), smi.WrongEncoding
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return smi.Null(), smi.WrongValue // an INTEGER beyond Integer32
		}
		return smi.Integer(int32(v)), smi.NoError
	case gosnmp.OctetString:
		b, ok := p.Value.([]byte)
		if !ok {
			return smi.Null(), smi.WrongEncoding
		}
		// gosnmp's bytes alias the datagram buffer.
		return smi.OctetString(append([]byte{}, b...)), smi.NoError
	case gosnmp.Opaque:
		b, ok := p.Value.([]byte)
		if !ok {
			return smi.Null(), smi.WrongEncoding
		}
		return smi.Opaque(append([]byte{}, b...)), smi.NoError
	case gosnmp.Null:
		return smi.Null(), smi.NoError
	case gosnmp.ObjectIdentifier:
		s, ok := p.Value.(string)
		if !ok {
			return smi.Null(), smi.WrongEncoding
		}
		o, err := parseName(s)
		if err != nil {
			return smi.Null(), smi.WrongValue
		}
		return smi.ObjectID(o), smi.NoError
	case gosnmp.IPAddress:
		s, _ := p.Value.(string)
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return smi.Null(), smi.WrongLength // IpAddress is SIZE (4)
		}
		return smi.IPAddress(a), smi.NoError
	case gosnmp.Counter32, gosnmp.Gauge32:
		v, ok := p.Value.(uint)
		if !ok || uint64(v) > math.MaxUint32 {
			return smi.Null(), smi.WrongValue
		}
		return smi.Value{Type: smi.Type(p.Type), Uint: uint64(v)}, smi.NoError
	case gosnmp.TimeTicks:
		v, ok := p.Value.(uint32)
		if !ok {
			return smi.Null(), smi.WrongValue
		}
		return smi.TimeTicks(v), smi.NoError
	case gosnmp.Counter64:
		v, ok := p.Value.(uint64)
		if !ok {
			return smi.Null(), smi.WrongValue
		}
		return smi.Counter64(v), smi.NoError
	}
	// Exceptions, UInteger32, Opaque floats and unknown tags are not values
	// a SET can write here.
	return smi.Null(), smi.WrongType
}

// toPDU converts a varbind to gosnmp's representation, as gosnmp's
// MarshalMsg expects it. The agent encodes with its own encoder; this is
// the bridge tests use to compare both byte for byte.
func toPDU(vb smi.VarBind) gosnmp.SnmpPDU {
	p := gosnmp.SnmpPDU{Name: "." + vb.Name.String(), Type: gosnmp.Asn1BER(vb.Value.Type)}
	v := vb.Value
	switch v.Type {
	case smi.TypeInteger:
		p.Value = int(v.Int)
	case smi.TypeOctetString, smi.TypeOpaque, smi.TypeIPAddress:
		p.Value = v.Bytes
	case smi.TypeObjectIdentifier:
		p.Value = "." + v.OID.String()
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		p.Value = uint32(v.Uint)
	case smi.TypeCounter64:
		p.Value = v.Uint
	}
	return p
}
