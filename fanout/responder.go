package fanout

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Tree is what a Responder needs of the SE's own objects: the reads and
// the SET phases, keyed by transaction. *agent.Tree implements it.
type Tree interface {
	// Roots are the subtrees it owns, in OID order.
	Roots() []smi.OID
	Get(ctx context.Context, names []smi.OID) ([]smi.VarBind, error)
	GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error)
	GetBulk(ctx context.Context, nonRepeaters, maxRepetitions int, ranges []smi.Range, maxVarBinds int) ([]smi.VarBind, error)
	// The SET phases fail with an *smi.Error naming the varbind.
	TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) error
	CommitSet(ctx context.Context, tx smi.TxID) error
	UndoSet(ctx context.Context, tx smi.TxID) error
	CleanupSet(ctx context.Context, tx smi.TxID)
}

// Responder defaults.
const (
	DefaultReservationTTL = 2 * time.Second
	DefaultReplyCacheTTL  = 10 * time.Second
	DefaultReplyCacheSize = 4096
	DefaultWorkers        = 32
	// DefaultBudget is the work budget of a request that carries none.
	DefaultBudget = time.Second
	// MaxBudget bounds what a request may ask an SE to spend.
	MaxBudget = 5 * time.Second
	// DefaultMaxReply keeps a reply inside rmtp's default message size.
	DefaultMaxReply = rmtp.DefaultMaxMessage - 1024
	// maxProxySkips bounds how often a proxied GETNEXT skips over a subtree
	// the SE's own tree owns.
	maxProxySkips = 16
)

// ResponderConfig configures a Responder. Zero fields take the defaults.
type ResponderConfig struct {
	Channel uint8
	// Tree holds the SE's own objects (required): its agent.Tree.
	Tree Tree
	// LocalAgent, if set, answers every OID the tree does not hold.
	LocalAgent *LocalAgent
	// ReservationTTL releases a SET reservation (CleanupSet) when neither
	// COMMIT nor CLEANUP follows in time, and a committed one when no
	// CLEANUP follows.
	ReservationTTL time.Duration
	// ReplyCacheTTL and ReplyCacheSize bound the reply cache.
	ReplyCacheTTL  time.Duration
	ReplyCacheSize int
	// Workers bounds the requests executed or answered at once, inline
	// or on a worker goroutine; more are shed (counted Busy).
	Workers int
	// MaxReply bounds an encoded reply; a larger one is answered tooBig.
	MaxReply int
	Logger   logrus.FieldLogger
}

// ResponderCounters are the responder's totals (they only grow).
type ResponderCounters struct {
	Requests            uint64 // requests addressed to this SE
	Executed            uint64 // requests executed (never twice per transaction and phase)
	CacheHits           uint64 // repeated requests answered from the reply cache
	NotTargeted         uint64 // requests for other SEs, ignored
	StaleTerm           uint64 // refused: term older than the newest seen
	BadRequests         uint64
	Busy                uint64 // shed for lack of a worker
	ReplyErrors         uint64 // replies rmtp refused to send (endpoint closed, message too large)
	Inline              uint64 // requests answered on the reader, without a worker goroutine
	Takeovers           uint64 // inline requests slow enough that another reader took over
	Proxied             uint64 // requests that asked the local agent
	ProxyErrors         uint64
	SetsTested          uint64
	SetsCommitted       uint64
	SetsUndone          uint64
	ReservationsExpired uint64
}

