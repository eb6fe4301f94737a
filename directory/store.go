package directory

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// Store defaults.
const (
	DefaultMaxEntries      = 2 << 20
	DefaultMaxSources      = 65536
	DefaultTombstoneTTL    = 10 * time.Minute
	DefaultReannounceGrace = 30 * time.Second
	DefaultRate            = 20000 // operations per second per origin
	DefaultBurst           = 50000
	// DefaultMaxDigestBytes caps the child units' digests a store keeps.
	DefaultMaxDigestBytes = 1 << 30
	// maxApplyErrors bounds the errors one ApplyResult keeps.
	maxApplyErrors = 8
)

// StoreConfig configures a Store. Zero fields take the defaults.
type StoreConfig struct {
	// Level and Unit: the directory this store holds (Unit as cut by
	// Level.Unit). At LevelFarm an update's origin must be an SE of this
	// farm, and the SE must send its own entries.
	Level Level
	Unit  Location
	// MaxKey caps key length in bytes (default DefaultMaxKey, at most
	// wire.MaxKey).
	MaxKey int
	// MaxEntries caps the live entries; adds beyond it are refused and
	// counted (Counters.Full). MaxTombstones caps removal records kept
	// for keys this store never held (default MaxEntries).
	MaxEntries    int
	MaxTombstones int
	// MaxSources caps the origins remembered (default 65536); operations
	// of further origins are refused (Counters.WrongOrigin).
	MaxSources int
	// TombstoneTTL is how long a removal (or an expired entry) is
	// remembered, so that a late duplicate of an older add cannot bring
	// it back.
	TombstoneTTL time.Duration
	// ReannounceGrace: entries of an origin's older incarnation are
	// dropped when the new incarnation's re-announcement ends (SYNC_END),
	// or this long after the new incarnation was first seen.
	ReannounceGrace time.Duration
	// Rate and Burst: a token bucket of operations per origin; a group
	// beyond it is refused whole and counted (Counters.RateLimited). At
	// the farm level the Manager tells the SE (a VERDICT), which sends it
	// again later: give the SEs' publishers the same numbers
	// (PublisherConfig.Rate, Burst). Negative Rate disables the limit.
	Rate  float64
	Burst float64
	// MaxDigestBytes caps the bytes of the child units' digests held
	// (default DefaultMaxDigestBytes); a digest beyond it is refused.
	MaxDigestBytes int
	// OnChange, if set, sees every change of a record as it happens:
	// accepted operations (updates and snapshot merges), expiries and
	// sweeps. It is the feed issue 8's upward forwarder reads. It runs
	// under the store's lock: it must not block or call the Store.
	OnChange func(Change)
}

// ChangeReason says why a record changed.
type ChangeReason uint8

// Reasons.
const (
	ChangeApplied ChangeReason = 1 // an update's or a snapshot's operation
	ChangeExpired ChangeReason = 2 // its expiry passed (now a tombstone)
	ChangeSwept   ChangeReason = 3 // its origin restarted without it (record gone)
	// ChangeResynced: the child manager that forwards the record
	// re-announced its unit without it (record gone; ApplySync).
	ChangeResynced ChangeReason = 4
)

func (r ChangeReason) String() string {
	switch r {
	case ChangeApplied:
		return "applied"
	case ChangeExpired:
		return "expired"
	case ChangeSwept:
		return "swept"
	case ChangeResynced:
		return "resynced"
	}
	return fmt.Sprintf("ChangeReason(%d)", uint8(r))
}

// Change is one record's new state.
type Change struct {
	Reason  ChangeReason
	Key     string
	Origin  Location
	Version Version
	Removed bool
	Size    uint64
	Expiry  uint64 // Unix ms, 0 = never
	// WasLive: the record was held and not removed before this change
	// (a forwarder counts the live records behind a summary with it).
	WasLive bool
	// Synced, for ChangeSwept: the origin's incarnation whose
	// re-announcement ended (the parent level sweeps with it too).
	Synced uint64
}

func (s *Store) feeding() bool { return s.cfg.OnChange != nil || len(s.observers) > 0 }

