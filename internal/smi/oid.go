package smi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxSubIDs is the largest number of sub-identifiers an OID may have
// (RFC 2578 §3.5). Decoders reject longer OIDs before allocating.
const MaxSubIDs = 128

// ErrBadOID is returned when a textual OID cannot be parsed.
var ErrBadOID = errors.New("smi: malformed object identifier")

// OID is an object identifier as its numeric sub-identifiers.
type OID []uint32

// ParseOID parses dotted numeric notation, with or without a leading dot.
func ParseOID(s string) (OID, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), ".")
	if s == "" {
		return OID{}, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) > MaxSubIDs {
		return nil, fmt.Errorf("%w: %d sub-identifiers, at most %d", ErrBadOID, len(parts), MaxSubIDs)
	}
	o := make(OID, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: sub-identifier %d", ErrBadOID, s, i+1)
		}
		o[i] = uint32(v)
	}
	return o, nil
}

// MustParseOID is ParseOID for constants in code; it panics on bad input.
func MustParseOID(s string) OID {
	o, err := ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// String returns the dotted form without a leading dot ("1.3.6.1").
func (o OID) String() string {
	var b strings.Builder
	b.Grow(len(o) * 4)
	for i, v := range o {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// Compare orders OIDs lexicographically by sub-identifier, the order of
// SNMP walks: it returns -1, 0 or +1.
func (o OID) Compare(p OID) int {
	n := min(len(o), len(p))
	for i := 0; i < n; i++ {
		switch {
		case o[i] < p[i]:
			return -1
		case o[i] > p[i]:
			return 1
		}
	}
	switch {
	case len(o) < len(p):
		return -1
	case len(o) > len(p):
		return 1
	}
	return 0
}

// Equal reports whether o and p are the same OID.
func (o OID) Equal(p OID) bool { return o.Compare(p) == 0 }

// HasPrefix reports whether p is a prefix of o (o is in the subtree p).
func (o OID) HasPrefix(p OID) bool {
	if len(p) > len(o) {
		return false
	}
	for i := range p {
		if o[i] != p[i] {
			return false
		}
	}
	return true
}

// Append returns a new OID of o followed by subs; o is never modified.
func (o OID) Append(subs ...uint32) OID {
	r := make(OID, 0, len(o)+len(subs))
	r = append(r, o...)
	return append(r, subs...)
}

// Clone returns a copy that does not share memory with o.
func (o OID) Clone() OID {
	if o == nil {
		return nil
	}
	return append(OID{}, o...)
}

// SubtreeEnd returns the smallest OID greater than every OID in the subtree
// rooted at o, or nil when there is none (every sub-identifier is the
// maximum). Walk code uses it as an exclusive upper bound.
func (o OID) SubtreeEnd() OID {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i] != ^uint32(0) {
			r := o[:i+1].Clone()
			r[i]++
			return r
		}
	}
	return nil
}
