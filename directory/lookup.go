package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Lookup link bounds.
const (
	// DefaultMaxLookups bounds the lookups one link has in flight, each
	// way: beyond it a lookup fails at once (ErrBusy) instead of queueing
	// behind a parent that does not answer.
	DefaultMaxLookups = 64
	// maxServeBudget caps the time a peer may ask this node to spend.
	maxServeBudget = 5 * time.Second
	// answerTimeout bounds the delivery of one answer to every member.
	answerTimeout = time.Second
)

// transferBudget is how long a LOOKUP may be repaired: the query's
// deadline, or the default question timeout.
func transferBudget(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return min(max(time.Until(dl), time.Millisecond), maxServeBudget)
	}
	return DefaultAskTimeout
}

// Lookup link errors.
var (
	// ErrBusy: too many lookups in flight on this link.
	ErrBusy = errors.New("directory: too many lookups in flight")
	// ErrRemote wraps the error another level reported for a lookup.
	ErrRemote = errors.New("directory: lookup failed at another level")
)

// LinkStats are a lookup link's totals.
type LinkStats struct {
	Asked     uint64 // lookups this node sent over the link
	AskFailed uint64 // of those: no answer by the deadline, or a refusal
	Served    uint64 // lookups from the other side answered
	Failed    uint64 // of those: answered with an error
	Dropped   uint64 // not answered: too many in flight
}

// linkCounters are the atomics behind LinkStats.
type linkCounters struct {
	asked, askFailed, served, failed, dropped atomic.Uint64
}

func (c *linkCounters) stats() LinkStats {
	return LinkStats{Asked: c.asked.Load(), AskFailed: c.askFailed.Load(), Served: c.served.Load(),
		Failed: c.failed.Load(), Dropped: c.dropped.Load()}
}

// UplinkEndpoint is what a child manager's parent link needs of rmtp (the
// endpoint where it is a member, role Engine, of the parent's group).
type UplinkEndpoint interface {
	Start(ctx context.Context, ch uint8, dest rmtp.Dest, payload []byte) (*rmtp.Transfer, error)
	StartReply(ctx context.Context, req *rmtp.Message, payload []byte) (*rmtp.Transfer, error)
	Node() rmtp.NodeID
}

// DownlinkEndpoint is what a parent manager needs of rmtp on its own
// group, where its child units' managers are members.
type DownlinkEndpoint interface {
	Start(ctx context.Context, ch uint8, dest rmtp.Dest, payload []byte) (*rmtp.Transfer, error)
	Request(ctx context.Context, ch uint8, payload []byte, targets []rmtp.NodeID) (rmtp.Report, error)
	Node() rmtp.NodeID
}

// LinkConfig configures an Uplink or a Downlink.
type LinkConfig struct {
	MaxLookups int // in flight each way (default DefaultMaxLookups)
	// Answering, for a Downlink: whether this manager answers its
	// children's LOOKUPs now (nil: always). Pass the active manager's
	// test, so a backup does not double every lookup climbing the tree;
	// the asker's deadline covers a takeover.
	Answering func() bool
	Logger    logrus.FieldLogger
}