// change describes record ri's state for the feed: build it before the
// record is dropped, emit it after, so observers see the store as changed.
func (s *Store) change(ri uint32, why ChangeReason, wasLive bool) Change {
	r := s.recs.at(ri)
	_, size, expiry := s.recs.values(ri)
	src := s.srcOf(ri)
	c := Change{Reason: why, Key: strings.Clone(s.arena.view(r.key)), Origin: src.loc, Version: s.version(ri),
		Removed: r.bits&recRemoved != 0 || why == ChangeSwept || why == ChangeResynced, Size: size, Expiry: expiry, WasLive: wasLive}
	if why == ChangeSwept {
		c.Synced = src.synced
	}
	return c
}

func (s *Store) emit(c Change) {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(c)
	}
	for _, o := range s.observers {
		o.f(c)
	}
}

func (s *Store) changed(ri uint32, why ChangeReason, wasLive bool) {
	if s.feeding() {
		s.emit(s.change(ri, why, wasLive))
	}
}

// observe adds f to the change feed and calls init under the same lock,
// so f sees every change after the state init saw. The returned function
// removes f.
func (s *Store) observe(f func(Change), init func()) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &observer{f: f}
	s.observers = append(s.observers, o)
	if init != nil {
		init()
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.observers = slices.DeleteFunc(s.observers, func(x *observer) bool { return x == o })
	}
}

type observer struct{ f func(Change) }

