package directory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Sender is what the directory needs to send: *rmtp.Endpoint implements it.
type Sender interface {
	Send(ctx context.Context, ch uint8, dest rmtp.Dest, payload []byte) (rmtp.Report, error)
}

// Publisher defaults.
const (
	DefaultFlushDelay    = time.Millisecond
	DefaultMaxBatchBytes = 60 << 10
	DefaultSendTimeout   = 2 * time.Second
	DefaultMaxInFlight   = 4
	// DefaultMaxAwaiting: updates sent and waiting for verdicts.
	DefaultMaxAwaiting = 64
	// DefaultVerdictTimeout: how long the managers' verdicts on an update
	// may take once they all acknowledged it.
	DefaultVerdictTimeout = 5 * time.Second
	// DefaultMaxPending caps the operations waiting to be sent.
	DefaultMaxPending = 1 << 18
	retryMin          = 20 * time.Millisecond
	retryMax          = 2 * time.Second
	// maxEarlyVerdicts bounds the verdicts kept for updates whose send
	// has not returned yet (a verdict can overtake the acknowledgements).
	maxEarlyVerdicts = 256
	// maxLearned bounds the managers whose announced limits are kept;
	// learnedTTL forgets a manager not heard from.
	maxLearned = 16
	learnedTTL = time.Minute
)

// Errors of Add and Remove.
var (
	// ErrNotHeld is returned by Remove for a key this SE does not publish.
	ErrNotHeld = errors.New("directory: key not published by this engine")
	// ErrQueueFull: MaxPending operations already wait for the managers,
	// which accept them more slowly than they are published. Wait for
	// room (WaitQueue) and try again.
	ErrQueueFull = errors.New("directory: publisher queue full (the managers accept updates more slowly than they are published)")
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Location of this SE; Engine must be its rmtp node id.
	Location Location
	// Incarnation must be its rmtp endpoint's (ep.Incarnation()): the
	// farm manager refuses anything else. 0: taken from the Sender when it
	// has an Incarnation method (an *rmtp.Endpoint does).
	Incarnation uint64
	// MaxKey caps keys (default DefaultMaxKey); the managers' cap must not
	// be lower.
	MaxKey int
	// Rate and Burst are the managers' limit for this SE, the numbers the
	// managers' StoreConfig gets (directory.publish_rate and
	// publish_burst): operations per second and at once. The publisher
	// sends at most Rate per second in bursts of at most Burst/2; the
	// other half of the managers' bucket absorbs the network's jitter, so
	// with the same numbers on both sides the managers refuse nothing.
	// Defaults DefaultRate and DefaultBurst, the store's. Negative Rate:
	// no limit of its own. Either way the publisher follows a lower limit
	// a manager announces in its verdicts, and a refused update is sent
	// again after the manager's retry-after.
	Rate, Burst float64
	// FlushDelay is how long an operation waits for others to share its
	// message (default 1 ms).
	FlushDelay time.Duration
	// MaxBatchBytes caps one UPDATE (default 60 KiB).
	MaxBatchBytes int
	// SendTimeout bounds one attempt to reach every manager (default 2 s);
	// a failed attempt is retried with backoff until Close.
	SendTimeout time.Duration
	// VerdictTimeout bounds the wait for the managers' verdicts once every
	// manager acknowledged an update (default DefaultVerdictTimeout); then
	// the update is sent again (a manager that died or restarted
	// meanwhile, a verdict lost).
	VerdictTimeout time.Duration
	// MaxInFlight is how many UPDATEs rmtp may be sending at once
	// (default 4), MaxAwaiting how many batches may be on their way in
	// all, sent and waiting for the managers' verdicts included (default
	// DefaultMaxAwaiting): a new entry waits neither for the previous
	// batch's acknowledgements nor for its verdicts. Order between
	// batches does not matter to the managers (versions decide), except
	// for SYNC_END, which waits until all were accepted.
	MaxInFlight, MaxAwaiting int
	// MaxPending caps the operations waiting to be sent (default
	// DefaultMaxPending): Add and Remove of a key not already waiting
	// return ErrQueueFull beyond it. A re-announcement is never refused
	// (MaxHeld bounds it).
	MaxPending int
	// MaxHeld caps the entries published (default DefaultMaxEntries, the
	// managers' default cap): Add of a new key beyond it returns ErrFull.
	MaxHeld int
	// Initial is what this SE holds at start; it is re-announced at once,
	// ending with SYNC_END, so the managers drop what the previous
	// incarnation held and this one does not.
	Initial []Entry
	// InitialFrom, if set, is called once by NewPublisher, after Initial,
	// with a function taking one more initial entry at a time: a caller
	// reading a large list from a file (published.json) streams it in
	// without holding it twice. An error from it, or from add (a bad key,
	// more than MaxHeld), fails NewPublisher.
	InitialFrom func(add func(Entry) error) error
	// Inbox is read for what the managers send down on rmtp.ChannelDirectory:
	// their VERDICTs on this SE's updates and RESYNC requests. Required:
	// without the verdicts the publisher cannot know its updates were
	// accepted.
	Inbox rmtp.Receiver
	// RefusalQuiet ends a refusal episode in the log (default
	// DefaultRefusalQuiet).
	RefusalQuiet time.Duration
	Logger       logrus.FieldLogger
	Now          func() time.Time
}

