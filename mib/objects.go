package mib

import (
	"slices"
	"strconv"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// ModuleName is the name tools load the module by (-m SERVICE-MANAGER-MIB).
const ModuleName = "SERVICE-MANAGER-MIB"

// ID names one row of the OID table: every node SERVICE-MANAGER-MIB
// defines. The constants are the MIB names with a capital first letter
// (Id spelled ID), so grepping for either finds both. IDs are not on any
// wire; keep them in the MIB's order so the table reads like the module.
type ID int

// The nodes of SERVICE-MANAGER-MIB. A later revision adds its names here
// and to the MIB text together; the table test fails on either alone.
const (
	SmMIB ID = iota
	SmObjects
	SmNode
	SmNodeRole
	SmNodeLevel
	SmNodeID
	SmConformance
	SmCompliances
	SmCompliance
	SmGroups
	SmNodeGroup
	SmAgentIds
	SmAgentSmsnmpd

	numIDs
)

// Kind is what a MIB node is, by the macro that defines it.
type Kind uint8

// Kinds of nodes.
const (
	KindNode           Kind = iota + 1 // OBJECT IDENTIFIER value assignment
	KindModuleIdentity                 // MODULE-IDENTITY
	KindIdentity                       // OBJECT-IDENTITY
	KindScalar                         // OBJECT-TYPE outside a table
	KindTable                          // OBJECT-TYPE, SEQUENCE OF
	KindRow                            // OBJECT-TYPE with INDEX or AUGMENTS
	KindColumn                         // OBJECT-TYPE under a row
	KindNotification                   // NOTIFICATION-TYPE
	KindGroup                          // OBJECT-GROUP, NOTIFICATION-GROUP
	KindCompliance                     // MODULE-COMPLIANCE
)

var kindNames = [...]string{"", "node", "module-identity", "object-identity", "scalar",
	"table", "row", "column", "notification", "group", "compliance"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Access is an object's MAX-ACCESS.
type Access uint8

// Access levels; AccessNone is for nodes that are not OBJECT-TYPEs.
const (
	AccessNone Access = iota
	NotAccessible
	AccessibleForNotify
	ReadOnly
	ReadWrite
	ReadCreate
)

var accessNames = [...]string{"", "not-accessible", "accessible-for-notify",
	"read-only", "read-write", "read-create"}

// String returns the MIB spelling ("read-only"), "" for AccessNone.
func (a Access) String() string {
	if int(a) < len(accessNames) {
		return accessNames[a]
	}
	return "Access(" + strconv.Itoa(int(a)) + ")"
}

// Enum is one named number of an enumerated INTEGER.
type Enum struct {
	Label string
	Value int64
}

// Syntax is what Go code needs of an object's SYNTAX: the wire type, the
// value range of integers or the size range of strings, and the labels of
// an enumeration. Textual conventions are reduced to their base type.
type Syntax struct {
	Type     smi.Type
	Ranged   bool  // Min and Max hold a range
	Min, Max int64 // value range (numbers) or SIZE range (strings)
	Enum     []Enum
}

// Object is one row of the table.
type Object struct {
	ID     ID
	Name   string // MIB descriptor, e.g. "smNodeRole"
	OID    smi.OID
	Kind   Kind
	Syntax Syntax // scalars and columns only
	Access Access // OBJECT-TYPEs only
}

// netSnmpPlaypen is NET-SNMP-MIB::netSnmpPlaypen, {netSnmpExperimental 9999}
// = enterprises.8072.9999.9999.
var netSnmpPlaypen = smi.OID{1, 3, 6, 1, 4, 1, 8072, 9999, 9999}

// def is a row as the MIB writes it: a parent and an arc.
type def struct {
	name   string
	parent ID // -1: netSnmpPlaypen
	arc    uint32
	kind   Kind
	syntax Syntax
	access Access
}

// defs is the table. Written parent-and-arc like the MIB so a row is
// checked against the text at a glance.
var defs = [numIDs]def{
	SmMIB:     {name: "smMIB", parent: -1, arc: 42, kind: KindModuleIdentity},
	SmObjects: {name: "smObjects", parent: SmMIB, arc: 1, kind: KindNode},
	SmNode:    {name: "smNode", parent: SmObjects, arc: 1, kind: KindNode},
	SmNodeRole: {name: "smNodeRole", parent: SmNode, arc: 1, kind: KindScalar, access: ReadOnly,
		syntax: Syntax{Type: smi.TypeInteger, Enum: []Enum{{"engine", 1}, {"manager", 2}, {"backup", 3}}}},
	SmNodeLevel: {name: "smNodeLevel", parent: SmNode, arc: 2, kind: KindScalar, access: ReadOnly,
		syntax: Syntax{Type: smi.TypeInteger, Ranged: true, Min: 1, Max: 4}},
	SmNodeID: {name: "smNodeId", parent: SmNode, arc: 3, kind: KindScalar, access: ReadOnly,
		syntax: Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 1, Max: 2147483647}},
	SmConformance:  {name: "smConformance", parent: SmMIB, arc: 2, kind: KindNode},
	SmCompliances:  {name: "smCompliances", parent: SmConformance, arc: 1, kind: KindNode},
	SmCompliance:   {name: "smCompliance", parent: SmCompliances, arc: 1, kind: KindCompliance},
	SmGroups:       {name: "smGroups", parent: SmConformance, arc: 2, kind: KindNode},
	SmNodeGroup:    {name: "smNodeGroup", parent: SmGroups, arc: 1, kind: KindGroup},
	SmAgentIds:     {name: "smAgentIds", parent: SmMIB, arc: 3, kind: KindNode},
	SmAgentSmsnmpd: {name: "smAgentSmsnmpd", parent: SmAgentIds, arc: 1, kind: KindIdentity},
}

// oids holds every row's full OID, computed once from defs and never
// written afterwards; accessors hand out copies.
var oids = func() [numIDs]smi.OID {
	var out [numIDs]smi.OID
	var build func(id ID) smi.OID
	build = func(id ID) smi.OID {
		if out[id] != nil {
			return out[id]
		}
		d := defs[id]
		parent := netSnmpPlaypen
		if d.parent >= 0 {
			parent = build(d.parent)
		}
		out[id] = parent.Append(d.arc)
		return out[id]
	}
	for id := range numIDs {
		build(id)
	}
	return out
}()

func (id ID) valid() bool { return id >= 0 && id < numIDs }

// OID returns the node's OID; the caller may modify it.
func (id ID) OID() smi.OID {
	if !id.valid() {
		return nil
	}
	return oids[id].Clone()
}

// String returns the MIB descriptor, e.g. "smNodeRole".
func (id ID) String() string {
	if !id.valid() {
		return "ID(" + strconv.Itoa(int(id)) + ")"
	}
	return defs[id].name
}

// Object returns the node's row of the table.
func (id ID) Object() Object {
	if !id.valid() {
		return Object{ID: id}
	}
	d := defs[id]
	s := d.syntax
	s.Enum = slices.Clone(s.Enum)
	return Object{ID: id, Name: d.name, OID: oids[id].Clone(), Kind: d.kind, Syntax: s, Access: d.access}
}

// Objects returns the whole table in the MIB's order.
func Objects() []Object {
	out := make([]Object, 0, numIDs)
	for id := range numIDs {
		out = append(out, id.Object())
	}
	return out
}

// ByName returns the row of a MIB descriptor.
func ByName(name string) (Object, bool) {
	for id := range numIDs {
		if defs[id].name == name {
			return id.Object(), true
		}
	}
	return Object{}, false
}
