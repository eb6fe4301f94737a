package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Forwarder defaults.
const (
	DefaultForwardQueue = 1 << 16
	// fwdChunkBytes is the store snapshot read per step of a
	// re-announcement; it is cut into UPDATEs of MaxBatchBytes.
	fwdChunkBytes = 256 << 10
)

// ForwarderConfig configures a Forwarder. Zero fields take the defaults.
type ForwarderConfig struct {
	// Policy is what this level forwards (PolicyNone: nothing).
	Policy Policy
	// MaxQueue bounds the operations waiting to go up (default 65536).
	// Beyond it the queue is dropped and the whole store re-announced.
	MaxQueue int
	// FlushDelay, MaxBatchBytes and SendTimeout as in PublisherConfig.
	FlushDelay    time.Duration
	MaxBatchBytes int
	SendTimeout   time.Duration
	// Epoch numbers re-announcements: each takes max(Epoch(), previous+1)
	// as its generation (full) or summary incarnation (summary). It must
	// grow across the managers of this level at every takeover, so pass
	// the level's rmtp term shifted left by 32 bits (func() uint64 {
	// return ep.Term() << 32 }). Default: the wall clock in nanoseconds,
	// which needs the managers' clocks closer than the time a takeover
	// takes (NTP).
	Epoch func() uint64
	// Resync, if set, is read for RESYNC from the parent's managers (a
	// parent that lost its directory): the forwarder re-announces.
	Resync rmtp.Receiver
	// FPRate is the digest policy's false-positive rate (default
	// DefaultFPRate, 0 < FPRate < 1); MinDigestKeys the smallest key count
	// a digest is sized for (default DefaultMinDigestKeys).
	FPRate        float64
	MinDigestKeys int
	Logger        logrus.FieldLogger
}

// ForwarderStats are a forwarder's totals.
type ForwarderStats struct {
	Active     bool
	Pending    int    // operations waiting to go up
	Ops        uint64 // operations acknowledged by the parent's managers
	Batches    uint64 // UPDATE and SYNC messages acknowledged
	Bytes      uint64 // their payload bytes
	Retries    uint64 // attempts that did not reach every parent manager
	Coalesced  uint64 // operations replaced by a newer one before sending
	Overflows  uint64 // queue overflows (each costs a re-announcement)
	Resyncs    uint64 // re-announcements completed
	Generation uint64 // of the last re-announcement
	// Digest policy: the filter's size, keys, share of bits set, the
	// false-positive rate that fill gives (fill^k), and rebuilds for
	// growth. Its DIGEST bytes are Bytes.
	DigestBits     uint64
	DigestHashes   uint8
	DigestKeys     uint64
	DigestFill     float64
	DigestFP       float64
	DigestRebuilds uint64
}

type fwdKey struct {
	origin Location
	key    string // "" for an origin's SYNC_END (never a valid key)
}

type fwdItem struct {
	origin Location
	inc    uint64
	op     wire.Op
}

// Forwarder is the upward half of a level-N manager (N = 1..3, issue 8):
// it follows its Store's changes and sends them to the parent level's
// managers, by the level's policy, over an rmtp endpoint where this
// manager is a member of the parent's SM farm (multicast) or a unicast
// peer of the parent's managers. Full forwards every record with its own
// origin and version, so the parent applies them exactly like an SE's
// updates (idempotent, any order); summary forwards (key, this unit) as
// records of the origin "this unit", versioned by the forwarder, added
// when the first live record of the key appears and removed when the
// last goes.
//
// Only the active manager forwards (SetActive). Activation, a queue
// overflow, a RESYNC from the parent, a parent manager that appears in
// the delivery reports, and reaching the parent again after an attempt
// that reached none of its managers each cause a re-announcement of the
// whole store: under full it is bracketed by SYNC BEGIN and END, and the
// parent drops what it holds of this unit and did not hear again; under
// summary it takes a new incarnation of the summary origin and ends with
// SYNC_END, as an SE does when it restarts.
type Forwarder struct {
	cfg   ForwarderConfig
	s     Sender
	store *Store
	level Level // of the parent
	unit  Location
	log   logrus.FieldLogger

	mu         sync.Mutex
	active     bool
	actx       context.Context
	acancel    context.CancelFunc
	fifo       []fwdKey
	items      map[fwdKey]*fwdItem
	counts     map[string]int // summary: live records per key
	inc, seq   uint64         // summary origin's incarnation and sequence
	lastGen    uint64
	needResync bool
	busy       bool // a batch or a re-announcement is being sent
	cut        bool // an attempt reached no parent manager
	known      map[rmtp.NodeID]bool
	idle       []chan struct{}
	st         ForwarderStats

	dg *digestState // PolicyDigest

	unobserve func()
	wake      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once
}

