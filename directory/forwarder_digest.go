package directory

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// Digest policy defaults.
const (
	// DefaultMinDigestKeys is the smallest key count a digest is sized
	// for, so an empty or small unit does not rebuild at every doubling.
	DefaultMinDigestKeys = 1024
	// digestPieceBytes is the bitset carried by one DIGEST of a full send.
	digestPieceBytes = 256 << 10
)

// digestState is a forwarder's side of the digest policy: a counting
// Bloom filter of the keys of its store that have a live record, sized for
// capKeys keys at the configured rate, rebuilt (new seed, full send) when
// the keys reach twice that. Positions whose bit flipped since they were
// last sent wait in dirty; a DIGEST sends their current value, so flips
// back and forth coalesce.
//
// Why flipped positions and not a blocked filter's changed blocks: an
// added key changes at most k = 7 bits, about 3.5 of them flips at half
// fill, 4 bytes each; a blocked filter would resend the key's whole block
// (64 bytes for a 512-bit block) for every change, and at 1,000 updates
// per second the blocks of one batch rarely coincide. The child pays for
// it with a 4-bit counter per bit (about 4.8 bytes per key at 1 %).
type digestState struct {
	fp       float64
	minKeys  int
	cb       *countingBloom
	capKeys  int
	keys     int
	dirty    map[uint32]struct{}
	gen      uint64 // of the last full send
	buf      []uint32
	rebuilds uint64
	// During a rebuild (off the store's lock): the keys that changed
	// since the rebuild's snapshot, with whether each was live in it.
	building bool
	changed  map[string]bool
	// testHold, if set, runs in a rebuild between the snapshot and the
	// settling (tests: changes land in between).
	testHold func()
}

// build sizes and fills the filter from the store's live keys (under the
// store's lock).
func (d *digestState) build(s *Store) {
	n := 0
	s.eachLiveKey(func(string, int) { n++ })
	d.capKeys = max(n, d.minKeys)
	m, k := bloomSize(d.capKeys, d.fp)
	d.cb = newCountingBloom(bloomParams{k: k, seed: rand.Uint64(), m: m})
	d.keys = 0
	s.eachLiveKey(func(key string, _ int) {
		d.buf = d.cb.add(key, d.buf, nil)
		d.keys++
	})
	clear(d.dirty)
}

// onDigestChange is the digest policy's feed (under the store's lock): a
// key entering (its first live record) or leaving (its last) the unit
// counts in or out.
func (f *Forwarder) onDigestChange(c Change) {
	d := 0
	switch live := !c.Removed; {
	case live && !c.WasLive:
		d = 1
	case !live && c.WasLive:
		d = -1
	}
	if d == 0 {
		return
	}
	n := f.store.liveRecords(c.Key)
	dg := f.dg
	if dg.building {
		if _, seen := dg.changed[c.Key]; !seen {
			dg.changed[strings.Clone(c.Key)] = d == -1 // leaving now: it was live at the snapshot
		}
	}
	flip := func(i uint32) {
		if f.active && !f.needResync {
			dg.dirty[i] = struct{}{}
		}
	}
	switch {
	case d == 1 && n == 1:
		dg.keys++
		dg.buf = dg.cb.add(c.Key, dg.buf, flip)
		if dg.keys >= 2*dg.capKeys && !dg.building {
			f.startRebuild()
		}
	case d == -1 && n == 0:
		dg.keys--
		dg.buf = dg.cb.remove(c.Key, dg.buf, flip)
	default:
		return
	}
	if len(dg.dirty) > f.cfg.MaxQueue {
		f.st.Overflows++
		f.resyncLocked()
		return
	}
	if len(dg.dirty) > 0 {
		f.kick()
	}
}

// startRebuild sizes a new filter for the keys there are now and fills
// it off the store's lock (hashing 10^7 keys takes seconds): it takes
// the keys as views (the arena never writes over them) under the lock,
// which the feed holds here, and the changes from then on are noted in
// changed; the old filter keeps serving until the new one replaces it.
func (f *Forwarder) startRebuild() {
	dg := f.dg
	keys := make([]string, 0, dg.keys)
	f.store.eachLiveKey(func(k string, _ int) { keys = append(keys, k) })
	dg.building, dg.changed = true, make(map[string]bool)
	f.wg.Add(1)
	go f.rebuild(keys)
}

