package directory

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// TestBloomSize: the figures, 9.6 bits and 7 hashes per key at
// 1 %.
func TestBloomSize(t *testing.T) {
	m, k := bloomSize(1_000_000, 0.01)
	if bpk := float64(m) / 1e6; math.Abs(bpk-9.59) > 0.01 || k != 7 {
		t.Fatalf("1 %%: %.2f bits per key, %d hashes", bpk, k)
	}
}

// TestCountingBloom: no false negative through adds and removals, a
// saturated counter never goes back to 0 while its keys are in, the
// measured false-positive rate is near the configured one, and the bit
// view the parent gets answers as the child does.
func TestCountingBloom(t *testing.T) {
	const n = 20000
	m, k := bloomSize(n, 0.01)
	cb := newCountingBloom(bloomParams{k: k, seed: 42, m: m})
	var buf []uint32
	for i := range n {
		buf = cb.add(fmt.Sprintf("k%d", i), buf, nil)
	}
	for i := 0; i < n; i += 2 {
		buf = cb.remove(fmt.Sprintf("k%d", i), buf, nil)
	}
	bb := &bitBloom{bloomParams: cb.bloomParams, bits: make([]byte, (m+7)/8)}
	cb.bitsAt(0, bb.bits)
	for i := 1; i < n; i += 2 {
		if !bb.has(fmt.Sprintf("k%d", i), buf) {
			t.Fatalf("false negative for k%d", i)
		}
	}
	fp := 0
	for i := range 100000 {
		if bb.has(fmt.Sprintf("other%d", i), buf) {
			fp++
		}
	}
	// Half the keys are in: the rate is well under 1 %.
	if rate := float64(fp) / 100000; rate > 0.01 || rate == 0 {
		t.Fatalf("false-positive rate %.4f with half the sized keys", rate)
	}
	// One position counted 20 times saturates at 15 and stays set.
	small := newCountingBloom(bloomParams{k: 1, seed: 1, m: 1})
	for range 20 {
		buf = small.add("x", buf, nil)
	}
	for range 19 {
		buf = small.remove("x", buf, nil)
	}
	if !small.bit(0) {
		t.Fatal("a saturated counter went back to 0")
	}
}

// TestApplyDigest: a generation answers only from its END, an older one or
// a piece without its BEGIN changes nothing, a repeated message is
// harmless, and the memory cap refuses a digest beyond it.
func TestApplyDigest(t *testing.T) {
	s, err := NewStore(StoreConfig{Level: LevelPeering, MaxDigestBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	unit := Location{CDN: 2}
	p := bloomParams{k: 3, seed: 7, m: 4096}
	cb := newCountingBloom(p)
	var buf []uint32
	buf = cb.add("held", buf, nil)
	full := make([]byte, 512)
	cb.bitsAt(0, full)
	msg := func(gen uint64, flags wire.DigestFlags, off int, piece []byte) *wire.Digest {
		return &wire.Digest{Level: 4, Flags: flags, Unit: unit, Generation: gen, Algorithm: wire.DigestFNVKM, Hashes: p.k,
			Seed: p.seed, Bits: p.m, Keys: 1, Offset: uint32(off), Piece: piece}
	}
	apply := func(d *wire.Digest) {
		t.Helper()
		if err := s.ApplyDigest(d); err != nil {
			t.Fatal(err)
		}
	}
	maybe := func(k string) bool { return len(s.DigestMatches(k, Location{CDN: 1})) == 1 }
	apply(msg(5, wire.DigestBegin, 0, full[:256]))
	if maybe("held") {
		t.Fatal("answered from a generation before its END")
	}
	apply(msg(5, wire.DigestBegin, 0, full[:256])) // repeated
	apply(msg(5, wire.DigestEnd, 256, full[256:]))
	if !maybe("held") {
		t.Fatal("held key not matched after END")
	}
	if h := s.DigestMatches("held", Location{CDN: 1}); !h[0].Maybe || h[0].Location != unit || h[0].Hops != 8 {
		t.Fatalf("match %+v", h)
	}
	// Deltas of the current generation apply; an older one does not.
	var pos []uint32
	pos = cb.positions("held", pos)
	apply(&wire.Digest{Level: 4, Unit: unit, Generation: 5, Algorithm: wire.DigestFNVKM, Hashes: p.k, Seed: p.seed, Bits: p.m,
		Clear: pos[:1]})
	if maybe("held") {
		t.Fatal("cleared bit still matches")
	}
	apply(&wire.Digest{Level: 4, Unit: unit, Generation: 4, Algorithm: wire.DigestFNVKM, Hashes: p.k, Seed: p.seed, Bits: p.m,
		Set: pos})
	if maybe("held") || s.Counters().DigestStale != 1 {
		t.Fatalf("an older generation applied: %+v", s.Counters())
	}
	apply(msg(4, wire.DigestBegin|wire.DigestEnd, 0, full))
	if maybe("held") || s.Counters().DigestStale != 2 {
		t.Fatal("an older generation's BEGIN applied")
	}
	// Parameters cannot change within a generation.
	bad := msg(5, 0, 0, nil)
	bad.Seed++
	if err := s.ApplyDigest(bad); !errors.Is(err, ErrWrongOrigin) {
		t.Fatalf("changed seed: %v", err)
	}
	big := msg(6, wire.DigestBegin, 0, nil)
	big.Bits = 16 << 20 // 2 MiB > the cap
	if err := s.ApplyDigest(big); !errors.Is(err, ErrFull) || s.DigestBytes() != 512 {
		t.Fatalf("over the cap: %v, %d bytes held", err, s.DigestBytes())
	}
	if err := s.ApplyDigest(msg(1, wire.DigestBegin, 0, nil)); err != nil || s.Counters().DigestStale != 3 {
		t.Fatalf("stale begin: %v", err)
	}
	if err := s.ApplyDigest(&wire.Digest{Unit: Location{}, Algorithm: wire.DigestFNVKM, Hashes: 1, Bits: 8}); !errors.Is(err, ErrWrongOrigin) {
		t.Fatalf("own unit: %v", err)
	}
}
