package fanout

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// maxSnapshots bounds the number of cached snapshots whatever their size.
const maxSnapshots = 256

// Snapshot is one walk of a subtree on a set of engines, taken by one
// multicast transaction and served from memory for SnapshotTTL: net-snmp
// turns a GETBULK into one AgentX GetNext per varbind, and each of those
// must not cost a multicast.
type Snapshot struct {
	Root   smi.OID
	Taken  time.Time
	Result *Result // per engine, the instances under Root in OID order
}

// VarBinds returns one engine's instances under Root (nil if it did not
// answer).
func (s *Snapshot) VarBinds(engine NodeID) []smi.VarBind {
	if r := s.Result.Reply(engine); r != nil && r.Status == StatusOK {
		return r.VarBinds
	}
	return nil
}

// Truncated reports whether the engine's instances were cut at the walk
// cap (the subtree goes on beyond the last one).
func (s *Snapshot) Truncated(engine NodeID) bool {
	r := s.Result.Reply(engine)
	return r != nil && r.Truncated
}

// Next returns the first instance of engine inside r, or false.
func (s *Snapshot) Next(engine NodeID, r smi.Range) (smi.VarBind, bool) {
	vbs := s.VarBinds(engine)
	i, found := slices.BinarySearchFunc(vbs, r.Start, func(vb smi.VarBind, o smi.OID) int { return vb.Name.Compare(o) })
	if found && !r.Include {
		i++
	}
	if i >= len(vbs) || (len(r.End) > 0 && vbs[i].Name.Compare(r.End) >= 0) {
		return smi.VarBind{}, false
	}
	return vbs[i], true
}

type snapEntry struct {
	key     string
	ready   chan struct{}
	snap    *Snapshot
	err     error
	expires time.Time
	size    int
}

type snapCache struct {
	entries map[string]*snapEntry
	size    int // varbinds held
}

func newSnapCache() snapCache { return snapCache{entries: make(map[string]*snapEntry)} }

func snapKey(targets []NodeID, root smi.OID) string {
	var b strings.Builder
	if targets == nil {
		b.WriteString("*")
	} else {
		ids := slices.Clone(targets)
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			b.WriteString(strconv.FormatUint(uint64(id), 10))
			b.WriteByte(',')
		}
	}
	b.WriteByte('|')
	b.WriteString(root.String())
	return b.String()
}

// Snapshot returns a walk of root on targets (nil: every engine), from the
// cache when one younger than SnapshotTTL exists; concurrent callers for
// the same key share one transaction.
func (c *Coordinator) Snapshot(ctx context.Context, targets []NodeID, root smi.OID) (*Snapshot, error) {
	key := snapKey(targets, root)
	now := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if e := c.snaps.entries[key]; e != nil {
		select {
		case <-e.ready:
			if now.Before(e.expires) {
				c.cnt.SnapshotHits++
				c.mu.Unlock()
				return e.snap, nil
			}
			c.snaps.dropLocked(e)
		default:
			c.cnt.SnapshotHits++
			c.mu.Unlock()
			select {
			case <-e.ready:
				return e.snap, e.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	e := &snapEntry{key: key, ready: make(chan struct{})}
	c.snaps.entries[key] = e
	c.cnt.SnapshotMisses++
	c.mu.Unlock()

	res, err := c.Walk(ctx, targets, []smi.OID{root}, 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(e.ready)
	if err != nil {
		e.err = err
		c.snaps.dropLocked(e)
		return nil, err
	}
	e.snap = &Snapshot{Root: root.Clone(), Taken: now, Result: res}
	e.expires = now.Add(c.cfg.SnapshotTTL)
	for _, r := range res.Replies {
		e.size += len(r.VarBinds)
	}
	if c.snaps.entries[key] != e { // invalidated meanwhile: serve it once, keep nothing
		return e.snap, nil
	}
	c.snaps.size += e.size
	c.snaps.evictLocked(c.cfg.SnapshotMemory, time.Now())
	return e.snap, nil
}

// InvalidateSnapshots drops every cached snapshot (after a SET changed
// values on the engines).
func (c *Coordinator) InvalidateSnapshots() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.snaps.entries {
		c.snaps.dropLocked(e)
	}
}

func (sc *snapCache) dropLocked(e *snapEntry) {
	if sc.entries[e.key] == e {
		delete(sc.entries, e.key)
		sc.size -= e.size
	}
}

// evictLocked drops expired snapshots, then the oldest ones, until the
// cache fits its bounds. Snapshots still being taken are never dropped.
func (sc *snapCache) evictLocked(memory int, now time.Time) {
	var done []*snapEntry
	for _, e := range sc.entries {
		if e.snap == nil {
			continue
		}
		if !now.Before(e.expires) {
			sc.dropLocked(e)
			continue
		}
		done = append(done, e)
	}
	if sc.size <= memory && len(sc.entries) <= maxSnapshots {
		return
	}
	slices.SortFunc(done, func(a, b *snapEntry) int { return a.expires.Compare(b.expires) })
	for _, e := range done {
		if sc.size <= memory && len(sc.entries) <= maxSnapshots {
			return
		}
		sc.dropLocked(e)
	}
}
