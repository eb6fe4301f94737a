package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/smsnmpd/smsnmpd/internal/cursor"
)

// Version is the protocol version this package speaks.
const Version = 1

// Bounds. Every count read off the wire is checked against one of these
// before anything is allocated.
const (
	PrefixLen   = 4
	LocationLen = 16
	// MaxKey is the longest key the wire carries. The directory's own cap
	// (configurable, default 1024) is at most this.
	MaxKey = 4096
	// MaxGroups caps the groups of one UPDATE.
	MaxGroups = 4096
	// MaxOps caps the operations of one group (the field is 16 bits).
	MaxOps = 65535
	// MaxSources caps the source table of one SNAPSHOT_CHUNK.
	MaxSources = 65535
	// MaxOrigins caps the origin table of one SNAPSHOT_CHUNK.
	MaxOrigins = 65535
	// MaxRecords caps the records of one SNAPSHOT_CHUNK.
	MaxRecords = 1 << 20

	groupHeaderLen = LocationLen + 8 + 1 + 2
	opHeaderLen    = 1 + 8 + 2
	opAddTail      = 16
	sourceLen      = LocationLen + 8 + 8
	originLen      = LocationLen + 8
	recordHeadLen  = 4 + 2 + 8 + 1 + 2
	snapReqLen     = PrefixLen + 12
)

// Errors. Every decoding error wraps ErrMalformed.
var (
	ErrMalformed = errors.New("directory/wire: malformed message")
	ErrTruncated = fmt.Errorf("%w: truncated", ErrMalformed)
	ErrVersion   = fmt.Errorf("%w: unsupported version", ErrMalformed)
	ErrType      = fmt.Errorf("%w: unexpected type", ErrMalformed)
	ErrTrailing  = fmt.Errorf("%w: trailing bytes", ErrMalformed)
	ErrCount     = fmt.Errorf("%w: count over its cap", ErrMalformed)
	ErrFlags     = fmt.Errorf("%w: undefined flag bits", ErrMalformed)
	ErrKey       = fmt.Errorf("%w: bad key", ErrMalformed)
	ErrOpKind    = fmt.Errorf("%w: unknown operation", ErrMalformed)
	ErrIndex     = fmt.Errorf("%w: origin index out of range", ErrMalformed)
	ErrResult    = fmt.Errorf("%w: unknown verdict result", ErrMalformed)
)

// Type is a message type. Append-only: it is on the wire.
type Type uint8

// Message types.
const (
	TypeUpdate          Type = 1
	TypeSnapshotRequest Type = 2
	TypeSnapshotChunk   Type = 3
	TypeResync          Type = 4
	TypeSync            Type = 5
	TypeLookup          Type = 6
	TypeLookupAnswer    Type = 7
	TypeVerdict         Type = 8
	TypeDigest          Type = 9
)

