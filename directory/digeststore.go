package directory

import (
	"fmt"
	"slices"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// unitDigest is what a parent holds of one child unit's digest: the
// generation it answers from and, during a full send, the next one.
type unitDigest struct {
	cur, pend       *bitBloom
	curGen, pendGen uint64
}

// DigestInfo describes the digest a store holds of one child unit.
type DigestInfo struct {
	Unit        Location
	Generation  uint64
	Bits        uint64
	Hashes      uint8
	Keys        uint64  // as the child last said
	Fill        float64 // share of bits set
	EstimatedFP float64 // fill^k
	Receiving   bool    // a newer generation is being received
}

// ApplyDigest applies a child unit's DIGEST (sent by its active manager's
// Forwarder under the digest policy). A BEGIN of a generation above what
// is held starts a new bitset, pieces and positions fill it, END makes it
// the one lookups use; until then the previous generation answers. Older
// generations, and pieces of a generation whose BEGIN never came, change
// nothing (counted DigestStale), so re-sent messages are harmless.
func (s *Store) ApplyDigest(d *wire.Digest) error {
	if !Contains(s.cfg.Unit, d.Unit) || d.Unit == s.cfg.Unit {
		return fmt.Errorf("%w: digest of unit %v outside unit %v", ErrWrongOrigin, d.Unit, s.cfg.Unit)
	}
	p := bloomParams{k: d.Hashes, seed: d.Seed, m: d.Bits}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.digests[d.Unit]
	if u == nil {
		if len(s.digests) >= s.cfg.MaxSources {
			s.st.DigestRefused++
			return fmt.Errorf("%w: digest of unit %v: too many units", ErrWrongOrigin, d.Unit)
		}
		u = &unitDigest{}
		s.digests[d.Unit] = u
	}
	if d.Flags&wire.DigestBegin != 0 && !(u.pend != nil && u.pendGen == d.Generation) {
		if (u.cur != nil && d.Generation <= u.curGen) || (u.pend != nil && d.Generation < u.pendGen) {
			s.st.DigestStale++
			return nil
		}
		need := int((d.Bits + 7) / 8)
		held := 0
		if u.pend != nil {
			held = len(u.pend.bits)
		}
		if s.digestBytes-held+need > s.cfg.MaxDigestBytes {
			s.st.DigestRefused++
			return fmt.Errorf("%w: digest of unit %v: %d bytes over the cap of %d", ErrFull, d.Unit, need, s.cfg.MaxDigestBytes)
		}
		s.digestBytes += need - held
		u.pend, u.pendGen = &bitBloom{bloomParams: p, bits: make([]byte, need)}, d.Generation
	}
	var t *bitBloom
	switch {
	case u.pend != nil && d.Generation == u.pendGen:
		t = u.pend
	case u.cur != nil && d.Generation == u.curGen:
		t = u.cur
	default:
		s.st.DigestStale++
		return nil
	}
	if t.bloomParams != p {
		s.st.DigestRefused++
		return fmt.Errorf("%w: digest of unit %v changed its parameters within generation %d", ErrWrongOrigin, d.Unit, d.Generation)
	}
	copy(t.bits[d.Offset:], d.Piece)
	for _, i := range d.Set {
		t.setBit(i, true)
	}
	for _, i := range d.Clear {
		t.setBit(i, false)
	}
	t.keys = d.Keys
	if d.Flags&wire.DigestEnd != 0 && t == u.pend {
		if u.cur != nil {
			s.digestBytes -= len(u.cur.bits)
		}
		u.cur, u.curGen, u.pend = u.pend, u.pendGen, nil
	}
	s.st.Digests++
	return nil
}

// DigestMatches returns, nearest first, the child units whose digest
// matches key: "maybe there" (Hit.Maybe), for the Resolver to ask.
func (s *Store) DigestMatches(key string, from Location) []Hit {
	var buf [wire.MaxDigestHashes]uint32
	var out []Hit
	s.mu.RLock()
	for unit, u := range s.digests {
		if u.cur != nil && u.cur.has(key, buf[:0]) {
			out = append(out, Hit{Location: unit, Maybe: true, Hops: Hops(from, unit)})
		}
	}
	s.mu.RUnlock()
	sortHits(out)
	return out
}

// Digests lists the child units' digests held, by unit.
func (s *Store) Digests() []DigestInfo {
	s.mu.RLock()
	out := make([]DigestInfo, 0, len(s.digests))
	for unit, u := range s.digests {
		di := DigestInfo{Unit: unit, Receiving: u.pend != nil}
		if u.cur != nil {
			di.Generation, di.Bits, di.Hashes, di.Keys = u.curGen, u.cur.m, u.cur.k, u.cur.keys
			di.Fill = u.cur.fill()
			di.EstimatedFP = estimatedFP(di.Fill, u.cur.k)
		}
		out = append(out, di)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b DigestInfo) int { return compareLoc(a.Unit, b.Unit) })
	return out
}

// DigestBytes is the memory the child units' digests take.
func (s *Store) DigestBytes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.digestBytes
}
