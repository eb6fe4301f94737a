// Package wire is the pure codec of the manager state an active manager
// replicates to its backups (package replica): bytes in, structs out, no
// I/O, no clock, no logging. Every count read off the wire is checked
// against a named cap, and against the bytes left, before anything is
// allocated; a state with trailing bytes is an error.
//
// # Layout, version 1
//
// All integers are big-endian; times are Unix nanoseconds (0: none).
//
//	offset size field
//	     0    2 magic          0x5352 ("SR")
//	     2    1 version        1; other versions are refused (ErrVersion)
//	     3    1 flags          0x01 PARTIAL (sums were left out to fit the
//	                           sender's size cap); other bits: error
//	     4    4 node           sender's node id, never 0
//	     8    8 incarnation    sender's rmtp incarnation
//	    16    8 term           the view term the sender is active with
//	    24    8 seq            per (node, incarnation), from 1
//	    32    8 discontinuity  when a counter sum last jumped (0: never)
//	    40    4 next reconcile the id the sender gives its next reconciliation
//	    44    4 reserved       0
//	    48      sums           count 2 (≤ MaxSums), then each:
//	                             OID length 1 (1..128), sub-identifiers 4 each,
//	                             engines 2 (≤ MaxSumEngines), each 28 bytes:
//	                             engine 4, incarnation 8, last 8, offset 8
//	            reconciles     count 2 (≤ MaxReconciles), then each:
//	                             id 4, engine 4, incarnation 8, state 1,
//	                             attempts 4, created 8, resolved 8,
//	                             before: length 4 (≤ MaxVarBindBytes), VarBindList (BER)
//	            journal        count 2 (≤ MaxJournal), then each:
//	                             kind 1, subject 4, instance 8, at 8, sent 1 (0 or 1),
//	                             trap OID length 1 (1..128), sub-identifiers 4 each,
//	                             varbinds: length 4 (≤ MaxVarBindBytes), VarBindList (BER)
//
// The whole state is at most MaxState bytes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Format constants.
const (
	Magic     = 0x5352
	Version   = 1
	HeaderLen = 48
	// CountLen is the size of one engine's entry of a sum.
	CountLen = 4 + 8 + 8 + 8
)

// Caps on what the decoder accepts (and the encoder produces).
const (
	// MaxState bounds one encoded state: it travels as one rmtp message,
	// whose default cap is 1 MiB.
	MaxState = 1 << 20
	// MaxSums bounds the counter sums: mib.DefaultMaxTrackedCounters is
	// 1,024, and a manager may be configured for more.
	MaxSums = 4096
	// MaxSumEngines bounds one sum's engines (an rmtp view holds at most
	// 4,096 members).
	MaxSumEngines = 4096
	// MaxReconciles bounds the reconciliations of undoFailed SETs.
	MaxReconciles = 1024
	// MaxJournal bounds the journal of notifications.
	MaxJournal = 1024
	// MaxVarBindBytes bounds one entry's VarBindList: what fits in one
	// SNMP message.
	MaxVarBindBytes = 65507
)

// Errors. Decoders wrap them with what was at fault.
var (
	ErrTruncated = errors.New("replica/wire: truncated")
	ErrVersion   = errors.New("replica/wire: unsupported version")
	ErrMalformed = errors.New("replica/wire: malformed")
	ErrTooMany   = errors.New("replica/wire: over a cap")
)

// Flags are the state's flag bits.
type Flags uint8

// FlagPartial: the sender left counter sums out to stay under its size
// cap, so a backup that takes over cannot vouch for every sum.
const FlagPartial Flags = 0x01

const knownFlags = FlagPartial

// ReconcileState is where a reconciliation stands. Append-only: the
// numbers are on the wire and are smReconcileState's.
type ReconcileState uint8

// Reconciliation states.
const (
	// ReconcilePending: the engine may still hold the SET's values.
	ReconcilePending ReconcileState = 1
	// ReconcileDone: the engine was put back to its values before the SET.
	ReconcileDone ReconcileState = 2
	// ReconcileSuperseded: a later SET wrote the same objects on the
	// engine, so there is nothing left to put back.
	ReconcileSuperseded ReconcileState = 3
	// ReconcileImpossible: the engine did not say what it held before
	// the SET (an engine of an older version, or a value too large to
	// report), so it cannot be put back.
	ReconcileImpossible ReconcileState = 4
)

func (s ReconcileState) String() string {
	switch s {
	case ReconcilePending:
		return "pending"
	case ReconcileDone:
		return "reconciled"
	case ReconcileSuperseded:
		return "superseded"
	case ReconcileImpossible:
		return "impossible"
	}
	return fmt.Sprintf("ReconcileState(%d)", uint8(s))
}

