package fanout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Coordinator is the manager side of the management protocol: it fans
// northbound operations out to the SEs of the view as single rmtp
// transactions and collates the answers. It is safe for concurrent use;
// two goroutines (the reply reader and the engine watcher) run until Close.
type Coordinator struct {
	ep  *rmtp.Endpoint
	in  *rmtp.Inbox
	cfg CoordinatorConfig
	log logrus.FieldLogger

	txSeq  atomic.Uint64
	setSeq atomic.Uint32 // keys of the transactions Set makes for itself
	// stale is the highest term a staleTerm reply named above this
	// manager's own (StaleTerm); fenceMu guards the log's episode: the
	// own term and the highest stale term already logged.
	stale              atomic.Uint64
	fenceMu            sync.Mutex
	fenceOwn, fenceLog uint64

	mu      sync.Mutex
	closed  bool
	pend    map[pendKey]*pending
	engines map[NodeID]*Engine
	sets    map[smi.TxID]*setState
	snaps   snapCache
	cnt     CoordinatorCounters

	ctx    context.Context // done at Close: ends transactions in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// repairs: rounds answered whose request is still being repaired to
	// members that only acknowledge it (finishRound).
	repairs sync.WaitGroup
}

// pendKey names a transaction's phase: SET phases share the id.
type pendKey struct {
	tx uint64
	op Op
}

// pending is one transaction collecting replies. Guarded by Coordinator.mu.
type pending struct {
	op       Op
	roots    []smi.OID // walks: the roots asked
	expected map[NodeID]bool
	replies  map[NodeID]EngineResult
	bad      map[NodeID]bool // engines whose reply did not parse (counted once per transaction)
	full     chan struct{}   // closed once every expected engine answered
}