// PublisherStats are a publisher's totals.
type PublisherStats struct {
	Held      int    // entries published
	Pending   int    // operations not yet accepted by every manager (queued or in flight)
	Ops       uint64 // operations accepted by every manager
	Batches   uint64 // UPDATE messages accepted by every manager
	Retries   uint64 // attempts that did not reach every manager
	Coalesced uint64 // operations replaced by a newer one on the same key before sending
	Resyncs   uint64 // re-announcements (start, RESYNC)
	// Refused: operations a manager refused over its rate limit; each was
	// sent again. Rejected: operations a manager refused for good (a bad
	// key, a key over its cap, its directory full, wrong origin or
	// level); they are not sent again.
	Refused, Rejected uint64
	// Resent: updates sent again after a refusal or missing verdicts;
	// VerdictTimeouts: waits for verdicts that ran out (VerdictTimeout).
	Resent, VerdictTimeouts uint64
	// Rate and Burst are the limit followed now (operations per second
	// and at once, the managers' side of it; negative Rate: none): the
	// configured one, or a lower one a manager announced.
	Rate, Burst float64
	// Managers accepted the last update.
	Managers []rmtp.NodeID
}

type held struct {
	size, expiry uint64
	ver          Version
}

// pendingOp is a queued operation and the oldest sequence number it
// stands for (older operations on its key that it replaced), so progress
// is never claimed for an operation whose replacement still waits.
type pendingOp struct {
	op    wire.Op
	since uint64
}

// flight is one batch being delivered: ops[done:] are not yet accepted by
// every manager.
type flight struct {
	ops  []pendingOp
	done int
}

// verdictFrom is one manager's verdict on one of this SE's updates.
type verdictFrom struct {
	from rmtp.NodeID
	e    wire.VerdictEntry
}

// learned is the limit a manager announced.
type learned struct {
	rate, burst float64 // 0: none
	at          time.Time
}

// pubEpisode is a run of refusals or missing verdicts, logged when it
// starts (once per kind) and when it ends.
type pubEpisode struct {
	start, last                   time.Time
	refused, rejected, timeouts   uint64
	loggedRefused, loggedRejected bool
	loggedTimeout                 bool
}

