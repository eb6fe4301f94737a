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

// peekLen is how much of a request or reply header the Peek functions
// read: version, op, flags (or status and flags), transaction id. These
// sit at the same offsets in every version.
const peekLen = 12

// PeekRequest reads a request's op and transaction id without decoding
// the rest: what a badRequest reply echoes when the request does not
// parse. ok is false when b is too short for them or the op is not one.
func PeekRequest(b []byte) (op Op, tx uint64, ok bool) {
	if len(b) < peekLen || !Op(b[1]).Valid() {
		return 0, 0, false
	}
	return Op(b[1]), binary.BigEndian.Uint64(b[4:]), true
}

// PeekReply reads what routes a reply (op, status, transaction id)
// without decoding it, so that only a reply to one of the reader's own
// transactions is decoded whole. ok is false when b is shorter than a
// reply header; nothing is validated (ParseReply does that).
func PeekReply(b []byte) (op Op, status Status, tx uint64, ok bool) {
	if len(b) < ReplyHeaderLen {
		return 0, 0, 0, false
	}
	return Op(b[1]), Status(b[2]), binary.BigEndian.Uint64(b[4:]), true
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
// manager's smEngineTable needs no request to show them. A manager's
// HELLOs carry one too, with its subtree totals: to its parent level (the
// parent sums its children's), and to the other managers of its own level
// (which keep theirs no lower, so a takeover continues them).
type EngineInfo struct {
	Load         uint32 // load average × 100
	Requests     uint64 // requests served (Counter64)
	BytesOut     uint64 // bytes sent (Counter64)
	ContentCount uint64 // directory entries
	// Name is the sender's sysName (smEngineName), at most MaxEngineName
	// bytes: AppendEngineInfo cuts a longer one.
	Name string
	// Subtree, when HasSubtree, is a manager's totals of everything below
	// it (smSubtree).
	Subtree    Subtree
	HasSubtree bool
}

// Subtree is what a manager reports of everything below it: its engines
// at level 1, the sum of its children's reports above (smSubtree).
type Subtree struct {
	// Active: the sender is the active manager of its level, whose report
	// the parent counts (a backup reports the same totals, not counted).
	Active bool
	// Level and the unit (CDN, DataCenter, Farm as its level names them,
	// 0 beyond) say which part of the tree this is; Term is the sender's
	// own level's term.
	Level                 uint8
	CDN, DataCenter, Farm uint32
	Term                  uint64
	// Requests and BytesOut only grow (Counter64) while the sender runs.
	Requests, BytesOut uint64
	ContentCount       uint64
	// LoadSum is the sum of smEngineLoad over the LoadEngines engines up
	// or suspect: an average across levels weighs every engine alike.
	LoadSum     uint64
	LoadEngines uint32
	// Engines by state; Down counts down and left.
	Up, Suspect, Down uint32
}

// Sizes of the engine info's optional fields.
const (
	// MaxEngineName bounds Name (sysName is at most 255 octets).
	MaxEngineName = 255
	// SubtreeLen is the encoded Subtree.
	SubtreeLen = 1 + 1 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 4 + 4 + 4 + 4
	// MaxEngineInfoLen is the longest encoding AppendEngineInfo makes: the
	// fixed part, a name and a subtree. It must fit rmtp's HELLO app bytes
	// (rmtp/wire.MaxHelloApp), which drops a longer one whole.
	MaxEngineInfoLen = EngineInfoLen + 2 + MaxEngineName + 2 + SubtreeLen
)

// Field types after the fixed part of an engine info: type (1), length
// (1), value. Append-only: on the wire. An unknown type is skipped, so a
// later version may add fields an older manager ignores.
const (
	fieldName    = 1
	fieldSubtree = 2
)

// activeFlag is bit 0 of a subtree's flags; the others are ignored (a
// later version's).
const activeFlag = 1

// AppendEngineInfo appends the encoding of e.
func AppendEngineInfo(b []byte, e EngineInfo) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, e.Load)
	b = binary.BigEndian.AppendUint64(b, e.Requests)
	b = binary.BigEndian.AppendUint64(b, e.BytesOut)
	b = binary.BigEndian.AppendUint64(b, e.ContentCount)
	if e.Name != "" {
		name := e.Name
		if len(name) > MaxEngineName {
			name = name[:MaxEngineName]
		}
		b = append(b, fieldName, byte(len(name)))
		b = append(b, name...)
	}
	if e.HasSubtree {
		b = append(b, fieldSubtree, SubtreeLen)
		b = appendSubtree(b, &e.Subtree)
	}
	return b
}

