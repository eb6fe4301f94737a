package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Lookup caps. A lookup answer is small by construction: the resolver
// returns at most its MaxHits concrete hits and a path of at most
// MaxSteps nodes; the caps bound what a peer may claim.
const (
	// MaxHits caps the hits (and, separately, the unresolved summaries)
	// of one LOOKUP_ANSWER.
	MaxHits = 1024
	// MaxSteps caps the path of one LOOKUP_ANSWER (a tree of four levels
	// needs far fewer; the resolver's loop guard is 64).
	MaxSteps = 255
	// MaxErrorText caps an error string carried in an answer or a step.
	MaxErrorText = 512

	lookupFixedLen = PrefixLen + 8 + 4 + 4 + 1 + LocationLen + 2
	answerFixedLen = PrefixLen + 8 + 4 + 2 + 2 + 2 + 1
	hitLen         = 4 + LocationLen + 8 + 8 + 8 + 8 + 8 + 1 + 1
	stepMinLen     = 4 + 1 + LocationLen + 1 + 2 + 2 + 2
)

// Lookup flags. Append-only.
const (
	// LookupDown: resolve within the answering node's unit only (a
	// parent resolving a summary hit downward); never climb.
	LookupDown = 0x01
	// AnswerFailed: the answering node could not resolve the query;
	// Error says why (hits and path may still be partial).
	AnswerFailed = 0x01
)

// Via says how a step of a lookup path was reached. Append-only.
type Via uint8

// Path step kinds.
const (
	ViaSelf   Via = 1 // the node first asked
	ViaParent Via = 2 // climbed to: a miss below
	ViaChild  Via = 3 // resolving a summary hit downward
)

func (v Via) String() string {
	switch v {
	case ViaSelf:
		return "self"
	case ViaParent:
		return "parent"
	case ViaChild:
		return "child"
	}
	return fmt.Sprintf("Via(%d)", uint8(v))
}

// ParseVia is the inverse of Via.String for the known kinds.
func ParseVia(s string) Via {
	switch s {
	case "self":
		return ViaSelf
	case "parent":
		return ViaParent
	case "child":
		return ViaChild
	}
	return 0
}

// LookupQuery (LOOKUP) asks another level for the locations of a key: a
// child manager asks its parent's managers (sent up; the answer comes
// down, addressed by Asker and ID), a parent asks a child unit's manager
// (an rmtp request; the answer is the reply).
type LookupQuery struct {
	ID     uint64   // chosen by the asker; echoed in the answer
	Asker  uint32   // node id of the asking manager
	Budget uint32   // milliseconds the asker waits; the answerer stays inside it
	Steps  uint8    // path steps already taken (loop guard)
	Down   bool     // resolve within the answerer's unit only
	From   Location // the location hops are counted from
	Key    string
}

// LookupHit is one location of a key.
type LookupHit struct {
	ID          uint32
	Location    Location
	Size        uint64
	Incarnation uint64
	Seq         uint64
	Expiry      uint64 // Unix milliseconds, 0 = never
	Stored      uint64 // Unix milliseconds
	Down        bool
	Hops        uint8
}

// LookupStep is one node asked while resolving.
type LookupStep struct {
	Node      uint32
	Level     uint8
	Unit      Location
	Via       Via
	Hits      uint16
	Summaries uint16
	Error     string
}

// LookupAnswer (LOOKUP_ANSWER) is the resolution of one LookupQuery.
type LookupAnswer struct {
	ID         uint64
	Asker      uint32
	Failed     bool
	Error      string
	Hits       []LookupHit
	Unresolved []LookupHit
	Path       []LookupStep
}

// AppendLookupQuery appends the encoding of q.
func AppendLookupQuery(b []byte, q *LookupQuery) ([]byte, error) {
	if err := checkKey(q.Key); err != nil {
		return b, err
	}
	var fl byte
	if q.Down {
		fl = LookupDown
	}
	b = append(b, Version, byte(TypeLookup), 0, fl)
	b = binary.BigEndian.AppendUint64(b, q.ID)
	b = binary.BigEndian.AppendUint32(b, q.Asker)
	b = binary.BigEndian.AppendUint32(b, q.Budget)
	b = append(b, q.Steps)
	b = appendLoc(b, q.From)
	return appendKey(b, q.Key), nil
}

// ParseLookupQuery decodes a LOOKUP.
func ParseLookupQuery(b []byte) (LookupQuery, error) {
	r := newReader(b)
	_, fl := r.prefix(TypeLookup, LookupDown)
	q := LookupQuery{Down: fl&LookupDown != 0, ID: r.U64(), Asker: r.U32(), Budget: r.U32(), Steps: r.U8(), From: r.loc()}
	q.Key = r.key()
	if err := r.end(); err != nil {
		return LookupQuery{}, err
	}
	return q, nil
}

