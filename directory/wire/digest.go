package wire

import (
	"encoding/binary"
	"fmt"
)

// Digest bounds.
const (
	// MaxDigestBits caps a digest's size m: 2^32 bits (512 MiB), about
	// 4·10^8 keys at 1 % false positives.
	MaxDigestBits = 1 << 32
	// MaxDigestHashes caps k.
	MaxDigestHashes = 32
	// MaxDigestPiece caps the bitset bytes one DIGEST carries (inside
	// rmtp's 1 MiB message cap).
	MaxDigestPiece = 768 << 10
	// MaxDigestPositions caps the set and the cleared positions of one
	// DIGEST, each.
	MaxDigestPositions = 1 << 17
	// DigestOverhead is the encoded length of a DIGEST without its piece
	// and positions.
	DigestOverhead = PrefixLen + LocationLen + 8 + 1 + 1 + 8 + 8 + 8 + 4 + 4 + 4 + 4
)

// DigestAlgorithm names how a digest hashes a key to its k positions.
// Append-only: it is on the wire.
type DigestAlgorithm uint8

// Algorithms.
const (
	// DigestFNVKM: 64-bit FNV-1a of the key from an offset basis xored
	// with the seed, two splitmix64 finalizations of it as h1 and h2 (h2
	// made odd), and position i = ⌊(h1 + i·h2 mod 2^64) · m / 2^64⌋ for
	// i = 0..k-1 (Kirsch-Mitzenmacher double hashing).
	DigestFNVKM DigestAlgorithm = 1
)

func (a DigestAlgorithm) String() string {
	if a == DigestFNVKM {
		return "fnv1a64-km"
	}
	return fmt.Sprintf("DigestAlgorithm(%d)", uint8(a))
}

// DigestFlags mark a DIGEST's place in a full send.
type DigestFlags uint8

// Digest flags. Append-only.
const (
	// DigestBegin: a new generation starts; the receiver starts it from an
	// empty bitset of Bits bits, and keeps answering from the previous
	// generation until END.
	DigestBegin DigestFlags = 0x01
	// DigestEnd: the generation's full send is complete; it replaces the
	// previous one.
	DigestEnd DigestFlags = 0x02
	digestDef             = DigestBegin | DigestEnd
)

// Digest (DIGEST) is a Bloom filter of the keys of a level's unit, or a
// part or a change of one: a level forwarding under the digest policy
// sends the whole bitset in pieces between BEGIN and END of a generation,
// then the positions whose bit changed (Set, Clear: the bit's value now,
// so applying one twice changes nothing).
type Digest struct {
	Level      uint8 // of the directory fed (the parent's)
	Flags      DigestFlags
	Unit       Location // the sender's unit
	Generation uint64
	Algorithm  DigestAlgorithm
	Hashes     uint8  // k
	Seed       uint64 // the hash seed
	Bits       uint64 // m
	Keys       uint64 // keys in the filter when sent
	// Offset is the byte offset of Piece in the bitset (bit i is bit
	// i%8, least significant first, of byte i/8).
	Offset     uint32
	Piece      []byte
	Set, Clear []uint32 // positions now 1, now 0
}

// DigestLen is the encoded length of d.
func DigestLen(d *Digest) int {
	return DigestOverhead + len(d.Piece) + 4*(len(d.Set)+len(d.Clear))
}

func (d *Digest) check() error {
	switch {
	case d.Flags&^digestDef != 0:
		return fmt.Errorf("%w: 0x%02x", ErrFlags, uint8(d.Flags))
	case d.Algorithm != DigestFNVKM:
		return fmt.Errorf("%w: digest algorithm %d", ErrFlags, uint8(d.Algorithm))
	case d.Hashes < 1 || d.Hashes > MaxDigestHashes:
		return fmt.Errorf("%w: %d hashes outside 1..%d", ErrCount, d.Hashes, MaxDigestHashes)
	case d.Bits < 1 || d.Bits > MaxDigestBits:
		return fmt.Errorf("%w: %d bits outside 1..%d", ErrCount, d.Bits, uint64(MaxDigestBits))
	case len(d.Piece) > MaxDigestPiece:
		return fmt.Errorf("%w: piece of %d bytes > %d", ErrCount, len(d.Piece), MaxDigestPiece)
	case uint64(d.Offset)+uint64(len(d.Piece)) > (d.Bits+7)/8:
		return fmt.Errorf("%w: piece at %d+%d past %d bits", ErrIndex, d.Offset, len(d.Piece), d.Bits)
	case len(d.Set) > MaxDigestPositions || len(d.Clear) > MaxDigestPositions:
		return fmt.Errorf("%w: %d+%d positions > %d each", ErrCount, len(d.Set), len(d.Clear), MaxDigestPositions)
	}
	for _, ps := range [][]uint32{d.Set, d.Clear} {
		for _, p := range ps {
			if uint64(p) >= d.Bits {
				return fmt.Errorf("%w: position %d of %d bits", ErrIndex, p, d.Bits)
			}
		}
	}
	return nil
}

// ParseDigest decodes a DIGEST.
func ParseDigest(b []byte) (Digest, error) {
	r := newReader(b)
	level, flags := r.prefix(TypeDigest, uint8(digestDef))
	d := Digest{Level: level, Flags: DigestFlags(flags), Unit: r.loc(), Generation: r.U64(),
		Algorithm: DigestAlgorithm(r.U8()), Hashes: r.U8(), Seed: r.U64(), Bits: r.U64(), Keys: r.U64(), Offset: r.U32()}
	if n := r.count(int(r.U32()), MaxDigestPiece, 1, "piece bytes"); n > 0 {
		d.Piece = append([]byte(nil), r.Take(n)...)
	}
	positions := func() []uint32 {
		n := r.count(int(r.U32()), MaxDigestPositions, 4, "positions")
		if n == 0 {
			return nil
		}
		out := make([]uint32, n)
		for i := range out {
			out[i] = r.U32()
		}
		return out
	}
	d.Set = positions()
	d.Clear = positions()
	if err := r.end(); err != nil {
		return Digest{}, err
	}
	if err := d.check(); err != nil {
		return Digest{}, fmt.Errorf("%w", err)
	}
	return d, nil
}

// AppendDigest appends the encoding of d to b.
func AppendDigest(b []byte, d *Digest) ([]byte, error) {
	if err := d.check(); err != nil {
		return b, err
	}
	b = append(b, Version, byte(TypeDigest), d.Level, byte(d.Flags))
	b = appendLoc(b, d.Unit)
	b = binary.BigEndian.AppendUint64(b, d.Generation)
	b = append(b, byte(d.Algorithm), d.Hashes)
	b = binary.BigEndian.AppendUint64(b, d.Seed)
	b = binary.BigEndian.AppendUint64(b, d.Bits)
	b = binary.BigEndian.AppendUint64(b, d.Keys)
	b = binary.BigEndian.AppendUint32(b, d.Offset)
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.Piece)))
	b = append(b, d.Piece...)
	for _, ps := range [][]uint32{d.Set, d.Clear} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
		for _, p := range ps {
			b = binary.BigEndian.AppendUint32(b, p)
		}
	}
	return b, nil
}
