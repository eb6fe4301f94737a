package directory

import (
	"hash/maphash"
	"math/bits"
	"unsafe"
)

// The store's memory layout (issue 22). A level holds millions of
// records, so none of them is a Go object of its own: records are
// fixed-size values in pages addressed by a 32-bit index, each distinct key
// is stored once in an arena of byte chunks and shared by every origin
// that holds it, and a key finds its records through an open-addressing
// table of record indices. Nothing here holds a pointer per record, so the
// garbage collector has nothing to mark but a few hundred page headers.
//
// Per live record with one origin: 40 bytes of record, about 7 of key
// table (slot and tag at 60-80 % load), 4 to 5 of id index, 1 to 3 of
// arena framing and padding, plus the key's own bytes once.

// rec is one (key, origin) pair: live, or a tombstone. Index 0 is never a
// record (0 means "none" in next and in the key table).
type rec struct {
	key    uint32 // arena reference of the key (keyArena)
	id     uint32 // stable entry id
	next   uint32 // next record of the same key; on the free list, the next free slot
	oi     uint32 // origin and incarnation (oincTable)
	stored uint32 // Unix seconds when this node stored the current version
	size   uint32 // low 32 bits of the size (all of it unless recBig)
	exp    uint32 // expiry, Unix seconds (0 with ms 0: never)
	seqLo  uint32
	seqHi  uint16
	bits   uint16 // recInUse, recRemoved, recBig; expiry milliseconds << recMsShift
}

const (
	recInUse   uint16 = 1 << 0
	recRemoved uint16 = 1 << 1
	// recBig: sequence, size or expiry does not fit (a sequence of 2^48
	// or more, a size of 4 GiB or more, an expiry after 2106): the exact
	// values are in recPages.big.
	recBig     uint16 = 1 << 2
	recMsShift        = 6
	recPageBit        = 12
	recPage           = 1 << recPageBit
)

type bigVals struct{ seq, size, expiry uint64 }

// recPages holds the records in fixed pages, so growing never copies (and
// never holds twice) what is there.
type recPages struct {
	pages [][]rec
	n     uint32 // slots used, including slot 0
	free  uint32 // head of the free list (0: none)
	big   map[uint32]bigVals
}

func (p *recPages) at(i uint32) *rec { return &p.pages[i>>recPageBit][i&(recPage-1)] }

func (p *recPages) alloc() uint32 {
	if p.free != 0 {
		i := p.free
		r := p.at(i)
		p.free = r.next
		*r = rec{}
		return i
	}
	if p.n == 0 {
		p.n = 1 // slot 0 is "none"
	}
	if int(p.n>>recPageBit) == len(p.pages) {
		p.pages = append(p.pages, make([]rec, recPage))
	}
	i := p.n
	p.n++
	return i
}

func (p *recPages) release(i uint32) {
	r := p.at(i)
	if r.bits&recBig != 0 {
		delete(p.big, i)
	}
	*r = rec{next: p.free}
	p.free = i
}

// values returns the exact sequence, size and expiry (Unix ms) of record i.
func (p *recPages) values(i uint32) (seq, size, expiry uint64) {
	r := p.at(i)
	if r.bits&recBig != 0 {
		v := p.big[i]
		return v.seq, v.size, v.expiry
	}
	seq = uint64(r.seqHi)<<32 | uint64(r.seqLo)
	ms := uint64(r.bits >> recMsShift)
	if r.exp != 0 || ms != 0 {
		expiry = uint64(r.exp)*1000 + ms
	}
	return seq, uint64(r.size), expiry
}