func (c *StoreConfig) fill() error {
	if c.Level == 0 {
		c.Level = LevelFarm
	}
	if c.Level > LevelPeering {
		return fmt.Errorf("%w: level %d", ErrInvalid, c.Level)
	}
	if c.MaxKey == 0 {
		c.MaxKey = DefaultMaxKey
	}
	if c.MaxKey < 1 || c.MaxKey > wire.MaxKey {
		return fmt.Errorf("%w: max key %d outside 1..%d", ErrInvalid, c.MaxKey, wire.MaxKey)
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxTombstones <= 0 {
		c.MaxTombstones = c.MaxEntries
	}
	if c.MaxSources <= 0 {
		c.MaxSources = DefaultMaxSources
	}
	if c.TombstoneTTL <= 0 {
		c.TombstoneTTL = DefaultTombstoneTTL
	}
	if c.MaxDigestBytes <= 0 {
		c.MaxDigestBytes = DefaultMaxDigestBytes
	}
	if c.ReannounceGrace <= 0 {
		c.ReannounceGrace = DefaultReannounceGrace
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
		if c.Level > LevelFarm {
			// Above the farm the origins' operations come from child
			// managers that already applied each SE's limit below, and a
			// re-announcement sends a whole SE's entries at once.
			c.Rate = -1
		}
	}
	if c.Burst <= 0 {
		c.Burst = max(DefaultBurst, c.Rate)
	}
	return nil
}

// liveAt reports whether record ri is live at nowMs (not removed, not
// past its expiry).
func (s *Store) liveAt(ri uint32, nowMs uint64) bool {
	if s.recs.at(ri).bits&recRemoved != 0 {
		return false
	}
	_, _, e := s.recs.values(ri)
	return e == 0 || e > nowMs
}

func (s *Store) removed(ri uint32) bool { return s.recs.at(ri).bits&recRemoved != 0 }

func (s *Store) version(ri uint32) Version {
	seq, _, _ := s.recs.values(ri)
	return Version{Incarnation: s.oincs.list[s.recs.at(ri).oi].inc, Seq: seq}
}

func (s *Store) srcOf(ri uint32) *source { return s.srcList[s.oincs.list[s.recs.at(ri).oi].src] }

// findRec returns the record of key held by src (0: none) and the key's
// table slot (-1: no record holds the key).
func (s *Store) findRec(src *source, key string) (uint32, int) {
	slot := s.findKey(key)
	if slot < 0 {
		return 0, -1
	}
	for ri := s.ktab.slots[slot]; ri != 0; ri = s.recs.at(ri).next {
		if s.oincs.list[s.recs.at(ri).oi].src == src.idx {
			return ri, slot
		}
	}
	return 0, slot
}

// eachRecord calls f for every record slot in use (f may drop the record).
func (s *Store) eachRecord(f func(ri uint32)) {
	for ri := uint32(1); ri < s.recs.n; ri++ {
		if s.recs.at(ri).bits&recInUse != 0 {
			f(ri)
		}
	}
}

// liveRecords counts the records of key that are not removed.
func (s *Store) liveRecords(key string) int {
	slot := s.findKey(key)
	if slot < 0 {
		return 0
	}
	n := 0
	for ri := s.ktab.slots[slot]; ri != 0; ri = s.recs.at(ri).next {
		if !s.removed(ri) {
			n++
		}
	}
	return n
}

// eachLiveKey calls f for every key with a record that is not removed,
// with their number; the key is a view, to be cloned if kept. Callers hold
// the lock.
func (s *Store) eachLiveKey(f func(key string, live int)) {
	for _, head := range s.ktab.slots {
		if head == 0 {
			continue
		}
		n := 0
		for ri := head; ri != 0; ri = s.recs.at(ri).next {
			if !s.removed(ri) {
				n++
			}
		}
		if n > 0 {
			f(s.arena.view(s.recs.at(head).key), n)
		}
	}
}

// source is what the store knows of one origin (an SE at the farm level).
type source struct {
	loc      Location
	inc      uint64    // highest incarnation seen
	synced   uint64    // highest incarnation whose re-announcement completed
	newIncAt time.Time // when inc went above synced
	down     bool
	idx      uint32 // in Store.srcList
	n        int    // records held (live and tombstones)
	tokens   float64
	tokAt    time.Time
	st       SourceCounters
}

// SourceCounters count what one origin sent.
type SourceCounters struct {
	Ops         uint64 // operations applied
	Stale       uint64 // duplicates and operations older than what is held
	Rejected    uint64 // bad keys, keys over the cap, entry cap reached
	RateLimited uint64 // operations dropped by the rate limit
}

// Counters are the store's totals since start; they only grow.
type Counters struct {
	Updates        uint64 // UPDATE messages applied
	Ops            uint64
	Stale          uint64
	Rejected       uint64
	RateLimited    uint64
	Full           uint64 // adds refused by MaxEntries
	WrongOrigin    uint64 // groups refused for their origin
	Expired        uint64 // entries turned into tombstones by their expiry
	TombstonesGone uint64 // tombstones forgotten after TombstoneTTL
	Swept          uint64 // entries of old incarnations dropped
	Merged         uint64 // snapshot records applied
	Resynced       uint64 // records dropped because their child unit re-announced without them
	Syncs          uint64 // re-announcements of child units completed (SYNC END applied)
	Digests        uint64 // DIGEST messages applied
	DigestStale    uint64 // DIGESTs of a generation older than held, or without their BEGIN
	DigestRefused  uint64 // DIGESTs refused: parameters that changed within a generation, over MaxDigestBytes
}

// Store is one level's directory: records per (key, origin), versioned per
// origin, with tombstones, expiry, caps and stable entry ids. It is safe
// for concurrent use; it does no I/O and keeps no clock (callers pass now).
type Store struct {
	cfg StoreConfig

	mu      sync.RWMutex
	sources map[Location]*source
	srcList []*source // by source index
	recs    recPages
	arena   keyArena
	ktab    keyTable
	oincs   oincTable
	ids     *idIndex
	// touched marks the records named since their child unit's SYNC
	// BEGIN (ApplySync).
	touched touchBits
	live    int
	tombs   int
	st      Counters
	timers  timerQueues
	// observers see changes like cfg.OnChange (forwarders).
	observers []*observer
	// feeders are the child units re-announcing.
	feeders map[Location]*feeder
	// digests are the child units' Bloom filters (digest policy).
	digests     map[Location]*unitDigest
	digestBytes int
}

// feeder is the re-announcement state of one child unit (ApplySync).
type feeder struct {
	gen  uint64
	open bool
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, sources: make(map[Location]*source), ids: &idIndex{},
		ktab: keyTable{seed: maphash.MakeSeed()}, feeders: make(map[Location]*feeder), digests: make(map[Location]*unitDigest)}, nil
}

// Config returns the filled configuration.
func (s *Store) Config() StoreConfig { return s.cfg }