// Publisher is an SE's side of the directory update protocol (Fig 7): it
// keeps what the SE publishes, and sends additions and removals up to the
// farm's managers (SM and BSM) in batches, at the managers' rate, until
// every manager accepted them: each manager answers every update with a
// VERDICT, and an update a manager refused over its rate limit (or whose
// verdict did not come) is sent again later. Operations on one key that
// are still waiting are coalesced: only the newest is sent.
type Publisher struct {
	cfg  PublisherConfig
	s    Sender
	log  logrus.FieldLogger
	self rmtp.NodeID

	mu        sync.Mutex
	held      map[string]*held
	seq       uint64
	pending   []pendingOp
	pidx      map[string]int // key -> pbase + its index in pending
	pbase     int            // operations taken from the front of pending so far
	syncBegin bool
	syncLeft  int // operations from the queue's front that belong to the re-announcement
	syncEnd   bool
	inflight  int // batches being delivered
	inflightN int // their operations not yet accepted
	flights   map[*flight]struct{}
	idle      []chan struct{}
	room      []chan struct{}
	tokens    float64
	tokAt     time.Time
	st        PublisherStats
	waits     map[uint64]chan verdictFrom // by rmtp message id of an update in flight
	early     []verdictFrom               // this SE's verdicts nobody waited for yet, oldest first
	learned   map[rmtp.NodeID]learned
	limRate   float64 // the limit followed, as last logged
	limBurst  float64
	episode   *pubEpisode

	wake   chan struct{}
	slots  chan struct{} // rmtp sends
	await  chan struct{} // batches on their way (MaxAwaiting)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// NewPublisher starts a publisher; it re-announces cfg.Initial at once.
func NewPublisher(s Sender, cfg PublisherConfig) (*Publisher, error) {
	if cfg.Location.Engine == 0 {
		return nil, fmt.Errorf("%w: publisher location %v has no engine id", ErrInvalid, cfg.Location)
	}
	if cfg.Inbox == nil {
		return nil, fmt.Errorf("%w: a publisher needs an inbox for the managers' verdicts", ErrInvalid)
	}
	if cfg.MaxKey == 0 {
		cfg.MaxKey = DefaultMaxKey
	}
	if cfg.MaxKey < 1 || cfg.MaxKey > wire.MaxKey {
		return nil, fmt.Errorf("%w: max key %d outside 1..%d", ErrInvalid, cfg.MaxKey, wire.MaxKey)
	}
	if cfg.Incarnation == 0 {
		if ie, ok := s.(interface{ Incarnation() uint64 }); ok {
			cfg.Incarnation = ie.Incarnation()
		}
	}
	if cfg.Incarnation == 0 {
		return nil, fmt.Errorf("%w: publisher needs its rmtp incarnation", ErrInvalid)
	}
	switch {
	case cfg.Rate == 0:
		cfg.Rate = DefaultRate
		if cfg.Burst <= 0 {
			cfg.Burst = DefaultBurst
		}
	case cfg.Rate < 0:
		cfg.Rate, cfg.Burst = -1, math.Inf(1)
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(DefaultBurst, cfg.Rate) // as the store fills it
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
	if cfg.VerdictTimeout <= 0 {
		cfg.VerdictTimeout = DefaultVerdictTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxAwaiting <= 0 {
		cfg.MaxAwaiting = DefaultMaxAwaiting
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = DefaultMaxEntries
	}
	if cfg.RefusalQuiet <= 0 {
		cfg.RefusalQuiet = DefaultRefusalQuiet
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Initial) > cfg.MaxHeld {
		return nil, fmt.Errorf("%w: %d initial entries, the cap is %d", ErrFull, len(cfg.Initial), cfg.MaxHeld)
	}
	p := &Publisher{cfg: cfg, s: s, log: discard(cfg.Logger).WithField("engine", cfg.Location.Engine), self: rmtp.NodeID(cfg.Location.Engine),
		held: make(map[string]*held), pidx: make(map[string]int), flights: make(map[*flight]struct{}),
		waits: make(map[uint64]chan verdictFrom), learned: make(map[rmtp.NodeID]learned),
		wake: make(chan struct{}, 1), slots: make(chan struct{}, cfg.MaxInFlight), await: make(chan struct{}, cfg.MaxAwaiting),
		limRate: cfg.Rate, limBurst: cfg.Burst}
	p.tokens = p.sendBurst(cfg.Burst)
	addInitial := func(e Entry) error {
		if err := CheckKey(e.Key, cfg.MaxKey); err != nil {
			return fmt.Errorf("initial entry %q: %w", e.Key, err)
		}
		if _, dup := p.held[e.Key]; !dup && len(p.held) >= cfg.MaxHeld {
			return fmt.Errorf("%w: more than %d initial entries", ErrFull, cfg.MaxHeld)
		}
		p.held[e.Key] = &held{size: e.Size, expiry: expiryMillis(e.Expiry)}
		return nil
	}
	for _, e := range cfg.Initial {
		if err := addInitial(e); err != nil {
			return nil, err
		}
	}
	if cfg.InitialFrom != nil {
		if err := cfg.InitialFrom(addInitial); err != nil {
			return nil, err
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.Lock()
	p.reannounceLocked()
	p.mu.Unlock()
	p.wg.Add(3)
	go p.run()
	go p.readInbox()
	go p.watchEpisodes()
	return p, nil
}

// Add publishes (or replaces) an entry.
func (p *Publisher) Add(e Entry) error {
	if err := CheckKey(e.Key, p.cfg.MaxKey); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	h := p.held[e.Key]
	if h == nil && len(p.held) >= p.cfg.MaxHeld {
		return fmt.Errorf("%w: %d entries published", ErrFull, len(p.held))
	}
	if err := p.roomLocked(e.Key); err != nil {
		return err
	}
	if h == nil {
		h = &held{}
		p.held[e.Key] = h
	}
	h.size, h.expiry = e.Size, expiryMillis(e.Expiry)
	p.queueLocked(wire.Op{Kind: wire.OpAdd, Key: e.Key, Size: h.size, Expiry: h.expiry}, h)
	return nil
}

// Remove withdraws an entry; the managers keep a tombstone for it.
func (p *Publisher) Remove(key string) error {
	if err := CheckKey(key, p.cfg.MaxKey); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	h := p.held[key]
	if h == nil {
		return fmt.Errorf("%w: %q", ErrNotHeld, key)
	}
	if err := p.roomLocked(key); err != nil {
		return err
	}
	delete(p.held, key)
	p.queueLocked(wire.Op{Kind: wire.OpRemove, Key: key}, h)
	return nil
}

// roomLocked refuses a new queued operation beyond MaxPending; one that
// replaces a waiting operation on the same key takes no room.
func (p *Publisher) roomLocked(key string) error {
	if _, ok := p.pidx[key]; ok || len(p.pending) < p.cfg.MaxPending {
		return nil
	}
	return fmt.Errorf("%w: %d operations waiting", ErrQueueFull, len(p.pending))
}

// WaitQueue waits until an operation can be queued (fewer than MaxPending
// wait), or ctx ends.
func (p *Publisher) WaitQueue(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if len(p.pending) < p.cfg.MaxPending {
			p.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		p.room = append(p.room, ch)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.ctx.Done():
			return ErrClosed
		}
	}
}

// Seq is the sequence number of the last operation queued: the operations
// of one caller lie between Seq() before and after its calls (with others'
// interleaved), which is what Outstanding takes.
func (p *Publisher) Seq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// Outstanding counts the operations not yet accepted by every manager
// that stand for a sequence number in [from, to]: 0 once everything queued
// in that range reached every manager (or was refused for good, see
// PublisherStats.Rejected). An operation that replaced an older one in
// the range counts until it is accepted.
func (p *Publisher) Outstanding(from, to uint64) int {
	in := func(o pendingOp) bool { return o.op.Seq >= from && o.since <= to }
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.pending {
		if in(o) {
			n++
		}
	}
	for f := range p.flights {
		for _, o := range f.ops[f.done:] {
			if in(o) {
				n++
			}
		}
	}
	return n
}

// Reannounce sends every held entry again, ending with SYNC_END (what a
// manager that asked for RESYNC, or lost state, needs).
func (p *Publisher) Reannounce() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.reannounceLocked()
	}
}

func (p *Publisher) reannounceLocked() {
	p.st.Resyncs++
	keys := make([]string, 0, len(p.held))
	for k := range p.held {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic order: easier to reason about in tests and traces
	for _, k := range keys {
		h := p.held[k]
		p.queueLocked(wire.Op{Kind: wire.OpAdd, Key: k, Size: h.size, Expiry: h.expiry}, h)
	}
	p.syncBegin = true
	p.syncEnd = true
	p.syncLeft = len(p.pending)
	p.kick()
}

// queueLocked gives op the next sequence number and queues it, replacing
// a waiting operation on the same key.
func (p *Publisher) queueLocked(op wire.Op, h *held) {
	p.seq++
	op.Seq = p.seq
	h.ver = Version{p.cfg.Incarnation, p.seq}
	if i, ok := p.pidx[op.Key]; ok {
		i -= p.pbase
		p.pending[i] = pendingOp{op: op, since: p.pending[i].since}
		p.st.Coalesced++
	} else {
		p.pidx[op.Key] = p.pbase + len(p.pending)
		p.pending = append(p.pending, pendingOp{op: op, since: op.Seq})
	}
	p.kick()
}

func (p *Publisher) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Flush waits until nothing is queued or in flight, so every operation
// queued before it was accepted by every manager (or refused for good:
// PublisherStats.Rejected), or ctx is done. Under a steady stream of new
// operations it waits for a lull: give ctx a deadline.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if len(p.pending) == 0 && p.inflight == 0 && !p.syncEnd {
		p.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	p.idle = append(p.idle, ch)
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return ErrClosed
	}
}

// Entries returns the held entries live at the publisher's now, by key.
func (p *Publisher) Entries() []Entry {
	nowMs := expiryMillis(p.cfg.Now())
	p.mu.Lock()
	out := make([]Entry, 0, len(p.held))
	for k, h := range p.held {
		if h.expiry == 0 || h.expiry > nowMs {
			out = append(out, Entry{Key: k, Size: h.size, Expiry: millisTime(h.expiry)})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Key < b.Key {
			return -1
		} else if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// Digest is the digest of the entries held and live at now: once every
// operation reached the managers, theirs (for this SE) is the same.
func (p *Publisher) Digest(now time.Time) Digest {
	nowMs := expiryMillis(now)
	var d Digest
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, h := range p.held {
		if h.expiry == 0 || h.expiry > nowMs {
			d.add(k, p.cfg.Location, h.ver, h.size, h.expiry)
		}
	}
	return d
}

// Stats returns the totals.
func (p *Publisher) Stats() PublisherStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.Held, s.Pending = len(p.held), len(p.pending)+p.inflightN
	s.Rate, s.Burst = p.limitsLocked(p.cfg.Now())
	s.Managers = slices.Clone(p.st.Managers)
	return s
}

// Close stops sending; what was not yet accepted is dropped (the next
// incarnation re-announces).
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

// limitsLocked is the limit followed: the configured one, or the lowest a
// manager announced lately. Caller holds mu.
func (p *Publisher) limitsLocked(now time.Time) (rate, burst float64) {
	rate, burst = p.cfg.Rate, p.cfg.Burst
	for m, l := range p.learned {
		if now.Sub(l.at) > learnedTTL {
			delete(p.learned, m)
			continue
		}
		if l.rate > 0 && (rate < 0 || l.rate < rate) {
			rate = l.rate
		}
		if l.burst > 0 && l.burst < burst {
			burst = l.burst
		}
	}
	return rate, burst
}

// sendBurst is the most operations sent at once under a managers' burst:
// half of it, the rest of their bucket being the margin for jitter.
func (p *Publisher) sendBurst(burst float64) float64 {
	if math.IsInf(burst, 1) {
		return burst
	}
	return max(1, math.Floor(burst/2))
}

// batchLimitLocked is the most operations one UPDATE may carry now.
func (p *Publisher) batchLimitLocked() int {
	rate, burst := p.limitsLocked(p.cfg.Now())
	if rate < 0 {
		return wire.MaxOps
	}
	return int(min(float64(wire.MaxOps), p.sendBurst(burst)))
}

// take removes the next batch from the queue. Caller holds mu.
func (p *Publisher) take() (*flight, wire.GroupFlags) {
	size := wire.UpdateOverhead + wire.GroupOverhead
	limit := p.batchLimitLocked()
	n := 0
	for n < len(p.pending) && n < limit {
		l := p.pending[n].op.Len()
		if size+l > p.cfg.MaxBatchBytes && n > 0 {
			break
		}
		size += l
		n++
	}
	f := &flight{ops: slices.Clone(p.pending[:n])}
	for _, o := range f.ops {
		delete(p.pidx, o.op.Key)
	}
	// Taking from the front costs the batch, not the queue: a
	// re-announcement of 10^6 entries re-indexed every waiting key for
	// each of its thousand batches (71 s instead of 20 at 50,000/s).
	clear(p.pending[:n])
	p.pending = p.pending[n:]
	p.pbase += n
	var flags wire.GroupFlags
	if p.syncBegin {
		flags |= wire.SyncBegin
		p.syncBegin = false
	}
	p.syncLeft -= n
	if p.syncEnd && p.syncLeft <= 0 {
		flags |= wire.SyncEnd
		p.syncEnd = false
	}
	if len(p.pending) < p.cfg.MaxPending {
		for _, ch := range p.room {
			close(ch)
		}
		p.room = nil
	}
	return f, flags
}

// waitTokens blocks until n operations may be sent.
func (p *Publisher) waitTokens(n int) bool {
	for {
		now := time.Now()
		p.mu.Lock()
		rate, burst := p.limitsLocked(p.cfg.Now())
		if rate < 0 {
			p.mu.Unlock()
			return true
		}
		capacity := p.sendBurst(burst)
		p.refillLocked(now, rate, capacity)
		need := min(float64(n), capacity) // a larger batch is split before it gets here
		if p.tokens >= need {
			p.tokens -= need
			p.mu.Unlock()
			return true
		}
		wait := time.Duration((need - p.tokens) / rate * float64(time.Second))
		p.mu.Unlock()
		if !sleepCtx(p.ctx, max(wait, time.Millisecond)) {
			return false
		}
	}
}

func (p *Publisher) refillLocked(now time.Time, rate, capacity float64) {
	if !p.tokAt.IsZero() {
		p.tokens = min(capacity, p.tokens+now.Sub(p.tokAt).Seconds()*rate)
	}
	p.tokAt = now
}

func (p *Publisher) run() {
	defer p.wg.Done()
	for {
		select {
		case <-p.wake:
		case <-p.ctx.Done():
			return
		}
		if !sleepCtx(p.ctx, p.cfg.FlushDelay) {
			return
		}
		for {
			p.mu.Lock()
			if len(p.pending) == 0 && !p.syncEnd {
				p.notifyIdleLocked()
				p.mu.Unlock()
				break
			}
			f, flags := p.take()
			p.inflight++
			p.inflightN += len(f.ops)
			p.flights[f] = struct{}{}
			p.mu.Unlock()
			// SYNC_END must not overtake the re-announcement it ends: it
			// waits until every earlier batch was accepted everywhere.
			slots := 1
			if flags&wire.SyncEnd != 0 {
				slots = p.cfg.MaxAwaiting
			}
			if !p.acquire(p.await, slots) {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.deliver(f, flags)
				p.done(f, slots)
			}()
		}
	}
}

// acquire takes n slots of sem; false when closing.
func (p *Publisher) acquire(sem chan struct{}, n int) bool {
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-p.ctx.Done():
			for range i {
				<-sem
			}
			return false
		}
	}
	return true
}

// done ends one delivery.
func (p *Publisher) done(f *flight, slots int) {
	for range slots {
		<-p.await
	}
	p.mu.Lock()
	p.inflight--
	p.inflightN -= len(f.ops) - f.done
	delete(p.flights, f)
	if len(p.pending) == 0 && !p.syncEnd {
		p.notifyIdleLocked()
	}
	p.mu.Unlock()
}

func (p *Publisher) notifyIdleLocked() {
	if p.inflight > 0 {
		return
	}
	for _, ch := range p.idle {
		close(ch)
	}
	p.idle = nil
}

// deliver sends one batch until every manager accepted all of it, in
// parts when the managers' burst is smaller than the batch (SYNC_BEGIN on
// the first part, SYNC_END on the last).
func (p *Publisher) deliver(f *flight, flags wire.GroupFlags) {
	first := true
	for first || f.done < len(f.ops) {
		p.mu.Lock()
		n := min(len(f.ops)-f.done, p.batchLimitLocked())
		p.mu.Unlock()
		fl := flags
		if !first {
			fl &^= wire.SyncBegin
		}
		if f.done+n < len(f.ops) {
			fl &^= wire.SyncEnd
		}
		switch p.deliverPart(f.ops[f.done:f.done+n], fl) {
		case partClosed:
			return
		case partSplit:
			continue // the managers' burst shrank: cut again
		}
		p.mu.Lock()
		f.done += n
		p.inflightN -= n
		p.mu.Unlock()
		first = false
	}
}

type partOutcome int

const (
	partDone partOutcome = iota
	partSplit
	partClosed
)

// deliverPart sends one UPDATE until every manager of the farm accepted
// it: rmtp delivers it to every manager, and each manager's verdict says
// whether it applied it. A manager that refused it over its rate limit
// gets it again after its retry-after; one whose verdict does not come
// within VerdictTimeout too. A manager that accepted it once is not asked
// again (it may see later copies: re-applying is harmless).
func (p *Publisher) deliverPart(part []pendingOp, flags wire.GroupFlags) partOutcome {
	g := wire.Group{Origin: p.cfg.Location, Incarnation: p.cfg.Incarnation, Flags: flags, Ops: make([]wire.Op, len(part))}
	for i, o := range part {
		g.Ops[i] = o.op
	}
	b, err := wire.AppendUpdate(nil, &wire.Update{Level: uint8(LevelFarm), Groups: []wire.Group{g}})
	if err != nil { // keys were checked on the way in: a bug, not input
		p.log.WithError(err).Error("directory: encoding an update")
		return partDone
	}
	n := len(part)
	ch := make(chan verdictFrom, 64)
	var ids []uint64
	defer func() {
		p.mu.Lock()
		for _, id := range ids {
			delete(p.waits, id)
		}
		p.mu.Unlock()
	}()
	accepted := map[rmtp.NodeID]bool{}
	judges := map[rmtp.NodeID]bool{} // managers that refused a copy
	rejected := uint32(0)
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		limit := p.batchLimitLocked()
		p.mu.Unlock()
		if n > limit {
			return partSplit
		}
		if !p.waitTokens(n) {
			return partClosed
		}
		if !p.acquire(p.slots, 1) {
			return partClosed
		}
		var sent []uint64
		rep, ok := sendUp(p.ctx, p.s, b, p.cfg.SendTimeout, p.log, "manager", func(rep rmtp.Report, ok bool) {
			if rep.ID != 0 {
				sent = append(sent, rep.ID)
			}
			if !ok {
				p.mu.Lock()
				p.st.Retries++
				p.mu.Unlock()
			}
		})
		<-p.slots
		if !ok {
			return partClosed
		}
		// Any copy's verdict counts (an earlier one may have reached a
		// manager whose verdict was late); register them all, then take
		// the verdicts that came before the send returned.
		p.mu.Lock()
		if attempt > 0 {
			p.st.Resent++
		}
		for _, id := range sent {
			p.waits[id] = ch
			ids = append(ids, id)
		}
		kept := p.early[:0]
		for _, v := range p.early {
			if slices.Contains(sent, v.e.Message) {
				select {
				case ch <- v:
				default:
				}
			} else {
				kept = append(kept, v)
			}
		}
		p.early = kept
		p.mu.Unlock()

		// Every manager must accept it: those of the view the report
		// names, those the endpoint hears (one the view does not list
		// yet still receives the update, and may refuse it), and any that
		// refused an earlier copy.
		want := map[rmtp.NodeID]bool{}
		for _, m := range slices.Concat(rep.Members, p.liveManagers(), slices.Collect(maps.Keys(judges))) {
			if n == 0 { // nothing a manager could refuse: no verdict comes
				accepted[m] = true
			} else if !accepted[m] {
				want[m] = true
			}
		}
		limited, retry := false, time.Duration(0)
		answered := map[rmtp.NodeID]bool{}
		timer := time.NewTimer(p.cfg.VerdictTimeout)
	wait:
		for len(answered) < len(want) {
			select {
			case v := <-ch:
				if answered[v.from] {
					continue
				}
				if !want[v.from] {
					// A manager nobody knew of judged it: its acceptance
					// counts, its refusal means sending again (to it too).
					switch {
					case v.e.Result == wire.ResultAccepted:
						accepted[v.from] = true
					case v.e.Result == wire.ResultRateLimited && slices.Contains(sent, v.e.Message):
						judges[v.from] = true
						limited = true
						retry = max(retry, time.Duration(v.e.RetryAfter)*time.Millisecond)
					}
					continue
				}
				switch v.e.Result {
				case wire.ResultAccepted:
					answered[v.from], accepted[v.from] = true, true
					rejected = max(rejected, v.e.Rejected)
				case wire.ResultRateLimited:
					// Only a refusal of this attempt's copy counts: a
					// late one of an earlier copy is old news.
					if slices.Contains(sent, v.e.Message) {
						answered[v.from] = true
						judges[v.from] = true
						limited = true
						retry = max(retry, time.Duration(v.e.RetryAfter)*time.Millisecond)
					}
				default: // never storable there: give up on that manager
					answered[v.from], accepted[v.from] = true, true
					rejected = uint32(n)
					p.noteEpisode(func(e *pubEpisode) bool {
						e.rejected += uint64(n)
						return !e.loggedRejected && set(&e.loggedRejected)
					}, logrus.Fields{"manager": v.from, "result": v.e.Result}, "directory: a manager refuses this engine's entries for good (check node.cdn, datacenter, farm and level on both)")
				}
			case <-timer.C:
				break wait
			case <-p.ctx.Done():
				timer.Stop()
				return partClosed
			}
		}
		timer.Stop()
		if !limited && allIn(want, accepted) { // every manager of this attempt has it (want may be empty: one that had left)
			p.mu.Lock()
			p.st.Ops += uint64(n - min(n, int(rejected)))
			p.st.Batches++
			p.st.Rejected += uint64(min(n, int(rejected)))
			p.st.Managers = slices.Sorted(maps.Keys(accepted))
			p.mu.Unlock()
			if rejected > 0 {
				p.noteEpisode(func(e *pubEpisode) bool {
					e.rejected += uint64(rejected)
					return !e.loggedRejected && set(&e.loggedRejected)
				}, logrus.Fields{"operations": rejected}, "directory: a manager refused operations for good (a key over its max_key_len, or its directory full); they are not sent again")
			}
			return partDone
		}
		if limited {
			p.backoff(n, retry)
			p.noteEpisode(func(e *pubEpisode) bool {
				e.refused += uint64(n)
				return !e.loggedRefused && set(&e.loggedRefused)
			}, logrus.Fields{"retry_after": retry}, "directory: a manager refused updates over directory.publish_rate; slowing down and sending them again")
		}
		if len(answered) < len(want) {
			p.mu.Lock()
			p.st.VerdictTimeouts++
			p.mu.Unlock()
			p.noteEpisode(func(e *pubEpisode) bool {
				e.timeouts++
				return !e.loggedTimeout && set(&e.loggedTimeout)
			}, logrus.Fields{"waited": p.cfg.VerdictTimeout, "answered": len(answered), "managers": len(want)},
				"directory: a manager acknowledged an update but sent no verdict; sending it again")
		}
	}
}