// Uplink is a child manager's lookup side of its parent link: Resolve
// climbs (a LOOKUP sent up to the parent's managers, the answer comes back
// down to the whole group, addressed by asker and id), and Serve answers
// the parent's downward questions about this unit (rmtp requests) with
// the local resolver.
type Uplink struct {
	ep        UplinkEndpoint
	in        rmtp.Receiver
	cfg       LinkConfig
	log       logrus.FieldLogger
	self      uint32
	responder // answers the parent's downward questions

	mu      sync.Mutex
	closed  bool
	next    uint64
	waiting map[uint64]chan wire.LookupAnswer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewUplink returns the lookup side of a parent link. It reads in (the
// uplink endpoint's rmtp.ChannelLookup) once Serve is called.
func NewUplink(ep UplinkEndpoint, in rmtp.Receiver, cfg LinkConfig) *Uplink {
	if cfg.MaxLookups <= 0 {
		cfg.MaxLookups = DefaultMaxLookups
	}
	u := &Uplink{ep: ep, in: in, cfg: cfg, log: discard(cfg.Logger), self: uint32(ep.Node()),
		waiting: make(map[uint64]chan wire.LookupAnswer)}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.responder = responder{sem: make(chan struct{}, cfg.MaxLookups), log: u.log, ctx: u.ctx, wg: &u.wg}
	return u
}

// Resolve implements Peer: it asks the parent level.
func (u *Uplink) Resolve(ctx context.Context, q Query) (res Resolution, err error) {
	u.n.asked.Add(1)
	defer func() {
		if err != nil {
			u.n.askFailed.Add(1)
		}
	}()
	u.mu.Lock()
	switch {
	case u.closed:
		u.mu.Unlock()
		return Resolution{Key: q.Key, Hits: []Hit{}}, ErrClosed
	case len(u.waiting) >= u.cfg.MaxLookups:
		u.mu.Unlock()
		return Resolution{Key: q.Key, Hits: []Hit{}}, ErrBusy
	}
	u.wg.Add(1) // the LOOKUP's delivery, below
	u.next++
	id := u.next
	ch := make(chan wire.LookupAnswer, 1)
	u.waiting[id] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.waiting, id)
		u.mu.Unlock()
	}()
	b, err := wire.AppendLookupQuery(nil, queryToWire(ctx, q, id, u.self))
	if err != nil {
		u.wg.Done()
		return Resolution{Key: q.Key, Hits: []Hit{}}, err
	}
	// The LOOKUP is delivered to every parent manager even when the
	// first one's answer ends the wait: cutting it short would leave a
	// gap in this link's stream that the others must wait out. Its
	// repairs end with the query's own deadline.
	tctx, tcancel := context.WithTimeout(u.ctx, transferBudget(ctx))
	t, err := u.ep.Start(tctx, rmtp.ChannelLookup, rmtp.Up, b)
	if err != nil {
		tcancel()
		u.wg.Done()
		return Resolution{Key: q.Key, Hits: []Hit{}}, fmt.Errorf("directory: asking the parent level: %w", err)
	}
	go func() {
		defer u.wg.Done()
		defer tcancel()
		_, _ = t.Wait()
	}()
	select {
	case a := <-ch:
		return answerFromWire(q.Key, &a)
	case <-ctx.Done():
		return Resolution{Key: q.Key, Hits: []Hit{}}, fmt.Errorf("directory: no answer from the parent level: %w", ctx.Err())
	case <-u.ctx.Done():
		return Resolution{Key: q.Key, Hits: []Hit{}}, ErrClosed
	}
}

// Serve starts reading the link: answers to this node's lookups, and the
// parent's downward questions, answered with local (this level's
// resolver).
func (u *Uplink) Serve(local Peer) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			msg, err := u.in.Receive(u.ctx)
			if err != nil {
				return
			}
			u.handle(msg, local)
		}
	}()
}

func (u *Uplink) handle(msg *rmtp.Message, local Peer) {
	t, err := wire.Peek(msg.Payload)
	if err != nil {
		return
	}
	switch {
	case t == wire.TypeLookupAnswer && msg.Kind == rmtp.KindData:
		a, err := wire.ParseLookupAnswer(msg.Payload)
		if err != nil || a.Asker != u.self {
			return // malformed, or another child's answer
		}
		u.mu.Lock()
		ch := u.waiting[a.ID]
		u.mu.Unlock()
		if ch != nil {
			select {
			case ch <- a: // the first manager's answer wins; the others are dropped
			default:
			}
		}
	case t == wire.TypeLookup && msg.Kind == rmtp.KindRequest:
		q, err := wire.ParseLookupQuery(msg.Payload)
		if err != nil {
			return
		}
		// The reply goes up to the parent's managers.
		u.respond(&q, local, func(ctx context.Context, b []byte) (*rmtp.Transfer, error) {
			return u.ep.StartReply(ctx, msg, b)
		})
	}
}

// Stats returns the link's totals.
func (u *Uplink) Stats() LinkStats { return u.n.stats() }

// Close stops the link's goroutines; lookups waiting fail with ErrClosed.
func (u *Uplink) Close() error {
	u.once.Do(func() {
		u.mu.Lock()
		u.closed = true
		u.mu.Unlock()
		u.cancel()
		u.wg.Wait()
	})
	return nil
}