// ApplyResult says what became of one update.
type ApplyResult struct {
	Applied, Stale, Rejected, RateLimited int
	// WrongOrigin counts the groups refused for their origin (their
	// operations are in Rejected).
	WrongOrigin int
	// RetryAfter, when RateLimited > 0: how long until the largest
	// refused group fits its origin's bucket (0 when it never can: it is
	// larger than Burst, the sender must split it).
	RetryAfter time.Duration
	// Errs are the first few reasons for refusals (wrapping ErrBadKey,
	// ErrKeyTooLong, ErrFull, ErrRateLimited, ErrWrongOrigin).
	Errs []error
}

func (r *ApplyResult) fail(err error) {
	if len(r.Errs) < maxApplyErrors {
		r.Errs = append(r.Errs, err)
	}
}

// Err joins the kept errors (nil when nothing was refused).
func (r *ApplyResult) Err() error { return errors.Join(r.Errs...) }

func (s *Store) source(loc Location) *source {
	src := s.sources[loc]
	if src == nil {
		src = &source{loc: loc, idx: uint32(len(s.srcList)), tokens: s.cfg.Burst}
		s.sources[loc] = src
		s.srcList = append(s.srcList, src)
	}
	return src
}

// checkOrigin enforces who may publish what: at the farm level an SE
// publishes only its own entries, under its current rmtp incarnation, and
// only inside this farm; above it, origins must lie inside this unit.
func (s *Store) checkOrigin(g *wire.Group, from uint32, fromInc uint64) error {
	if !Contains(s.cfg.Unit, g.Origin) {
		return fmt.Errorf("%w: %v is outside unit %v", ErrWrongOrigin, g.Origin, s.cfg.Unit)
	}
	if s.sources[g.Origin] == nil && len(s.sources) >= s.cfg.MaxSources {
		return fmt.Errorf("%w: %v would be origin number %d, over the cap", ErrWrongOrigin, g.Origin, len(s.sources)+1)
	}
	if s.cfg.Level == LevelFarm {
		if g.Origin.Engine != from || g.Origin.Engine == 0 {
			return fmt.Errorf("%w: node %d sent entries of %v", ErrWrongOrigin, from, g.Origin)
		}
		if g.Incarnation != fromInc {
			return fmt.Errorf("%w: node %d incarnation %d sent incarnation %d", ErrWrongOrigin, from, fromInc, g.Incarnation)
		}
	}
	return nil
}

// Apply applies an UPDATE received from node from (its rmtp incarnation
// fromInc) at now. Operations are applied in order; each is accepted only
// if its version is newer than what the store holds for (key, origin), so
// a duplicate or a late older one changes nothing and re-applying any
// update is harmless. Refusals are per operation (or per group for the
// origin check and the rate limit): other operations, and other origins,
// are not affected.
func (s *Store) Apply(u *wire.Update, from uint32, fromInc uint64, now time.Time) ApplyResult {
	var res ApplyResult
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Updates++
	for gi := range u.Groups {
		g := &u.Groups[gi]
		if err := s.checkOrigin(g, from, fromInc); err != nil {
			s.st.WrongOrigin++
			res.WrongOrigin++
			res.Rejected += len(g.Ops)
			s.st.Rejected += uint64(len(g.Ops))
			res.fail(err)
			continue
		}
		src := s.source(g.Origin)
		if wait, ok := s.allow(src, len(g.Ops), now); !ok {
			src.st.RateLimited += uint64(len(g.Ops))
			s.st.RateLimited += uint64(len(g.Ops))
			res.RateLimited += len(g.Ops)
			res.RetryAfter = max(res.RetryAfter, wait)
			res.fail(fmt.Errorf("%w: %v sent %d operations", ErrRateLimited, g.Origin, len(g.Ops)))
			continue
		}
		s.seeIncarnation(src, g.Incarnation, now)
		if g.Incarnation < src.synced {
			src.st.Stale += uint64(len(g.Ops))
			s.st.Stale += uint64(len(g.Ops))
			res.Stale += len(g.Ops)
			continue
		}
		for oi := range g.Ops {
			op := &g.Ops[oi]
			var err error
			switch op.Kind {
			case wire.OpAdd:
				err = s.put(src, op.Key, Version{g.Incarnation, op.Seq}, false, op.Size, op.Expiry, 0, now)
			case wire.OpRemove:
				err = s.put(src, op.Key, Version{g.Incarnation, op.Seq}, true, 0, 0, 0, now)
			default:
				err = fmt.Errorf("%w: operation %v", ErrBadKey, op.Kind)
			}
			switch {
			case err == nil:
				src.st.Ops++
				s.st.Ops++
				res.Applied++
			case errors.Is(err, errStale):
				src.st.Stale++
				s.st.Stale++
				res.Stale++
			default:
				src.st.Rejected++
				s.st.Rejected++
				res.Rejected++
				res.fail(fmt.Errorf("origin %v seq %d: %w", g.Origin, op.Seq, err))
			}
		}
		if g.Flags&wire.SyncEnd != 0 && g.Incarnation > src.synced {
			s.sweep(src, g.Incarnation)
		}
	}
	return res
}