func (p *pending) missing() []NodeID {
	var out []NodeID
	for id := range p.expected {
		if _, ok := p.replies[id]; !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func discard(l logrus.FieldLogger) logrus.FieldLogger {
	if l != nil {
		return l
	}
	d := logrus.New()
	d.Out = io.Discard
	return d
}

// DefaultCoordinatorConfig is what NewCoordinator gives every field left
// zero (the hooks and the logger are the caller's): the one place the
// coordinator's defaults are written. Package internal/config takes the
// operator's defaults from it.
func DefaultCoordinatorConfig() CoordinatorConfig {
	return CoordinatorConfig{
		Channel:        rmtp.ChannelManagement,
		Deadline:       DefaultDeadline,
		RetryAfter:     retryAfter(DefaultDeadline),
		PhaseDeadline:  DefaultPhaseDeadline,
		SnapshotTTL:    DefaultSnapshotTTL,
		SnapshotMemory: DefaultSnapshotMemory,
		WalkCap:        DefaultWalkCap,
		MaxVarBinds:    DefaultMaxVarBinds,
		PollInterval:   DefaultPollInterval,
	}
}

// retryAfter is the default first round of a read with this deadline.
func retryAfter(deadline time.Duration) time.Duration { return deadline * 2 / 5 }

func (c *CoordinatorConfig) fill() {
	d := DefaultCoordinatorConfig()
	orDefault(&c.Channel, d.Channel)
	orDefault(&c.Deadline, d.Deadline)
	if c.RetryAfter <= 0 || c.RetryAfter >= c.Deadline {
		c.RetryAfter = retryAfter(c.Deadline)
	}
	orDefault(&c.PhaseDeadline, d.PhaseDeadline)
	orDefault(&c.SnapshotTTL, d.SnapshotTTL)
	orDefault(&c.SnapshotMemory, d.SnapshotMemory)
	orDefault(&c.WalkCap, d.WalkCap)
	c.WalkCap = min(c.WalkCap, wire.MaxWalkCap)
	orDefault(&c.MaxVarBinds, d.MaxVarBinds)
	c.MaxVarBinds = min(c.MaxVarBinds, wire.MaxVarBinds)
	orDefault(&c.PollInterval, d.PollInterval)
	c.Logger = discard(c.Logger)
}

// orDefault sets *v to d when it is not positive (unset).
func orDefault[T uint8 | int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// NewCoordinator starts a coordinator on a manager's endpoint. Replies
// that arrive after their round ended are read from the endpoint's inbox
// of cfg.Channel (rmtp.Endpoint.Channel). The coordinator does not own the
// endpoint.
func NewCoordinator(ep *rmtp.Endpoint, cfg CoordinatorConfig) (*Coordinator, error) {
	if ep == nil {
		return nil, errors.New("fanout: no endpoint")
	}
	cfg.fill()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{ep: ep, in: ep.Channel(cfg.Channel), cfg: cfg, log: cfg.Logger.WithField("component", "fanout-coordinator"),
		pend: make(map[pendKey]*pending), engines: make(map[NodeID]*Engine), sets: make(map[smi.TxID]*setState),
		snaps: newSnapCache(), ctx: ctx, cancel: cancel}
	c.wg.Add(2)
	go c.readLoop(ctx)
	go c.watchLoop(ctx)
	return c, nil
}

// Close stops the coordinator's goroutines. Transactions in flight end at
// their deadlines. The endpoint stays open.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.repairs.Wait()
	return nil
}

// finishRound ends a round's transfer: at once when it is done, else
// when the bystanders have it, at the round's deadline, or when the
// coordinator closes (the transfer's context ends with either).
func (c *Coordinator) finishRound(t *rmtp.Transfer, cancel context.CancelFunc) {
	select {
	case <-t.Done():
		cancel()
		return
	default:
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return
	}
	c.repairs.Add(1) // under mu: Close waits only once closed is set
	c.mu.Unlock()
	go func() {
		defer c.repairs.Done()
		defer cancel()
		// On Close the transfer's context ends with the coordinator's;
		// rmtp finishes it at its next timer event, which Close need
		// not wait for.
		select {
		case <-t.Done():
		case <-c.ctx.Done():
		}
	}()
}

// Counters returns a snapshot of the counters.
func (c *Coordinator) Counters() CoordinatorCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cnt
}

// Term is the term this coordinator's requests carry: the newest view's.
func (c *Coordinator) Term() uint64 { return c.ep.Term() }

// StaleTerm is the highest term an SE named in a staleTerm reply above the
// term this coordinator's requests carried (0: none yet). Such a reply
// means the SE obeys a manager elected above this one, whose VIEW may not
// reach it (a partition between the managers only): internal/election
// reads it (Config.ReportedTerm) and steps this manager down.
func (c *Coordinator) StaleTerm() uint64 { return c.stale.Load() }

// noteStale records one staleTerm reply naming term. It is logged at
// warning once per episode: the first refusal of a term, or of a higher
// one, while this manager's own term stays the same. A refusal of a
// request sent before the manager's term moved above term is no news.
func (c *Coordinator) noteStale(from NodeID, term uint64) {
	own := c.ep.Term()
	if term <= own {
		return
	}
	for old := c.stale.Load(); term > old && !c.stale.CompareAndSwap(old, term); old = c.stale.Load() {
	}
	c.fenceMu.Lock()
	news := own != c.fenceOwn || term > c.fenceLog
	if news {
		c.fenceOwn, c.fenceLog = own, term
	}
	c.fenceMu.Unlock()
	if news {
		c.log.WithFields(logrus.Fields{"own_term": own, "term": term, "engine": from}).
			Warn("fanout: the SEs refuse this manager's term (staleTerm): another manager was elected above it; answering with errors until the election steps it down")
	}
}

// parse decodes one SE's reply and notes a staleTerm refusal.
func (c *Coordinator) parse(tx uint64, op Op, from NodeID, payload []byte) (EngineResult, bool) {
	er, term, ok := parseReply(tx, op, from, payload)
	if ok && er.Status == StatusStaleTerm {
		c.noteStale(from, term)
	}
	return er, ok
}

// Get reads names on every target (nil: every engine of the view) in one
// transaction. Engines that answered are in Replies, one varbind per name
// in order; the others are in Missing. The error is non-nil only when
// nothing could be sent (closed endpoint, too many varbinds, ctx done).
func (c *Coordinator) Get(ctx context.Context, targets []NodeID, names []smi.OID) (*Result, error) {
	return c.transact(ctx, OpGet, targets, nameBinds(names), 0, c.cfg.Deadline)
}

// GetNext asks every target for the successor of each name (SNMP GETNEXT
// semantics on each SE, endOfMibView where it has none).
func (c *Coordinator) GetNext(ctx context.Context, targets []NodeID, names []smi.OID) (*Result, error) {
	return c.transact(ctx, OpGetNext, targets, nameBinds(names), 0, c.cfg.Deadline)
}

// Walk reads the subtrees under roots on every target in one transaction,
// at most max instances per root per SE (0: the configured WalkCap). Each
// engine's VarBinds hold the roots' instances in order, root after root;
// Truncated says a root hit the cap. Walk does not cache: see Snapshot.
func (c *Coordinator) Walk(ctx context.Context, targets []NodeID, roots []smi.OID, max int) (*Result, error) {
	if max <= 0 || max > c.cfg.WalkCap {
		max = c.cfg.WalkCap
	}
	return c.transact(ctx, OpWalk, targets, nameBinds(roots), uint32(max), c.cfg.Deadline)
}

func nameBinds(names []smi.OID) []smi.VarBind {
	vbs := make([]smi.VarBind, len(names))
	for i, n := range names {
		vbs[i] = smi.VarBind{Name: n, Value: smi.Null()}
	}
	return vbs
}

// viewEngines is who "every engine" means now: the engines of the view.
// The owner recomputes its view from its live peers on every tick of its
// timer loop, so the view is as fresh as the peer table and cheaper to
// copy on every GET (Stats copies every peer's state and counters, about
// 60 KB at 256 engines). Before any view was heard (a manager not yet
// active, or a backup that heard no active one), the live engines of the
// peer table.
func (c *Coordinator) viewEngines() []NodeID {
	v := c.ep.View()
	ids := make([]NodeID, 0, len(v.Members))
	if v.Owner != 0 {
		for _, m := range v.Members {
			if m.Role == rmtp.Engine && m.Node != c.ep.Node() {
				ids = append(ids, m.Node)
			}
		}
	} else {
		for _, p := range c.ep.Stats().Peers {
			if p.Role == rmtp.Engine && (p.State == rmtp.PeerAlive || p.State == rmtp.PeerSuspect) {
				ids = append(ids, p.Node)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// transact runs one transaction: round 1 to everyone until RetryAfter,
// then rounds to the silent engines only until the deadline. A repeated
// request carries the same transaction id, so an SE that had it answers
// from its reply cache instead of executing it again.
func (c *Coordinator) transact(ctx context.Context, op Op, targets []NodeID, vbs []smi.VarBind, walkCap uint32, budget time.Duration) (*Result, error) {
	return c.transactTx(ctx, op, 0, targets, vbs, walkCap, budget)
}

// transactTx is transact with a given transaction id (SET phases reuse the
// TEST's); 0 allocates one.
func (c *Coordinator) transactTx(ctx context.Context, op Op, tx uint64, targets []NodeID, vbs []smi.VarBind, walkCap uint32, budget time.Duration) (*Result, error) {
	start := time.Now()
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if len(vbs) > c.cfg.MaxVarBinds {
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooMany, len(vbs), c.cfg.MaxVarBinds)
	}
	explicit := targets != nil
	expected := slices.Clone(targets)
	if !explicit {
		expected = c.viewEngines()
	}
	slices.Sort(expected)
	expected = slices.Compact(expected)
	if tx == 0 {
		tx = c.txSeq.Add(1)
	}
	res := &Result{Op: op, Tx: tx, Expected: expected}
	if len(expected) == 0 {
		return res, nil
	}
	dl := start.Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	ctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()

	p := &pending{op: op, expected: make(map[NodeID]bool, len(expected)), replies: make(map[NodeID]EngineResult, len(expected)),
		full: make(chan struct{})}
	for _, id := range expected {
		p.expected[id] = true
	}
	if op == OpWalk {
		for _, vb := range vbs {
			p.roots = append(p.roots, vb.Name)
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	key := pendKey{tx, op}
	c.pend[key] = p
	c.cnt.Transactions++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pend, key)
		c.mu.Unlock()
	}()

	req := wire.Request{Op: op, Tx: tx, Term: c.ep.Term(), WalkCap: walkCap, VarBinds: vbs}
	if explicit {
		req.Targets = nodeList(expected)
	}
	missing := expected
	for round := 1; round <= maxRounds && len(missing) > 0 && ctx.Err() == nil; round++ {
		rdl := dl
		if round == 1 {
			retry := c.cfg.RetryAfter
			if retry >= budget { // a SET phase's budget is shorter than a read's
				retry = budget * 2 / 5
			}
			if start.Add(retry).Before(dl) {
				rdl = start.Add(retry)
			}
		}
		if round > 1 {
			req.Targets = nodeList(missing)
		}
		// The SE's budget leaves a tenth for the answer's trip back, so an
		// SE that gives up says so before the deadline.
		req.BudgetUs = uint32(max(time.Until(dl)*9/10, 0).Microseconds())
		payload, err := wire.AppendRequest(nil, &req)
		if err != nil {
			return nil, fmt.Errorf("fanout: encoding %s: %w", op, err)
		}
		// The round ends when every target answered, but the request
		// goes on being repaired to the members that only acknowledge it
		// (a backup manager, untargeted SEs) until they have it or the
		// round's deadline: waiting for them would cost every operation a
		// bystander's acknowledgement delay. So the round's context ends
		// with the coordinator, not with the caller.
		rctx, rcancel := context.WithDeadline(c.ctx, rdl)
		// Replies are decoded and filed as they arrive, on rmtp's
		// receive goroutine, while the other SEs still answer: only the
		// last few remain for fileRound once the round ends.
		each := func(r rmtp.Response) { c.file(key, p, r.From, r.Payload) }
		t, err := c.ep.StartRequestEach(rctx, c.cfg.Channel, payload, missing, each)
		if err != nil {
			rcancel()
			if round == 1 {
				return nil, fmt.Errorf("fanout: %s: %w", op, err)
			}
			break
		}
		c.mu.Lock()
		c.cnt.Rounds++
		if round > 1 {
			c.cnt.ReRequests++
		}
		c.mu.Unlock()
		res.Rounds = round
		early := false
		select {
		case <-t.Answered():
			// Every target answered, or the silent ones were declared
			// down or out of the view before the deadline: asking again
			// is moot.
			early = time.Now().Before(rdl)
		case <-p.full:
		case <-ctx.Done():
		}
		rep := t.Progress()
		c.finishRound(t, rcancel)
		missing = c.fileRound(key, p, rep.Responses)
		if early && len(missing) > 0 {
			break
		}
	}
	c.mu.Lock()
	for _, id := range expected {
		if r, ok := p.replies[id]; ok {
			res.Replies = append(res.Replies, r)
		} else {
			res.Missing = append(res.Missing, id)
		}
	}
	if len(res.Missing) == 0 {
		c.cnt.Complete++
	} else {
		c.cnt.Partial++
	}
	now := time.Now()
	for i := range res.Replies {
		e := c.engineLocked(res.Replies[i].Engine)
		e.LastStatus, e.LastReply = res.Replies[i].Status, now
		e.Replies++
	}
	for _, id := range res.Missing {
		// Only rows of engines ever heard: a caller asking for an id that
		// never existed must not invent a row in smEngineTable.
		if e := c.engines[id]; e != nil {
			e.LastStatus = StatusNoAnswer
			e.NoAnswers++
		}
	}
	c.mu.Unlock()
	res.Elapsed = time.Since(start)
	if len(res.Missing) > 0 {
		c.log.WithFields(logrus.Fields{"op": op.String(), "tx": tx, "missing": res.Missing, "rounds": res.Rounds}).Debug("fanout: engines silent at the deadline")
	}
	return res, nil
}

func nodeList(ids []NodeID) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// parseReply decodes one SE's reply to (tx, op) from from, and the newest
// term the SE has seen.
func parseReply(tx uint64, op Op, from NodeID, payload []byte) (EngineResult, uint64, bool) {
	r, err := wire.ParseReply(payload)
	if err != nil || r.Engine != uint32(from) || r.Tx != tx || r.Op != op {
		return EngineResult{}, 0, false
	}
	return EngineResult{Engine: from, Incarnation: r.Incarnation, Status: r.Status, ErrStatus: r.ErrStatus, ErrIndex: int(r.ErrIndex),
		Truncated: r.Flags&wire.FlagTruncated != 0, VarBinds: r.VarBinds}, r.Term, true
}

// fileLocked files one decoded reply into its pending transaction. Caller
// holds c.mu.
func (c *Coordinator) fileLocked(p *pending, er EngineResult, late bool) {
	if !p.expected[er.Engine] {
		return
	}
	if _, dup := p.replies[er.Engine]; dup {
		return
	}
	if late {
		c.cnt.LateReplies++
	}
	if er.Status == StatusOK && p.op == OpWalk {
		er.VarBinds = sanitizeWalk(er.VarBinds, p.roots)
	}
	p.replies[er.Engine] = er
	if len(p.replies) == len(p.expected) {
		close(p.full)
	}
}

// file decodes one SE's reply to transaction k and files it, the one way
// a reply is filed wherever it comes from: p is the transaction it came
// for (a round's callback as it arrives, or the round's report at its
// end), nil for a reply read from the inbox after its round ended, which
// goes to whichever transaction k still collects (counted late). A reply
// for a transaction that has answered is only counted late; one that does
// not decode is counted bad, once per transaction.
func (c *Coordinator) file(k pendKey, p *pending, from NodeID, payload []byte) {
	er, ok := c.parse(k.tx, k.op, from, payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, late := c.pend[k], p == nil
	if late {
		p = cur
	}
	switch {
	case p == nil: // from the inbox, and the transaction is over
		if !ok {
			c.cnt.BadReplies++
		}
	case cur != p: // the round's, after the transaction answered
		if _, filed := p.replies[from]; !filed {
			c.cnt.LateReplies++
		}
	case !ok:
		c.badLocked(p, from)
	default:
		c.fileLocked(p, er, late)
	}
}

// fileRound files what the callback has not of a round's replies (those
// rmtp handed over late or not through it: a bad one again too, since a
// later round may have a good one) and returns the engines still missing.
func (c *Coordinator) fileRound(k pendKey, p *pending, rs []rmtp.Response) []NodeID {
	c.mu.Lock()
	var rest []rmtp.Response
	for _, r := range rs {
		if _, filed := p.replies[r.From]; !filed {
			rest = append(rest, r)
		}
	}
	c.mu.Unlock()
	for _, r := range rest {
		c.file(k, p, r.From, r.Payload)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return p.missing()
}

// badLocked counts an engine's unparsable reply once per transaction
// (the callback and the round's end may both see it). Caller holds c.mu.
func (c *Coordinator) badLocked(p *pending, id NodeID) {
	if p.bad[id] {
		return
	}
	if p.bad == nil {
		p.bad = make(map[NodeID]bool)
	}
	p.bad[id] = true
	c.cnt.BadReplies++
}

// sanitizeWalk keeps, per walked root, only instances inside that root
// and strictly above the previous one, so no walk served from a reply can
// leave its subtree or loop, whatever an SE sent.
func sanitizeWalk(vbs []smi.VarBind, roots []smi.OID) []smi.VarBind {
	last := make([]smi.OID, len(roots))
	out := vbs[:0]
	for _, vb := range vbs {
		for i, root := range roots {
			if !vb.Name.HasPrefix(root) || len(vb.Name) == len(root) {
				continue
			}
			if last[i] != nil && vb.Name.Compare(last[i]) <= 0 {
				break
			}
			last[i] = vb.Name
			out = append(out, vb)
			break
		}
	}
	return out
}

// readLoop drains the management channel's inbox: replies to this
// coordinator's requests that arrive after their round ended are merged
// into their transaction; other managers' replies (seen by a backup) keep
// the engine rows warm; anything else is dropped here.
func (c *Coordinator) readLoop(ctx context.Context) {
	defer c.wg.Done()
	self, inc := c.ep.Node(), c.ep.Incarnation()
	for {
		m, err := c.in.Receive(ctx)
		if err != nil {
			return
		}
		if m.Kind != rmtp.KindResponse {
			continue
		}
		op, status, tx, ok := wire.PeekReply(m.Payload)
		if !ok {
			continue
		}
		if m.Requester == self && m.RequesterInc == inc {
			c.file(pendKey{tx, op}, nil, m.From, m.Payload)
			continue
		}
		// Another manager's transaction (this one is a backup): keep the
		// engine rows warm from the answers it sees go by.
		c.mu.Lock()
		e := c.engineLocked(m.From)
		e.LastStatus, e.LastReply = status, time.Now()
		e.Replies++
		c.mu.Unlock()
	}
}