// Responder is the SE side of the management protocol. rmtp's receive
// goroutine hands it each request and it answers reads served from memory
// there and then; a bounded set of workers runs the rest (the local agent,
// SET phases); a janitor expires reservations, cached replies and reply
// deadlines; Close stops them all.
type Responder struct {
	ep    *rmtp.Endpoint
	cfg   ResponderConfig
	log   logrus.FieldLogger
	tree  Tree
	proxy *proxy
	sem   chan struct{}

	mu       sync.Mutex
	closed   bool
	newest   uint64 // newest term seen in an announced view
	cache    map[cacheKey]*cacheEntry
	done     []finished // cached replies in the order they finished (and expire)
	doneHead int
	sets     map[setKey]*seSet
	ends     sharedDeadlines // bound replies' repairs and inline reads
	cnt      ResponderCounters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// DefaultResponderConfig is what NewResponder gives every field left zero
// (the tree, the local agent and the logger are the caller's): the one
// place the responder's defaults are written. Package internal/config
// takes the operator's defaults from it.
func DefaultResponderConfig() ResponderConfig {
	return ResponderConfig{
		Channel:        rmtp.ChannelManagement,
		ReservationTTL: DefaultReservationTTL,
		ReplyCacheTTL:  DefaultReplyCacheTTL,
		ReplyCacheSize: DefaultReplyCacheSize,
		Workers:        DefaultWorkers,
		MaxReply:       DefaultMaxReply,
	}
}

func (c *ResponderConfig) fill() error {
	if c.Tree == nil {
		return errors.New("fanout: responder needs a tree")
	}
	d := DefaultResponderConfig()
	orDefault(&c.Channel, d.Channel)
	orDefault(&c.ReservationTTL, d.ReservationTTL)
	orDefault(&c.ReplyCacheTTL, d.ReplyCacheTTL)
	orDefault(&c.ReplyCacheSize, d.ReplyCacheSize)
	orDefault(&c.Workers, d.Workers)
	orDefault(&c.MaxReply, d.MaxReply)
	if c.LocalAgent != nil && !c.LocalAgent.Address.IsValid() {
		return errors.New("fanout: local agent without an address")
	}
	c.Logger = discard(c.Logger)
	return nil
}

// NewResponder starts answering management requests on an SE's endpoint:
// they are handed to it on rmtp's receive goroutine (rmtp.Endpoint.Handle
// of cfg.Channel), a goroutine hand-off less per request; rmtp moves
// receiving to a new goroutine when one runs longer than takeoverAfter.
// The responder does not own the endpoint or the tree.
func NewResponder(ep *rmtp.Endpoint, cfg ResponderConfig) (*Responder, error) {
	if ep == nil {
		return nil, errors.New("fanout: no endpoint")
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Responder{ep: ep, cfg: cfg, log: cfg.Logger.WithField("component", "fanout-responder"),
		tree: cfg.Tree, sem: make(chan struct{}, cfg.Workers),
		cache: make(map[cacheKey]*cacheEntry), sets: make(map[setKey]*seSet), ends: newSharedDeadlines(ctx, deadlineGrain),
		ctx: ctx, cancel: cancel}
	if cfg.LocalAgent != nil {
		r.proxy = newProxy(*cfg.LocalAgent)
	}
	ep.Handle(cfg.Channel, rmtp.Handler{Func: r.onRequest, Budget: takeoverAfter, Slow: r.tookOver})
	r.wg.Add(1)
	go r.janitor()
	return r, nil
}

// Close stops reading, waits for the requests in progress, releases every
// reservation and closes the proxy socket.
func (r *Responder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.ep.Handle(r.cfg.Channel, rmtp.Handler{}) // later requests are not ours
	r.cancel()                                 // also ends the repairs of every reply still in flight
	r.wg.Wait()
	r.mu.Lock()
	sets := r.sets
	r.sets = make(map[setKey]*seSet)
	r.mu.Unlock()
	for _, st := range sets {
		r.tree.CleanupSet(context.Background(), st.id)
	}
	if r.proxy != nil {
		r.proxy.close()
	}
	return nil
}

// Counters returns a snapshot of the counters.
func (r *Responder) Counters() ResponderCounters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cnt
}

// Term returns the newest term this SE obeys.
func (r *Responder) Term() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.newest
}

// Reservations returns the number of SET transactions held between phases.
func (r *Responder) Reservations() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

