package fanout

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file is the one place that knows gosnmp's value representation:
// the proxy to the SE host's own agent converts through it, in both
// directions, so proxied values pass unchanged into the BER payloads.

// oidText is gosnmp's dotted form of o.
func oidText(o smi.OID) string { return "." + o.String() }

// parseOIDText parses gosnmp's ".1.3.6" form, refusing names net-snmp
// could not carry either.
func parseOIDText(s string) (smi.OID, error) {
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

// fromPDU converts a gosnmp varbind; ok is false for a value that cannot
// be an SMIv2 value (which the caller treats as an exception).
func fromPDU(p gosnmp.SnmpPDU) (smi.VarBind, error) {
	name, err := parseOIDText(p.Name)
	if err != nil {
		return smi.VarBind{}, err
	}
	v, err := valueFromPDU(p)
	return smi.VarBind{Name: name, Value: v}, err
}

func valueFromPDU(p gosnmp.SnmpPDU) (smi.Value, error) {
	bad := func() (smi.Value, error) {
		return smi.Value{}, fmt.Errorf("fanout: local agent value %v of type %v", p.Value, p.Type)
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
		o, err := parseOIDText(s)
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

// toPDU converts a varbind for a proxied SET.
func toPDU(vb smi.VarBind) gosnmp.SnmpPDU {
	p := gosnmp.SnmpPDU{Name: oidText(vb.Name), Type: gosnmp.Asn1BER(vb.Value.Type)}
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
		p.Value = oidText(v.OID)
	case smi.TypeCounter32, smi.TypeGauge32, smi.TypeTimeTicks:
		p.Value = uint32(v.Uint)
	case smi.TypeCounter64:
		p.Value = v.Uint
	}
	return p
}