// NewForwarder starts a forwarder for store (levels 1..3), sending to the
// parent over up: an rmtp endpoint with role Engine in the parent level's
// SM farm (multicast) or unicast peer list of the parent's managers. It is
// inactive until SetActive(true). It joins the
// store's change feed (StoreConfig.OnChange stays the caller's).
func NewForwarder(up Sender, store *Store, cfg ForwarderConfig) (*Forwarder, error) {
	sc := store.Config()
	if sc.Level < LevelFarm || sc.Level >= LevelPeering {
		return nil, fmt.Errorf("%w: level %v has no parent to forward to", ErrInvalid, sc.Level)
	}
	switch cfg.Policy {
	case PolicyFull, PolicySummary, PolicyNone, PolicyDigest:
	default:
		return nil, fmt.Errorf("%w: forwarding policy %v", ErrInvalid, cfg.Policy)
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultForwardQueue
	}
	if cfg.FlushDelay <= 0 {
		cfg.FlushDelay = DefaultFlushDelay
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxBatchBytes < wire.UpdateOverhead+wire.GroupOverhead+wire.MaxKey+32 {
		return nil, fmt.Errorf("%w: max batch %d bytes cannot hold the longest key", ErrInvalid, cfg.MaxBatchBytes)
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.FPRate == 0 {
		cfg.FPRate = DefaultFPRate
	}
	if !(cfg.FPRate > 0 && cfg.FPRate < 1) {
		return nil, fmt.Errorf("%w: false-positive rate %v outside (0, 1)", ErrInvalid, cfg.FPRate)
	}
	if cfg.MinDigestKeys <= 0 {
		cfg.MinDigestKeys = DefaultMinDigestKeys
	}
	if cfg.Epoch == nil {
		cfg.Epoch = func() uint64 { return uint64(time.Now().UnixNano()) }
	}
	f := &Forwarder{cfg: cfg, s: up, store: store, level: sc.Level + 1, unit: sc.Unit,
		log:   discard(cfg.Logger).WithFields(logrus.Fields{"unit": sc.Unit.String(), "dir_level": sc.Level.String()}),
		items: make(map[fwdKey]*fwdItem), counts: make(map[string]int), wake: make(chan struct{}, 1)}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if cfg.Policy == PolicyNone {
		return f, nil
	}
	if cfg.Policy == PolicyDigest {
		f.dg = &digestState{fp: cfg.FPRate, minKeys: cfg.MinDigestKeys, dirty: make(map[uint32]struct{})}
	}
	f.unobserve = store.observe(f.onChange, func() {
		// Under the store's lock: the counts (digest: the filter) start
		// from what it holds.
		if f.dg != nil {
			f.dg.build(store)
			return
		}
		store.eachLiveKey(func(k string, n int) { f.counts[strings.Clone(k)] = n })
	})
	f.wg.Add(1)
	go f.run()
	if cfg.Resync != nil {
		f.wg.Add(1)
		go f.resyncLoop()
	}
	return f, nil
}

// SetActive starts (true) or stops (false) forwarding. Becoming active
// re-announces the whole store, so a backup that takes over continues
// without loss whatever the old manager had not yet sent. Stopping drops
// what waits and abandons what is being sent.
func (f *Forwarder) SetActive(active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if active == f.active || f.cfg.Policy == PolicyNone {
		return
	}
	f.active = active
	f.clearLocked()
	if active {
		f.actx, f.acancel = context.WithCancel(f.ctx)
		f.needResync = true
		f.kick()
	} else {
		f.acancel()
		f.needResync = false
	}
	f.log.WithField("active", active).Info("directory: upward forwarding")
}

// Active reports whether the forwarder sends.
func (f *Forwarder) Active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// Reannounce re-sends the whole store upward (when active).
func (f *Forwarder) Reannounce() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active {
		f.needResync = true
		f.kick()
	}
}

// Flush waits until nothing is queued, re-announced or in flight (every
// change so far acknowledged by the parent's managers), or ctx is done.
func (f *Forwarder) Flush(ctx context.Context) error {
	f.mu.Lock()
	if f.idleLocked() {
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.idle = append(f.idle, ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.ctx.Done():
		return ErrClosed
	}
}

// Stats returns the totals.
func (f *Forwarder) Stats() ForwarderStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	s.Active, s.Pending = f.active, f.pendingLocked()
	if f.dg != nil {
		cb := f.dg.cb
		s.DigestBits, s.DigestHashes, s.DigestKeys = cb.m, cb.k, uint64(f.dg.keys)
		s.DigestFill = cb.fill()
		s.DigestFP = estimatedFP(s.DigestFill, cb.k)
		s.DigestRebuilds = f.dg.rebuilds
	}
	return s
}

// Close stops the forwarder and leaves the store's change feed. It does
// not close the endpoint.
func (f *Forwarder) Close() error {
	f.once.Do(func() {
		if f.unobserve != nil {
			f.unobserve()
		}
		f.mu.Lock()
		f.active = false
		f.clearLocked()
		f.mu.Unlock()
		f.cancel()
		f.wg.Wait()
	})
	return nil
}

func (f *Forwarder) kick() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *Forwarder) clearLocked() {
	f.fifo = f.fifo[:0:0]
	clear(f.items)
	if f.dg != nil {
		clear(f.dg.dirty)
	}
}