// setValues stores them compactly when they fit.
func (p *recPages) setValues(i uint32, seq, size, expiry uint64) {
	r := p.at(i)
	if r.bits&recBig != 0 {
		delete(p.big, i)
		r.bits &^= recBig
	}
	r.bits &= 1<<recMsShift - 1
	if seq >= 1<<48 || size >= 1<<32 || expiry/1000 >= 1<<32 {
		if p.big == nil {
			p.big = make(map[uint32]bigVals)
		}
		p.big[i] = bigVals{seq, size, expiry}
		r.bits |= recBig
		r.seqLo, r.seqHi, r.size, r.exp = 0, 0, 0, 0
		return
	}
	r.seqLo, r.seqHi = uint32(seq), uint16(seq>>32)
	r.size = uint32(size)
	r.exp = uint32(expiry / 1000)
	r.bits |= uint16(expiry%1000) << recMsShift
}

// keyArena stores each distinct key once: its length (one byte below
// 128, else two) and its bytes, padded to 2, in chunks of arenaChunk bytes
// that are only ever appended to. A reference is the offset in 2-byte
// units (8 GiB of keys at most: arenaMaxChunks). Bytes of keys no record
// holds any more are garbage until compactArena.
type keyArena struct {
	chunks  [][]byte
	used    uint64 // bytes allocated, chunk ends included
	garbage uint64
}

const (
	arenaChunkBit  = 20
	arenaChunk     = 1 << arenaChunkBit
	arenaMaxChunks = 1 << (32 + 1 - arenaChunkBit)
)

func keyFrame(n int) int {
	if n >= 128 {
		n++
	}
	return (1 + n + 1) &^ 1
}

// full reports whether a key of n bytes would not fit any more.
func (a *keyArena) full(n int) bool {
	c := len(a.chunks)
	return c >= arenaMaxChunks && len(a.chunks[c-1])+keyFrame(n) > arenaChunk
}

func (a *keyArena) add(key string) uint32 {
	n := keyFrame(len(key))
	c := len(a.chunks) - 1
	if c < 0 || len(a.chunks[c])+n > arenaChunk {
		if c >= 0 {
			a.used += uint64(arenaChunk - len(a.chunks[c]))
		}
		a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
		c++
	}
	ch := a.chunks[c]
	off := len(ch)
	if len(key) < 128 {
		ch = append(ch, byte(len(key)))
	} else {
		ch = append(ch, byte(len(key)>>8)|0x80, byte(len(key)))
	}
	ch = append(ch, key...)
	ch = ch[:off+n]
	a.chunks[c] = ch
	a.used += uint64(n)
	return uint32((c<<arenaChunkBit + off) >> 1)
}

// bytes returns the key's bytes in place (never to be modified).
func (a *keyArena) bytes(ref uint32) []byte {
	o := uint64(ref) << 1
	ch := a.chunks[o>>arenaChunkBit]
	off := int(o & (arenaChunk - 1))
	n := int(ch[off])
	off++
	if n >= 128 {
		n = (n&0x7f)<<8 | int(ch[off])
		off++
	}
	return ch[off : off+n]
}