// Valid reports whether s is a known state.
func (s ReconcileState) Valid() bool { return s >= ReconcilePending && s <= ReconcileImpossible }

// State is what the active manager replicates.
type State struct {
	Node          uint32
	Incarnation   uint64
	Term          uint64
	Seq           uint64
	Flags         Flags
	Discontinuity int64
	NextReconcile uint32
	Sums          []Sum
	Reconciles    []Reconcile
	Journal       []Entry
}

// Sum is one OID's counter sum: every engine that reported it.
type Sum struct {
	OID     smi.OID
	Engines []Count
}

// Count is what a sum keeps of one engine: its last value in the
// incarnation it was read from, and an offset (the restarts absorbed so
// far, less what it had counted when it joined the sum), so that the
// engine's share of the sum is Offset+Last modulo 2^64.
type Count struct {
	Engine       uint32
	Incarnation  uint64
	Last, Offset uint64
}

// Reconcile is one engine an undoFailed SET may have left holding the
// SET's values.
type Reconcile struct {
	ID          uint32
	Engine      uint32
	Incarnation uint64 // the engine's when it answered TEST
	State       ReconcileState
	Attempts    uint32
	Created     int64
	Resolved    int64
	Before      []smi.VarBind // the engine's values before the SET
}

// Entry is one notification of the journal: made by the active manager,
// and Sent once it went out.
type Entry struct {
	Kind     uint8  // what it is about (mib.NotifyKind)
	Subject  uint32 // e.g. the engine
	Instance uint64 // e.g. the engine's incarnation
	At       int64
	Sent     bool
	TrapOID  smi.OID
	VarBinds []smi.VarBind
}

// SumLen is the encoded size of one sum.
func SumLen(s *Sum) int { return 1 + 4*len(s.OID) + 2 + CountLen*len(s.Engines) }

// ReconcileLen is the encoded size of one reconciliation.
func ReconcileLen(r *Reconcile) (int, error) {
	n, err := ber.VarBindsLen(r.Before)
	return 4 + 4 + 8 + 1 + 4 + 8 + 8 + 4 + n, err
}

// EntryLen is the encoded size of one journal entry.
func EntryLen(e *Entry) (int, error) {
	n, err := ber.VarBindsLen(e.VarBinds)
	return 1 + 4 + 8 + 8 + 1 + 1 + 4*len(e.TrapOID) + 4 + n, err
}

// Len is the encoded size of s.
func Len(s *State) (int, error) {
	n := HeaderLen + 2 + 2 + 2
	for i := range s.Sums {
		n += SumLen(&s.Sums[i])
	}
	for i := range s.Reconciles {
		l, err := ReconcileLen(&s.Reconciles[i])
		if err != nil {
			return 0, fmt.Errorf("reconcile %d: %w", i+1, err)
		}
		n += l
	}
	for i := range s.Journal {
		l, err := EntryLen(&s.Journal[i])
		if err != nil {
			return 0, fmt.Errorf("journal entry %d: %w", i+1, err)
		}
		n += l
	}
	return n, nil
}

func checkOID(what string, o smi.OID) error {
	if len(o) == 0 || len(o) > smi.MaxSubIDs {
		return fmt.Errorf("%w: %s has %d sub-identifiers, want 1..%d", ErrMalformed, what, len(o), smi.MaxSubIDs)
	}
	return nil
}