// AppendLookupAnswer appends the encoding of a. Strings longer than
// MaxErrorText are cut (at a rune boundary): they are diagnostics.
func AppendLookupAnswer(b []byte, a *LookupAnswer) ([]byte, error) {
	if len(a.Hits) > MaxHits || len(a.Unresolved) > MaxHits {
		return b, fmt.Errorf("%w: %d hits, %d unresolved > %d", ErrCount, len(a.Hits), len(a.Unresolved), MaxHits)
	}
	if len(a.Path) > MaxSteps {
		return b, fmt.Errorf("%w: %d steps > %d", ErrCount, len(a.Path), MaxSteps)
	}
	var fl byte
	if a.Failed {
		fl = AnswerFailed
	}
	b = append(b, Version, byte(TypeLookupAnswer), 0, fl)
	b = binary.BigEndian.AppendUint64(b, a.ID)
	b = binary.BigEndian.AppendUint32(b, a.Asker)
	b = appendText(b, a.Error)
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Hits)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Unresolved)))
	b = append(b, uint8(len(a.Path)))
	for _, hs := range [][]LookupHit{a.Hits, a.Unresolved} {
		for i := range hs {
			b = appendHit(b, &hs[i])
		}
	}
	for i := range a.Path {
		s := &a.Path[i]
		b = binary.BigEndian.AppendUint32(b, s.Node)
		b = append(b, s.Level)
		b = appendLoc(b, s.Unit)
		b = append(b, byte(s.Via))
		b = binary.BigEndian.AppendUint16(b, s.Hits)
		b = binary.BigEndian.AppendUint16(b, s.Summaries)
		b = appendText(b, s.Error)
	}
	return b, nil
}

// ParseLookupAnswer decodes a LOOKUP_ANSWER.
func ParseLookupAnswer(b []byte) (LookupAnswer, error) {
	r := newReader(b)
	_, fl := r.prefix(TypeLookupAnswer, AnswerFailed)
	a := LookupAnswer{Failed: fl&AnswerFailed != 0, ID: r.U64(), Asker: r.U32()}
	a.Error = r.text()
	nh := int(r.U16())
	nu := int(r.U16())
	ns := int(r.U8())
	nh = r.count(nh, MaxHits, hitLen, "hits")
	nu = r.count(nu, MaxHits, hitLen, "unresolved")
	if r.Err == nil && (nh+nu)*hitLen+ns*stepMinLen > len(r.B) {
		r.Err = ErrTruncated
	}
	if r.Err != nil {
		return LookupAnswer{}, r.Err
	}
	if nh > 0 {
		a.Hits = make([]LookupHit, nh)
		for i := range a.Hits {
			a.Hits[i] = r.hit()
		}
	}
	if nu > 0 {
		a.Unresolved = make([]LookupHit, nu)
		for i := range a.Unresolved {
			a.Unresolved[i] = r.hit()
		}
	}
	if ns > 0 {
		a.Path = make([]LookupStep, ns)
		for i := range a.Path {
			s := LookupStep{Node: r.U32(), Level: r.U8(), Unit: r.loc(), Via: Via(r.U8()), Hits: r.U16(), Summaries: r.U16()}
			if r.Err == nil && (s.Via < ViaSelf || s.Via > ViaChild) {
				r.Err = fmt.Errorf("%w: step via %d", ErrFlags, s.Via)
			}
			s.Error = r.text()
			a.Path[i] = s
		}
	}
	if err := r.end(); err != nil {
		return LookupAnswer{}, err
	}
	return a, nil
}

func appendHit(b []byte, h *LookupHit) []byte {
	b = binary.BigEndian.AppendUint32(b, h.ID)
	b = appendLoc(b, h.Location)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = binary.BigEndian.AppendUint64(b, h.Expiry)
	b = binary.BigEndian.AppendUint64(b, h.Stored)
	var d byte
	if h.Down {
		d = 1
	}
	return append(b, d, h.Hops)
}

func (r *reader) hit() LookupHit {
	h := LookupHit{ID: r.U32(), Location: r.loc(), Size: r.U64(), Incarnation: r.U64(), Seq: r.U64(),
		Expiry: r.U64(), Stored: r.U64()}
	switch d := r.U8(); d {
	case 0:
	case 1:
		h.Down = true
	default:
		if r.Err == nil {
			r.Err = fmt.Errorf("%w: down flag %d", ErrFlags, d)
		}
	}
	h.Hops = r.U8()
	return h
}

// appendText appends a diagnostic string, cut to MaxErrorText bytes at a
// rune boundary (invalid UTF-8 is replaced, so the decoder can insist on
// it).
func appendText(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // replaces invalid bytes with U+FFFD
	}
	if len(s) > MaxErrorText {
		cut := MaxErrorText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (r *reader) text() string {
	n := int(r.U16())
	if r.Err != nil {
		return ""
	}
	if n > MaxErrorText {
		r.Err = fmt.Errorf("%w: text of %d bytes > %d", ErrCount, n, MaxErrorText)
		return ""
	}
	v := r.Take(n)
	if r.Err != nil {
		return ""
	}
	if !utf8.Valid(v) {
		r.Err = fmt.Errorf("%w: text is not UTF-8", ErrMalformed)
		return ""
	}
	return string(v)
}