func (t Type) String() string {
	switch t {
	case TypeUpdate:
		return "UPDATE"
	case TypeSnapshotRequest:
		return "SNAPSHOT_REQUEST"
	case TypeSnapshotChunk:
		return "SNAPSHOT_CHUNK"
	case TypeResync:
		return "RESYNC"
	case TypeSync:
		return "SYNC"
	case TypeLookup:
		return "LOOKUP"
	case TypeLookupAnswer:
		return "LOOKUP_ANSWER"
	case TypeVerdict:
		return "VERDICT"
	case TypeDigest:
		return "DIGEST"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// OpKind is an update operation. Append-only: it is on the wire.
type OpKind uint8

// Operations.
const (
	OpAdd    OpKind = 1 // add or replace an entry
	OpRemove OpKind = 2 // remove it (a tombstone)
)

func (k OpKind) String() string {
	switch k {
	case OpAdd:
		return "add"
	case OpRemove:
		return "remove"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// GroupFlags mark a group's place in a re-announcement.
type GroupFlags uint8

// Group flags. Append-only.
const (
	// SyncBegin: the first group of a re-announcement (an SE that
	// started, or answers RESYNC).
	SyncBegin GroupFlags = 0x01
	// SyncEnd: the re-announcement is complete; entries of this origin's
	// older incarnations that it did not re-announce can go.
	SyncEnd  GroupFlags = 0x02
	groupDef            = SyncBegin | SyncEnd
)

// Location places an entry in the tree. Zero fields below a unit make it a
// summary ("somewhere in this unit").
type Location struct {
	CDN        uint32 `json:"cdn"`
	DataCenter uint32 `json:"data_center"`
	Farm       uint32 `json:"farm"`
	Engine     uint32 `json:"engine"`
}

func (l Location) String() string {
	return fmt.Sprintf("%d/%d/%d/%d", l.CDN, l.DataCenter, l.Farm, l.Engine)
}

// Op is one operation of an update.
type Op struct {
	Kind   OpKind
	Seq    uint64 // per (origin, incarnation), grows with every operation
	Key    string
	Size   uint64 // add only
	Expiry uint64 // add only: Unix milliseconds, 0 = never
}

// Len is the encoded length of o.
func (o *Op) Len() int {
	n := opHeaderLen + len(o.Key)
	if o.Kind == OpAdd {
		n += opAddTail
	}
	return n
}

// Group is the operations of one origin.
type Group struct {
	Origin      Location
	Incarnation uint64
	Flags       GroupFlags
	Ops         []Op
}

// GroupOverhead is the encoded length of a group without its operations.
const GroupOverhead = groupHeaderLen

// Update is an UPDATE message.
type Update struct {
	Level  uint8
	Groups []Group
}

// UpdateOverhead is the encoded length of an UPDATE without its groups.
const UpdateOverhead = PrefixLen + 2

// SnapshotRequest asks a donor for the records after a cursor.
type SnapshotRequest struct {
	Donor    uint32
	After    uint32
	MaxBytes uint32
}

// Source is what a snapshot says of one origin.
type Source struct {
	Origin      Location
	Incarnation uint64 // highest seen
	Synced      uint64 // highest incarnation whose re-announcement completed
}

// Record is one directory record in a snapshot.
type Record struct {
	ID          uint32
	Origin      Location
	Incarnation uint64
	Seq         uint64
	Removed     bool
	Key         string
	Size        uint64 // live records only
	Expiry      uint64 // live records only
}

// SnapshotChunk is one bounded part of a full directory.
type SnapshotChunk struct {
	Last    bool
	Next    uint32
	Sources []Source
	Records []Record
}

// SnapshotChunkOverhead is the encoded length of an empty chunk.
const SnapshotChunkOverhead = PrefixLen + 4 + 2 + 2 + 4

// RecordLen is the encoded length of r, not counting its origin's entry in
// the origin table (OriginLen).
func RecordLen(r *Record) int {
	n := recordHeadLen + len(r.Key)
	if !r.Removed {
		n += opAddTail
	}
	return n
}

// OriginLen is what one new origin adds to a chunk.
const OriginLen = originLen

// SourceLen is what one source adds to a chunk.
const SourceLen = sourceLen

// Peek returns the type of a message after checking its version.
func Peek(b []byte) (Type, error) {
	if len(b) < PrefixLen {
		return 0, ErrTruncated
	}
	if b[0] != Version {
		return 0, fmt.Errorf("%w %d", ErrVersion, b[0])
	}
	return Type(b[1]), nil
}

// reader is the shared bounds-checked cursor, with the directory's own
// reads; the first short read sticks.
type reader struct{ cursor.Reader }

// newReader reads b; a short read fails with ErrTruncated.
func newReader(b []byte) reader {
	return reader{cursor.Reader{B: b, Short: ErrTruncated}}
}

func (r *reader) loc() Location {
	return Location{r.U32(), r.U32(), r.U32(), r.U32()}
}

func (r *reader) key() string {
	n := int(r.U16())
	if r.Err != nil {
		return ""
	}
	if n == 0 || n > MaxKey {
		r.Err = fmt.Errorf("%w: length %d outside 1..%d", ErrKey, n, MaxKey)
		return ""
	}
	v := r.Take(n)
	if r.Err != nil {
		return ""
	}
	if !utf8.Valid(v) {
		r.Err = fmt.Errorf("%w: not UTF-8", ErrKey)
		return ""
	}
	return string(v)
}

// count reads a count and checks it against a cap and against the bytes
// left (each item takes at least minLen), so a lying count allocates
// nothing.
func (r *reader) count(n, limit, minLen int, what string) int {
	if r.Err != nil {
		return 0
	}
	if n > limit {
		r.Err = fmt.Errorf("%w: %d %s > %d", ErrCount, n, what, limit)
		return 0
	}
	if n*minLen > len(r.B) {
		r.Err = ErrTruncated
		return 0
	}
	return n
}

func (r *reader) prefix(want Type, flagMask uint8) (level, flags uint8) {
	p := r.Take(PrefixLen)
	if r.Err != nil {
		return 0, 0
	}
	if p[0] != Version {
		r.Err = fmt.Errorf("%w %d", ErrVersion, p[0])
		return 0, 0
	}
	if Type(p[1]) != want {
		r.Err = fmt.Errorf("%w: %v, want %v", ErrType, Type(p[1]), want)
		return 0, 0
	}
	if want != TypeUpdate && want != TypeSync && want != TypeVerdict && want != TypeDigest && p[2] != 0 {
		r.Err = fmt.Errorf("%w: level %d on %v", ErrFlags, p[2], want)
		return 0, 0
	}
	if p[3]&^flagMask != 0 {
		r.Err = fmt.Errorf("%w: 0x%02x", ErrFlags, p[3])
		return 0, 0
	}
	return p[2], p[3]
}

func (r *reader) end() error {
	if r.Err == nil && len(r.B) != 0 {
		return fmt.Errorf("%w: %d", ErrTrailing, len(r.B))
	}
	return r.Err
}

func appendLoc(b []byte, l Location) []byte {
	b = binary.BigEndian.AppendUint32(b, l.CDN)
	b = binary.BigEndian.AppendUint32(b, l.DataCenter)
	b = binary.BigEndian.AppendUint32(b, l.Farm)
	return binary.BigEndian.AppendUint32(b, l.Engine)
}

func checkKey(k string) error {
	if len(k) == 0 || len(k) > MaxKey {
		return fmt.Errorf("%w: length %d outside 1..%d", ErrKey, len(k), MaxKey)
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("%w: not UTF-8", ErrKey)
	}
	return nil
}

func appendKey(b []byte, k string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
	return append(b, k...)
}

// ParseUpdate decodes an UPDATE. Keys are copied, so b may be reused.
func ParseUpdate(b []byte) (Update, error) {
	r := newReader(b)
	level, _ := r.prefix(TypeUpdate, 0)
	u := Update{Level: level}
	ng := r.count(int(r.U16()), MaxGroups, groupHeaderLen, "groups")
	if ng > 0 {
		u.Groups = make([]Group, 0, ng)
	}
	for range ng {
		g := Group{Origin: r.loc(), Incarnation: r.U64(), Flags: GroupFlags(r.U8())}
		if r.Err == nil && g.Flags&^groupDef != 0 {
			r.Err = fmt.Errorf("%w: group 0x%02x", ErrFlags, uint8(g.Flags))
		}
		no := r.count(int(r.U16()), MaxOps, opHeaderLen+1, "operations")
		if no > 0 {
			g.Ops = make([]Op, 0, no)
		}
		for range no {
			op := Op{Kind: OpKind(r.U8()), Seq: r.U64(), Key: r.key()}
			switch op.Kind {
			case OpAdd:
				op.Size, op.Expiry = r.U64(), r.U64()
			case OpRemove:
			default:
				if r.Err == nil {
					r.Err = fmt.Errorf("%w: %d", ErrOpKind, uint8(op.Kind))
				}
			}
			if r.Err != nil {
				return Update{}, r.Err
			}
			g.Ops = append(g.Ops, op)
		}
		if r.Err != nil {
			return Update{}, r.Err
		}
		u.Groups = append(u.Groups, g)
	}
	if err := r.end(); err != nil {
		return Update{}, err
	}
	return u, nil
}

// AppendUpdate appends the encoding of u to b. It refuses what the
// decoder would refuse.
func AppendUpdate(b []byte, u *Update) ([]byte, error) {
	if len(u.Groups) > MaxGroups {
		return b, fmt.Errorf("%w: %d groups", ErrCount, len(u.Groups))
	}
	b = append(b, Version, byte(TypeUpdate), u.Level, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(u.Groups)))
	for i := range u.Groups {
		g := &u.Groups[i]
		if len(g.Ops) > MaxOps {
			return b, fmt.Errorf("%w: %d operations", ErrCount, len(g.Ops))
		}
		if g.Flags&^groupDef != 0 {
			return b, fmt.Errorf("%w: group 0x%02x", ErrFlags, uint8(g.Flags))
		}
		b = appendLoc(b, g.Origin)
		b = binary.BigEndian.AppendUint64(b, g.Incarnation)
		b = append(b, byte(g.Flags))
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.Ops)))
		for j := range g.Ops {
			op := &g.Ops[j]
			if op.Kind != OpAdd && op.Kind != OpRemove {
				return b, fmt.Errorf("%w: %d", ErrOpKind, uint8(op.Kind))
			}
			if err := checkKey(op.Key); err != nil {
				return b, err
			}
			b = append(b, byte(op.Kind))
			b = binary.BigEndian.AppendUint64(b, op.Seq)
			b = appendKey(b, op.Key)
			if op.Kind == OpAdd {
				b = binary.BigEndian.AppendUint64(b, op.Size)
				b = binary.BigEndian.AppendUint64(b, op.Expiry)
			}
		}
	}
	return b, nil
}