// Append appends the encoding of s to b. It refuses what Parse would
// refuse: a zero node, unknown flags or states, counts over their caps, a
// state over MaxState.
func Append(b []byte, s *State) ([]byte, error) {
	if s.Node == 0 {
		return b, fmt.Errorf("%w: node 0", ErrMalformed)
	}
	if s.Flags&^knownFlags != 0 {
		return b, fmt.Errorf("%w: flags 0x%02x", ErrMalformed, uint8(s.Flags))
	}
	if len(s.Sums) > MaxSums || len(s.Reconciles) > MaxReconciles || len(s.Journal) > MaxJournal {
		return b, fmt.Errorf("%w: %d sums (at most %d), %d reconciles (%d), %d journal entries (%d)",
			ErrTooMany, len(s.Sums), MaxSums, len(s.Reconciles), MaxReconciles, len(s.Journal), MaxJournal)
	}
	n, err := Len(s)
	if err != nil {
		return b, err
	}
	if n > MaxState {
		return b, fmt.Errorf("%w: state of %d bytes, at most %d", ErrTooMany, n, MaxState)
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, Magic)
	b = append(b, Version, byte(s.Flags))
	b = binary.BigEndian.AppendUint32(b, s.Node)
	b = binary.BigEndian.AppendUint64(b, s.Incarnation)
	b = binary.BigEndian.AppendUint64(b, s.Term)
	b = binary.BigEndian.AppendUint64(b, s.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Discontinuity))
	b = binary.BigEndian.AppendUint32(b, s.NextReconcile)
	b = binary.BigEndian.AppendUint32(b, 0)

	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Sums)))
	for i := range s.Sums {
		sum := &s.Sums[i]
		if err := checkOID(fmt.Sprintf("sum %d", i+1), sum.OID); err != nil {
			return b[:start], err
		}
		if len(sum.Engines) > MaxSumEngines {
			return b[:start], fmt.Errorf("%w: sum %d has %d engines, at most %d", ErrTooMany, i+1, len(sum.Engines), MaxSumEngines)
		}
		b = appendOID(b, sum.OID)
		b = binary.BigEndian.AppendUint16(b, uint16(len(sum.Engines)))
		for _, c := range sum.Engines {
			b = binary.BigEndian.AppendUint32(b, c.Engine)
			b = binary.BigEndian.AppendUint64(b, c.Incarnation)
			b = binary.BigEndian.AppendUint64(b, c.Last)
			b = binary.BigEndian.AppendUint64(b, c.Offset)
		}
	}

	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Reconciles)))
	for i := range s.Reconciles {
		r := &s.Reconciles[i]
		if !r.State.Valid() {
			return b[:start], fmt.Errorf("%w: reconcile %d: state %d", ErrMalformed, i+1, r.State)
		}
		b = binary.BigEndian.AppendUint32(b, r.ID)
		b = binary.BigEndian.AppendUint32(b, r.Engine)
		b = binary.BigEndian.AppendUint64(b, r.Incarnation)
		b = append(b, byte(r.State))
		b = binary.BigEndian.AppendUint32(b, r.Attempts)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Created))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Resolved))
		if b, err = appendVarBinds(b, r.Before); err != nil {
			return b[:start], fmt.Errorf("reconcile %d: %w", i+1, err)
		}
	}

	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Journal)))
	for i := range s.Journal {
		e := &s.Journal[i]
		if err := checkOID(fmt.Sprintf("journal entry %d", i+1), e.TrapOID); err != nil {
			return b[:start], err
		}
		b = append(b, e.Kind)
		b = binary.BigEndian.AppendUint32(b, e.Subject)
		b = binary.BigEndian.AppendUint64(b, e.Instance)
		b = binary.BigEndian.AppendUint64(b, uint64(e.At))
		sent := byte(0)
		if e.Sent {
			sent = 1
		}
		b = append(b, sent)
		b = appendOID(b, e.TrapOID)
		if b, err = appendVarBinds(b, e.VarBinds); err != nil {
			return b[:start], fmt.Errorf("journal entry %d: %w", i+1, err)
		}
	}
	return b, nil
}

