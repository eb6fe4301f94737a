// Package wire is the pure codec of the fan-out payloads (request, reply,
// and the engine numbers carried in rmtp HELLOs): bytes in, structs out,
// no I/O, no clock, no logging. The byte layout is documented in package
// fanout's doc comment. Every count read off the wire is checked against
// a named cap before anything is allocated.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Version is the payload version this package speaks.
const Version = 1

// Caps on what the decoders accept.
const (
	// MaxTargets bounds the explicit target list: rmtp's views hold at
	// most 4096 members.
	MaxTargets = 4096
	// MaxVarBinds bounds one payload's varbinds (the BER codec's own cap:
	// what fits in one SNMP message).
	MaxVarBinds = ber.MaxVarBinds
	// MaxWalkCap bounds the walk cap: a snapshot of one root on one SE.
	MaxWalkCap = 10000
	// MaxReplyVarBinds bounds a WALK reply (every root at its cap is
	// still refused beyond this).
	MaxReplyVarBinds = 64 * 1024
)

// Fixed sizes.
const (
	RequestHeaderLen = 30
	ReplyHeaderLen   = 36
	EngineInfoLen    = 1 + 4 + 8 + 8 + 8
)

// Errors.
var (
	ErrTruncated = errors.New("fanout/wire: truncated")
	ErrVersion   = errors.New("fanout/wire: unsupported version")
	ErrMalformed = errors.New("fanout/wire: malformed")
	ErrTooMany   = errors.New("fanout/wire: over a cap")
)

// Op is the operation of a request. Append-only: the numbers are on the
// wire.
type Op uint8

// Operations (DESIGN.md §5).
const (
	OpGet        Op = 1
	OpGetNext    Op = 2
	OpWalk       Op = 3
	OpSetTest    Op = 4
	OpSetCommit  Op = 5
	OpSetUndo    Op = 6
	OpSetCleanup Op = 7
)

func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpGetNext:
		return "getnext"
	case OpWalk:
		return "walk"
	case OpSetTest:
		return "set-test"
	case OpSetCommit:
		return "set-commit"
	case OpSetUndo:
		return "set-undo"
	case OpSetCleanup:
		return "set-cleanup"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Valid reports whether o is a known operation.
func (o Op) Valid() bool { return o >= OpGet && o <= OpSetCleanup }

// IsSet reports whether o is a SET phase.
func (o Op) IsSet() bool { return o >= OpSetTest && o <= OpSetCleanup }

// carriesVarBinds reports whether requests of o carry varbinds.
func (o Op) carriesVarBinds() bool { return o <= OpSetTest }

// Status is the outcome an SE reports. Append-only: on the wire.
type Status uint8

// Statuses.
const (
	StatusOK         Status = 0
	StatusSNMPError  Status = 1 // ErrStatus and ErrIndex say which
	StatusStaleTerm  Status = 2 // the request's term is older than the SE's newest
	StatusBadRequest Status = 3 // undecodable or inconsistent request
	StatusBusy       Status = 4 // the SE shed the request (overload)
	StatusUnknownTx  Status = 5 // a SET phase for a transaction the SE does not hold
	// StatusNoAnswer never travels: the coordinator's mark for an SE that
	// did not answer by the deadline.
	StatusNoAnswer Status = 0xff
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusSNMPError:
		return "snmpError"
	case StatusStaleTerm:
		return "staleTerm"
	case StatusBadRequest:
		return "badRequest"
	case StatusBusy:
		return "busy"
	case StatusUnknownTx:
		return "unknownTx"
	case StatusNoAnswer:
		return "noAnswer"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// ReplyFlags are the reply's flag bits.
type ReplyFlags uint8

// FlagTruncated: at least one WALK root reached the walk cap.
const FlagTruncated ReplyFlags = 1

// Request is one management operation.
type Request struct {
	Op       Op
	Tx       uint64
	Term     uint64
	BudgetUs uint32 // microseconds
	WalkCap  uint32
	Targets  []uint32 // empty: every engine
	VarBinds []smi.VarBind
}

// Reply is one SE's answer.
type Reply struct {
	Op          Op
	Status      Status
	Flags       ReplyFlags
	Tx          uint64
	Engine      uint32
	Incarnation uint64 // the SE's rmtp incarnation: a restart shows in the answer itself
	Term        uint64
	ErrStatus   smi.ErrorStatus
	ErrIndex    uint16
	VarBinds    []smi.VarBind
}

// AppendRequest appends the encoding of r.
func AppendRequest(b []byte, r *Request) ([]byte, error) {
	if !r.Op.Valid() {
		return b, fmt.Errorf("%w: op %d", ErrMalformed, r.Op)
	}
	if len(r.Targets) > MaxTargets {
		return b, fmt.Errorf("%w: %d targets, at most %d", ErrTooMany, len(r.Targets), MaxTargets)
	}
	if r.WalkCap > MaxWalkCap {
		return b, fmt.Errorf("%w: walk cap %d, at most %d", ErrTooMany, r.WalkCap, MaxWalkCap)
	}
	if len(r.VarBinds) > MaxVarBinds {
		return b, fmt.Errorf("%w: %d varbinds, at most %d", ErrTooMany, len(r.VarBinds), MaxVarBinds)
	}
	b = append(b, Version, byte(r.Op), 0, 0)
	b = binary.BigEndian.AppendUint64(b, r.Tx)
	b = binary.BigEndian.AppendUint64(b, r.Term)
	b = binary.BigEndian.AppendUint32(b, r.BudgetUs)
	b = binary.BigEndian.AppendUint32(b, r.WalkCap)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Targets)))
	for _, t := range r.Targets {
		b = binary.BigEndian.AppendUint32(b, t)
	}
	return ber.AppendVarBinds(b, r.VarBinds)
}

