package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// rmtp channels of the directory protocol. fanout uses channel 1.
const (
	ChannelUpdates  uint8 = 2 // UPDATE (SEs up to the managers), RESYNC (a manager down to the SEs)
	ChannelTransfer uint8 = 3 // SNAPSHOT_REQUEST down, SNAPSHOT_CHUNK up (manager to manager)
)

// Sender is what the directory needs to send: *rmtp.Endpoint implements it.
type Sender interface {
	Send(ctx context.Context, ch uint8, dest rmtp.Dest, payload []byte) (rmtp.Report, error)
}

// Inbox delivers received messages: an *rmtp.Endpoint nobody else reads,
// or one channel of a demultiplexer (fanout.Demux.Channel) when the
// management protocol shares the endpoint. Messages of other channels are
// ignored.
type Inbox interface {
	Receive(ctx context.Context) (*rmtp.Message, error)
}

// Publisher defaults.
const (
	DefaultPublishRate   = 10000 // operations per second, below the managers' DefaultRate
	DefaultFlushDelay    = time.Millisecond
	DefaultMaxBatchBytes = 60 << 10
	DefaultSendTimeout   = 2 * time.Second
	DefaultMaxInFlight   = 4
	retryMin             = 20 * time.Millisecond
	retryMax             = 2 * time.Second
)

// ErrNotHeld is returned by Remove for a key this SE does not publish.
var ErrNotHeld = errors.New("directory: key not published by this engine")

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
	// Rate and Burst bound the operations sent per second (a token
	// bucket); the default rate is DefaultPublishRate, the default burst
	// equals the rate. Negative Rate: unlimited.
	Rate, Burst float64
	// FlushDelay is how long an operation waits for others to share its
	// message (default 1 ms).
	FlushDelay time.Duration
	// MaxBatchBytes caps one UPDATE (default 60 KiB).
	MaxBatchBytes int
	// SendTimeout bounds one attempt to reach every manager (default 2 s);
	// a failed attempt is retried with backoff until Close.
	SendTimeout time.Duration
	// MaxInFlight is how many UPDATEs may wait for acknowledgement at
	// once (default 4): a new entry need not wait for the previous
	// batch's ACK. Order between batches does not matter to the managers
	// (versions decide), except for SYNC_END, which waits for all.
	MaxInFlight int
	// Initial is what this SE holds at start; it is re-announced at once,
	// ending with SYNC_END, so the managers drop what the previous
	// incarnation held and this one does not.
	Initial []Entry
	// Resync, if set, is read for RESYNC requests from managers.
	Resync Inbox
	Logger logrus.FieldLogger
	Now    func() time.Time
}

// PublisherStats are a publisher's totals.
type PublisherStats struct {
	Held      int    // entries published
	Pending   int    // operations not yet acknowledged by every manager
	Ops       uint64 // operations acknowledged by every manager
	Batches   uint64 // UPDATE messages acknowledged
	Retries   uint64 // attempts that did not reach every manager
	Coalesced uint64 // operations replaced by a newer one on the same key before sending
	Resyncs   uint64 // re-announcements (start, RESYNC)
}

type held struct {
	size, expiry uint64
	ver          Version
}