func appendOID(b []byte, o smi.OID) []byte {
	b = append(b, byte(len(o)))
	for _, v := range o {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// appendVarBinds appends a length-prefixed VarBindList.
func appendVarBinds(b []byte, vbs []smi.VarBind) ([]byte, error) {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := ber.AppendVarBinds(b, vbs)
	if err != nil {
		return b[:at], err
	}
	n := len(b) - at - 4
	if n > MaxVarBindBytes {
		return b[:at], fmt.Errorf("%w: varbinds of %d bytes, at most %d", ErrTooMany, n, MaxVarBindBytes)
	}
	binary.BigEndian.PutUint32(b[at:], uint32(n))
	return b, nil
}

// reader walks a state's bytes; every read checks what is left.
type reader struct {
	b   []byte
	off int
}

func (r *reader) need(n int, what string) error {
	if len(r.b)-r.off < n {
		return fmt.Errorf("%w: %s at byte %d: %d of %d bytes", ErrTruncated, what, r.off, len(r.b)-r.off, n)
	}
	return nil
}

func (r *reader) u8() byte {
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) u16() uint16 {
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v
}

func (r *reader) u32() uint32 {
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *reader) u64() uint64 {
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

// count reads a 2-byte count, at most max, each item at least min bytes.
func (r *reader) count(what string, max, min int) (int, error) {
	if err := r.need(2, what+" count"); err != nil {
		return 0, err
	}
	n := int(r.u16())
	if n > max {
		return 0, fmt.Errorf("%w: %d %s, at most %d", ErrTooMany, n, what, max)
	}
	if err := r.need(n*min, what); err != nil {
		return 0, err
	}
	return n, nil
}

func (r *reader) oid(what string) (smi.OID, error) {
	if err := r.need(1, what+" length"); err != nil {
		return nil, err
	}
	n := int(r.u8())
	if n == 0 || n > smi.MaxSubIDs {
		return nil, fmt.Errorf("%w: %s has %d sub-identifiers, want 1..%d", ErrMalformed, what, n, smi.MaxSubIDs)
	}
	if err := r.need(4*n, what); err != nil {
		return nil, err
	}
	o := make(smi.OID, n)
	for i := range o {
		o[i] = r.u32()
	}
	return o, nil
}

func (r *reader) varBinds(what string) ([]smi.VarBind, error) {
	if err := r.need(4, what+" length"); err != nil {
		return nil, err
	}
	n := int(r.u32())
	if n > MaxVarBindBytes {
		return nil, fmt.Errorf("%w: %s of %d bytes, at most %d", ErrTooMany, what, n, MaxVarBindBytes)
	}
	if err := r.need(n, what); err != nil {
		return nil, err
	}
	vbs, err := ber.DecodeVarBinds(r.b[r.off:r.off+n], 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	r.off += n
	return vbs, nil
}

// Parse decodes a state that fills b exactly.
func Parse(b []byte) (*State, error) {
	if len(b) > MaxState {
		return nil, fmt.Errorf("%w: state of %d bytes, at most %d", ErrTooMany, len(b), MaxState)
	}
	r := &reader{b: b}
	if err := r.need(3, "magic and version"); err != nil {
		return nil, err
	}
	if m := r.u16(); m != Magic {
		return nil, fmt.Errorf("%w: magic 0x%04x", ErrMalformed, m)
	}
	if v := r.u8(); v != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	if err := r.need(HeaderLen-3, "header"); err != nil {
		return nil, err
	}
	s := &State{Flags: Flags(r.u8())}
	if s.Flags&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: flags 0x%02x", ErrMalformed, uint8(s.Flags))
	}
	s.Node = r.u32()
	if s.Node == 0 {
		return nil, fmt.Errorf("%w: node 0", ErrMalformed)
	}
	s.Incarnation, s.Term, s.Seq = r.u64(), r.u64(), r.u64()
	s.Discontinuity = int64(r.u64())
	s.NextReconcile = r.u32()
	if res := r.u32(); res != 0 {
		return nil, fmt.Errorf("%w: reserved 0x%08x", ErrMalformed, res)
	}

	n, err := r.count("sums", MaxSums, 1+4+2)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.Sums = make([]Sum, n)
	}
	for i := range s.Sums {
		what := fmt.Sprintf("sum %d", i+1)
		o, err := r.oid(what + " OID")
		if err != nil {
			return nil, err
		}
		m, err := r.count(what+" engines", MaxSumEngines, CountLen)
		if err != nil {
			return nil, err
		}
		sum := Sum{OID: o, Engines: make([]Count, m)}
		for j := range sum.Engines {
			sum.Engines[j] = Count{Engine: r.u32(), Incarnation: r.u64(), Last: r.u64(), Offset: r.u64()}
		}
		s.Sums[i] = sum
	}

	const reconcileMin = 4 + 4 + 8 + 1 + 4 + 8 + 8 + 4
	if n, err = r.count("reconciles", MaxReconciles, reconcileMin); err != nil {
		return nil, err
	}
	if n > 0 {
		s.Reconciles = make([]Reconcile, n)
	}
	for i := range s.Reconciles {
		what := fmt.Sprintf("reconcile %d", i+1)
		if err := r.need(reconcileMin-4, what); err != nil {
			return nil, err
		}
		rc := Reconcile{ID: r.u32(), Engine: r.u32(), Incarnation: r.u64(), State: ReconcileState(r.u8()),
			Attempts: r.u32(), Created: int64(r.u64()), Resolved: int64(r.u64())}
		if !rc.State.Valid() {
			return nil, fmt.Errorf("%w: %s: state %d", ErrMalformed, what, rc.State)
		}
		if rc.Before, err = r.varBinds(what + " varbinds"); err != nil {
			return nil, err
		}
		s.Reconciles[i] = rc
	}

	const entryMin = 1 + 4 + 8 + 8 + 1 + 1 + 4
	if n, err = r.count("journal entries", MaxJournal, entryMin); err != nil {
		return nil, err
	}
	if n > 0 {
		s.Journal = make([]Entry, n)
	}
	for i := range s.Journal {
		what := fmt.Sprintf("journal entry %d", i+1)
		if err := r.need(1+4+8+8+1, what); err != nil {
			return nil, err
		}
		e := Entry{Kind: r.u8(), Subject: r.u32(), Instance: r.u64(), At: int64(r.u64())}
		switch sent := r.u8(); sent {
		case 0:
		case 1:
			e.Sent = true
		default:
			return nil, fmt.Errorf("%w: %s: sent %d", ErrMalformed, what, sent)
		}
		if e.TrapOID, err = r.oid(what + " trap OID"); err != nil {
			return nil, err
		}
		if e.VarBinds, err = r.varBinds(what + " varbinds"); err != nil {
			return nil, err
		}
		s.Journal[i] = e
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the state", ErrMalformed, len(b)-r.off)
	}
	return s, nil
}
