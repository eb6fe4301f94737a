package directory

import (
	"errors"
	"fmt"
	"slices"
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

func (s *Store) changed(r *record, why ChangeReason, wasLive bool) {
	if s.cfg.OnChange == nil && len(s.observers) == 0 {
		return
	}
	c := Change{Reason: why, Key: r.key, Origin: r.loc, Version: r.ver, Removed: r.removed || why == ChangeSwept || why == ChangeResynced,
		Size: r.size, Expiry: r.expiry, WasLive: wasLive}
	if why == ChangeSwept {
		if src := s.sources[r.loc]; src != nil {
			c.Synced = src.synced
		}
	}
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(c)
	}
	for _, o := range s.observers {
		o.f(c)
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

// record is one (key, origin) pair: live, or a tombstone.
type record struct {
	id      uint32
	key     string
	loc     Location
	ver     Version
	size    uint64
	expiry  uint64 // Unix ms, 0 never
	removed bool
	gone    bool   // dropped from the store; timer queue items skip it
	stored  int64  // Unix ns when this node stored the current version (no pointer for the GC to chase, unlike time.Time)
	touched uint64 // Store.tick when an operation last named this record (ApplySync)
}

func (r *record) liveAt(nowMs uint64) bool {
	return !r.removed && (r.expiry == 0 || r.expiry > nowMs)
}

// source is what the store knows of one origin (an SE at the farm level).
type source struct {
	loc      Location
	inc      uint64    // highest incarnation seen
	synced   uint64    // highest incarnation whose re-announcement completed
	newIncAt time.Time // when inc went above synced
	down     bool
	recs     map[string]*record
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
}

// Store is one level's directory: records per (key, origin), versioned per
// origin, with tombstones, expiry, caps and stable entry ids. It is safe
// for concurrent use; it does no I/O and keeps no clock (callers pass now).
type Store struct {
	cfg StoreConfig

	mu      sync.RWMutex
	sources map[Location]*source
	keys    map[string][]*record
	ids     *idIndex
	live    int
	tombs   int
	st      Counters
	timers  timerQueues
	// observers see changes like cfg.OnChange (forwarders).
	observers []*observer
	// tick counts SYNC BEGINs; feeders are the child units re-announcing.
	tick    uint64
	feeders map[Location]*feeder
}

// feeder is the re-announcement state of one child unit (ApplySync).
type feeder struct {
	gen   uint64
	begin uint64 // tick at BEGIN
	open  bool
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, sources: make(map[Location]*source), keys: make(map[string][]*record), ids: newIDIndex(),
		feeders: make(map[Location]*feeder)}, nil
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
		src = &source{loc: loc, recs: make(map[string]*record), tokens: s.cfg.Burst}
		s.sources[loc] = src
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
		if src.synced != 0 || len(src.recs) > 0 {
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
	r := src.recs[key]
	if r != nil {
		r.touched = s.tick // named by its child's re-announcement even when nothing changes
		if !r.ver.Less(v) {
			return errStale
		}
	}
	wasLive := r != nil && !r.removed
	if r == nil {
		if removed && s.tombs >= s.cfg.MaxTombstones {
			return nil // nothing held, no room to remember the removal: nothing to do
		}
		if !removed && s.live >= s.cfg.MaxEntries {
			s.st.Full++
			return fmt.Errorf("%w: %d entries", ErrFull, s.live)
		}
		r = &record{key: key, loc: src.loc, removed: true, touched: s.tick}
		s.ids.assign(r, want)
		src.recs[key] = r
		s.keys[key] = append(s.keys[key], r)
		s.tombs++ // counted as a tombstone until made live below
	}
	if r.removed && !removed {
		if s.live >= s.cfg.MaxEntries {
			s.st.Full++
			return fmt.Errorf("%w: %d entries", ErrFull, s.live)
		}
		s.tombs--
		s.live++
	} else if !r.removed && removed {
		s.live--
		s.tombs++
	}
	r.ver, r.removed, r.size, r.expiry, r.stored = v, removed, size, expiry, now.UnixNano()
	if removed {
		r.size, r.expiry = 0, 0
		s.timers.tombstone(r)
	} else if expiry != 0 {
		s.timers.expire(r, expiry)
	}
	s.changed(r, ChangeApplied, wasLive)
	return nil
}

// drop forgets a record entirely.
func (s *Store) drop(src *source, r *record) {
	if r.removed {
		s.tombs--
	} else {
		s.live--
	}
	r.gone = true
	// The source stays even when empty: its incarnation floor and rate
	// bucket must outlive its records (a few hundred bytes per SE ever seen).
	delete(src.recs, r.key)
	s.ids.remove(r.id)
	rs := s.keys[r.key]
	if i := slices.Index(rs, r); i >= 0 {
		rs = slices.Delete(rs, i, i+1)
	}
	if len(rs) == 0 {
		delete(s.keys, r.key)
	} else {
		s.keys[r.key] = rs
	}
}

// sweep ends src's re-announcement at incarnation inc: what older
// incarnations held and the new one did not re-announce goes, and their
// operations are refused from now on.
func (s *Store) sweep(src *source, inc uint64) {
	src.synced = inc
	src.newIncAt = time.Time{}
	for _, r := range src.recs {
		if r.ver.Incarnation < inc {
			wasLive := !r.removed
			s.drop(src, r)
			s.st.Swept++
			s.changed(r, ChangeSwept, wasLive)
		}
	}
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
		r, ok := s.timers.nextExpired(nowMs)
		if !ok {
			break
		}
		// Keep the version: a late copy of an older add must still lose.
		r.removed, r.size, r.expiry, r.stored = true, 0, 0, now.UnixNano()
		s.live--
		s.tombs++
		s.st.Expired++
		s.changed(r, ChangeExpired, true)
		s.timers.tombstone(r)
	}
	for {
		r, ok := s.timers.nextTombstone(now.Add(-s.cfg.TombstoneTTL))
		if !ok {
			break
		}
		s.drop(s.sources[r.loc], r)
		s.st.TombstonesGone++
	}
	s.timers.compact(s.live + s.tombs)
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
}

// Lookup returns the live locations of key, nearest first: origins that
// are up before those declared down, then fewest tree hops from from
// (Hops), then the lowest location (CDN, data center, farm, SE ids).
func (s *Store) Lookup(key string, from Location, now time.Time) []Hit {
	nowMs := expiryMillis(now)
	s.mu.RLock()
	var hits []Hit
	for _, r := range s.keys[key] {
		if !r.liveAt(nowMs) {
			continue
		}
		hits = append(hits, Hit{ID: r.id, Location: r.loc, Size: r.size, Version: r.ver, Expiry: millisTime(r.expiry),
			Stored: time.Unix(0, r.stored), Down: s.sources[r.loc] != nil && s.sources[r.loc].down, Hops: Hops(from, r.loc)})
	}
	s.mu.RUnlock()
	sortHits(hits)
	return hits
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
	s.ids.after(after, func(r *record) bool {
		if r.liveAt(nowMs) {
			src := s.sources[r.loc]
			out = append(out, EntryInfo{ID: r.id, Key: r.key, Location: r.loc, Size: r.size, Version: r.ver,
				Expiry: millisTime(r.expiry), Stored: time.Unix(0, r.stored), Down: src != nil && src.down})
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
	for origin, src := range s.sources {
		if !Contains(unit, origin) {
			continue
		}
		for _, r := range src.recs {
			if r.liveAt(nowMs) {
				d.add(r.key, r.loc, r.ver, r.size, r.expiry)
			}
		}
	}
	return d
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
			Entries: len(src.recs), SourceCounters: src.st})
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
	if src := s.sources[origin]; src != nil {
		for _, r := range src.recs {
			if r.liveAt(nowMs) {
				d.add(r.key, r.loc, r.ver, r.size, r.expiry)
			}
		}
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
			s.tick++
			f.gen, f.begin, f.open = m.Generation, s.tick, true
		}
		return 0, nil
	}
	if !f.open || m.Generation != f.gen {
		return 0, nil
	}
	f.open = false
	s.st.Syncs++
	n := 0
	for _, src := range s.sources {
		if !Contains(m.Unit, src.loc) {
			continue
		}
		for _, r := range src.recs {
			if r.touched >= f.begin {
				continue
			}
			wasLive := !r.removed
			s.drop(src, r)
			n++
			if wasLive {
				s.st.Resynced++
				s.changed(r, ChangeResynced, true)
			}
		}
	}
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