// Publisher is an SE's side of the directory update protocol (Fig 7): it
// keeps what the SE publishes, and sends additions and removals up to the
// farm's managers (SM and BSM) in batches, rate-limited, retried until
// every manager has them. Operations on one key that are still waiting are
// coalesced: only the newest is sent.
type Publisher struct {
	cfg PublisherConfig
	s   Sender
	log logrus.FieldLogger

	mu        sync.Mutex
	held      map[string]*held
	seq       uint64
	pending   []wire.Op
	pidx      map[string]int
	syncBegin bool
	syncLeft  int // operations from the queue's front that belong to the re-announcement
	syncEnd   bool
	inflight  int // batches being delivered
	inflightN int // their operations
	idle      []chan struct{}
	tokens    float64
	tokAt     time.Time
	st        PublisherStats

	wake   chan struct{}
	slots  chan struct{}
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
	if cfg.Rate == 0 {
		cfg.Rate = DefaultPublishRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = cfg.Rate
	}
	cfg.Burst = max(cfg.Burst, 1) // a batch holds at most Burst operations: never zero
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
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Publisher{cfg: cfg, s: s, log: discard(cfg.Logger).WithField("engine", cfg.Location.Engine),
		held: make(map[string]*held), pidx: make(map[string]int), wake: make(chan struct{}, 1), tokens: cfg.Burst,
		slots: make(chan struct{}, cfg.MaxInFlight)}
	for _, e := range cfg.Initial {
		if err := CheckKey(e.Key, cfg.MaxKey); err != nil {
			return nil, fmt.Errorf("initial entry %q: %w", e.Key, err)
		}
		p.held[e.Key] = &held{size: e.Size, expiry: expiryMillis(e.Expiry)}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.Lock()
	p.reannounceLocked()
	p.mu.Unlock()
	p.wg.Add(1)
	go p.run()
	if cfg.Resync != nil {
		p.wg.Add(1)
		go p.resyncLoop()
	}
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
	delete(p.held, key)
	p.queueLocked(wire.Op{Kind: wire.OpRemove, Key: key}, h)
	return nil
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
		p.pending[i] = op
		p.st.Coalesced++
	} else {
		p.pidx[op.Key] = len(p.pending)
		p.pending = append(p.pending, op)
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
// queued before it has reached every manager (or ctx is done). Under a
// steady stream of new operations it waits for a lull: give ctx a
// deadline.
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
	return s
}

// Close stops sending; what was not yet acknowledged is dropped (the
// next incarnation re-announces).
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

// take removes the next batch from the queue. Caller holds mu.
func (p *Publisher) take() (wire.Group, int) {
	g := wire.Group{Origin: p.cfg.Location, Incarnation: p.cfg.Incarnation}
	size := wire.UpdateOverhead + wire.GroupOverhead
	limit := wire.MaxOps
	if p.cfg.Rate > 0 {
		limit = min(limit, int(p.cfg.Burst))
	}
	n := 0
	for n < len(p.pending) && n < limit {
		l := p.pending[n].Len()
		if size+l > p.cfg.MaxBatchBytes && n > 0 {
			break
		}
		size += l
		n++
	}
	g.Ops = slices.Clone(p.pending[:n])
	for _, op := range g.Ops {
		delete(p.pidx, op.Key)
	}
	p.pending = slices.Delete(p.pending, 0, n)
	for k, i := range p.pidx {
		p.pidx[k] = i - n
	}
	if p.syncBegin {
		g.Flags |= wire.SyncBegin
		p.syncBegin = false
	}
	p.syncLeft -= n
	if p.syncEnd && p.syncLeft <= 0 {
		g.Flags |= wire.SyncEnd
		p.syncEnd = false
	}
	return g, n
}

// waitTokens blocks until n operations may be sent.
func (p *Publisher) waitTokens(n int) bool {
	if p.cfg.Rate < 0 {
		return true
	}
	for {
		now := time.Now()
		p.mu.Lock()
		if !p.tokAt.IsZero() {
			p.tokens = min(p.cfg.Burst, p.tokens+now.Sub(p.tokAt).Seconds()*p.cfg.Rate)
		}
		p.tokAt = now
		if p.tokens >= float64(n) {
			p.tokens -= float64(n)
			p.mu.Unlock()
			return true
		}
		wait := time.Duration((float64(n) - p.tokens) / p.cfg.Rate * float64(time.Second))
		p.mu.Unlock()
		if !sleepCtx(p.ctx, wait) {
			return false
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
			g, n := p.take()
			p.inflight++
			p.inflightN += n
			p.mu.Unlock()
			if !p.waitTokens(n) {
				return
			}
			// SYNC_END must not overtake the re-announcement it ends: it
			// waits for every earlier batch.
			slots := 1
			if g.Flags&wire.SyncEnd != 0 {
				slots = p.cfg.MaxInFlight
			}
			if !p.acquire(slots) {
				return
			}
			b, err := wire.AppendUpdate(nil, &wire.Update{Level: uint8(LevelFarm), Groups: []wire.Group{g}})
			if err != nil { // keys were checked on the way in: a bug, not input
				p.log.WithError(err).Error("directory: encoding an update")
				p.done(n, slots)
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.deliver(b, n)
				p.done(n, slots)
			}()
		}
	}
}

// acquire takes n delivery slots; false when closing.
func (p *Publisher) acquire(n int) bool {
	for i := range n {
		select {
		case p.slots <- struct{}{}:
		case <-p.ctx.Done():
			for range i {
				<-p.slots
			}
			return false
		}
	}
	return true
}

// done ends one delivery.
func (p *Publisher) done(n, slots int) {
	for range slots {
		<-p.slots
	}
	p.mu.Lock()
	p.inflight--
	p.inflightN -= n
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

// deliver sends one UPDATE until every manager has it. An attempt that
// reached no manager at all (none is up) counts as failed: the operations
// must not vanish before a manager exists to keep them.
func (p *Publisher) deliver(b []byte, n int) bool {
	return sendUp(p.ctx, p.s, b, p.cfg.SendTimeout, p.log, "manager", func(_ rmtp.Report, ok bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if ok {
			p.st.Ops += uint64(n)
			p.st.Batches++
		} else {
			p.st.Retries++
		}
	})
}

// sendUp sends one message up on the updates channel until every manager
// of the destination has it, retrying with a capped exponential backoff
// until ctx ends; it reports whether it was delivered. An attempt that
// reached no manager at all counts as failed. attempt sees the report of
// every attempt (ok: delivered) for the caller's bookkeeping; whom names
// the receivers in the log.
func sendUp(ctx context.Context, s Sender, b []byte, timeout time.Duration, log logrus.FieldLogger, whom string, attempt func(rep rmtp.Report, ok bool)) bool {
	backoff := retryMin
	for {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		rep, err := s.Send(sctx, ChannelUpdates, rmtp.Up, b)
		cancel()
		if err == nil && len(rep.Members) > 0 {
			attempt(rep, true)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		attempt(rep, false)
		if err == nil {
			err = errors.New("no " + whom + " in the view")
		}
		log.WithError(err).WithField("retry_in", backoff).Debug("directory: update not delivered to every " + whom)
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, retryMax)
	}
}

func (p *Publisher) resyncLoop() {
	defer p.wg.Done()
	watchResync(p.ctx, p.cfg.Resync, p.log, "directory: manager asked for a re-announcement", p.Reannounce)
}

// watchResync calls reannounce whenever a manager above asks for it (a
// RESYNC sent down on the updates channel), until ctx ends. Publishers and
// forwarders answer it the same way.
func watchResync(ctx context.Context, in Inbox, log logrus.FieldLogger, msg string, reannounce func()) {
	for {
		m, err := in.Receive(ctx)
		if err != nil {
			return
		}
		if m.Channel != ChannelUpdates || m.Dest != rmtp.Down {
			continue
		}
		if t, err := wire.Peek(m.Payload); err != nil || t != wire.TypeResync || wire.ParseResync(m.Payload) != nil {
			continue
		}
		log.WithField("manager", m.From).Info(msg)
		reannounce()
	}
}

func discard(l logrus.FieldLogger) logrus.FieldLogger {
	if l == nil {
		lg := logrus.New()
		lg.Out = nopWriter{}
		lg.Level = logrus.PanicLevel
		return lg
	}
	return l
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
