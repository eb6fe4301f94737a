package directory

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Digest is an order-independent hash of a set of live entries: the
// lane-wise sum of a 128-bit hash per entry. Two nodes holding the same
// entries (same keys, locations, versions, sizes and expiries) have equal
// digests whatever order they applied updates in, and digests of disjoint
// sets add up (Combine), so the SEs' own digests sum to the farm's.
type Digest struct {
	A, B  uint64
	Count uint64
}

// Combine returns the digest of the union of two disjoint sets.
func (d Digest) Combine(o Digest) Digest {
	return Digest{A: d.A + o.A, B: d.B + o.B, Count: d.Count + o.Count}
}

func (d Digest) String() string { return fmt.Sprintf("%016x%016x/%d", d.A, d.B, d.Count) }

// add folds one entry in.
func (d *Digest) add(key string, loc Location, v Version, size, expiry uint64) {
	var buf [16 + 8*4]byte
	binary.BigEndian.PutUint32(buf[0:], loc.CDN)
	binary.BigEndian.PutUint32(buf[4:], loc.DataCenter)
	binary.BigEndian.PutUint32(buf[8:], loc.Farm)
	binary.BigEndian.PutUint32(buf[12:], loc.Engine)
	binary.BigEndian.PutUint64(buf[16:], v.Incarnation)
	binary.BigEndian.PutUint64(buf[24:], v.Seq)
	binary.BigEndian.PutUint64(buf[32:], size)
	binary.BigEndian.PutUint64(buf[40:], expiry)
	h := sha256.New()
	h.Write(buf[:])
	h.Write([]byte(key))
	var sum [32]byte
	h.Sum(sum[:0])
	d.A += binary.BigEndian.Uint64(sum[0:])
	d.B += binary.BigEndian.Uint64(sum[8:])
	d.Count++
}
