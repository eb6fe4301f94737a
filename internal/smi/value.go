package smi

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Type is an SNMP value type. The numbers are the BER application tags of
// RFC 2578/3416, which AgentX (RFC 2741 §5.4) uses too, so codecs can cast.
type Type uint8

// The value types. Append-only: the numbers are on the wire.
const (
	TypeInteger          Type = 0x02
	TypeOctetString      Type = 0x04
	TypeNull             Type = 0x05
	TypeObjectIdentifier Type = 0x06
	TypeIPAddress        Type = 0x40
	TypeCounter32        Type = 0x41
	TypeGauge32          Type = 0x42
	TypeTimeTicks        Type = 0x43
	TypeOpaque           Type = 0x44
	TypeCounter64        Type = 0x46
	TypeNoSuchObject     Type = 0x80
	TypeNoSuchInstance   Type = 0x81
	TypeEndOfMibView     Type = 0x82
)

func (t Type) String() string {
	switch t {
	case TypeInteger:
		return "INTEGER"
	case TypeOctetString:
		return "OCTET STRING"
	case TypeNull:
		return "NULL"
	case TypeObjectIdentifier:
		return "OBJECT IDENTIFIER"
	case TypeIPAddress:
		return "IpAddress"
	case TypeCounter32:
		return "Counter32"
	case TypeGauge32:
		return "Gauge32"
	case TypeTimeTicks:
		return "TimeTicks"
	case TypeOpaque:
		return "Opaque"
	case TypeCounter64:
		return "Counter64"
	case TypeNoSuchObject:
		return "noSuchObject"
	case TypeNoSuchInstance:
		return "noSuchInstance"
	case TypeEndOfMibView:
		return "endOfMibView"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the types above.
func (t Type) Valid() bool {
	switch t {
	case TypeInteger, TypeOctetString, TypeNull, TypeObjectIdentifier, TypeIPAddress,
		TypeCounter32, TypeGauge32, TypeTimeTicks, TypeOpaque, TypeCounter64,
		TypeNoSuchObject, TypeNoSuchInstance, TypeEndOfMibView:
		return true
	}
	return false
}

// IsException reports whether t is one of the v2 exception "values".
func (t Type) IsException() bool {
	return t == TypeNoSuchObject || t == TypeNoSuchInstance || t == TypeEndOfMibView
}

// IsNumeric reports whether values of t carry a number.
func (t Type) IsNumeric() bool {
	switch t {
	case TypeInteger, TypeCounter32, TypeGauge32, TypeTimeTicks, TypeCounter64:
		return true
	}
	return false
}

// MaxOctetString is the largest OCTET STRING SMIv2 allows (RFC 2578 §7.1.2).
const MaxOctetString = 65535

// Value is one typed SNMP value. Exactly one of the fields is meaningful,
// chosen by Type: Int for INTEGER; Uint for Counter32, Gauge32, TimeTicks
// and Counter64; Bytes for OCTET STRING, Opaque and IpAddress (4 bytes); OID
// for OBJECT IDENTIFIER. The zero Value is NULL's absence: use Null().
type Value struct {
	Type  Type
	Int   int64
	Uint  uint64
	Bytes []byte
	OID   OID
}

// Constructors for each type.
func Integer(v int32) Value      { return Value{Type: TypeInteger, Int: int64(v)} }
func OctetString(b []byte) Value { return Value{Type: TypeOctetString, Bytes: b} }
func String(s string) Value      { return Value{Type: TypeOctetString, Bytes: []byte(s)} }
func Null() Value                { return Value{Type: TypeNull} }
func ObjectID(o OID) Value       { return Value{Type: TypeObjectIdentifier, OID: o} }
func Counter32(v uint32) Value   { return Value{Type: TypeCounter32, Uint: uint64(v)} }
func Gauge32(v uint32) Value     { return Value{Type: TypeGauge32, Uint: uint64(v)} }
func TimeTicks(v uint32) Value   { return Value{Type: TypeTimeTicks, Uint: uint64(v)} }
func Counter64(v uint64) Value   { return Value{Type: TypeCounter64, Uint: v} }
func Opaque(b []byte) Value      { return Value{Type: TypeOpaque, Bytes: b} }
func NoSuchObject() Value        { return Value{Type: TypeNoSuchObject} }
func NoSuchInstance() Value      { return Value{Type: TypeNoSuchInstance} }
func EndOfMibView() Value        { return Value{Type: TypeEndOfMibView} }
func IPAddress(a netip.Addr) Value {
	b := a.As4()
	return Value{Type: TypeIPAddress, Bytes: b[:]}
}

// Equal reports whether v and w have the same type and content.
func (v Value) Equal(w Value) bool {
	if v.Type != w.Type {
		return false
	}
	switch v.Type {
	case TypeInteger:
		return v.Int == w.Int
	case TypeCounter32, TypeGauge32, TypeTimeTicks, TypeCounter64:
		return v.Uint == w.Uint
	case TypeOctetString, TypeOpaque, TypeIPAddress:
		return string(v.Bytes) == string(w.Bytes)
	case TypeObjectIdentifier:
		return v.OID.Equal(w.OID)
	}
	return true
}

// String renders the value for logs and test failures.
func (v Value) String() string {
	switch v.Type {
	case TypeInteger:
		return "INTEGER: " + strconv.FormatInt(v.Int, 10)
	case TypeCounter32, TypeGauge32, TypeTimeTicks, TypeCounter64:
		return v.Type.String() + ": " + strconv.FormatUint(v.Uint, 10)
	case TypeOctetString, TypeOpaque:
		return fmt.Sprintf("%s: %q", v.Type, v.Bytes)
	case TypeIPAddress:
		if len(v.Bytes) == 4 {
			return "IpAddress: " + netip.AddrFrom4([4]byte(v.Bytes)).String()
		}
		return fmt.Sprintf("IpAddress: %x", v.Bytes)
	case TypeObjectIdentifier:
		return "OID: " + v.OID.String()
	}
	return v.Type.String()
}

// VarBind is a variable binding: a name and its value.
type VarBind struct {
	Name  OID
	Value Value
}

func (vb VarBind) String() string { return vb.Name.String() + " = " + vb.Value.String() }