// allow takes n tokens from src's bucket; when they are not there it
// says how long until they would be (0: never, n is over the burst).
func (s *Store) allow(src *source, n int, now time.Time) (time.Duration, bool) {
	if s.cfg.Rate < 0 {
		return 0, true
	}
	if !src.tokAt.IsZero() {
		src.tokens = min(s.cfg.Burst, src.tokens+now.Sub(src.tokAt).Seconds()*s.cfg.Rate)
	}
	src.tokAt = now
	if float64(n) > src.tokens {
		if float64(n) > s.cfg.Burst {
			return 0, false
		}
		return time.Duration((float64(n) - src.tokens) / s.cfg.Rate * float64(time.Second)), false
	}
	src.tokens -= float64(n)
	return 0, true
}

func (s *Store) seeIncarnation(src *source, inc uint64, now time.Time) {
	if inc > src.inc {
		src.inc = inc
		if src.synced != 0 || src.n > 0 {
			src.newIncAt = now
		} else {
			src.synced = inc // nothing older to wait for
		}
	}
}

var errStale = errors.New("directory: stale")

// put stores one version of (key, src). want is a preferred entry id.
func (s *Store) put(src *source, key string, v Version, removed bool, size, expiry uint64, want uint32, now time.Time) error {
	if err := CheckKey(key, s.cfg.MaxKey); err != nil {
		return err
	}
	ri, slot := s.findRec(src, key)
	if ri != 0 {
		s.touched.set(ri) // named by its child's re-announcement even when nothing changes
		if !s.version(ri).Less(v) {
			return errStale
		}
	}
	wasLive := ri != 0 && !s.removed(ri)
	if ri == 0 {
		if removed && s.tombs >= s.cfg.MaxTombstones {
			return nil // nothing held, no room to remember the removal: nothing to do
		}
		if !removed && s.live >= s.cfg.MaxEntries {
			s.st.Full++
			return fmt.Errorf("%w: %d entries", ErrFull, s.live)
		}
		if slot < 0 && s.arena.full(len(key)) {
			s.st.Full++
			return fmt.Errorf("%w: 8 GiB of keys", ErrFull)
		}
		ri = s.recs.alloc()
		r := s.recs.at(ri)
		r.bits = recInUse | recRemoved
		r.oi = s.oincs.ref(src.idx, v.Incarnation)
		if slot >= 0 {
			// The key is held by another origin: share it, first in its list.
			head := s.ktab.slots[slot]
			r.key, r.next = s.recs.at(head).key, head
			s.ktab.slots[slot] = ri
		} else {
			r.key = s.arena.add(key)
			s.insertKey(key, ri)
		}
		s.assignID(ri, key, src.loc, want)
		s.touched.set(ri)
		src.n++
		s.tombs++ // counted as a tombstone until made live below
	}
	r := s.recs.at(ri)
	if r.bits&recRemoved != 0 && !removed {
		if s.live >= s.cfg.MaxEntries {
			s.st.Full++
			return fmt.Errorf("%w: %d entries", ErrFull, s.live)
		}
		s.tombs--
		s.live++
	} else if r.bits&recRemoved == 0 && removed {
		s.live--
		s.tombs++
	}
	if o := s.oincs.list[r.oi]; o.inc != v.Incarnation {
		s.oincs.unref(r.oi)
		r.oi = s.oincs.ref(src.idx, v.Incarnation)
	}
	if removed {
		size, expiry = 0, 0
		r.bits |= recRemoved
	} else {
		r.bits &^= recRemoved
	}
	s.recs.setValues(ri, v.Seq, size, expiry)
	r.stored = unixSeconds(now)
	if removed {
		s.queueTombstone(ri, now)
	} else if expiry != 0 {
		s.queueExpiry(ri, expiry)
	}
	s.changed(ri, ChangeApplied, wasLive)
	return nil
}