func set(b *bool) bool { *b = true; return true }

// liveManagers are the managers the Sender's endpoint hears (alive or
// suspect), when it can tell (an *rmtp.Endpoint can).
func (p *Publisher) liveManagers() []rmtp.NodeID {
	ps, ok := p.s.(interface{ Stats() rmtp.Stats })
	if !ok {
		return nil
	}
	var out []rmtp.NodeID
	for _, pe := range ps.Stats().Peers {
		if pe.Role == rmtp.Manager && (pe.State == rmtp.PeerAlive || pe.State == rmtp.PeerSuspect) {
			out = append(out, pe.Node)
		}
	}
	return out
}

func allIn(want, have map[rmtp.NodeID]bool) bool {
	for m := range want {
		if !have[m] {
			return false
		}
	}
	return true
}

// backoff holds new sends after a refusal of n operations: until the
// managers' bucket holds them again (retry) and, beyond that, half a burst,
// the margin for jitter this publisher's pacing keeps and the refusal
// showed gone.
func (p *Publisher) backoff(n int, retry time.Duration) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.Refused += uint64(n)
	rate, burst := p.limitsLocked(p.cfg.Now())
	if rate < 0 {
		return
	}
	capacity := p.sendBurst(burst)
	p.refillLocked(now, rate, capacity)
	p.tokens = min(p.tokens, float64(n)-retry.Seconds()*rate-capacity)
}