// pendingLocked counts what waits to go up: operations, or under the
// digest policy changed positions.
func (f *Forwarder) pendingLocked() int {
	n := len(f.fifo)
	if f.dg != nil {
		n += len(f.dg.dirty)
	}
	return n
}

func (f *Forwarder) idleLocked() bool {
	return !f.active || (f.pendingLocked() == 0 && !f.needResync && !f.busy)
}

func (f *Forwarder) notifyIdleLocked() {
	if !f.idleLocked() {
		return
	}
	for _, ch := range f.idle {
		close(ch)
	}
	f.idle = nil
}

// onChange is the store's feed: it runs under the store's lock, so it
// only counts and queues, never blocks.
func (f *Forwarder) onChange(c Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dg != nil {
		f.onDigestChange(c)
		return
	}
	if f.cfg.Policy == PolicySummary {
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
		n := f.counts[c.Key] + d
		if n <= 0 {
			delete(f.counts, c.Key)
		} else {
			f.counts[c.Key] = n
		}
		switch {
		case n == 1 && d == 1:
			f.seq++
			f.queueLocked(fwdItem{origin: f.unit, inc: f.inc, op: wire.Op{Kind: wire.OpAdd, Seq: f.seq, Key: c.Key}})
		case n <= 0:
			f.seq++
			f.queueLocked(fwdItem{origin: f.unit, inc: f.inc, op: wire.Op{Kind: wire.OpRemove, Seq: f.seq, Key: c.Key}})
		}
		return
	}
	switch c.Reason {
	case ChangeApplied:
		op := wire.Op{Kind: wire.OpAdd, Seq: c.Version.Seq, Key: c.Key, Size: c.Size, Expiry: c.Expiry}
		if c.Removed {
			op = wire.Op{Kind: wire.OpRemove, Seq: c.Version.Seq, Key: c.Key}
		}
		f.queueLocked(fwdItem{origin: c.Origin, inc: c.Version.Incarnation, op: op})
	case ChangeSwept:
		// The origin's re-announcement ended: the parent sweeps the same
		// older incarnations on the same SYNC_END.
		f.queueLocked(fwdItem{origin: c.Origin, inc: c.Synced})
	case ChangeResynced:
		// Gone without a version to forward: only a re-announcement
		// tells the parent.
		if f.active {
			f.needResync = true
			f.kick()
		}
	case ChangeExpired:
		// The parent holds the same expiry and expires it itself.
	}
}

// queueLocked queues it, replacing a waiting item of the same record;
// past MaxQueue the queue is dropped for a re-announcement.
func (f *Forwarder) queueLocked(it fwdItem) {
	if !f.active || f.needResync {
		return // the coming re-announcement reads the store (summary: the counts)
	}
	k := fwdKey{it.origin, it.op.Key}
	if old := f.items[k]; old != nil {
		if it.op.Key == "" {
			old.inc = max(old.inc, it.inc)
		} else {
			*old = it
		}
		f.st.Coalesced++
		return
	}
	if len(f.fifo) >= f.cfg.MaxQueue {
		f.st.Overflows++
		f.clearLocked()
		f.needResync = true
		f.kick()
		return
	}
	f.items[k] = &it
	f.fifo = append(f.fifo, k)
	f.kick()
}