// ParseSnapshotRequest decodes a SNAPSHOT_REQUEST.
func ParseSnapshotRequest(b []byte) (SnapshotRequest, error) {
	r := newReader(b)
	r.prefix(TypeSnapshotRequest, 0)
	q := SnapshotRequest{Donor: r.U32(), After: r.U32(), MaxBytes: r.U32()}
	if err := r.end(); err != nil {
		return SnapshotRequest{}, err
	}
	return q, nil
}

// AppendSnapshotRequest appends the encoding of q to b.
func AppendSnapshotRequest(b []byte, q *SnapshotRequest) []byte {
	b = append(b, Version, byte(TypeSnapshotRequest), 0, 0)
	b = binary.BigEndian.AppendUint32(b, q.Donor)
	b = binary.BigEndian.AppendUint32(b, q.After)
	return binary.BigEndian.AppendUint32(b, q.MaxBytes)
}

// AppendResync appends a RESYNC message to b.
func AppendResync(b []byte) []byte {
	return append(b, Version, byte(TypeResync), 0, 0)
}

// ParseResync checks a RESYNC message.
func ParseResync(b []byte) error {
	r := newReader(b)
	r.prefix(TypeResync, 0)
	return r.end()
}

const (
	chunkLast  = 0x01
	recRemoved = 0x01
)

