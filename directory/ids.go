package directory

import (
	"hash/fnv"
	"slices"
)

// idBucketBits splits the id space by its top bits; each bucket is a
// slice of record indices sorted by id, so an insert moves a few hundred
// indices at ten million entries, and iteration in id order
// (smDirectoryTable, snapshot cursors) is a walk.
const idBucketBits = 14

// idIndex orders the records by their stable entry id.
type idIndex struct {
	buckets [1 << idBucketBits][]uint32
}

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

// search returns where id is, or would be, in its bucket.
func (s *Store) searchID(id uint32) (b *[]uint32, i int, found bool) {
	b = &s.ids.buckets[bucketOf(id)]
	i, found = slices.BinarySearchFunc(*b, id, func(ri, id uint32) int {
		switch x := s.recs.at(ri).id; {
		case x < id:
			return -1
		case x > id:
			return 1
		}
		return 0
	})
	return b, i, found
}

// assignID gives record ri (key at loc) an id: want if free (a donor's id
// during catch-up), else the hash of its identity, probing upward past
// collisions. 0 is never an id (SNMP index 0 is legal but confuses
// operators and tools).
func (s *Store) assignID(ri uint32, key string, loc Location, want uint32) {
	id := want
	b, i, taken := s.searchID(id)
	if id == 0 || taken {
		id = hashID(key, loc)
		b, i, taken = s.searchID(id)
	}
	for id == 0 || taken {
		id++
		b, i, taken = s.searchID(id)
	}
	s.recs.at(ri).id = id
	if len(*b) == cap(*b) {
		// Grow by an eighth, not by doubling: the slack is memory per entry.
		nb := make([]uint32, len(*b), len(*b)+len(*b)/8+4)
		copy(nb, *b)
		*b = nb
	}
	*b = slices.Insert(*b, i, ri)
}

func (s *Store) removeID(id uint32) {
	if b, i, ok := s.searchID(id); ok {
		*b = slices.Delete(*b, i, i+1)
	}
}

// afterID calls f for the records with ids above after, in id order,
// until f returns false.
func (s *Store) afterID(after uint32, f func(ri uint32) bool) {
	if after == ^uint32(0) {
		return
	}
	start := bucketOf(after + 1)
	for bi := start; bi < len(s.ids.buckets); bi++ {
		b := s.ids.buckets[bi]
		i := 0
		if bi == start {
			_, i, _ = s.searchID(after + 1)
		}
		for ; i < len(b); i++ {
			if !f(b[i]) {
				return
			}
		}
	}
}
