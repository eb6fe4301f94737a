package directory

import (
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// Snapshot bounds.
const (
	// DefaultChunkBytes is the budget of one SNAPSHOT_CHUNK: well inside
	// rmtp's 1 MiB message cap, small enough that a chunk is a few hundred
	// segments and a lost one costs little.
	DefaultChunkBytes = 512 << 10
	// MinChunkBytes is the smallest budget a donor accepts: it must hold
	// the largest record and the source table's share.
	MinChunkBytes = 16 << 10
)

// Snapshot returns the records (live and tombstones) with ids above after,
// in id order, in at most maxBytes of encoding. The first chunk (after =
// 0) also carries the origins' incarnation state. Last is set when nothing
// follows; otherwise ask again with After = Next.
//
// A snapshot is not taken atomically: records that change between chunks
// are sent as they are when their chunk is built. That is enough because
// the receiver, already a member of the managers' group, gets every later
// update as well, and versions decide (Merge).
func (s *Store) Snapshot(after uint32, maxBytes int) wire.SnapshotChunk {
	maxBytes = max(maxBytes, MinChunkBytes)
	c := wire.SnapshotChunk{Next: after}
	size := wire.SnapshotChunkOverhead
	s.mu.RLock()
	defer s.mu.RUnlock()
	if after == 0 {
		for _, src := range s.sources {
			if size+wire.SourceLen > maxBytes/2 || len(c.Sources) == wire.MaxSources {
				break // the rest learn their incarnations from records and updates
			}
			c.Sources = append(c.Sources, wire.Source{Origin: src.loc, Incarnation: src.inc, Synced: src.synced})
			size += wire.SourceLen
		}
	}
	origins := make(map[struct {
		l Location
		i uint64
	}]bool)
	full := false
	s.afterID(after, func(ri uint32) bool {
		r := s.recs.at(ri)
		loc, ver := s.srcOf(ri).loc, s.version(ri)
		_, rsize, expiry := s.recs.values(ri)
		// The key is a view of the arena: the chunk is encoded before the
		// bytes could go (arena chunks are never written over).
		rec := wire.Record{ID: r.id, Origin: loc, Incarnation: ver.Incarnation, Seq: ver.Seq, Removed: r.bits&recRemoved != 0,
			Key: s.arena.view(r.key), Size: rsize, Expiry: expiry}
		n := wire.RecordLen(&rec)
		ok := struct {
			l Location
			i uint64
		}{loc, ver.Incarnation}
		if !origins[ok] {
			n += wire.OriginLen
		}
		if size+n > maxBytes || len(c.Records) == wire.MaxRecords || (!origins[ok] && len(origins) == wire.MaxOrigins) {
			full = true
			return false
		}
		origins[ok] = true
		size += n
		c.Records = append(c.Records, rec)
		c.Next = r.id
		return true
	})
	c.Last = !full
	return c
}

// Merge applies one snapshot chunk received from a donor: records win only
// with a newer version than what is held, exactly as updates do, so chunks
// and live updates can interleave in any order and the result is the same.
// Donor ids are kept where free, so SNMP rows keep their index across a
// failover. Merge bypasses the origin check and the rate limit (the donor
// already applied them) but not the key check or the caps.
func (s *Store) Merge(c *wire.SnapshotChunk, now time.Time) ApplyResult {
	var res ApplyResult
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, so := range c.Sources {
		if !Contains(s.cfg.Unit, so.Origin) || (s.sources[so.Origin] == nil && len(s.sources) >= s.cfg.MaxSources) {
			continue
		}
		src := s.source(so.Origin)
		src.inc = max(src.inc, so.Incarnation)
		if so.Synced > src.synced {
			s.sweep(src, so.Synced)
		}
		if src.inc > src.synced && src.newIncAt.IsZero() {
			src.newIncAt = now // the donor is still waiting for SYNC_END; so are we
		}
	}
	for i := range c.Records {
		rec := &c.Records[i]
		if !Contains(s.cfg.Unit, rec.Origin) || (s.sources[rec.Origin] == nil && len(s.sources) >= s.cfg.MaxSources) {
			res.Rejected++
			continue
		}
		src := s.source(rec.Origin)
		s.seeIncarnation(src, rec.Incarnation, now)
		if rec.Incarnation < src.synced {
			res.Stale++
			continue
		}
		err := s.put(src, rec.Key, Version{rec.Incarnation, rec.Seq}, rec.Removed, rec.Size, rec.Expiry, rec.ID, now)
		switch {
		case err == nil:
			res.Applied++
			s.st.Merged++
		case err == errStale:
			res.Stale++
		default:
			res.Rejected++
			res.fail(err)
		}
	}
	return res
}