func unixSeconds(t time.Time) uint32 { return uint32(min(max(t.Unix(), 0), 1<<32-1)) }

// drop forgets record ri entirely.
func (s *Store) drop(ri uint32) {
	r := s.recs.at(ri)
	if r.bits&recRemoved != 0 {
		s.tombs--
	} else {
		s.live--
	}
	// The source stays even when empty: its incarnation floor and rate
	// bucket must outlive its records (a few hundred bytes per SE ever seen).
	s.srcOf(ri).n--
	s.removeID(r.id)
	slot := s.findKey(s.arena.view(r.key))
	if head := s.ktab.slots[slot]; head == ri {
		if r.next == 0 {
			s.arena.drop(r.key)
			s.deleteKeySlot(slot)
		} else {
			s.ktab.slots[slot] = r.next
		}
	} else {
		p := s.recs.at(head)
		for p.next != ri {
			p = s.recs.at(p.next)
		}
		p.next = r.next
	}
	s.oincs.unref(r.oi)
	s.touched.clear(ri)
	s.recs.release(ri)
}

// dropChanged drops ri and reports it to the feed.
func (s *Store) dropChanged(ri uint32, why ChangeReason, wasLive bool) {
	if !s.feeding() {
		s.drop(ri)
		return
	}
	c := s.change(ri, why, wasLive)
	s.drop(ri)
	s.emit(c)
}

// sweep ends src's re-announcement at incarnation inc: what older
// incarnations held and the new one did not re-announce goes, and their
// operations are refused from now on.
func (s *Store) sweep(src *source, inc uint64) {
	src.synced = inc
	src.newIncAt = time.Time{}
	if src.n == 0 {
		return
	}
	s.eachRecord(func(ri uint32) {
		if o := s.oincs.list[s.recs.at(ri).oi]; o.src == src.idx && o.inc < inc {
			s.st.Swept++
			s.dropChanged(ri, ChangeSwept, !s.removed(ri))
		}
	})
}

