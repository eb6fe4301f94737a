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
	SmNotifications
	SmObjects
	SmConformance
	SmAgentIds
	SmNode
	SmEngines
	SmSe
	SmDirectory
	SmTransport
	SmNotifyObjects
	SmReconcile

	SmNodeRole
	SmNodeLevel
	SmNodeID
	SmViewTerm

	SmEngineCount
	SmEngineTable
	SmEngineEntry
	SmEngineIndex
	SmEngineAddressType
	SmEngineAddress
	SmEngineState
	SmEngineRttMicros
	SmEngineLastSeen
	SmEngineLastStatus
	SmEngineLoad
	SmEngineRequests
	SmEngineBytesOut
	SmEngineContentCount
	SmAggregateDiscontinuityTime

	SmSeAdminState
	SmSeWeight
	SmSeLoad
	SmSeRequests
	SmSeBytesOut
	SmSeContentCount
	SmSeMemTotal
	SmSeMemAvailable
	SmSeNetInOctets
	SmSeNetOutOctets
	SmSeHostUptime

	SmAggregate
	SmAggregateSum
	SmAggregateMin
	SmAggregateMax
	SmAggregateAvg
	SmAggregateCount
	SmEngineProxy
	SmAllEngines

	SmDirectoryCount
	SmDirectoryTable
	SmDirectoryEntry
	SmDirectoryEntryID
	SmDirectoryKey
	SmDirectoryCdn
	SmDirectoryDataCenter
	SmDirectoryFarm
	SmDirectoryEngine
	SmDirectoryVersion
	SmDirectoryAge
	SmDirectoryTableLimit
	SmDirectoryHierarchy
	SmDirectoryForwardPolicy
	SmDirectoryForwardActive
	SmDirectoryForwardPending
	SmDirectoryForwardOps
	SmDirectoryForwardBytes
	SmDirectoryForwardRetries
	SmDirectoryForwardOverflows
	SmDirectoryForwardResyncs
	SmDirectoryLookups
	SmDirectoryLookupFailures
	SmDirectoryRefusedOps
	SmDirectoryRejectedOps
	SmDirectoryRefusalEpisodes

	SmTransportSent
	SmTransportReceived
	SmTransportRetransmits
	SmTransportNaksSent
	SmTransportNaksReceived
	SmTransportNaksSuppressed
	SmTransportDuplicates
	SmTransportAuthFailures
	SmTransportAborts
	SmTransportLateReplies
	SmTransportDatagramsSent
	SmTransportDatagramsReceived
	SmTransportAbortsReceived
	SmTransportReplays
	SmTransportDropped
	SmTransportMalformed

	SmTransferSender
	SmTransferMessageID
	SmTransferComplete

	SmReconcilePending
	SmReconcileTable
	SmReconcileEntry
	SmReconcileIndex
	SmReconcileEngine
	SmReconcileState
	SmReconcileObject
	SmReconcileObjects
	SmReconcileAttempts
	SmReconcileCreated
	SmReconcileResolved

	SmEngineUp
	SmEngineDown
	SmManagerTakeover
	SmTransferAborted

	SmAgentSmsnmpd

	SmCompliances
	SmGroups
	SmCompliance
	SmEngineCompliance
	SmManagerCompliance
	SmNodeGroup
	SmViewGroup
	SmEngineGroup
	SmSeGroup
	SmDirectoryGroup
	SmTransportGroup
	SmNotifyObjectsGroup
	SmNotificationGroup
	SmHierarchyGroup
	SmReconcileGroup
	SmDirectoryFlowGroup

	// For network management systems (issue 19).
	SmNodeActivePeer
	SmEngineName
	SmSubtree
	SmSubtreeRequests
	SmSubtreeBytesOut
	SmSubtreeContentCount
	SmSubtreeLoad
	SmSubtreeEnginesUp
	SmSubtreeEnginesSuspect
	SmSubtreeEnginesDown
	SmOperatorGroup
	SmSubtreeGroup

	// Digest forwarding (issue 22).
	SmDirectoryDigestSize
	SmDirectoryDigestKeys
	SmDirectoryDigestFill
	SmDirectoryDigestFpRate
	SmDirectoryDigestBytesSent
	SmDirectoryDigestFalseHits
	SmDirectoryDigestGroup

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

