package gosnmpconv

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// TestFromPDU covers gosnmp's decoded representations, including the ones
// that are no SMIv2 value.
func TestFromPDU(t *testing.T) {
	buf := []byte("alias")
	for _, c := range []struct {
		in   gosnmp.SnmpPDU
		want smi.Value
		ok   bool
	}{
		{gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: -7}, smi.Integer(-7), true},
		{gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 1 << 40}, smi.Value{}, false},
		{gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: buf}, smi.String("alias"), true},
		{gosnmp.SnmpPDU{Type: gosnmp.Opaque, Value: []byte{1}}, smi.Opaque([]byte{1}), true},
		{gosnmp.SnmpPDU{Type: gosnmp.Opaque, Value: float32(1.5)}, smi.Value{}, false},
		{gosnmp.SnmpPDU{Type: gosnmp.Null}, smi.Null(), true},
		{gosnmp.SnmpPDU{Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1"}, smi.ObjectID(smi.OID{1, 3, 6, 1}), true},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: "10.1.2.3"}, smi.Value{Type: smi.TypeIPAddress, Bytes: []byte{10, 1, 2, 3}}, true},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: "2001:db8::1"}, smi.Value{}, false},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: nil}, smi.Value{}, false},
		{gosnmp.SnmpPDU{Type: gosnmp.Counter32, Value: uint(4294967295)}, smi.Counter32(4294967295), true},
		{gosnmp.SnmpPDU{Type: gosnmp.Gauge32, Value: uint(1 << 33)}, smi.Value{}, false},
		{gosnmp.SnmpPDU{Type: gosnmp.TimeTicks, Value: uint32(9)}, smi.TimeTicks(9), true},
		{gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(1 << 63)}, smi.Counter64(1 << 63), true},
		{gosnmp.SnmpPDU{Type: gosnmp.Uinteger32, Value: uint32(1)}, smi.Value{}, false},
		{gosnmp.SnmpPDU{Type: gosnmp.NoSuchObject}, smi.NoSuchObject(), true},
		{gosnmp.SnmpPDU{Type: gosnmp.NoSuchInstance}, smi.NoSuchInstance(), true},
		{gosnmp.SnmpPDU{Type: gosnmp.EndOfMibView}, smi.EndOfMibView(), true},
		{gosnmp.SnmpPDU{Type: gosnmp.UnknownType}, smi.Value{}, false},
	} {
		c.in.Name = ".1.3.6.1.4.1.8072"
		vb, err := FromPDU(c.in)
		if !c.ok {
			if !errors.Is(err, ErrValue) {
				t.Errorf("%v %v: %v, want ErrValue", c.in.Type, c.in.Value, err)
			}
			continue
		}
		if err != nil || !vb.Value.Equal(c.want) || !vb.Name.Equal(smi.OID{1, 3, 6, 1, 4, 1, 8072}) {
			t.Errorf("%v %v: got %v %v, want %v", c.in.Type, c.in.Value, vb, err, c.want)
		}
	}
	// gosnmp's bytes alias its datagram: the converted value must not.
	vb, _ := FromPDU(gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.OctetString, Value: buf})
	buf[0] = 'X'
	if string(vb.Value.Bytes) != "alias" {
		t.Error("OCTET STRING aliases gosnmp's bytes")
	}
	if _, err := FromPDU(gosnmp.SnmpPDU{Name: ".1.x", Type: gosnmp.Null}); !errors.Is(err, smi.ErrBadOID) {
		t.Errorf("bad name: %v", err)
	}
}

func TestParseOIDText(t *testing.T) {
	for in, want := range map[string]string{".1.3.6.1": "1.3.6.1", "1.3": "1.3", ".0.0": "0.0", ".4294967295": "4294967295", "": ""} {
		o, err := ParseOIDText(in)
		if err != nil || o.String() != want {
			t.Errorf("%q: %v %v", in, o, err)
		}
	}
	long := ""
	for i := 0; i < 129; i++ {
		long += ".1"
	}
	for _, bad := range []string{".1..2", ".4294967296", ".1.a", long, "1."} {
		if _, err := ParseOIDText(bad); !errors.Is(err, smi.ErrBadOID) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestToPDURoundTrip: ToPDU is FromPDU's inverse for every value type, as
// gosnmp's encoder and decoder see them.
func TestToPDURoundTrip(t *testing.T) {
	for _, vb := range []smi.VarBind{
		{Name: smi.OID{1, 3, 6, 1, 2, 1, 1, 3, 0}, Value: smi.TimeTicks(4294967295)},
		{Name: smi.OID{1, 3, 6, 1, 1}, Value: smi.Integer(-2147483648)},
		{Name: smi.OID{1, 3, 6, 1, 2}, Value: smi.OctetString(bytes.Repeat([]byte{0xaa}, 300))},
		{Name: smi.OID{1, 3, 6, 1, 3}, Value: smi.ObjectID(smi.OID{1, 3, 6, 1, 4, 1, 4294967295, 0})},
		{Name: smi.OID{1, 3, 6, 1, 4}, Value: smi.IPAddress(netip.MustParseAddr("192.0.2.255"))},
		{Name: smi.OID{1, 3, 6, 1, 5}, Value: smi.Counter32(2147483648)},
		{Name: smi.OID{1, 3, 6, 1, 6}, Value: smi.Gauge32(0)},
		{Name: smi.OID{1, 3, 6, 1, 7}, Value: smi.Counter64(1<<64 - 1)},
		{Name: smi.OID{1, 3, 6, 1, 8}, Value: smi.Opaque([]byte{1, 2, 3})},
		{Name: smi.OID{1, 3, 6, 1, 9}, Value: smi.Null()},
	} {
		p := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "c", PDUType: gosnmp.SetRequest, Variables: []gosnmp.SnmpPDU{ToPDU(vb)}}
		b, err := p.MarshalMsg()
		if err != nil {
			t.Fatalf("%v: %v", vb, err)
		}
		d, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(b)
		if err != nil {
			t.Fatalf("%v: %v", vb, err)
		}
		got, err := FromPDU(d.Variables[0])
		if err != nil || !got.Name.Equal(vb.Name) || !got.Value.Equal(vb.Value) {
			t.Errorf("%v came back as %v (%v)", vb, got, err)
		}
	}
}