// readInbox reads what the managers send down on the updates channel:
// verdicts on this SE's updates, and RESYNC.
func (p *Publisher) readInbox() {
	defer p.wg.Done()
	for {
		m, err := p.cfg.Inbox.Receive(p.ctx)
		if err != nil {
			return
		}
		if m.Channel != rmtp.ChannelDirectory || m.Dest != rmtp.Down {
			continue
		}
		t, err := wire.Peek(m.Payload)
		switch {
		case err != nil:
		case t == wire.TypeVerdict:
			if v, err := wire.ParseVerdict(m.Payload); err == nil {
				p.verdicts(m.From, &v)
			}
		case isResync(m):
			p.log.WithField("manager", m.From).Info("directory: manager asked for a re-announcement")
			p.Reannounce()
		}
	}
}

// verdicts hands this SE's entries of one VERDICT to the deliveries
// waiting for them, and learns the manager's limit.
func (p *Publisher) verdicts(from rmtp.NodeID, v *wire.Verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	for _, e := range v.Entries {
		if rmtp.NodeID(e.Engine) != p.self || e.Incarnation != p.cfg.Incarnation {
			continue
		}
		p.learnLocked(from, e, now)
		vf := verdictFrom{from: from, e: e}
		if ch := p.waits[e.Message]; ch != nil {
			select {
			case ch <- vf:
			default: // the delivery has more than it can use; a missing one is sent again
			}
			continue
		}
		if len(p.early) >= maxEarlyVerdicts {
			p.early = slices.Delete(p.early, 0, 1)
		}
		p.early = append(p.early, vf)
	}
}

