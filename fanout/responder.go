package fanout

import (
	"context"
	"errors"
	"fmt"
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

type cacheKey struct {
	mgr NodeID
	inc uint64
	tx  uint64
	op  Op
}

type cacheEntry struct {
	done    chan struct{}
	reply   []byte
	expires time.Time // zero while executing
}

// finished is a cached reply in the eviction queue.
type finished struct {
	key   cacheKey
	entry *cacheEntry
}

type setKey struct {
	mgr NodeID
	inc uint64
	tx  uint64
}

// seSet is one SET transaction on this SE between its phases.
type seSet struct {
	id        smi.TxID
	n         int   // request varbinds
	treeIdx   []int // request index of each tree varbind
	proxyVbs  []smi.VarBind
	proxyIdx  []int
	proxyOld  []smi.VarBind // values before, for UNDO
	committed bool          // proxy part written
	expires   time.Time
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
	if c.Channel == 0 {
		c.Channel = d.Channel
	}
	if c.ReservationTTL <= 0 {
		c.ReservationTTL = d.ReservationTTL
	}
	if c.ReplyCacheTTL <= 0 {
		c.ReplyCacheTTL = d.ReplyCacheTTL
	}
	if c.ReplyCacheSize <= 0 {
		c.ReplyCacheSize = d.ReplyCacheSize
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.MaxReply <= 0 {
		c.MaxReply = d.MaxReply
	}
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

// replyGrace is how long a reply keeps being repaired beyond the
// request's budget (the trip back).
const replyGrace = 100 * time.Millisecond

// deadlineGrain is the rounding of the shared reply deadlines: repairs
// end about this much later than budget plus replyGrace (see
// sharedDeadlines).
const deadlineGrain = 50 * time.Millisecond

// replyEnd is the context that bounds the repairs of a reply to a request
// with this budget: later, the coordinator has stopped listening or asks
// again (answered from the cache). Caller holds r.mu.
func (r *Responder) replyEnd(budget time.Duration) context.Context {
	now := time.Now()
	return r.ends.at(now, now.Add(budget+replyGrace))
}

// sendReply hands a reply to rmtp and returns at once; rmtp repairs it
// until every manager has acknowledged it or ends is done. A dead backup
// manager therefore costs some repairs, never a worker or a goroutine.
func (r *Responder) sendReply(ends context.Context, m *rmtp.Message, b []byte) {
	if _, err := r.ep.StartReply(ends, m, b); err != nil {
		r.mu.Lock()
		r.cnt.ReplyErrors++
		r.mu.Unlock()
		if !errors.Is(err, rmtp.ErrClosed) && !errors.Is(err, context.Canceled) {
			r.log.WithError(err).WithField("to", m.From).Debug("fanout: reply not sent")
		}
	}
}

// budgetOf is the time a request allows its SE.
func budgetOf(req *wire.Request) time.Duration {
	if req.BudgetUs == 0 {
		return DefaultBudget
	}
	return min(time.Duration(req.BudgetUs)*time.Microsecond, MaxBudget)
}

// encode encodes a reply, turning one that cannot be encoded or is too
// large into an error reply.
func (r *Responder) encode(rep *wire.Reply) []byte {
	rep.Engine, rep.Incarnation = uint32(r.ep.Node()), r.ep.Incarnation()
	r.mu.Lock()
	rep.Term = r.newest
	r.mu.Unlock()
	if !rep.Op.Valid() {
		rep.Op = wire.OpGet
	}
	// Sized for the common reply (small scalars), so encoding does not
	// grow the buffer several times.
	b, err := wire.AppendReply(make([]byte, 0, wire.ReplyHeaderLen+48*len(rep.VarBinds)), rep)
	if err == nil && len(b) <= r.cfg.MaxReply {
		return b
	}
	st := smi.TooBig
	if err != nil {
		st = smi.GenErr
		r.log.WithError(err).Warn("fanout: reply not encodable")
	}
	small := wire.Reply{Op: rep.Op, Status: wire.StatusSNMPError, Tx: rep.Tx, Engine: rep.Engine, Incarnation: rep.Incarnation,
		Term: rep.Term, ErrStatus: st}
	b, _ = wire.AppendReply(nil, &small)
	return b
}

// checkTerm fences: a request carrying a term older than the newest one
// seen in an announced view comes from a deposed manager.
func (r *Responder) checkTerm(req *wire.Request) bool {
	vt := r.ep.Term()
	r.mu.Lock()
	defer r.mu.Unlock()
	if vt > r.newest {
		r.newest = vt
	}
	if req.Term < r.newest && req.Op != wire.OpSetCleanup {
		r.cnt.StaleTerm++
		return false
	}
	return true
}

// execute runs one request exactly once.
func (r *Responder) execute(ctx context.Context, m *rmtp.Message, req *wire.Request) *wire.Reply {
	rep := &wire.Reply{Op: req.Op, Tx: req.Tx}
	if !r.checkTerm(req) {
		rep.Status = wire.StatusStaleTerm
		return rep
	}
	r.mu.Lock()
	r.cnt.Executed++
	r.mu.Unlock()
	var err error
	switch req.Op {
	case wire.OpGet:
		rep.VarBinds, err = r.get(ctx, req.VarBinds)
	case wire.OpGetNext:
		rep.VarBinds, err = r.getNext(ctx, req.VarBinds)
	case wire.OpWalk:
		var trunc bool
		rep.VarBinds, trunc, err = r.walk(ctx, req.VarBinds, int(req.WalkCap))
		if trunc {
			rep.Flags |= wire.FlagTruncated
		}
	default:
		k := setKey{mgr: m.From, inc: m.Incarnation, tx: req.Tx}
		rep.VarBinds, err = r.setPhase(ctx, k, req)
	}
	if err != nil {
		var bad *badRequestError
		var se *smi.Error
		switch {
		case errors.As(err, &bad):
			rep.Status = wire.StatusBadRequest
			r.mu.Lock()
			r.cnt.BadRequests++
			r.mu.Unlock()
		case !errors.As(err, &se) && errors.Is(err, smi.ErrUnknownTx):
			// This SE holds no reservation for it (one the tree lost
			// is an SNMP error, commitFailed or undoFailed).
			rep.Status = wire.StatusUnknownTx
		default:
			st, idx := smi.StatusOf(err)
			rep.Status, rep.ErrStatus, rep.ErrIndex = wire.StatusSNMPError, st, uint16(min(idx, 0xffff))
		}
		rep.VarBinds = nil
		r.log.WithError(err).WithFields(logrus.Fields{"op": req.Op.String(), "tx": req.Tx, "from": m.From}).Debug("fanout: request failed")
	}
	return rep
}

type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return "fanout: bad request: " + e.msg }

// owned reports whether the tree holds o's subtree.
func owned(roots []smi.OID, o smi.OID) bool {
	i, found := slices.BinarySearchFunc(roots, o, func(r, o smi.OID) int { return r.Compare(o) })
	if found {
		return true
	}
	return i > 0 && o.HasPrefix(roots[i-1])
}

// ownerOf returns the tree root holding o, or nil.
func ownerOf(roots []smi.OID, o smi.OID) smi.OID {
	i, found := slices.BinarySearchFunc(roots, o, func(r, o smi.OID) int { return r.Compare(o) })
	if found {
		return roots[i]
	}
	if i > 0 && o.HasPrefix(roots[i-1]) {
		return roots[i-1]
	}
	return nil
}

func (r *Responder) countProxy(err error) {
	r.mu.Lock()
	r.cnt.Proxied++
	if err != nil {
		r.cnt.ProxyErrors++
	}
	r.mu.Unlock()
	if err != nil {
		r.log.WithError(err).Debug("fanout: local agent")
	}
}

func (r *Responder) get(ctx context.Context, in []smi.VarBind) ([]smi.VarBind, error) {
	names := make([]smi.OID, len(in))
	for i, vb := range in {
		names[i] = vb.Name
	}
	out, err := r.tree.Get(ctx, names)
	if err != nil || r.proxy == nil {
		return out, err
	}
	var ask []smi.OID
	var idx []int
	for i, vb := range out {
		if vb.Value.Type == smi.TypeNoSuchObject {
			ask = append(ask, vb.Name)
			idx = append(idx, i)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	vals, err := r.proxy.get(ctx, ask)
	r.countProxy(err)
	if err != nil {
		return out, nil // the local agent's silence leaves noSuchObject
	}
	for j, i := range idx {
		out[i].Value = vals[j]
	}
	return out, nil
}

func (r *Responder) getNext(ctx context.Context, in []smi.VarBind) ([]smi.VarBind, error) {
	ranges := make([]smi.Range, len(in))
	for i, vb := range in {
		ranges[i] = smi.Range{Start: vb.Name}
	}
	out, err := r.tree.GetNext(ctx, ranges)
	if err != nil || r.proxy == nil {
		return out, err
	}
	roots := r.tree.Roots()
	names := make([]smi.OID, len(in))
	for i, vb := range in {
		names[i] = vb.Name
	}
	// One batched GETNEXT to the local agent; only an answer that lands
	// in a subtree the tree owns needs its own follow-up.
	first, err := r.proxy.getNext(ctx, names)
	r.countProxy(err)
	if err != nil {
		return out, nil // the tree's answers alone
	}
	for i, vb := range in {
		pv := first[i]
		if pv.Value.Type != smi.TypeEndOfMibView && ownerOf(roots, pv.Name) != nil {
			if pv, err = r.proxyNext(ctx, roots, vb.Name); err != nil {
				break
			}
		}
		if pv.Value.Type == smi.TypeEndOfMibView {
			continue
		}
		if out[i].Value.Type == smi.TypeEndOfMibView || pv.Name.Compare(out[i].Name) < 0 {
			out[i] = pv
		}
	}
	return out, nil
}

// proxyNext is the local agent's successor of name that the tree does not
// shadow: the tree owns its subtrees even where the local agent also has
// them.
func (r *Responder) proxyNext(ctx context.Context, roots []smi.OID, name smi.OID) (smi.VarBind, error) {
	cur := name
	for range maxProxySkips {
		vbs, err := r.proxy.getNext(ctx, []smi.OID{cur})
		r.countProxy(err)
		if err != nil {
			return smi.VarBind{}, err
		}
		vb := vbs[0]
		root := ownerOf(roots, vb.Name)
		if vb.Value.Type == smi.TypeEndOfMibView || root == nil {
			return vb, nil
		}
		// Continue from the last possible name inside the tree's subtree:
		// the root followed by the largest sub-identifier.
		cur = root.Append(^uint32(0))
	}
	return smi.VarBind{Name: name, Value: smi.EndOfMibView()}, nil
}

// walk answers each root with up to limit instances, merging the tree and
// the local agent.
func (r *Responder) walk(ctx context.Context, in []smi.VarBind, limit int) ([]smi.VarBind, bool, error) {
	if limit <= 0 {
		limit = DefaultWalkCap
	}
	var out []smi.VarBind
	truncated := false
	roots := r.tree.Roots()
	for _, vb := range in {
		root, start := vb.Name, vb.Name
		switch vb.Value.Type {
		case smi.TypeNull:
		case smi.TypeObjectIdentifier:
			if !vb.Value.OID.HasPrefix(root) {
				return nil, false, &badRequestError{fmt.Sprintf("walk of %s continues at %s outside it", root, vb.Value.OID)}
			}
			start = vb.Value.OID
		default:
			return nil, false, &badRequestError{fmt.Sprintf("walk root %s with a %s value", root, vb.Value.Type)}
		}
		if len(out)+limit > wire.MaxReplyVarBinds {
			return nil, false, &smi.Error{Status: smi.TooBig, Err: errors.New("walk over the reply cap")}
		}
		got, err := r.tree.GetBulk(ctx, 0, limit+1, []smi.Range{{Start: start, End: root.SubtreeEnd()}}, limit+1)
		if err != nil {
			return nil, false, err
		}
		got = slices.DeleteFunc(got, func(v smi.VarBind) bool { return v.Value.Type.IsException() })
		if r.proxy != nil {
			pv, more, err := r.proxy.walk(ctx, root, start, limit+1)
			r.countProxy(err)
			if err == nil {
				pv = slices.DeleteFunc(pv, func(v smi.VarBind) bool { return owned(roots, v.Name) })
				got = append(got, pv...)
				slices.SortFunc(got, func(a, b smi.VarBind) int { return a.Name.Compare(b.Name) })
				got = slices.CompactFunc(got, func(a, b smi.VarBind) bool { return a.Name.Equal(b.Name) })
				if more {
					truncated = true
				}
			}
		}
		if len(got) > limit {
			got, truncated = got[:limit], true
		}
		out = append(out, got...)
	}
	return out, truncated, nil
}

var (
	errTooManySets   = errors.New("fanout: too many set transactions in progress")
	errSetInProgress = errors.New("fanout: set transaction already in progress")
	errNoSuchProxied = errors.New("fanout: the local agent has no such object to set")
)
