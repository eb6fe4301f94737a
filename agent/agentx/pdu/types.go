package pdu

import (
	"errors"
	"strconv"
)

// Version is the only AgentX protocol version (h.version).
const Version = 1

// HeaderLength is the size of the fixed AgentX header.
const HeaderLength = 20

// Caps on lengths read off the wire, checked before allocating.
const (
	// MaxPayloadLength bounds h.payload_length. net-snmp's largest PDUs
	// (a GetBulk response of a few thousand varbinds) stay far below it.
	MaxPayloadLength = 1 << 20
	// MaxOctetStringLength bounds any Octet String (values, contexts,
	// descriptions): SMIv2's OCTET STRING limit (RFC 2578 §7.1.2).
	MaxOctetStringLength = 65535
	// MaxVarBinds bounds a VarBindList or SearchRangeList: res.index is a
	// 16-bit field, so a longer list could not name its failing entry.
	MaxVarBinds = 65535
)

// Type is h.type, the PDU type. Append-only: the numbers are on the wire.
type Type uint8

// PDU types (RFC 2741 §6.1).
const (
	TypeOpen            Type = 1
	TypeClose           Type = 2
	TypeRegister        Type = 3
	TypeUnregister      Type = 4
	TypeGet             Type = 5
	TypeGetNext         Type = 6
	TypeGetBulk         Type = 7
	TypeTestSet         Type = 8
	TypeCommitSet       Type = 9
	TypeUndoSet         Type = 10
	TypeCleanupSet      Type = 11
	TypeNotify          Type = 12
	TypePing            Type = 13
	TypeIndexAllocate   Type = 14
	TypeIndexDeallocate Type = 15
	TypeAddAgentCaps    Type = 16
	TypeRemoveAgentCaps Type = 17
	TypeResponse        Type = 18
)

var typeNames = [...]string{"", "Open", "Close", "Register", "Unregister", "Get", "GetNext",
	"GetBulk", "TestSet", "CommitSet", "UndoSet", "CleanupSet", "Notify", "Ping",
	"IndexAllocate", "IndexDeallocate", "AddAgentCaps", "RemoveAgentCaps", "Response"}

func (t Type) String() string {
	if t >= TypeOpen && t <= TypeResponse {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the 18 PDU types.
func (t Type) Valid() bool { return t >= TypeOpen && t <= TypeResponse }

// hasContext reports whether PDUs of type t carry an optional context
// (RFC 2741 §6.1.1).
func (t Type) hasContext() bool {
	switch t {
	case TypeOpen, TypeClose, TypeCommitSet, TypeUndoSet, TypeCleanupSet, TypeResponse:
		return false
	}
	return t.Valid()
}

// Flags is h.flags. Append-only: the bits are on the wire.
type Flags uint8

// Header flags (RFC 2741 §6.1).
const (
	FlagInstanceRegistration Flags = 0x01
	FlagNewIndex             Flags = 0x02
	FlagAnyIndex             Flags = 0x04
	FlagNonDefaultContext    Flags = 0x08
	FlagNetworkByteOrder     Flags = 0x10
)

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	names := [...]string{"INSTANCE_REGISTRATION", "NEW_INDEX", "ANY_INDEX", "NON_DEFAULT_CONTEXT", "NETWORK_BYTE_ORDER"}
	s := ""
	for i, n := range names {
		if f&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	if rest := f &^ 0x1f; rest != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + strconv.FormatUint(uint64(rest), 16)
	}
	return s
}

// CloseReason is c.reason of a Close PDU. Append-only.
type CloseReason uint8

// Close reasons (RFC 2741 §6.2.2).
const (
	ReasonOther         CloseReason = 1
	ReasonParseError    CloseReason = 2
	ReasonProtocolError CloseReason = 3
	ReasonTimeouts      CloseReason = 4
	ReasonShutdown      CloseReason = 5
	ReasonByManager     CloseReason = 6
)

func (r CloseReason) String() string {
	switch r {
	case ReasonOther:
		return "reasonOther"
	case ReasonParseError:
		return "reasonParseError"
	case ReasonProtocolError:
		return "reasonProtocolError"
	case ReasonTimeouts:
		return "reasonTimeouts"
	case ReasonShutdown:
		return "reasonShutdown"
	case ReasonByManager:
		return "reasonByManager"
	}
	return "CloseReason(" + strconv.Itoa(int(r)) + ")"
}

// ResponseError is res.error: either an SNMP error-status (0..18, the
// numbers of smi.ErrorStatus) or one of the AgentX administrative errors
// below. Append-only.
type ResponseError uint16

// AgentX administrative errors (RFC 2741 §6.2.16).
const (
	NoAgentXError         ResponseError = 0
	OpenFailed            ResponseError = 256
	NotOpen               ResponseError = 257
	IndexWrongType        ResponseError = 258
	IndexAlreadyAllocated ResponseError = 259
	IndexNoneAvailable    ResponseError = 260
	IndexNotAllocated     ResponseError = 261
	UnsupportedContext    ResponseError = 262
	DuplicateRegistration ResponseError = 263
	UnknownRegistration   ResponseError = 264
	UnknownAgentCaps      ResponseError = 265
	ParseError            ResponseError = 266
	RequestDenied         ResponseError = 267
	ProcessingError       ResponseError = 268
)

var adminErrorNames = [...]string{"openFailed", "notOpen", "indexWrongType",
	"indexAlreadyAllocated", "indexNoneAvailable", "indexNotAllocated",
	"unsupportedContext", "duplicateRegistration", "unknownRegistration",
	"unknownAgentCaps", "parseError", "requestDenied", "processingError"}

var snmpErrorNames = [...]string{
	"noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
	"wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
	"inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
	"authorizationError", "notWritable", "inconsistentName",
}

func (e ResponseError) String() string {
	switch {
	case int(e) < len(snmpErrorNames):
		return snmpErrorNames[e]
	case e >= OpenFailed && e <= ProcessingError:
		return adminErrorNames[e-OpenFailed]
	}
	return "ResponseError(" + strconv.Itoa(int(e)) + ")"
}

// Decoding errors. Errors returned by Decode and ParseHeader wrap one of
// these, so callers can pick the right reaction (a Close with
// reasonParseError, or a Response with parseError).
var (
	// ErrTruncated: the input ends before the structure it announces.
	ErrTruncated = errors.New("agentx: truncated PDU")
	// ErrVersion: h.version is not 1.
	ErrVersion = errors.New("agentx: unsupported protocol version")
	// ErrType: h.type is not one of the 18 PDU types.
	ErrType = errors.New("agentx: unknown PDU type")
	// ErrTooLong: a length field exceeds its cap.
	ErrTooLong = errors.New("agentx: length exceeds limit")
	// ErrMalformed: a field holds a value the protocol does not allow
	// (an unknown varbind type, a payload length that is not a multiple
	// of 4, trailing bytes, an upper bound below the range sub-identifier).
	ErrMalformed = errors.New("agentx: malformed PDU")
	// ErrEncode: a Packet cannot be encoded (a value out of its type's
	// range, an OID longer than 128 sub-identifiers, a string too long).
	ErrEncode = errors.New("agentx: cannot encode PDU")
)