// ParseRequest decodes a request that fills b exactly.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if len(b) < 1 {
		return r, fmt.Errorf("%w: empty request", ErrTruncated)
	}
	if b[0] != Version {
		return r, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if len(b) < RequestHeaderLen {
		return r, fmt.Errorf("%w: request header: %d of %d bytes", ErrTruncated, len(b), RequestHeaderLen)
	}
	r.Op = Op(b[1])
	if !r.Op.Valid() {
		return r, fmt.Errorf("%w: op %d", ErrMalformed, b[1])
	}
	if f := binary.BigEndian.Uint16(b[2:]); f != 0 {
		return r, fmt.Errorf("%w: unknown request flags 0x%04x", ErrMalformed, f)
	}
	r.Tx = binary.BigEndian.Uint64(b[4:])
	r.Term = binary.BigEndian.Uint64(b[12:])
	r.BudgetUs = binary.BigEndian.Uint32(b[20:])
	r.WalkCap = binary.BigEndian.Uint32(b[24:])
	if r.WalkCap > MaxWalkCap {
		return r, fmt.Errorf("%w: walk cap %d, at most %d", ErrTooMany, r.WalkCap, MaxWalkCap)
	}
	nt := int(binary.BigEndian.Uint16(b[28:]))
	if nt > MaxTargets {
		return r, fmt.Errorf("%w: %d targets, at most %d", ErrTooMany, nt, MaxTargets)
	}
	rest := b[RequestHeaderLen:]
	if len(rest) < 4*nt {
		return r, fmt.Errorf("%w: %d targets in %d bytes", ErrTruncated, nt, len(rest))
	}
	if nt > 0 {
		r.Targets = make([]uint32, nt)
		for i := range r.Targets {
			r.Targets[i] = binary.BigEndian.Uint32(rest[4*i:])
		}
	}
	rest = rest[4*nt:]
	vbs, err := decodeVarBinds(rest, MaxVarBinds)
	if err != nil {
		return r, fmt.Errorf("request varbinds: %w", err)
	}
	if !r.Op.carriesVarBinds() && len(vbs) > 0 {
		return r, fmt.Errorf("%w: %s carries %d varbinds", ErrMalformed, r.Op, len(vbs))
	}
	r.VarBinds = vbs
	return r, nil
}

// AppendReply appends the encoding of r.
func AppendReply(b []byte, r *Reply) ([]byte, error) {
	if !r.Op.Valid() {
		return b, fmt.Errorf("%w: op %d", ErrMalformed, r.Op)
	}
	if r.Status == StatusNoAnswer {
		return b, fmt.Errorf("%w: status %s is not a wire status", ErrMalformed, r.Status)
	}
	if r.ErrStatus > 0xffff {
		return b, fmt.Errorf("%w: error-status %d", ErrMalformed, r.ErrStatus)
	}
	if len(r.VarBinds) > MaxReplyVarBinds {
		return b, fmt.Errorf("%w: %d varbinds, at most %d", ErrTooMany, len(r.VarBinds), MaxReplyVarBinds)
	}
	b = append(b, Version, byte(r.Op), byte(r.Status), byte(r.Flags))
	b = binary.BigEndian.AppendUint64(b, r.Tx)
	b = binary.BigEndian.AppendUint32(b, r.Engine)
	b = binary.BigEndian.AppendUint64(b, r.Incarnation)
	b = binary.BigEndian.AppendUint64(b, r.Term)
	b = binary.BigEndian.AppendUint16(b, uint16(r.ErrStatus))
	b = binary.BigEndian.AppendUint16(b, r.ErrIndex)
	return ber.AppendVarBinds(b, r.VarBinds)
}