func appendSubtree(b []byte, s *Subtree) []byte {
	var flags byte
	if s.Active {
		flags |= activeFlag
	}
	b = append(b, flags, s.Level)
	b = binary.BigEndian.AppendUint32(b, s.CDN)
	b = binary.BigEndian.AppendUint32(b, s.DataCenter)
	b = binary.BigEndian.AppendUint32(b, s.Farm)
	b = binary.BigEndian.AppendUint64(b, s.Term)
	b = binary.BigEndian.AppendUint64(b, s.Requests)
	b = binary.BigEndian.AppendUint64(b, s.BytesOut)
	b = binary.BigEndian.AppendUint64(b, s.ContentCount)
	b = binary.BigEndian.AppendUint64(b, s.LoadSum)
	b = binary.BigEndian.AppendUint32(b, s.LoadEngines)
	b = binary.BigEndian.AppendUint32(b, s.Up)
	b = binary.BigEndian.AppendUint32(b, s.Suspect)
	return binary.BigEndian.AppendUint32(b, s.Down)
}

func parseSubtree(b []byte) Subtree {
	return Subtree{
		Active:       b[0]&activeFlag != 0,
		Level:        b[1],
		CDN:          binary.BigEndian.Uint32(b[2:]),
		DataCenter:   binary.BigEndian.Uint32(b[6:]),
		Farm:         binary.BigEndian.Uint32(b[10:]),
		Term:         binary.BigEndian.Uint64(b[14:]),
		Requests:     binary.BigEndian.Uint64(b[22:]),
		BytesOut:     binary.BigEndian.Uint64(b[30:]),
		ContentCount: binary.BigEndian.Uint64(b[38:]),
		LoadSum:      binary.BigEndian.Uint64(b[46:]),
		LoadEngines:  binary.BigEndian.Uint32(b[54:]),
		Up:           binary.BigEndian.Uint32(b[58:]),
		Suspect:      binary.BigEndian.Uint32(b[62:]),
		Down:         binary.BigEndian.Uint32(b[66:]),
	}
}

// ParseEngineInfo decodes engine numbers: the fixed part, then optional
// fields. An unknown field, and bytes a known field has beyond its own
// (a later version's), are skipped; a field cut short, or a field given
// twice, is an error.
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
	var seen [256]bool
	for rest := b[EngineInfoLen:]; len(rest) > 0; {
		if len(rest) < 2 {
			return EngineInfo{}, fmt.Errorf("%w: engine info field header: %d of 2 bytes", ErrTruncated, len(rest))
		}
		typ, n := rest[0], int(rest[1])
		if len(rest) < 2+n {
			return EngineInfo{}, fmt.Errorf("%w: engine info field %d: %d of %d bytes", ErrTruncated, typ, len(rest)-2, n)
		}
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		if seen[typ] {
			return EngineInfo{}, fmt.Errorf("%w: engine info field %d twice", ErrMalformed, typ)
		}
		seen[typ] = true
		switch typ {
		case fieldName:
			e.Name = string(v)
		case fieldSubtree:
			if n < SubtreeLen {
				return EngineInfo{}, fmt.Errorf("%w: subtree totals: %d of %d bytes", ErrTruncated, n, SubtreeLen)
			}
			e.Subtree, e.HasSubtree = parseSubtree(v), true
		}
	}
	return e, nil
}