type originKey struct {
	loc Location
	inc uint64
}

// ParseSnapshotChunk decodes a SNAPSHOT_CHUNK. Keys are copied.
func ParseSnapshotChunk(b []byte) (SnapshotChunk, error) {
	r := newReader(b)
	_, flags := r.prefix(TypeSnapshotChunk, chunkLast)
	c := SnapshotChunk{Last: flags&chunkLast != 0, Next: r.U32()}
	ns := r.count(int(r.U16()), MaxSources, sourceLen, "sources")
	if ns > 0 {
		c.Sources = make([]Source, 0, ns)
	}
	for range ns {
		c.Sources = append(c.Sources, Source{Origin: r.loc(), Incarnation: r.U64(), Synced: r.U64()})
	}
	no := r.count(int(r.U16()), MaxOrigins, originLen, "origins")
	var origins []originKey
	if no > 0 {
		origins = make([]originKey, 0, no)
	}
	for range no {
		origins = append(origins, originKey{r.loc(), r.U64()})
	}
	nr := r.count(int(r.U32()), MaxRecords, recordHeadLen+1, "records")
	if nr > 0 {
		c.Records = make([]Record, 0, nr)
	}
	for range nr {
		id, oi, seq, fl := r.U32(), int(r.U16()), r.U64(), r.U8()
		key := r.key()
		if r.Err != nil {
			return SnapshotChunk{}, r.Err
		}
		if oi >= len(origins) {
			return SnapshotChunk{}, fmt.Errorf("%w: %d of %d", ErrIndex, oi, len(origins))
		}
		if fl&^recRemoved != 0 {
			return SnapshotChunk{}, fmt.Errorf("%w: record 0x%02x", ErrFlags, fl)
		}
		rec := Record{ID: id, Origin: origins[oi].loc, Incarnation: origins[oi].inc, Seq: seq,
			Removed: fl&recRemoved != 0, Key: key}
		if !rec.Removed {
			rec.Size, rec.Expiry = r.U64(), r.U64()
		}
		c.Records = append(c.Records, rec)
	}
	if err := r.end(); err != nil {
		return SnapshotChunk{}, err
	}
	// Canonical form: the origin table lists exactly the origins used, in
	// order of first use, once each (what AppendSnapshotChunk writes).
	if err := checkOrigins(origins, c.Records); err != nil {
		return SnapshotChunk{}, err
	}
	return c, nil
}