// Syntaxes used by the table, by their MIB spelling.
var (
	synGauge     = Syntax{Type: smi.TypeGauge32}
	synCounter64 = Syntax{Type: smi.TypeCounter64}
	synTimeStamp = Syntax{Type: smi.TypeTimeTicks}
	synNodeID    = Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 1, Max: 2147483647}
	// InetAddressType (RFC 4001), as net-snmp reads INET-ADDRESS-MIB.
	synInetAddressType = Syntax{Type: smi.TypeInteger, Enum: []Enum{
		{"unknown", 0}, {"ipv4", 1}, {"ipv6", 2}, {"ipv4z", 3}, {"ipv6z", 4}, {"dns", 16}}}
	synInetAddress = Syntax{Type: smi.TypeOctetString, Ranged: true, Min: 0, Max: 255}
	synTruthValue  = Syntax{Type: smi.TypeInteger, Enum: []Enum{{"true", 1}, {"false", 2}}}
	synPPM         = Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 0, Max: 1000000}
)

// Helpers that keep a row of the table on one line.
func node(name string, parent ID, arc uint32) def {
	return def{name: name, parent: parent, arc: arc, kind: KindNode}
}

func kind(name string, parent ID, arc uint32, k Kind) def {
	return def{name: name, parent: parent, arc: arc, kind: k}
}

func scalar(name string, parent ID, arc uint32, s Syntax, a Access) def {
	return def{name: name, parent: parent, arc: arc, kind: KindScalar, syntax: s, access: a}
}

func column(name string, parent ID, arc uint32, s Syntax, a Access) def {
	return def{name: name, parent: parent, arc: arc, kind: KindColumn, syntax: s, access: a}
}

func tableOf(name string, parent ID, arc uint32) def {
	return def{name: name, parent: parent, arc: arc, kind: KindTable, access: NotAccessible}
}

func rowOf(name string, parent ID) def {
	return def{name: name, parent: parent, arc: 1, kind: KindRow, access: NotAccessible}
}