// takeLocked removes the next batch: up to MaxBatchBytes of operations,
// grouped by (origin, incarnation).
func (f *Forwarder) takeLocked() (*wire.Update, int) {
	u := &wire.Update{Level: uint8(f.level)}
	size := wire.UpdateOverhead
	idx := make(map[fwdItem]int) // by (origin, inc) with a zero op
	n, ops := 0, 0
	for n < len(f.fifo) {
		it := f.items[f.fifo[n]]
		gk := fwdItem{origin: it.origin, inc: it.inc}
		gi, ok := idx[gk]
		l := 0
		if !ok {
			l += wire.GroupOverhead
		}
		if it.op.Key != "" {
			l += it.op.Len()
		}
		if (size+l > f.cfg.MaxBatchBytes || (!ok && len(u.Groups) == wire.MaxGroups) ||
			(ok && len(u.Groups[gi].Ops) == wire.MaxOps)) && n > 0 {
			break
		}
		if !ok {
			gi = len(u.Groups)
			idx[gk] = gi
			u.Groups = append(u.Groups, wire.Group{Origin: it.origin, Incarnation: it.inc})
		}
		if it.op.Key == "" {
			u.Groups[gi].Flags |= wire.SyncEnd
		} else {
			u.Groups[gi].Ops = append(u.Groups[gi].Ops, it.op)
			ops++
		}
		size += l
		delete(f.items, f.fifo[n])
		n++
	}
	f.fifo = slices.Delete(f.fifo, 0, n)
	return u, ops
}

func (f *Forwarder) run() {
	defer f.wg.Done()
	for {
		select {
		case <-f.wake:
		case <-f.ctx.Done():
			return
		}
		if !sleepCtx(f.ctx, f.cfg.FlushDelay) {
			return
		}
		for {
			f.mu.Lock()
			if !f.active || (f.pendingLocked() == 0 && !f.needResync) {
				f.busy = false
				f.notifyIdleLocked()
				f.mu.Unlock()
				break
			}
			actx := f.actx
			f.busy = true
			if f.needResync {
				f.mu.Unlock()
				f.resync(actx)
				continue
			}
			if f.dg != nil {
				b := f.takeDigestLocked()
				f.mu.Unlock()
				if b != nil {
					f.deliver(actx, b, 0)
				}
				continue
			}
			u, n := f.takeLocked()
			f.mu.Unlock()
			b, err := wire.AppendUpdate(nil, u)
			if err != nil { // keys were checked by the store: a bug, not input
				f.log.WithError(err).Error("directory: encoding a forwarded update")
				continue
			}
			f.deliver(actx, b, n)
		}
	}
}

// nextGen is the generation (or summary incarnation) of a new
// re-announcement.
func (f *Forwarder) nextGen() uint64 {
	g := max(f.cfg.Epoch(), f.lastGen+1)
	f.lastGen = g
	return g
}

// resync re-announces the whole store upward.
func (f *Forwarder) resync(ctx context.Context) {
	f.mu.Lock()
	if !f.needResync || ctx.Err() != nil {
		f.mu.Unlock()
		return
	}
	f.needResync = false
	f.clearLocked()
	f.known = nil
	gen := f.nextGen()
	var keys []string
	if f.cfg.Policy == PolicySummary {
		// Sequences are taken now, under the lock, so a change queued
		// after this point outranks the re-announcement of its key.
		keys = make([]string, 0, len(f.counts))
		for k := range f.counts {
			keys = append(keys, k)
		}
		// The re-announcement uses sequences 1..len(keys).
		f.inc, f.seq = gen, uint64(len(keys))
	}
	f.mu.Unlock()
	f.log.WithFields(logrus.Fields{"generation": gen, "policy": f.cfg.Policy}).Info("directory: re-announcing upward")
	var ok bool
	switch f.cfg.Policy {
	case PolicySummary:
		ok = f.resyncSummary(ctx, gen, keys)
	case PolicyDigest:
		ok = f.resyncDigest(ctx, gen)
	default:
		ok = f.resyncFull(ctx, gen)
	}
	if ok {
		f.mu.Lock()
		f.st.Resyncs++
		f.st.Generation = gen
		f.mu.Unlock()
	}
}

