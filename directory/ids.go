package directory

import (
	"hash/fnv"
	"slices"
)

// idBuckets splits the id space by its top bits; each bucket is a sorted
// slice, so an insert moves a few hundred ids at a million entries, and
// iteration in id order (smDirectoryTable, snapshot cursors) is a walk.
const idBucketBits = 12

// idIndex maps stable entry ids to records and iterates them in order.
type idIndex struct {
	byID    map[uint32]*record
	buckets [1 << idBucketBits][]uint32
}

func newIDIndex() *idIndex { return &idIndex{byID: make(map[uint32]*record)} }

func bucketOf(id uint32) int { return int(id >> (32 - idBucketBits)) }

// hashID is the preferred id of (key, location): the same on every
// manager, so a row keeps its index across a failover to the BSM.
func hashID(key string, loc Location) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	var b [16]byte
	for i, v := range []uint32{loc.CDN, loc.DataCenter, loc.Farm, loc.Engine} {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	h.Write(b[:])
	return h.Sum32()
}

// assign gives r an id: want if free (a donor's id during catch-up), else
// the hash of its identity, probing upward past collisions. 0 is never an
// id (SNMP index 0 is legal but confuses operators and tools).
func (x *idIndex) assign(r *record, want uint32) {
	id := want
	if id == 0 || x.byID[id] != nil {
		id = hashID(r.key, r.loc)
	}
	for id == 0 || x.byID[id] != nil {
		id++
	}
	r.id = id
	x.byID[id] = r
	b := &x.buckets[bucketOf(id)]
	i, _ := slices.BinarySearch(*b, id)
	*b = slices.Insert(*b, i, id)
}

func (x *idIndex) remove(id uint32) {
	delete(x.byID, id)
	b := &x.buckets[bucketOf(id)]
	if i, ok := slices.BinarySearch(*b, id); ok {
		*b = slices.Delete(*b, i, i+1)
	}
}

// after calls f for the records with ids above after, in id order, until
// f returns false.
func (x *idIndex) after(after uint32, f func(*record) bool) {
	start := bucketOf(after)
	for bi := start; bi < len(x.buckets); bi++ {
		b := x.buckets[bi]
		i := 0
		if bi == start {
			i, _ = slices.BinarySearch(b, after+1)
			if after == ^uint32(0) {
				return
			}
		}
		for ; i < len(b); i++ {
			if !f(x.byID[b[i]]) {
				return
			}
		}
	}
}
