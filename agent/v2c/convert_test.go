package v2c

import (
	"errors"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// TestFromPDU covers gosnmp's decoded representations of SET values,
// including the ones that cannot be SMIv2 values here.
func TestFromPDU(t *testing.T) {
	buf := []byte("alias")
	for _, c := range []struct {
		in     gosnmp.SnmpPDU
		want   smi.Value
		status smi.ErrorStatus
	}{
		{gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: -7}, smi.Integer(-7), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 1 << 40}, smi.Null(), smi.WrongValue},
		{gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: buf}, smi.String("alias"), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.Opaque, Value: []byte{1}}, smi.Opaque([]byte{1}), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.Opaque, Value: float32(1.5)}, smi.Null(), smi.WrongEncoding},
		{gosnmp.SnmpPDU{Type: gosnmp.Null}, smi.Null(), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1"}, smi.ObjectID(smi.OID{1, 3, 6, 1}), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: "10.1.2.3"}, smi.Value{Type: smi.TypeIPAddress, Bytes: []byte{10, 1, 2, 3}}, smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: "2001:db8::1"}, smi.Null(), smi.WrongLength},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: nil}, smi.Null(), smi.WrongLength},
		{gosnmp.SnmpPDU{Type: gosnmp.Counter32, Value: uint(4294967295)}, smi.Counter32(4294967295), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.Gauge32, Value: uint(1 << 33)}, smi.Null(), smi.WrongValue},
		{gosnmp.SnmpPDU{Type: gosnmp.TimeTicks, Value: uint32(9)}, smi.TimeTicks(9), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(1 << 63)}, smi.Counter64(1 << 63), smi.NoError},
		{gosnmp.SnmpPDU{Type: gosnmp.Uinteger32, Value: uint32(1)}, smi.Null(), smi.WrongType},
		{gosnmp.SnmpPDU{Type: gosnmp.NoSuchObject}, smi.Null(), smi.WrongType},
		{gosnmp.SnmpPDU{Type: gosnmp.UnknownType}, smi.Null(), smi.WrongType},
	} {
		c.in.Name = ".1.3.6.1.4.1.8072"
		vb, st, err := fromPDU(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if st != c.status || !vb.Value.Equal(c.want) || !vb.Name.Equal(smi.OID{1, 3, 6, 1, 4, 1, 8072}) {
			t.Errorf("%v %v: got %v %v, want %v %v", c.in.Type, c.in.Value, vb, st, c.want, c.status)
		}
	}
	// Decoded bytes alias the datagram, which the reader reuses: the
	// converted value must not.
	vb, _, _ := fromPDU(gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.OctetString, Value: buf})
	buf[0] = 'X'
	if string(vb.Value.Bytes) != "alias" {
		t.Error("OCTET STRING aliases the datagram")
	}
	if _, _, err := fromPDU(gosnmp.SnmpPDU{Name: ".1.x", Type: gosnmp.Null}); err == nil {
		t.Error("bad name accepted")
	}
}

// TestToPDURoundTrip: toPDU is fromPDU's inverse for every value type, as
// gosnmp's MarshalMsg and decoder see them.
func TestToPDURoundTrip(t *testing.T) {
	for _, vb := range everyType() {
		if vb.Value.Type.IsException() {
			continue
		}
		p := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "c", PDUType: gosnmp.SetRequest, Variables: []gosnmp.SnmpPDU{toPDU(vb)}}
		b, err := p.MarshalMsg()
		if err != nil {
			t.Fatalf("%v: %v", vb, err)
		}
		d, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(b)
		if err != nil {
			t.Fatalf("%v: %v", vb, err)
		}
		got, st, err := fromPDU(d.Variables[0])
		if err != nil || st != smi.NoError || !got.Name.Equal(vb.Name) || !got.Value.Equal(vb.Value) {
			t.Errorf("%v came back as %v (%v, %v)", vb, got, st, err)
		}
	}
}

func TestFromConfig(t *testing.T) {
	sink, err := config.ParseAddr("udp:127.0.0.1:162")
	if err != nil {
		t.Fatal(err)
	}
	c := FromConfig(config.SNMP{ROCommunity: config.NewSecret("r"), TrapSinks: []config.Addr{sink},
		TrapCommunity: config.NewSecret("t"), MaxMessageSize: 1500, Workers: 3})
	if c.ROCommunity.Reveal() != "r" || c.TrapCommunity.Reveal() != "t" || len(c.TrapSinks) != 1 ||
		c.TrapSinks[0] != "127.0.0.1:162" || c.MaxMessageSize != 1500 || c.Workers != 3 {
		t.Errorf("got %+v", c)
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Config{
		{ROCommunity: config.NewSecret("r"), MaxMessageSize: 483},
		{ROCommunity: config.NewSecret("r"), MaxMessageSize: MaxDatagram + 1},
		{ROCommunity: config.NewSecret("r"), TrapSinks: []string{"127.0.0.1:162"}},
		{},
	} {
		bad.setDefaults()
		if err := bad.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