// onRequest answers a request handed over by rmtp (Endpoint.Handle) on
// its receive goroutine.
func (r *Responder) onRequest(m *rmtp.Message) {
	if m.Kind != rmtp.KindRequest {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.wg.Add(1) // Close waits for it
	r.mu.Unlock()
	defer r.wg.Done()
	r.handle(m)
}

// tookOver counts a request that held rmtp's receive goroutine so long
// that another took over.
func (r *Responder) tookOver() {
	r.mu.Lock()
	r.cnt.Takeovers++
	r.mu.Unlock()
}

// takeoverAfter is how long a request may hold the reader. Reads from
// memory take microseconds; one still running after this (a slow object
// in the tree) must not hold up the requests behind it.
const takeoverAfter = 5 * time.Millisecond

// handle decides whether a request is new, repeated or not ours, and
// answers it: inline when it reads only the tree (memory), else on a
// worker goroutine. Either way the reply is handed to rmtp, which repairs
// it until the managers acknowledge it; nothing waits for that.
func (r *Responder) handle(m *rmtp.Message) {
	req, perr := wire.ParseRequest(m.Payload)
	self := uint32(r.ep.Node())
	if perr == nil && len(req.Targets) > 0 && !slices.Contains(req.Targets, self) {
		r.mu.Lock()
		r.cnt.NotTargeted++
		r.mu.Unlock()
		return
	}
	select {
	case r.sem <- struct{}{}:
	default:
		r.mu.Lock()
		r.cnt.Requests++
		r.cnt.Busy++
		r.mu.Unlock()
		// Shed without an answer: the coordinator's re-request retries
		// it, and nothing was cached or executed.
		return
	}
	if perr != nil {
		r.mu.Lock()
		r.cnt.Requests++
		r.cnt.BadRequests++
		ends := r.replyEnd(DefaultBudget)
		r.mu.Unlock()
		r.log.WithError(perr).WithField("from", m.From).Debug("fanout: bad request")
		rep := wire.Reply{Op: wire.OpGet, Status: wire.StatusBadRequest}
		if op, tx, ok := wire.PeekRequest(m.Payload); ok {
			rep.Op, rep.Tx = op, tx
		}
		b := r.encode(&rep)
		<-r.sem
		r.sendReply(ends, m, b)
		return
	}
	budget := budgetOf(&req)
	key := cacheKey{mgr: m.From, inc: m.Incarnation, tx: req.Tx, op: req.Op}
	r.mu.Lock()
	r.cnt.Requests++
	ends := r.replyEnd(budget)
	e := r.cache[key]
	if e != nil {
		r.cnt.CacheHits++
		r.mu.Unlock()
		select {
		case <-e.done:
			<-r.sem
			r.sendReply(ends, m, e.reply)
		default: // still executing (a slow local agent): wait on a worker
			r.goReply(ends, m, func() []byte {
				select {
				case <-e.done:
					return e.reply
				case <-r.ctx.Done():
					return nil
				}
			})
		}
		return
	}
	e = &cacheEntry{done: make(chan struct{})}
	r.cache[key] = e
	if len(r.cache) > r.cfg.ReplyCacheSize {
		r.evictLocked(time.Now())
	}
	inline := r.inline(&req)
	if inline {
		r.cnt.Inline++
	}
	r.mu.Unlock()
	run := func(ctx context.Context) []byte {
		b := r.encode(r.execute(ctx, m, &req))
		r.mu.Lock()
		e.reply, e.expires = b, time.Now().Add(r.cfg.ReplyCacheTTL)
		r.done = append(r.done, finished{key, e})
		r.mu.Unlock()
		close(e.done)
		return b
	}
	if !inline {
		r.goReply(ends, m, func() []byte {
			// Exactly the budget: an SE that gives up (a slow local
			// agent) must say so while the coordinator still listens.
			ctx, cancel := context.WithTimeout(r.ctx, budget)
			defer cancel()
			return run(ctx)
		})
		return
	}
	// A read from memory takes microseconds: it runs under the reply's
	// shared context rather than a timer of its own (a slow object is
	// cut off when the reply's repairs end).
	b := run(ends)
	<-r.sem
	r.sendReply(ends, m, b)
}

// inline reports whether req is answered from the tree alone: reads that
// need no local agent. Everything else (the local agent is a network
// round trip, SET phases may write to disk) runs on a worker.
func (r *Responder) inline(req *wire.Request) bool {
	switch req.Op {
	case wire.OpGet:
		if r.proxy == nil {
			return true
		}
		roots := r.tree.Roots()
		for _, vb := range req.VarBinds {
			if !owned(roots, vb.Name) {
				return false
			}
		}
		return true
	case wire.OpGetNext, wire.OpWalk:
		return r.proxy == nil
	}
	return false
}

// goReply runs produce on a worker (the semaphore slot is already taken),
// releases the slot and sends the reply.
func (r *Responder) goReply(ends context.Context, m *rmtp.Message, produce func() []byte) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		b := produce()
		<-r.sem
		if b != nil {
			r.sendReply(ends, m, b)
		}
	}()
}

// janitor expires reservations and cached replies.
func (r *Responder) janitor() {
	defer r.wg.Done()
	iv := min(r.cfg.ReservationTTL/4, 250*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			var expired []*seSet
			for k, st := range r.sets {
				if now.After(st.expires) {
					expired = append(expired, st)
					delete(r.sets, k)
				}
			}
			r.cnt.ReservationsExpired += uint64(len(expired))
			r.evictLocked(now)
			r.ends.expire(now)
			r.mu.Unlock()
			for _, st := range expired {
				r.log.WithField("tx", st.id).Info("fanout: set reservation expired")
				r.tree.CleanupSet(context.Background(), st.id)
			}
		}
	}
}