// learnLocked keeps the limit a manager announced and logs when the limit
// followed changes.
func (p *Publisher) learnLocked(from rmtp.NodeID, e wire.VerdictEntry, now time.Time) {
	if _, ok := p.learned[from]; !ok && len(p.learned) >= maxLearned {
		var oldest rmtp.NodeID
		for m, l := range p.learned {
			if oldest == 0 || l.at.Before(p.learned[oldest].at) {
				oldest = m
			}
		}
		delete(p.learned, oldest)
	}
	p.learned[from] = learned{rate: float64(e.Rate), burst: float64(e.Burst), at: now}
	rate, burst := p.limitsLocked(now)
	if rate == p.limRate && burst == p.limBurst {
		return
	}
	p.limRate, p.limBurst = rate, burst
	f := logrus.Fields{"rate": rate, "burst": burst, "configured_rate": p.cfg.Rate, "configured_burst": p.cfg.Burst}
	if rate == p.cfg.Rate && burst == p.cfg.Burst {
		p.log.WithFields(f).Info("directory: following the configured publish rate again")
	} else {
		p.log.WithFields(f).Info("directory: following a manager's lower publish rate (directory.publish_rate differs between this SE and its managers)")
	}
}

// noteEpisode counts into the current episode (starting one) and logs msg
// when count says this is the first of its kind in the episode.
func (p *Publisher) noteEpisode(count func(*pubEpisode) bool, f logrus.Fields, msg string) {
	now := p.cfg.Now()
	p.mu.Lock()
	if p.episode == nil {
		p.episode = &pubEpisode{start: now}
	}
	p.episode.last = now
	first := count(p.episode)
	p.mu.Unlock()
	if first {
		p.log.WithFields(f).Warn(msg)
	}
}

// watchEpisodes ends an episode after RefusalQuiet without a refusal, with
// one line of totals.
func (p *Publisher) watchEpisodes() {
	defer p.wg.Done()
	t := time.NewTicker(min(p.cfg.RefusalQuiet/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.ctx.Done():
			return
		}
		now := p.cfg.Now()
		p.mu.Lock()
		e := p.episode
		if e != nil && now.Sub(e.last) >= p.cfg.RefusalQuiet {
			p.episode = nil
		} else {
			e = nil
		}
		p.mu.Unlock()
		if e != nil {
			p.log.WithFields(logrus.Fields{"lasted": e.last.Sub(e.start).Round(time.Millisecond), "refused_ops": e.refused,
				"rejected_ops": e.rejected, "verdict_timeouts": e.timeouts}).Info("directory: managers accept this engine's updates again")
		}
	}
}