func (f *Forwarder) resyncSummary(ctx context.Context, inc uint64, keys []string) bool {
	slices.Sort(keys)
	g := wire.Group{Origin: f.unit, Incarnation: inc, Flags: wire.SyncBegin}
	size := wire.UpdateOverhead + wire.GroupOverhead
	send := func(last bool) bool {
		if last {
			g.Flags |= wire.SyncEnd
		}
		b, err := wire.AppendUpdate(nil, &wire.Update{Level: uint8(f.level), Groups: []wire.Group{g}})
		if err != nil {
			f.log.WithError(err).Error("directory: encoding a summary re-announcement")
			return false
		}
		if !f.deliver(ctx, b, len(g.Ops)) {
			return false
		}
		g.Flags, g.Ops, size = 0, nil, wire.UpdateOverhead+wire.GroupOverhead
		return true
	}
	for i, k := range keys {
		op := wire.Op{Kind: wire.OpAdd, Seq: uint64(i + 1), Key: k}
		if (size+op.Len() > f.cfg.MaxBatchBytes || len(g.Ops) == wire.MaxOps) && !send(false) {
			return false
		}
		g.Ops = append(g.Ops, op)
		size += op.Len()
	}
	return send(true)
}

func (f *Forwarder) resyncFull(ctx context.Context, gen uint64) bool {
	mark := func(end bool) bool {
		return f.deliver(ctx, wire.AppendSync(nil, &wire.Sync{Level: uint8(f.level), End: end, Unit: f.unit, Generation: gen}), 0)
	}
	if !mark(false) {
		return false
	}
	var after uint32
	for {
		c := f.store.Snapshot(after, fwdChunkBytes)
		items := make([]fwdItem, 0, len(c.Records))
		for _, r := range c.Records {
			op := wire.Op{Kind: wire.OpAdd, Seq: r.Seq, Key: r.Key, Size: r.Size, Expiry: r.Expiry}
			if r.Removed {
				op = wire.Op{Kind: wire.OpRemove, Seq: r.Seq, Key: r.Key}
			}
			items = append(items, fwdItem{origin: r.Origin, inc: r.Incarnation, op: op})
		}
		if !f.sendItems(ctx, items) {
			return false
		}
		if c.Last {
			break
		}
		after = c.Next
	}
	var syncs []fwdItem
	for _, so := range f.store.sourceStates() {
		if so.Synced > 0 {
			syncs = append(syncs, fwdItem{origin: so.Origin, inc: so.Synced})
		}
	}
	return f.sendItems(ctx, syncs) && mark(true)
}

// sendItems sends a re-announcement's items in batches (through a private
// queue of the same shape as the live one).
func (f *Forwarder) sendItems(ctx context.Context, items []fwdItem) bool {
	q := &Forwarder{cfg: f.cfg, level: f.level, items: make(map[fwdKey]*fwdItem, len(items))}
	for i := range items {
		k := fwdKey{items[i].origin, items[i].op.Key}
		if _, dup := q.items[k]; !dup {
			q.fifo = append(q.fifo, k)
		}
		q.items[k] = &items[i]
	}
	for len(q.fifo) > 0 {
		u, n := q.takeLocked()
		b, err := wire.AppendUpdate(nil, u)
		if err != nil {
			f.log.WithError(err).Error("directory: encoding a re-announcement")
			return false
		}
		if !f.deliver(ctx, b, n) {
			return false
		}
	}
	return true
}

// deliver sends one message until every parent manager has it, or ctx
// ends (deactivated, closed). An attempt that reached no parent manager
// marks the link cut; the first success after it re-announces, so a
// parent that was partitioned away converges. A parent manager that
// appears in the reports (joined, or came back) also gets a
// re-announcement: it may have missed what was sent meanwhile.
func (f *Forwarder) deliver(ctx context.Context, b []byte, n int) bool {
	_, ok := sendUp(ctx, f.s, b, f.cfg.SendTimeout, f.log, "parent manager", func(rep rmtp.Report, ok bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !ok {
			f.st.Retries++
			if len(rep.Acked) == 0 {
				f.cut = true
			}
			return
		}
		f.st.Ops += uint64(n)
		f.st.Batches++
		f.st.Bytes += uint64(len(b))
		fresh := f.known != nil && f.active
		for _, m := range rep.Members {
			if f.known != nil && !f.known[m] && fresh {
				f.needResync = true
			}
		}
		if f.cut && fresh { // (a cut before a re-announcement's first message costs nothing)
			f.needResync = true
		}
		f.cut = false
		f.known = make(map[rmtp.NodeID]bool, len(rep.Members))
		for _, m := range rep.Members {
			f.known[m] = true
		}
		if f.needResync {
			f.log.Info("directory: parent managers changed or reached again; re-announcing")
		}
	})
	return ok
}

func (f *Forwarder) resyncLoop() {
	defer f.wg.Done()
	watchResync(f.ctx, f.cfg.Resync, f.log, "directory: parent manager asked for a re-announcement", f.Reannounce)
}