// Downlink is a parent manager's lookup side of its own group: Serve
// answers its children's LOOKUPs (down to the group), and Child returns a
// Peer asking one child unit's manager (an rmtp request to it).
type Downlink struct {
	ep        DownlinkEndpoint
	in        rmtp.Receiver
	cfg       LinkConfig
	log       logrus.FieldLogger
	children  func(unit Location) (rmtp.NodeID, bool)
	responder // answers the children's LOOKUPs

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewDownlink returns the lookup side of a manager's own group. children
// names the member serving a child unit (Manager.ChildNode: the child
// manager that forwards it).
func NewDownlink(ep DownlinkEndpoint, in rmtp.Receiver, children func(Location) (rmtp.NodeID, bool), cfg LinkConfig) *Downlink {
	if cfg.MaxLookups <= 0 {
		cfg.MaxLookups = DefaultMaxLookups
	}
	d := &Downlink{ep: ep, in: in, cfg: cfg, log: discard(cfg.Logger), children: children}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.responder = responder{sem: make(chan struct{}, cfg.MaxLookups), log: d.log, ctx: d.ctx, wg: &d.wg}
	return d
}

// Child implements ResolverConfig.Child.
func (d *Downlink) Child(unit Location) (Peer, bool) {
	n, ok := d.children(unit)
	if !ok {
		return nil, false
	}
	return childPeer{d: d, node: n}, true
}

type childPeer struct {
	d    *Downlink
	node rmtp.NodeID
}

func (c childPeer) Resolve(ctx context.Context, q Query) (res Resolution, err error) {
	c.d.n.asked.Add(1)
	defer func() {
		if err != nil {
			c.d.n.askFailed.Add(1)
		}
	}()
	fail := Resolution{Key: q.Key, Hits: []Hit{}}
	b, err := wire.AppendLookupQuery(nil, queryToWire(ctx, q, 0, uint32(c.d.ep.Node())))
	if err != nil {
		return fail, err
	}
	rep, err := c.d.ep.Request(ctx, rmtp.ChannelLookup, b, []rmtp.NodeID{c.node})
	for _, r := range rep.Responses {
		if r.From != c.node {
			continue
		}
		a, perr := wire.ParseLookupAnswer(r.Payload)
		if perr != nil {
			return fail, fmt.Errorf("directory: answer of node %d: %w", c.node, perr)
		}
		return answerFromWire(q.Key, &a)
	}
	if err == nil {
		err = errors.New("no answer")
	}
	return fail, fmt.Errorf("directory: asking node %d: %w", c.node, err)
}

// Serve starts answering children's LOOKUPs with local (this level's
// resolver), which may climb further or resolve downward.
func (d *Downlink) Serve(local Peer) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			msg, err := d.in.Receive(d.ctx)
			if err != nil {
				return
			}
			if msg.Kind != rmtp.KindData || msg.Dest != rmtp.Up {
				continue
			}
			if d.cfg.Answering != nil && !d.cfg.Answering() {
				continue
			}
			q, err := wire.ParseLookupQuery(msg.Payload)
			if err != nil || q.Asker != uint32(msg.From) {
				continue // malformed, or naming someone else as the asker
			}
			// The answer goes to every member; the asker picks it by id.
			d.respond(&q, local, func(ctx context.Context, b []byte) (*rmtp.Transfer, error) {
				return d.ep.Start(ctx, rmtp.ChannelLookup, rmtp.Down, b)
			})
		}
	}()
}

// Stats returns the link's totals.
func (d *Downlink) Stats() LinkStats { return d.n.stats() }

// Close stops the link's goroutines.
func (d *Downlink) Close() error {
	d.once.Do(func() {
		d.cancel()
		d.wg.Wait()
	})
	return nil
}

// responder answers the other side's lookups for a link: at most
// MaxLookups at once (the rest dropped and counted), each on its own
// goroutine, with the link's counters.
type responder struct {
	n   linkCounters
	sem chan struct{}
	log logrus.FieldLogger
	ctx context.Context // the link's: ends with Close
	wg  *sync.WaitGroup // the link's
}

// respond resolves q with local and hands the encoded answer to send.
// The slot is free once the answer is queued: the asker has it when it
// arrives, and only the repairs wait for the other members'
// acknowledgements, under a deadline of their own (resolving may have
// used the whole budget, and an answer cut short would leave a gap in the
// stream).
func (r *responder) respond(q *wire.LookupQuery, local Peer, send func(context.Context, []byte) (*rmtp.Transfer, error)) {
	select {
	case r.sem <- struct{}{}:
	default:
		r.n.dropped.Add(1)
		r.log.Debug("directory: lookup dropped: too many in flight") // counted: smDirectoryLookupFailures
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := serveContext(r.ctx, q.Budget)
		b := answer(ctx, local, q, &r.n)
		cancel()
		sctx, scancel := context.WithTimeout(r.ctx, answerTimeout)
		defer scancel()
		t, err := send(sctx, b)
		<-r.sem
		if err == nil {
			_, err = t.Wait()
		}
		if err != nil && r.ctx.Err() == nil {
			r.log.WithError(err).Debug("directory: answering a lookup")
		}
	}()
}

