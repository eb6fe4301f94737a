package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sync"
)

// Key sizes.
const (
	// MinKeyLen is the shortest key a Keyring accepts (128 bits).
	MinKeyLen = 16
	// MaxKeyLen caps a key (SHA-256's block size; longer keys are hashed
	// by HMAC anyway and buy nothing).
	MaxKeyLen = 64
	// InsecureKeyID marks a datagram that carries no authentication (its
	// tag is all zero). Only an endpoint configured insecure accepts it.
	InsecureKeyID uint16 = 0
)

// Keyring holds the group keys by key id. It signs with the current key and
// accepts every key it holds, so a new key can be rolled in beside the old
// one: install the new key everywhere (accepted, not yet used), then make it
// current everywhere, then remove the old one. A Keyring is immutable and
// safe for concurrent use.
type Keyring struct {
	current uint16
	keys    map[uint16]*key
}

// key keeps HMAC states ready for reuse: building one costs two extra
// SHA-256 blocks and allocations, as much as hashing a small datagram.
// Reset returns a state to its keyed start without hashing the key again.
type key struct {
	secret []byte
	macs   sync.Pool // of *macState
}

// macState is one reusable HMAC with room for its sum, so that computing
// a tag allocates nothing.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newKey(secret []byte) *key {
	k := &key{secret: slices.Clone(secret)}
	k.macs.New = func() any { return &macState{h: hmac.New(sha256.New, k.secret)} }
	return k
}

// sign writes the truncated HMAC of b into tag.
func (k *key) sign(tag, b []byte) {
	m := k.macs.Get().(*macState)
	m.h.Reset()
	m.h.Write(b)
	copy(tag, m.h.Sum(m.sum[:0]))
	k.macs.Put(m)
}

// verify reports whether tag is the truncated HMAC of b, in constant time.
func (k *key) verify(tag, b []byte) bool {
	m := k.macs.Get().(*macState)
	m.h.Reset()
	m.h.Write(b)
	ok := hmac.Equal(tag, m.h.Sum(m.sum[:0])[:TagLen])
	k.macs.Put(m)
	return ok
}

// NewKeyring returns a keyring that signs with key id current. Key ids are
// 1..65535 (0 is InsecureKeyID).
func NewKeyring(current uint16, keys map[uint16][]byte) (*Keyring, error) {
	kr := &Keyring{current: current, keys: make(map[uint16]*key, len(keys))}
	for id, k := range keys {
		if id == InsecureKeyID {
			return nil, fmt.Errorf("%w: key id 0 is reserved", ErrMalformed)
		}
		if len(k) < MinKeyLen || len(k) > MaxKeyLen {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want %d..%d", ErrMalformed, id, len(k), MinKeyLen, MaxKeyLen)
		}
		kr.keys[id] = newKey(k)
	}
	if _, ok := kr.keys[current]; !ok {
		return nil, fmt.Errorf("%w: current key id %d", ErrNoKey, current)
	}
	return kr, nil
}

// Current returns the key id used for signing.
func (kr *Keyring) Current() uint16 { return kr.current }

// IDs returns the key ids held, ascending.
func (kr *Keyring) IDs() []uint16 {
	ids := make([]uint16, 0, len(kr.keys))
	for id := range kr.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Sign writes the key id into the datagram built by AppendPacket and fills
// its tag in: HMAC-SHA256 over header and payload. A nil keyring leaves the
// datagram unauthenticated (key id 0, zero tag).
func (kr *Keyring) Sign(dgram []byte) {
	if len(dgram) < Overhead {
		panic("rmtp/wire: Sign on a datagram shorter than its overhead")
	}
	body := dgram[:len(dgram)-TagLen]
	if kr == nil {
		binary.BigEndian.PutUint16(dgram[6:], InsecureKeyID)
		clear(dgram[len(dgram)-TagLen:])
		return
	}
	binary.BigEndian.PutUint16(dgram[6:], kr.current)
	kr.keys[kr.current].sign(dgram[len(body):], body)
}

// Open decodes a datagram and checks its tag before returning anything
// from it. With a nil keyring it accepts only unauthenticated datagrams
// (key id 0); with a keyring only datagrams signed by one of its keys. A
// datagram that fails is reported with ErrAuth or ErrNoKey and must be
// dropped.
func (kr *Keyring) Open(dgram []byte) (Packet, error) {
	p, err := ParsePacket(dgram)
	if err != nil {
		return Packet{}, err
	}
	got := dgram[len(dgram)-TagLen:]
	if kr == nil {
		if p.KeyID != InsecureKeyID {
			return Packet{}, fmt.Errorf("%w: key id %d on an insecure endpoint", ErrNoKey, p.KeyID)
		}
		for _, c := range got {
			if c != 0 {
				return Packet{}, fmt.Errorf("%w: tag on an unauthenticated datagram", ErrAuth)
			}
		}
		return p, nil
	}
	k, ok := kr.keys[p.KeyID]
	if !ok {
		return Packet{}, fmt.Errorf("%w: %d", ErrNoKey, p.KeyID)
	}
	if !k.verify(got, dgram[:len(dgram)-TagLen]) {
		return Packet{}, fmt.Errorf("%w: tag mismatch (key id %d)", ErrAuth, p.KeyID)
	}
	return p, nil
}