func checkOrigins(origins []originKey, recs []Record) error {
	next := 0
	seen := make(map[originKey]int, len(origins))
	for i := range recs {
		k := originKey{recs[i].Origin, recs[i].Incarnation}
		if _, ok := seen[k]; ok {
			continue
		}
		if next >= len(origins) || origins[next] != k {
			return fmt.Errorf("%w: origin table not in order of first use", ErrIndex)
		}
		seen[k] = next
		next++
	}
	if next != len(origins) {
		return fmt.Errorf("%w: %d unused origins", ErrIndex, len(origins)-next)
	}
	return nil
}

// AppendSnapshotChunk appends the encoding of c to b, building the origin
// table from the records.
func AppendSnapshotChunk(b []byte, c *SnapshotChunk) ([]byte, error) {
	if len(c.Sources) > MaxSources {
		return b, fmt.Errorf("%w: %d sources", ErrCount, len(c.Sources))
	}
	if len(c.Records) > MaxRecords {
		return b, fmt.Errorf("%w: %d records", ErrCount, len(c.Records))
	}
	idx := make(map[originKey]int)
	var origins []originKey
	for i := range c.Records {
		k := originKey{c.Records[i].Origin, c.Records[i].Incarnation}
		if _, ok := idx[k]; !ok {
			idx[k] = len(origins)
			origins = append(origins, k)
		}
	}
	if len(origins) > MaxOrigins {
		return b, fmt.Errorf("%w: %d origins", ErrCount, len(origins))
	}
	var fl byte
	if c.Last {
		fl = chunkLast
	}
	b = append(b, Version, byte(TypeSnapshotChunk), 0, fl)
	b = binary.BigEndian.AppendUint32(b, c.Next)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Sources)))
	for _, s := range c.Sources {
		b = appendLoc(b, s.Origin)
		b = binary.BigEndian.AppendUint64(b, s.Incarnation)
		b = binary.BigEndian.AppendUint64(b, s.Synced)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(origins)))
	for _, o := range origins {
		b = appendLoc(b, o.loc)
		b = binary.BigEndian.AppendUint64(b, o.inc)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Records)))
	for i := range c.Records {
		rec := &c.Records[i]
		if err := checkKey(rec.Key); err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint32(b, rec.ID)
		b = binary.BigEndian.AppendUint16(b, uint16(idx[originKey{rec.Origin, rec.Incarnation}]))
		b = binary.BigEndian.AppendUint64(b, rec.Seq)
		if rec.Removed {
			b = append(b, recRemoved)
		} else {
			b = append(b, 0)
		}
		b = appendKey(b, rec.Key)
		if !rec.Removed {
			b = binary.BigEndian.AppendUint64(b, rec.Size)
			b = binary.BigEndian.AppendUint64(b, rec.Expiry)
		}
	}
	return b, nil
}
