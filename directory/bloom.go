package directory

import (
	"math"
	"math/bits"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// Bloom filters of the digest forwarding policy (issue 22). Our own, not
// a library's: the child keeps a counting filter whose bit view must hash
// exactly as the parent's plain bitset, with the seed and the algorithm
// carried on the wire, and the hashing must stay the same across versions
// (github.com/bits-and-blooms/bloom/v3 hashes with an unseeded murmur3 and
// has no counting filter).

// DefaultFPRate is the digest policy's default false-positive rate.
const DefaultFPRate = 0.01

// bloomParams are what both ends must agree on.
type bloomParams struct {
	k    uint8
	seed uint64
	m    uint64
}

// bloomSize is m and k for n keys at false-positive rate p: m = -n ln p /
// (ln 2)^2, k = m/n ln 2 (9.6 bits and 7 hashes per key at 1 %).
func bloomSize(n int, p float64) (m uint64, k uint8) {
	n = max(n, 1)
	mf := math.Ceil(-float64(n) * math.Log(p) / (math.Ln2 * math.Ln2))
	m = uint64(min(max(mf, 64), float64(wire.MaxDigestBits)))
	kf := math.Round(float64(m) / float64(n) * math.Ln2)
	return m, uint8(min(max(kf, 1), wire.MaxDigestHashes))
}

func splitmix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// positions appends key's k bit positions (wire.DigestFNVKM).
func (p bloomParams) positions(key string, out []uint32) []uint32 {
	h := uint64(14695981039346656037) ^ p.seed
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h1 := splitmix(h)
	h2 := splitmix(h^0x9e3779b97f4a7c15) | 1
	for i := range uint64(p.k) {
		hi, _ := bits.Mul64(h1+i*h2, p.m)
		out = append(out, uint32(hi))
	}
	return out
}

// countingBloom is the child's filter: a 4-bit counter per position,
// saturating at 15 (a saturated counter is never decremented, so it can
// never wrap to 0 while a key still sets it: no false negative, at worst
// a bit that stays set). Bit i of the digest is counter i > 0.
type countingBloom struct {
	bloomParams
	c   []byte // two counters per byte, position i in the low nibble when even
	set uint64 // counters above 0
}

func newCountingBloom(p bloomParams) *countingBloom {
	return &countingBloom{bloomParams: p, c: make([]byte, (p.m+1)/2)}
}

func (b *countingBloom) get(i uint32) uint8 {
	v := b.c[i>>1]
	if i&1 == 0 {
		return v & 0x0f
	}
	return v >> 4
}

func (b *countingBloom) put(i uint32, n uint8) {
	if i&1 == 0 {
		b.c[i>>1] = b.c[i>>1]&0xf0 | n
	} else {
		b.c[i>>1] = b.c[i>>1]&0x0f | n<<4
	}
}

// add counts key in and calls flip for each position whose bit became 1.
func (b *countingBloom) add(key string, buf []uint32, flip func(uint32)) []uint32 {
	buf = b.positions(key, buf[:0])
	for _, i := range buf {
		switch n := b.get(i); {
		case n == 15:
		case n == 0:
			b.put(i, 1)
			b.set++
			if flip != nil {
				flip(i)
			}
		default:
			b.put(i, n+1)
		}
	}
	return buf
}

// remove counts key out and calls flip for each position whose bit
// became 0.
func (b *countingBloom) remove(key string, buf []uint32, flip func(uint32)) []uint32 {
	buf = b.positions(key, buf[:0])
	for _, i := range buf {
		switch n := b.get(i); n {
		case 15, 0: // saturated: stays; 0: a caller's bug, never below
		case 1:
			b.put(i, 0)
			b.set--
			if flip != nil {
				flip(i)
			}
		default:
			b.put(i, n-1)
		}
	}
	return buf
}

func (b *countingBloom) bit(i uint32) bool { return b.get(i) != 0 }

// bitsAt writes the bit view of bytes [off, off+len(dst)) of the bitset.
func (b *countingBloom) bitsAt(off int, dst []byte) {
	for j := range dst {
		var v byte
		for bit := range 8 {
			i := uint64(off+j)*8 + uint64(bit)
			if i < b.m && b.get(uint32(i)) != 0 {
				v |= 1 << bit
			}
		}
		dst[j] = v
	}
}

func (b *countingBloom) fill() float64 { return float64(b.set) / float64(b.m) }

// estimatedFP is the false-positive rate the fill gives: fill^k.
func estimatedFP(fill float64, k uint8) float64 { return math.Pow(fill, float64(k)) }

// bitBloom is the parent's copy of a child's digest.
type bitBloom struct {
	bloomParams
	bits []byte
	keys uint64
}

func (b *bitBloom) has(key string, buf []uint32) bool {
	for _, i := range b.positions(key, buf[:0]) {
		if b.bits[i>>3]&(1<<(i&7)) == 0 {
			return false
		}
	}
	return true
}

func (b *bitBloom) setBit(i uint32, v bool) {
	if v {
		b.bits[i>>3] |= 1 << (i & 7)
	} else {
		b.bits[i>>3] &^= 1 << (i & 7)
	}
}

func (b *bitBloom) fill() float64 {
	n := 0
	for _, v := range b.bits {
		n += bits.OnesCount8(v)
	}
	return float64(n) / float64(b.m)
}
