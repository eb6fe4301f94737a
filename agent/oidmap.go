package agent

import "github.com/smsnmpd/smsnmpd/internal/smi"

// oidMap is an ordered map from OID to V: a skip list, so inserting,
// deleting and seeking are O(log n) expected and registering 100,000 objects
// or rows one by one stays O(n log n). It is not safe for concurrent use;
// owners guard it.
type oidMap[V any] struct {
	head  oidNode[V]
	level int
	n     int
	rnd   uint64
	// steps counts nodes visited by inserts and deletes; tests use it to
	// prove the map stays logarithmic without timing anything.
	steps uint64
}

type oidNode[V any] struct {
	key  smi.OID
	val  V
	next []*oidNode[V]
}

const oidMapMaxLevel = 24 // 4^24 elements before the expected search cost grows

func newOIDMap[V any]() *oidMap[V] {
	m := &oidMap[V]{level: 1, rnd: 0x9e3779b97f4a7c15}
	m.head.next = make([]*oidNode[V], oidMapMaxLevel)
	return m
}

func (m *oidMap[V]) Len() int { return m.n }

// randomLevel draws a level with P(level > k) = 4^-k (xorshift: no global
// rand state and deterministic, which is fine for a skip list).
func (m *oidMap[V]) randomLevel() int {
	m.rnd ^= m.rnd << 13
	m.rnd ^= m.rnd >> 7
	m.rnd ^= m.rnd << 17
	r, lvl := m.rnd, 1
	for lvl < oidMapMaxLevel && r&3 == 0 {
		lvl++
		r >>= 2
	}
	return lvl
}

// preds fills update with, at every level, the last node whose key < key.
func (m *oidMap[V]) preds(key smi.OID, update []*oidNode[V]) *oidNode[V] {
	x := &m.head
	for i := m.level - 1; i >= 0; i-- {
		for x.next[i] != nil && x.next[i].key.Compare(key) < 0 {
			x = x.next[i]
			if update != nil { // writers only: readers share the map
				m.steps++
			}
		}
		if update != nil {
			update[i] = x
		}
	}
	return x
}

// Set inserts or replaces key; it reports whether key was new.
func (m *oidMap[V]) Set(key smi.OID, v V) bool {
	var update [oidMapMaxLevel]*oidNode[V]
	p := m.preds(key, update[:])
	if n := p.next[0]; n != nil && n.key.Equal(key) {
		n.val = v
		return false
	}
	lvl := m.randomLevel()
	if lvl > m.level {
		for i := m.level; i < lvl; i++ {
			update[i] = &m.head
		}
		m.level = lvl
	}
	n := &oidNode[V]{key: key, val: v, next: make([]*oidNode[V], lvl)}
	for i := 0; i < lvl; i++ {
		n.next[i] = update[i].next[i]
		update[i].next[i] = n
	}
	m.n++
	return true
}

// Delete removes key and reports whether it was present.
func (m *oidMap[V]) Delete(key smi.OID) bool {
	var update [oidMapMaxLevel]*oidNode[V]
	p := m.preds(key, update[:])
	n := p.next[0]
	if n == nil || !n.key.Equal(key) {
		return false
	}
	for i := 0; i < len(n.next); i++ {
		if update[i].next[i] == n {
			update[i].next[i] = n.next[i]
		}
	}
	for m.level > 1 && m.head.next[m.level-1] == nil {
		m.level--
	}
	m.n--
	return true
}

// Get returns the value stored at key.
func (m *oidMap[V]) Get(key smi.OID) (V, bool) {
	if n := m.preds(key, nil).next[0]; n != nil && n.key.Equal(key) {
		return n.val, true
	}
	var zero V
	return zero, false
}

// Ceil returns the first node whose key is >= key (> key when !include).
func (m *oidMap[V]) Ceil(key smi.OID, include bool) *oidNode[V] {
	n := m.preds(key, nil).next[0]
	if n != nil && !include && n.key.Equal(key) {
		n = n.next[0]
	}
	return n
}

// Floor returns the last node whose key is <= key, or nil.
func (m *oidMap[V]) Floor(key smi.OID) *oidNode[V] {
	p := m.preds(key, nil)
	if n := p.next[0]; n != nil && n.key.Equal(key) {
		return n
	}
	if p == &m.head {
		return nil
	}
	return p
}

// First returns the smallest node, or nil.
func (m *oidMap[V]) First() *oidNode[V] { return m.head.next[0] }

// Next returns the node after n.
func (n *oidNode[V]) Next() *oidNode[V] { return n.next[0] }