// defs is the table. Written parent-and-arc like the MIB so a row is
// checked against the text at a glance.
var defs = [numIDs]def{
	SmMIB:           {name: "smMIB", parent: -1, arc: 42, kind: KindModuleIdentity},
	SmNotifications: node("smNotifications", SmMIB, 0),
	SmObjects:       node("smObjects", SmMIB, 1),
	SmConformance:   node("smConformance", SmMIB, 2),
	SmAgentIds:      node("smAgentIds", SmMIB, 3),
	SmNode:          node("smNode", SmObjects, 1),
	SmEngines:       node("smEngines", SmObjects, 2),
	SmSe:            node("smSe", SmObjects, 3),
	SmDirectory:     node("smDirectory", SmObjects, 7),
	SmTransport:     node("smTransport", SmObjects, 8),
	SmNotifyObjects: node("smNotifyObjects", SmObjects, 9),
	SmReconcile:     node("smReconcile", SmObjects, 10),

	SmNodeRole: scalar("smNodeRole", SmNode, 1, Syntax{Type: smi.TypeInteger,
		Enum: []Enum{{"engine", 1}, {"manager", 2}, {"backup", 3}}}, ReadOnly),
	SmNodeLevel: scalar("smNodeLevel", SmNode, 2, Syntax{Type: smi.TypeInteger, Ranged: true, Min: 1, Max: 4}, ReadOnly),
	SmNodeID:    scalar("smNodeId", SmNode, 3, synNodeID, ReadOnly),
	SmViewTerm:  scalar("smViewTerm", SmNode, 4, synCounter64, ReadOnly),

	SmEngineCount:       scalar("smEngineCount", SmEngines, 1, synGauge, ReadOnly),
	SmEngineTable:       tableOf("smEngineTable", SmEngines, 2),
	SmEngineEntry:       rowOf("smEngineEntry", SmEngineTable),
	SmEngineIndex:       column("smEngineIndex", SmEngineEntry, 1, synNodeID, NotAccessible),
	SmEngineAddressType: column("smEngineAddressType", SmEngineEntry, 2, synInetAddressType, ReadOnly),
	SmEngineAddress:     column("smEngineAddress", SmEngineEntry, 3, synInetAddress, ReadOnly),
	SmEngineState: column("smEngineState", SmEngineEntry, 4, Syntax{Type: smi.TypeInteger,
		Enum: []Enum{{"up", 1}, {"suspect", 2}, {"down", 3}, {"left", 4}}}, ReadOnly),
	SmEngineRttMicros: column("smEngineRttMicros", SmEngineEntry, 5, synGauge, ReadOnly),
	SmEngineLastSeen:  column("smEngineLastSeen", SmEngineEntry, 6, synTimeStamp, ReadOnly),
	SmEngineLastStatus: column("smEngineLastStatus", SmEngineEntry, 7, Syntax{Type: smi.TypeInteger,
		Enum: []Enum{{"none", 1}, {"ok", 2}, {"timeout", 3}, {"error", 4}, {"staleTerm", 5}}}, ReadOnly),
	SmEngineLoad:                 column("smEngineLoad", SmEngineEntry, 8, synGauge, ReadOnly),
	SmEngineRequests:             column("smEngineRequests", SmEngineEntry, 9, synCounter64, ReadOnly),
	SmEngineBytesOut:             column("smEngineBytesOut", SmEngineEntry, 10, synCounter64, ReadOnly),
	SmEngineContentCount:         column("smEngineContentCount", SmEngineEntry, 11, synGauge, ReadOnly),
	SmAggregateDiscontinuityTime: scalar("smAggregateDiscontinuityTime", SmEngines, 3, synTimeStamp, ReadOnly),

	SmSeAdminState: scalar("smSeAdminState", SmSe, 1, Syntax{Type: smi.TypeInteger,
		Enum: []Enum{{"inService", 1}, {"drain", 2}, {"outOfService", 3}}}, ReadWrite),
	SmSeWeight:       scalar("smSeWeight", SmSe, 2, Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 0, Max: 1000}, ReadWrite),
	SmSeLoad:         scalar("smSeLoad", SmSe, 3, synGauge, ReadOnly),
	SmSeRequests:     scalar("smSeRequests", SmSe, 4, synCounter64, ReadOnly),
	SmSeBytesOut:     scalar("smSeBytesOut", SmSe, 5, synCounter64, ReadOnly),
	SmSeContentCount: scalar("smSeContentCount", SmSe, 6, synGauge, ReadOnly),
	SmSeMemTotal:     scalar("smSeMemTotal", SmSe, 7, synGauge, ReadOnly),
	SmSeMemAvailable: scalar("smSeMemAvailable", SmSe, 8, synGauge, ReadOnly),
	SmSeNetInOctets:  scalar("smSeNetInOctets", SmSe, 9, synCounter64, ReadOnly),
	SmSeNetOutOctets: scalar("smSeNetOutOctets", SmSe, 10, synCounter64, ReadOnly),
	SmSeHostUptime:   scalar("smSeHostUptime", SmSe, 11, synGauge, ReadOnly),

	SmAggregate:      kind("smAggregate", SmObjects, 4, KindIdentity),
	SmAggregateSum:   kind("smAggregateSum", SmAggregate, uint32(FuncSum), KindIdentity),
	SmAggregateMin:   kind("smAggregateMin", SmAggregate, uint32(FuncMin), KindIdentity),
	SmAggregateMax:   kind("smAggregateMax", SmAggregate, uint32(FuncMax), KindIdentity),
	SmAggregateAvg:   kind("smAggregateAvg", SmAggregate, uint32(FuncAvg), KindIdentity),
	SmAggregateCount: kind("smAggregateCount", SmAggregate, uint32(FuncCount), KindIdentity),
	SmEngineProxy:    kind("smEngineProxy", SmObjects, 5, KindIdentity),
	SmAllEngines:     kind("smAllEngines", SmObjects, 6, KindIdentity),

	SmDirectoryCount:      scalar("smDirectoryCount", SmDirectory, 1, synGauge, ReadOnly),
	SmDirectoryTable:      tableOf("smDirectoryTable", SmDirectory, 2),
	SmDirectoryEntry:      rowOf("smDirectoryEntry", SmDirectoryTable),
	SmDirectoryEntryID:    column("smDirectoryEntryId", SmDirectoryEntry, 1, Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 1, Max: 4294967295}, NotAccessible),
	SmDirectoryKey:        column("smDirectoryKey", SmDirectoryEntry, 2, Syntax{Type: smi.TypeOctetString, Ranged: true, Min: 0, Max: MaxDirectoryKey}, ReadOnly),
	SmDirectoryCdn:        column("smDirectoryCdn", SmDirectoryEntry, 3, synGauge, ReadOnly),
	SmDirectoryDataCenter: column("smDirectoryDataCenter", SmDirectoryEntry, 4, synGauge, ReadOnly),
	SmDirectoryFarm:       column("smDirectoryFarm", SmDirectoryEntry, 5, synGauge, ReadOnly),
	SmDirectoryEngine:     column("smDirectoryEngine", SmDirectoryEntry, 6, synGauge, ReadOnly),
	SmDirectoryVersion:    column("smDirectoryVersion", SmDirectoryEntry, 7, Syntax{Type: smi.TypeOctetString, Ranged: true, Min: 0, Max: MaxDirectoryVersion}, ReadOnly),
	SmDirectoryAge:        column("smDirectoryAge", SmDirectoryEntry, 8, synGauge, ReadOnly),
	SmDirectoryTableLimit: scalar("smDirectoryTableLimit", SmDirectory, 3, synGauge, ReadOnly),

	SmDirectoryHierarchy: node("smDirectoryHierarchy", SmDirectory, 4),
	SmDirectoryForwardPolicy: scalar("smDirectoryForwardPolicy", SmDirectoryHierarchy, 1, Syntax{Type: smi.TypeInteger,
		Enum: []Enum{{"full", 1}, {"summary", 2}, {"none", 3}, {"noParent", 4}, {"digest", 5}}}, ReadOnly),
	SmDirectoryForwardActive:    scalar("smDirectoryForwardActive", SmDirectoryHierarchy, 2, synTruthValue, ReadOnly),
	SmDirectoryForwardPending:   scalar("smDirectoryForwardPending", SmDirectoryHierarchy, 3, synGauge, ReadOnly),
	SmDirectoryForwardOps:       scalar("smDirectoryForwardOps", SmDirectoryHierarchy, 4, synCounter64, ReadOnly),
	SmDirectoryForwardBytes:     scalar("smDirectoryForwardBytes", SmDirectoryHierarchy, 5, synCounter64, ReadOnly),
	SmDirectoryForwardRetries:   scalar("smDirectoryForwardRetries", SmDirectoryHierarchy, 6, synCounter64, ReadOnly),
	SmDirectoryForwardOverflows: scalar("smDirectoryForwardOverflows", SmDirectoryHierarchy, 7, synCounter64, ReadOnly),
	SmDirectoryForwardResyncs:   scalar("smDirectoryForwardResyncs", SmDirectoryHierarchy, 8, synCounter64, ReadOnly),
	SmDirectoryLookups:          scalar("smDirectoryLookups", SmDirectoryHierarchy, 9, synCounter64, ReadOnly),
	SmDirectoryLookupFailures:   scalar("smDirectoryLookupFailures", SmDirectoryHierarchy, 10, synCounter64, ReadOnly),

	SmDirectoryRefusedOps:      scalar("smDirectoryRefusedOps", SmDirectory, 5, synCounter64, ReadOnly),
	SmDirectoryRejectedOps:     scalar("smDirectoryRejectedOps", SmDirectory, 6, synCounter64, ReadOnly),
	SmDirectoryRefusalEpisodes: scalar("smDirectoryRefusalEpisodes", SmDirectory, 7, synCounter64, ReadOnly),

	SmTransportSent:              scalar("smTransportSent", SmTransport, 1, synCounter64, ReadOnly),
	SmTransportReceived:          scalar("smTransportReceived", SmTransport, 2, synCounter64, ReadOnly),
	SmTransportRetransmits:       scalar("smTransportRetransmits", SmTransport, 3, synCounter64, ReadOnly),
	SmTransportNaksSent:          scalar("smTransportNaksSent", SmTransport, 4, synCounter64, ReadOnly),
	SmTransportNaksReceived:      scalar("smTransportNaksReceived", SmTransport, 5, synCounter64, ReadOnly),
	SmTransportNaksSuppressed:    scalar("smTransportNaksSuppressed", SmTransport, 6, synCounter64, ReadOnly),
	SmTransportDuplicates:        scalar("smTransportDuplicates", SmTransport, 7, synCounter64, ReadOnly),
	SmTransportAuthFailures:      scalar("smTransportAuthFailures", SmTransport, 8, synCounter64, ReadOnly),
	SmTransportAborts:            scalar("smTransportAborts", SmTransport, 9, synCounter64, ReadOnly),
	SmTransportLateReplies:       scalar("smTransportLateReplies", SmTransport, 10, synCounter64, ReadOnly),
	SmTransportDatagramsSent:     scalar("smTransportDatagramsSent", SmTransport, 11, synCounter64, ReadOnly),
	SmTransportDatagramsReceived: scalar("smTransportDatagramsReceived", SmTransport, 12, synCounter64, ReadOnly),
	SmTransportAbortsReceived:    scalar("smTransportAbortsReceived", SmTransport, 13, synCounter64, ReadOnly),
	SmTransportReplays:           scalar("smTransportReplays", SmTransport, 14, synCounter64, ReadOnly),
	SmTransportDropped:           scalar("smTransportDropped", SmTransport, 15, synCounter64, ReadOnly),
	SmTransportMalformed:         scalar("smTransportMalformed", SmTransport, 16, synCounter64, ReadOnly),

	SmTransferSender:    scalar("smTransferSender", SmNotifyObjects, 1, synNodeID, AccessibleForNotify),
	SmTransferMessageID: scalar("smTransferMessageId", SmNotifyObjects, 2, synCounter64, AccessibleForNotify),
	SmTransferComplete:  scalar("smTransferComplete", SmNotifyObjects, 3, synTruthValue, AccessibleForNotify),

	SmReconcilePending: scalar("smReconcilePending", SmReconcile, 1, synGauge, ReadOnly),
	SmReconcileTable:   tableOf("smReconcileTable", SmReconcile, 2),
	SmReconcileEntry:   rowOf("smReconcileEntry", SmReconcileTable),
	SmReconcileIndex:   column("smReconcileIndex", SmReconcileEntry, 1, Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 1, Max: 4294967295}, NotAccessible),
	SmReconcileEngine:  column("smReconcileEngine", SmReconcileEntry, 2, synNodeID, ReadOnly),
	SmReconcileState: column("smReconcileState", SmReconcileEntry, 3, Syntax{Type: smi.TypeInteger,
		Enum: []Enum{{"pending", 1}, {"reconciled", 2}, {"superseded", 3}, {"impossible", 4}}}, ReadOnly),
	SmReconcileObject:   column("smReconcileObject", SmReconcileEntry, 4, Syntax{Type: smi.TypeObjectIdentifier}, ReadOnly),
	SmReconcileObjects:  column("smReconcileObjects", SmReconcileEntry, 5, synGauge, ReadOnly),
	SmReconcileAttempts: column("smReconcileAttempts", SmReconcileEntry, 6, synGauge, ReadOnly),
	SmReconcileCreated:  column("smReconcileCreated", SmReconcileEntry, 7, synTimeStamp, ReadOnly),
	SmReconcileResolved: column("smReconcileResolved", SmReconcileEntry, 8, synTimeStamp, ReadOnly),

	SmEngineUp:        kind("smEngineUp", SmNotifications, 1, KindNotification),
	SmEngineDown:      kind("smEngineDown", SmNotifications, 2, KindNotification),
	SmManagerTakeover: kind("smManagerTakeover", SmNotifications, 3, KindNotification),
	SmTransferAborted: kind("smTransferAborted", SmNotifications, 4, KindNotification),

	SmAgentSmsnmpd: kind("smAgentSmsnmpd", SmAgentIds, 1, KindIdentity),

	SmCompliances:        node("smCompliances", SmConformance, 1),
	SmGroups:             node("smGroups", SmConformance, 2),
	SmCompliance:         kind("smCompliance", SmCompliances, 1, KindCompliance),
	SmEngineCompliance:   kind("smEngineCompliance", SmCompliances, 2, KindCompliance),
	SmManagerCompliance:  kind("smManagerCompliance", SmCompliances, 3, KindCompliance),
	SmNodeGroup:          kind("smNodeGroup", SmGroups, 1, KindGroup),
	SmViewGroup:          kind("smViewGroup", SmGroups, 2, KindGroup),
	SmEngineGroup:        kind("smEngineGroup", SmGroups, 3, KindGroup),
	SmSeGroup:            kind("smSeGroup", SmGroups, 4, KindGroup),
	SmDirectoryGroup:     kind("smDirectoryGroup", SmGroups, 5, KindGroup),
	SmTransportGroup:     kind("smTransportGroup", SmGroups, 6, KindGroup),
	SmNotifyObjectsGroup: kind("smNotifyObjectsGroup", SmGroups, 7, KindGroup),
	SmNotificationGroup:  kind("smNotificationGroup", SmGroups, 8, KindGroup),
	SmHierarchyGroup:     kind("smHierarchyGroup", SmGroups, 9, KindGroup),
	SmReconcileGroup:     kind("smReconcileGroup", SmGroups, 10, KindGroup),
	SmDirectoryFlowGroup: kind("smDirectoryFlowGroup", SmGroups, 11, KindGroup),

	SmNodeActivePeer: scalar("smNodeActivePeer", SmNode, 5, Syntax{Type: smi.TypeGauge32, Ranged: true, Min: 0, Max: MaxNodeID}, ReadOnly),
	SmEngineName:     column("smEngineName", SmEngineEntry, 12, Syntax{Type: smi.TypeOctetString, Ranged: true, Min: 0, Max: MaxEngineName}, ReadOnly),

	SmSubtree:               node("smSubtree", SmObjects, 11),
	SmSubtreeRequests:       scalar("smSubtreeRequests", SmSubtree, 1, synCounter64, ReadOnly),
	SmSubtreeBytesOut:       scalar("smSubtreeBytesOut", SmSubtree, 2, synCounter64, ReadOnly),
	SmSubtreeContentCount:   scalar("smSubtreeContentCount", SmSubtree, 3, synGauge, ReadOnly),
	SmSubtreeLoad:           scalar("smSubtreeLoad", SmSubtree, 4, synGauge, ReadOnly),
	SmSubtreeEnginesUp:      scalar("smSubtreeEnginesUp", SmSubtree, 5, synGauge, ReadOnly),
	SmSubtreeEnginesSuspect: scalar("smSubtreeEnginesSuspect", SmSubtree, 6, synGauge, ReadOnly),
	SmSubtreeEnginesDown:    scalar("smSubtreeEnginesDown", SmSubtree, 7, synGauge, ReadOnly),

	SmDirectoryDigestSize:      scalar("smDirectoryDigestSize", SmDirectoryHierarchy, 11, synGauge, ReadOnly),
	SmDirectoryDigestKeys:      scalar("smDirectoryDigestKeys", SmDirectoryHierarchy, 12, synGauge, ReadOnly),
	SmDirectoryDigestFill:      scalar("smDirectoryDigestFill", SmDirectoryHierarchy, 13, synPPM, ReadOnly),
	SmDirectoryDigestFpRate:    scalar("smDirectoryDigestFpRate", SmDirectoryHierarchy, 14, synPPM, ReadOnly),
	SmDirectoryDigestBytesSent: scalar("smDirectoryDigestBytesSent", SmDirectoryHierarchy, 15, synCounter64, ReadOnly),
	SmDirectoryDigestFalseHits: scalar("smDirectoryDigestFalseHits", SmDirectoryHierarchy, 16, synCounter64, ReadOnly),
	SmDirectoryDigestGroup:     kind("smDirectoryDigestGroup", SmGroups, 14, KindGroup),

	SmOperatorGroup: kind("smOperatorGroup", SmGroups, 12, KindGroup),
	SmSubtreeGroup:  kind("smSubtreeGroup", SmGroups, 13, KindGroup),
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

// Sizes of smDirectoryTable's strings, as the MIB states them.
const (
	MaxDirectoryKey     = 1024
	MaxDirectoryVersion = 64
)

// MaxEngineName is smEngineName's size, sysName's (DisplayString).
const MaxEngineName = 255
