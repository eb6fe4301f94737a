// Package gosnmpconv is the one bridge between gosnmp's value
// representation (dotted OID strings, values in interface{} of a type per
// ASN.1 tag) and package smi's. gosnmp is smsnmpd's SNMP client only: the
// SE's proxy to its host's own agent (fanout) and the tests; everything
// smsnmpd itself puts on the wire goes through internal/ber. It does no
// I/O.
package gosnmpconv

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// OIDText is gosnmp's dotted form of o.
func OIDText(o smi.OID) string { return "." + o.String() }

// ParseOIDText parses gosnmp's ".1.3.6" form, refusing names net-snmp
// could not carry either (more than smi.MaxSubIDs sub-identifiers).
func ParseOIDText(s string) (smi.OID, error) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return smi.OID{}, nil
	}
	if strings.Count(s, ".")+1 > smi.MaxSubIDs {
		return nil, fmt.Errorf("%w: over %d sub-identifiers", smi.ErrBadOID, smi.MaxSubIDs)
	}
	parts := strings.Split(s, ".")
	o := make(smi.OID, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", smi.ErrBadOID, p)
		}
		o[i] = uint32(v)
	}
	return o, nil
}

// ErrValue is returned for a gosnmp value that is no SMIv2 value (an
// Opaque float, an IPv6 IpAddress, a number out of its type's range).
var ErrValue = errors.New("gosnmpconv: not an SMIv2 value")

// FromPDU converts a gosnmp varbind. The name's error wraps smi.ErrBadOID,
// the value's ErrValue; bytes are copied (gosnmp's alias its datagram).
func FromPDU(p gosnmp.SnmpPDU) (smi.VarBind, error) {
	name, err := ParseOIDText(p.Name)
	if err != nil {
		return smi.VarBind{}, err
	}
	v, err := ValueFromPDU(p)
	return smi.VarBind{Name: name, Value: v}, err
}

// ValueFromPDU converts a gosnmp varbind's value.
func ValueFromPDU(p gosnmp.SnmpPDU) (smi.Value, error) {
	bad := func() (smi.Value, error) {
		return smi.Value{}, fmt.Errorf("%w: %v of type %v", ErrValue, p.Value, p.Type)
	}
	switch p.Type {
	case gosnmp.Integer:
		v, ok := p.Value.(int)
		if !ok || v < math.MinInt32 || v > math.MaxInt32 {
			return bad()
		}
		return smi.Integer(int32(v)), nil
	case gosnmp.OctetString, gosnmp.Opaque:
		b, ok := p.Value.([]byte)
		if !ok {
			return bad()
		}
		return smi.Value{Type: smi.Type(p.Type), Bytes: append([]byte{}, b...)}, nil
	case gosnmp.Null:
		return smi.Null(), nil
	case gosnmp.ObjectIdentifier:
		s, _ := p.Value.(string)
		o, err := ParseOIDText(s)
		if err != nil {
			return bad()
		}
		return smi.ObjectID(o), nil
	case gosnmp.IPAddress:
		s, _ := p.Value.(string)
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return bad()
		}
		return smi.IPAddress(a), nil
	case gosnmp.Counter32, gosnmp.Gauge32:
		v, ok := p.Value.(uint)
		if !ok || uint64(v) > math.MaxUint32 {
			return bad()
		}
		return smi.Value{Type: smi.Type(p.Type), Uint: uint64(v)}, nil
	case gosnmp.TimeTicks:
		v, ok := p.Value.(uint32)
		if !ok {
			return bad()
		}
		return smi.TimeTicks(v), nil
	case gosnmp.Counter64:
		v, ok := p.Value.(uint64)
		if !ok {
			return bad()
		}
		return smi.Counter64(v), nil
	case gosnmp.NoSuchObject:
		return smi.NoSuchObject(), nil
	case gosnmp.NoSuchInstance:
		return smi.NoSuchInstance(), nil
	case gosnmp.EndOfMibView:
		return smi.EndOfMibView(), nil
	}
	return bad()
}

// ToPDU converts a varbind to what gosnmp's encoder takes (a SET's
// varbinds, a packet to compare with internal/ber's encoding).
func ToPDU(vb smi.VarBind) gosnmp.SnmpPDU {
	p := gosnmp.SnmpPDU{Name: OIDText(vb.Name), Type: gosnmp.Asn1BER(vb.Value.Type)}
	v := vb.Value
	switch v.Type {
	case smi.TypeInteger:
		p.Value = int(v.Int)
	case smi.TypeOctetString, smi.TypeOpaque:
		p.Value = v.Bytes
	case smi.TypeIPAddress:
		if len(v.Bytes) == 4 {
			p.Value = netip.AddrFrom4([4]byte(v.Bytes)).String()
		}
	case smi.TypeObjectIdentifier:
		p.Value = OIDText(v.OID)
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		p.Value = uint32(v.Uint)
	case smi.TypeCounter64:
		p.Value = v.Uint
	}
	return p
}