func (f *Forwarder) rebuild(keys []string) {
	defer f.wg.Done()
	dg := f.dg
	capKeys := max(len(keys), dg.minKeys)
	m, k := bloomSize(capKeys, dg.fp)
	nb := newCountingBloom(bloomParams{k: k, seed: rand.Uint64(), m: m})
	var buf []uint32
	for i, key := range keys {
		if i%4096 == 0 && f.ctx.Err() != nil {
			return
		}
		buf = nb.add(key, buf, nil)
	}
	if dg.testHold != nil {
		dg.testHold()
	}
	// The store's lock first, as the feed takes them: the changes since
	// the snapshot are settled against what the store holds now.
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, wasLive := range dg.changed {
		switch live := f.store.liveRecords(key) > 0; {
		case wasLive && !live:
			buf = nb.remove(key, buf, nil)
		case !wasLive && live:
			buf = nb.add(key, buf, nil)
		}
	}
	dg.cb, dg.capKeys, dg.building, dg.changed = nb, capKeys, false, nil
	dg.rebuilds++
	f.resyncLocked()
	f.log.WithFields(map[string]any{"keys": dg.keys, "bits": m, "hashes": k}).Info("directory: digest rebuilt for twice its keys")
}

// resyncLocked asks for a full send (when active).
func (f *Forwarder) resyncLocked() {
	clear(f.dg.dirty)
	if f.active {
		f.needResync = true
		f.kick()
	}
}

func (f *Forwarder) digestHead(flags wire.DigestFlags) wire.Digest {
	cb := f.dg.cb
	return wire.Digest{Level: uint8(f.level), Flags: flags, Unit: f.unit, Generation: f.dg.gen, Algorithm: wire.DigestFNVKM,
		Hashes: cb.k, Seed: cb.seed, Bits: cb.m, Keys: uint64(f.dg.keys)}
}

// takeDigestLocked encodes the next DIGEST of changed positions.
func (f *Forwarder) takeDigestLocked() []byte {
	d := f.digestHead(0)
	room := max((f.cfg.MaxBatchBytes-wire.DigestOverhead)/4, 1)
	for i := range f.dg.dirty {
		if room == 0 {
			break
		}
		room--
		delete(f.dg.dirty, i)
		if f.dg.cb.bit(i) {
			d.Set = append(d.Set, i)
		} else {
			d.Clear = append(d.Clear, i)
		}
	}
	slices.Sort(d.Set)
	slices.Sort(d.Clear)
	b, err := wire.AppendDigest(nil, &d)
	if err != nil { // positions come from the filter: a bug, not input
		f.log.WithError(err).Error("directory: encoding a digest")
		return nil
	}
	return b
}

// resyncDigest sends the whole filter as generation gen, piece by piece,
// each computed from the counters when it goes; flips meanwhile wait in
// dirty and follow END (positions are absolute values, so one already
// carried by a later piece is merely sent twice). A rebuild meanwhile
// abandons the send: the next one starts.
func (f *Forwarder) resyncDigest(ctx context.Context, gen uint64) bool {
	f.mu.Lock()
	f.dg.gen = gen
	clear(f.dg.dirty)
	p := f.dg.cb.bloomParams
	f.mu.Unlock()
	total := int((p.m + 7) / 8)
	for off := 0; ; {
		f.mu.Lock()
		if f.dg.cb.bloomParams != p || f.dg.gen != gen {
			f.mu.Unlock()
			return false
		}
		n := min(digestPieceBytes, total-off)
		var flags wire.DigestFlags
		if off == 0 {
			flags |= wire.DigestBegin
		}
		if off+n == total {
			flags |= wire.DigestEnd
		}
		d := f.digestHead(flags)
		d.Offset, d.Piece = uint32(off), make([]byte, n)
		f.dg.cb.bitsAt(off, d.Piece)
		f.mu.Unlock()
		b, err := wire.AppendDigest(nil, &d)
		if err != nil {
			f.log.WithError(err).Error("directory: encoding a digest")
			return false
		}
		if !f.deliver(ctx, b, 0) {
			return false
		}
		if off += n; off == total {
			return true
		}
	}
}