// Maintain does the timed work: expired entries become tombstones,
// tombstones older than TombstoneTTL go, and origins whose new
// incarnation never finished re-announcing are swept after
// ReannounceGrace. It costs what is due (two timer queues), not a scan of
// the store, so it can run often at a million entries.
func (s *Store) Maintain(now time.Time) {
	nowMs := expiryMillis(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.sources {
		if src.inc > src.synced && !src.newIncAt.IsZero() && now.Sub(src.newIncAt) >= s.cfg.ReannounceGrace {
			s.sweep(src, src.inc)
		}
	}
	for {
		ri, ok := s.nextExpired(nowMs)
		if !ok {
			break
		}
		// Keep the version: a late copy of an older add must still lose.
		r := s.recs.at(ri)
		seq, _, _ := s.recs.values(ri)
		r.bits |= recRemoved
		s.recs.setValues(ri, seq, 0, 0)
		r.stored = unixSeconds(now)
		s.live--
		s.tombs++
		s.st.Expired++
		s.changed(ri, ChangeExpired, true)
		s.queueTombstone(ri, now)
	}
	for {
		ri, ok := s.nextTombstone(now.Add(-s.cfg.TombstoneTTL))
		if !ok {
			break
		}
		s.drop(ri)
		s.st.TombstonesGone++
	}
	s.compactTimers(s.live + s.tombs)
	s.compactArena()
}

// SetDown marks an origin down (its SE was declared down) or back up. Its
// entries stay: they are marked in lookups, not lost.
func (s *Store) SetDown(loc Location, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if src := s.sources[loc]; src != nil {
		src.down = down
	} else if down {
		s.source(loc).down = true
	}
}

// Hit is one location of a looked-up key.
type Hit struct {
	ID       uint32    `json:"id"`
	Location Location  `json:"location"`
	Size     uint64    `json:"size"`
	Version  Version   `json:"version"`
	Expiry   time.Time `json:"expiry,omitzero"` // zero: never
	Stored   time.Time `json:"stored"`          // when this node stored this version
	Down     bool      `json:"down"`            // the origin was declared down: the entry is kept but may be unreachable
	Hops     int       `json:"hops"`            // tree hops from the asking location
	// Maybe: the unit's digest matches the key (digest policy): it may be
	// there, and only the unit's manager can say (a false positive is a
	// miss there).
	Maybe bool `json:"maybe,omitempty"`
}

// Lookup returns the live locations of key, nearest first: origins that
// are up before those declared down, then fewest tree hops from from
// (Hops), then the lowest location (CDN, data center, farm, SE ids).
func (s *Store) Lookup(key string, from Location, now time.Time) []Hit {
	nowMs := expiryMillis(now)
	s.mu.RLock()
	var hits []Hit
	if slot := s.findKey(key); slot >= 0 {
		for ri := s.ktab.slots[slot]; ri != 0; ri = s.recs.at(ri).next {
			if !s.liveAt(ri, nowMs) {
				continue
			}
			hits = append(hits, s.hit(ri, from))
		}
	}
	s.mu.RUnlock()
	sortHits(hits)
	return hits
}

func (s *Store) hit(ri uint32, from Location) Hit {
	r := s.recs.at(ri)
	src := s.srcOf(ri)
	_, size, expiry := s.recs.values(ri)
	return Hit{ID: r.id, Location: src.loc, Size: size, Version: s.version(ri), Expiry: millisTime(expiry),
		Stored: time.Unix(int64(r.stored), 0), Down: src.down, Hops: Hops(from, src.loc)}
}

func compareLoc(a, b Location) int {
	for _, p := range [][2]uint32{{a.CDN, b.CDN}, {a.DataCenter, b.DataCenter}, {a.Farm, b.Farm}, {a.Engine, b.Engine}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// EntryInfo is one live entry, as smDirectoryTable and the CLI show it.
type EntryInfo struct {
	ID       uint32    `json:"id"` // stable entry id, 1..2^32-1
	Key      string    `json:"key"`
	Location Location  `json:"location"`
	Size     uint64    `json:"size"`
	Version  Version   `json:"version"`
	Expiry   time.Time `json:"expiry,omitzero"` // zero: never
	Stored   time.Time `json:"stored"`          // age = now - Stored
	Down     bool      `json:"down"`
}

// Entries returns up to limit live entries with ids above after, in id
// order (after = 0 starts at the beginning).
func (s *Store) Entries(after uint32, limit int, now time.Time) []EntryInfo {
	nowMs := expiryMillis(now)
	var out []EntryInfo
	if limit <= 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.afterID(after, func(ri uint32) bool {
		if s.liveAt(ri, nowMs) {
			h := s.hit(ri, Location{})
			out = append(out, EntryInfo{ID: h.ID, Key: strings.Clone(s.arena.view(s.recs.at(ri).key)), Location: h.Location,
				Size: h.Size, Version: h.Version, Expiry: h.Expiry, Stored: h.Stored, Down: h.Down})
		}
		return len(out) < limit
	})
	return out
}

// Count is the number of live entries (entries past their expiry count
// until the next Maintain).
func (s *Store) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

// Tombstones is the number of removal records held.
func (s *Store) Tombstones() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tombs
}

// Digest is the order-independent hash of the entries live at now.
func (s *Store) Digest(now time.Time) Digest {
	return s.DigestIn(Location{}, now)
}

// DigestIn is the digest of the live records whose origin lies inside
// unit (the zero Location: all): under the full policy a parent's digest
// of a child unit equals the child's own.
func (s *Store) DigestIn(unit Location, now time.Time) Digest {
	nowMs := expiryMillis(now)
	var d Digest
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.eachRecord(func(ri uint32) {
		if loc := s.srcOf(ri).loc; Contains(unit, loc) && s.liveAt(ri, nowMs) {
			s.digestAdd(&d, ri)
		}
	})
	return d
}

func (s *Store) digestAdd(d *Digest, ri uint32) {
	_, size, expiry := s.recs.values(ri)
	d.add(s.arena.view(s.recs.at(ri).key), s.srcOf(ri).loc, s.version(ri), size, expiry)
}

// Counters returns the totals.
func (s *Store) Counters() Counters {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// SourceInfo is what the store knows of one origin.
type SourceInfo struct {
	Location    Location
	Incarnation uint64
	Synced      uint64
	Down        bool
	Entries     int // live and tombstones
	SourceCounters
}

// Sources lists the origins, by location.
func (s *Store) Sources() []SourceInfo {
	s.mu.RLock()
	out := make([]SourceInfo, 0, len(s.sources))
	for _, src := range s.sources {
		out = append(out, SourceInfo{Location: src.loc, Incarnation: src.inc, Synced: src.synced, Down: src.down,
			Entries: src.n, SourceCounters: src.st})
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b SourceInfo) int { return compareLoc(a.Location, b.Location) })
	return out
}

// DigestOf is the digest of one origin's entries live at now: equal to
// that SE's Publisher.Digest once its operations have arrived.
func (s *Store) DigestOf(origin Location, now time.Time) Digest {
	nowMs := expiryMillis(now)
	var d Digest
	s.mu.RLock()
	defer s.mu.RUnlock()
	if src := s.sources[origin]; src != nil && src.n > 0 {
		s.eachRecord(func(ri uint32) {
			if s.srcOf(ri) == src && s.liveAt(ri, nowMs) {
				s.digestAdd(&d, ri)
			}
		})
	}
	return d
}

// ApplySync applies a child unit's SYNC marker (sent by its active
// manager's Forwarder around a re-announcement under the full policy). At
// BEGIN of a generation above the last one the store remembers the
// moment; at END of that generation it drops every record inside the
// unit that no operation named since BEGIN: the child no longer holds it
// (removed while the parent was cut off, after the child forgot the
// tombstone; or lost with a manager). Live records dropped this way are
// reported as ChangeResynced. It returns the records dropped. Markers of
// older generations, a repeated BEGIN and an END without its BEGIN do
// nothing, so re-sent markers are harmless.
func (s *Store) ApplySync(m *wire.Sync) (int, error) {
	if !Contains(s.cfg.Unit, m.Unit) || m.Unit == s.cfg.Unit {
		return 0, fmt.Errorf("%w: sync of unit %v outside unit %v", ErrWrongOrigin, m.Unit, s.cfg.Unit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeders[m.Unit]
	if f == nil {
		if len(s.feeders) >= s.cfg.MaxSources {
			return 0, fmt.Errorf("%w: sync of unit %v: too many units", ErrWrongOrigin, m.Unit)
		}
		f = &feeder{}
		s.feeders[m.Unit] = f
	}
	if !m.End {
		if m.Generation > f.gen {
			f.gen, f.open = m.Generation, true
			s.eachRecord(func(ri uint32) {
				if Contains(m.Unit, s.srcOf(ri).loc) {
					s.touched.clear(ri)
				}
			})
		}
		return 0, nil
	}
	if !f.open || m.Generation != f.gen {
		return 0, nil
	}
	f.open = false
	s.st.Syncs++
	n := 0
	s.eachRecord(func(ri uint32) {
		if !Contains(m.Unit, s.srcOf(ri).loc) || s.touched.has(ri) {
			return
		}
		n++
		if s.removed(ri) {
			s.drop(ri)
			return
		}
		s.st.Resynced++
		s.dropChanged(ri, ChangeResynced, true)
	})
	return n, nil
}

// sourceStates lists the origins' incarnation state (a forwarder's
// re-announcement sends it upward).
func (s *Store) sourceStates() []wire.Source {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]wire.Source, 0, len(s.sources))
	for _, src := range s.sources {
		out = append(out, wire.Source{Origin: src.loc, Incarnation: src.inc, Synced: src.synced})
	}
	return out
}