// view is the key as a string sharing the arena's bytes. The bytes are
// never written over, so a view stays valid; but it keeps its whole chunk
// alive, so anything kept beyond a call gets a copy.
func (a *keyArena) view(ref uint32) string {
	b := a.bytes(ref)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (a *keyArena) drop(ref uint32) {
	a.garbage += uint64(keyFrame(len(a.bytes(ref))))
}

// keyTable maps a key to the first of its records: linear probing over
// record indices, at most 80 % of the slots used. Each slot has an 8-bit
// tag from the key's hash beside it, so a probe reads a key's bytes only
// when the tags agree (one in 256 otherwise): probing stays inside two
// sequential arrays instead of jumping to records and the arena.
type keyTable struct {
	seed  maphash.Seed
	slots []uint32
	tags  []uint8
	n     int
}

func (t *keyTable) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

func tagOf(h uint64) uint8 { return uint8(h) }

// findKey returns the slot holding key, or -1.
func (s *Store) findKey(key string) int {
	t := &s.ktab
	if len(t.slots) == 0 {
		return -1
	}
	h := maphash.String(t.seed, key)
	tag := tagOf(h)
	i := t.home(h)
	for {
		v := t.slots[i]
		if v == 0 {
			return -1
		}
		if t.tags[i] == tag && s.arena.view(s.recs.at(v).key) == key {
			return i
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// insertKey makes head the first record of a key not in the table.
func (s *Store) insertKey(key string, head uint32) {
	t := &s.ktab
	if (t.n+1)*100 > len(t.slots)*80 {
		s.growKeys()
	}
	t.place(maphash.String(t.seed, key), head)
	t.n++
}

func (t *keyTable) place(h uint64, v uint32) {
	i := t.home(h)
	for t.slots[i] != 0 {
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	t.slots[i], t.tags[i] = v, tagOf(h)
}

func (s *Store) growKeys() {
	t := &s.ktab
	old := t.slots
	n := max(64, (t.n+1)*100/60)
	t.slots, t.tags = make([]uint32, n), make([]uint8, n)
	for _, v := range old {
		if v != 0 {
			t.place(maphash.String(t.seed, s.arena.view(s.recs.at(v).key)), v)
		}
	}
}

// deleteKeySlot empties slot i and shifts the probe sequence back, so no
// tombstones accumulate in the table.
func (s *Store) deleteKeySlot(i int) {
	t := &s.ktab
	t.slots[i], t.tags[i] = 0, 0
	t.n--
	j := i
	for {
		if j++; j == len(t.slots) {
			j = 0
		}
		v := t.slots[j]
		if v == 0 {
			return
		}
		h := t.home(maphash.String(t.seed, s.arena.view(s.recs.at(v).key)))
		// v may move to i unless its home lies cyclically in (i, j].
		if (i <= j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			t.slots[i], t.tags[i] = v, t.tags[j]
			t.slots[j], t.tags[j] = 0, 0
			i = j
		}
	}
}

// compactArena copies the live keys into fresh chunks once garbage
// outweighs them, and points every record at the copies.
func (s *Store) compactArena() {
	a := &s.arena
	if a.garbage < 4*arenaChunk || a.garbage*2 < a.used {
		return
	}
	var na keyArena
	for _, head := range s.ktab.slots {
		if head == 0 {
			continue
		}
		ref := na.add(a.view(s.recs.at(head).key))
		for i := head; i != 0; i = s.recs.at(i).next {
			s.recs.at(i).key = ref
		}
	}
	*a = na
}

// oincTable interns (origin, incarnation) pairs: the records of one
// origin share a handful of incarnations (the current one, and older ones
// until their re-announcement ends), so a record holds a 4-byte index.
type oincTable struct {
	list []oinc
	idx  map[oincKey]uint32
	free []uint32
}

type oincKey struct {
	src uint32
	inc uint64
}

type oinc struct {
	oincKey
	refs uint32
}

func (t *oincTable) ref(src uint32, inc uint64) uint32 {
	k := oincKey{src, inc}
	if i, ok := t.idx[k]; ok {
		t.list[i].refs++
		return i
	}
	if t.idx == nil {
		t.idx = make(map[oincKey]uint32)
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.list[i] = oinc{k, 1}
	} else {
		i = uint32(len(t.list))
		t.list = append(t.list, oinc{k, 1})
	}
	t.idx[k] = i
	return i
}

func (t *oincTable) unref(i uint32) {
	o := &t.list[i]
	if o.refs--; o.refs == 0 {
		delete(t.idx, o.oincKey)
		t.free = append(t.free, i)
	}
}

// touchBits marks the records an operation named since their child unit's
// re-announcement began (ApplySync): one bit per record slot.
type touchBits []uint64

func (b *touchBits) set(i uint32) {
	w := int(i >> 6)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b)+len(*b)/8)...)
	}
	(*b)[w] |= 1 << (i & 63)
}

func (b touchBits) clear(i uint32) {
	if w := int(i >> 6); w < len(b) {
		b[w] &^= 1 << (i & 63)
	}
}

func (b touchBits) has(i uint32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(i&63)) != 0
}