// serveContext bounds the work for a peer by the budget it announced,
// keeping a tenth for the way back.
func serveContext(parent context.Context, budgetMs uint32) (context.Context, context.CancelFunc) {
	b := time.Duration(budgetMs) * time.Millisecond
	if b <= 0 || b > maxServeBudget {
		b = maxServeBudget
	}
	return context.WithTimeout(parent, b-b/10)
}

// answer resolves q locally and encodes the answer (never fails: an
// error becomes a FAILED answer, cut to the caps).
func answer(ctx context.Context, local Peer, q *wire.LookupQuery, n *linkCounters) []byte {
	res, err := local.Resolve(ctx, Query{Key: q.Key, From: q.From, Down: q.Down, Steps: int(q.Steps)})
	a := wire.LookupAnswer{ID: q.ID, Asker: q.Asker}
	n.served.Add(1)
	if err != nil {
		a.Failed, a.Error = true, err.Error()
		n.failed.Add(1)
	}
	a.Hits = hitsToWire(res.Hits)
	a.Unresolved = hitsToWire(res.Unresolved)
	for i, s := range res.Path {
		if i == wire.MaxSteps {
			break
		}
		a.Path = append(a.Path, wire.LookupStep{Node: s.Node, Level: uint8(s.Level), Unit: s.Unit, Via: wire.ParseVia(s.Via),
			Hits: clamp16(s.Hits), Summaries: clamp16(s.Summaries), Error: s.Error})
		if a.Path[i].Via == 0 {
			a.Path[i].Via = wire.ViaSelf
		}
	}
	b, err := wire.AppendLookupAnswer(nil, &a)
	if err != nil { // only over a cap, which the conversions prevent
		b, _ = wire.AppendLookupAnswer(nil, &wire.LookupAnswer{ID: q.ID, Asker: q.Asker, Failed: true, Error: err.Error()})
	}
	return b
}

func queryToWire(ctx context.Context, q Query, id uint64, asker uint32) *wire.LookupQuery {
	budget := uint32(DefaultAskTimeout / time.Millisecond)
	if dl, ok := ctx.Deadline(); ok {
		budget = uint32(max(time.Until(dl), 0) / time.Millisecond)
	}
	return &wire.LookupQuery{ID: id, Asker: asker, Budget: budget, Steps: uint8(min(q.Steps, 255)), Down: q.Down,
		From: q.From, Key: q.Key}
}

func answerFromWire(key string, a *wire.LookupAnswer) (Resolution, error) {
	res := Resolution{Key: key, Hits: hitsFromWire(a.Hits), Unresolved: hitsFromWire(a.Unresolved)}
	for _, s := range a.Path {
		res.Path = append(res.Path, Step{Node: s.Node, Level: Level(s.Level), Unit: s.Unit, Via: s.Via.String(),
			Hits: int(s.Hits), Summaries: int(s.Summaries), Error: s.Error})
	}
	if a.Failed {
		return res, fmt.Errorf("%w: %s", ErrRemote, a.Error)
	}
	return res, nil
}

func hitsToWire(hs []Hit) []wire.LookupHit {
	if len(hs) > wire.MaxHits {
		hs = hs[:wire.MaxHits]
	}
	out := make([]wire.LookupHit, len(hs))
	for i, h := range hs {
		out[i] = wire.LookupHit{ID: h.ID, Location: h.Location, Size: h.Size, Incarnation: h.Version.Incarnation,
			Seq: h.Version.Seq, Expiry: expiryMillis(h.Expiry), Stored: uint64(max(h.Stored.UnixMilli(), 0)),
			Down: h.Down, Hops: uint8(min(max(h.Hops, 0), 255))}
	}
	return out
}

func hitsFromWire(hs []wire.LookupHit) []Hit {
	out := make([]Hit, len(hs))
	for i, h := range hs {
		out[i] = Hit{ID: h.ID, Location: h.Location, Size: h.Size, Version: Version{Incarnation: h.Incarnation, Seq: h.Seq},
			Stored: time.UnixMilli(int64(h.Stored)), Down: h.Down, Hops: int(h.Hops)}
		if h.Expiry != 0 {
			out[i].Expiry = time.UnixMilli(int64(h.Expiry))
		}
	}
	return out
}

func clamp16(n int) uint16 { return uint16(min(max(n, 0), 65535)) }