// ParseReply decodes a reply that fills b exactly.
func ParseReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) < 1 {
		return r, fmt.Errorf("%w: empty reply", ErrTruncated)
	}
	if b[0] != Version {
		return r, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if len(b) < ReplyHeaderLen {
		return r, fmt.Errorf("%w: reply header: %d of %d bytes", ErrTruncated, len(b), ReplyHeaderLen)
	}
	r.Op = Op(b[1])
	if !r.Op.Valid() {
		return r, fmt.Errorf("%w: op %d", ErrMalformed, b[1])
	}
	r.Status = Status(b[2])
	if r.Status == StatusNoAnswer {
		return r, fmt.Errorf("%w: status 0x%02x", ErrMalformed, b[2])
	}
	r.Flags = ReplyFlags(b[3])
	if r.Flags&^FlagTruncated != 0 {
		return r, fmt.Errorf("%w: unknown reply flags 0x%02x", ErrMalformed, b[3])
	}
	r.Tx = binary.BigEndian.Uint64(b[4:])
	r.Engine = binary.BigEndian.Uint32(b[12:])
	r.Incarnation = binary.BigEndian.Uint64(b[16:])
	r.Term = binary.BigEndian.Uint64(b[24:])
	r.ErrStatus = smi.ErrorStatus(binary.BigEndian.Uint16(b[32:]))
	r.ErrIndex = binary.BigEndian.Uint16(b[34:])
	vbs, err := decodeVarBinds(b[ReplyHeaderLen:], MaxReplyVarBinds)
	if err != nil {
		return r, fmt.Errorf("reply varbinds: %w", err)
	}
	r.VarBinds = vbs
	return r, nil
}

// decodeVarBinds maps the BER codec's errors onto this package's, keeping
// both in the chain.
func decodeVarBinds(b []byte, max int) ([]smi.VarBind, error) {
	vbs, err := ber.DecodeVarBinds(b, max)
	switch {
	case err == nil:
		return vbs, nil
	case errors.Is(err, ber.ErrTruncated):
		return nil, fmt.Errorf("%w: %w", ErrTruncated, err)
	case errors.Is(err, ber.ErrTooMany):
		return nil, fmt.Errorf("%w: %w", ErrTooMany, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
}

// EngineInfo is an SE's own numbers, carried in its HELLO app bytes so the
// manager's smEngineTable needs no request to show them.
type EngineInfo struct {
	Load         uint32 // load average × 100
	Requests     uint64 // requests served (Counter64)
	BytesOut     uint64 // bytes sent (Counter64)
	ContentCount uint64 // directory entries
}

// AppendEngineInfo appends the encoding of e.
func AppendEngineInfo(b []byte, e EngineInfo) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, e.Load)
	b = binary.BigEndian.AppendUint64(b, e.Requests)
	b = binary.BigEndian.AppendUint64(b, e.BytesOut)
	return binary.BigEndian.AppendUint64(b, e.ContentCount)
}

// ParseEngineInfo decodes engine numbers. Trailing bytes are allowed, so a
// later version may append fields an older manager ignores.
func ParseEngineInfo(b []byte) (EngineInfo, error) {
	var e EngineInfo
	if len(b) < 1 {
		return e, fmt.Errorf("%w: empty engine info", ErrTruncated)
	}
	if b[0] != Version {
		return e, fmt.Errorf("%w: engine info %d", ErrVersion, b[0])
	}
	if len(b) < EngineInfoLen {
		return e, fmt.Errorf("%w: engine info: %d of %d bytes", ErrTruncated, len(b), EngineInfoLen)
	}
	e.Load = binary.BigEndian.Uint32(b[1:])
	e.Requests = binary.BigEndian.Uint64(b[5:])
	e.BytesOut = binary.BigEndian.Uint64(b[13:])
	e.ContentCount = binary.BigEndian.Uint64(b[21:])
	return e, nil
}
