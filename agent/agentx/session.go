package agentx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// ourFlags are the flags of PDUs we originate: network byte order, as
// net-snmp does; responses mirror the byte order of their request.
const ourFlags = pdu.FlagNetworkByteOrder

// session is one connection and the AgentX session opened on it. The
// goroutine holding the read role (readLoop) owns br; writes are
// serialized by wmu; everything else is guarded by its own lock.
type session struct {
	a    *Subagent
	conn net.Conn
	rw   io.ReadWriter // conn's I/O (see sysConn)
	br   *bufio.Reader
	log  logrus.FieldLogger
	id   atomic.Uint32 // the master's session id, set when Open succeeds

	openedAt     time.Time
	openedUptime uint32 // the master's sysUpTime in the Open response

	ctx    context.Context // handlers' context: canceled when the session ends
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	errMu  sync.Mutex
	cause  error
	wg     sync.WaitGroup // readLoops, the watchdog and the pinger
	sem    chan struct{}  // one per request waiting on the farm (Config.MaxInFlight)
	wmu    sync.Mutex     // held while writing one PDU
	wdl    time.Time      // the connection's write deadline; guarded by wmu

	runMu   sync.Mutex
	running *run              // the request the read-role holder is serving
	runs    map[*run]struct{} // every request being served, for its deadline
	slow    int               // requests the watchdog handed the read role away from, still running
	ticking atomic.Bool       // the watchdog's ticker runs
	wake    chan struct{}     // starts the watchdog's ticker
	nextID  atomic.Uint32

	pendMu  sync.Mutex
	pending map[uint32]chan *pdu.Packet // our requests awaiting a Response

	reqMu      sync.Mutex
	reqs       map[reqKey]*reqState // in flight and recently answered
	answered   []*reqState          // FIFO of answered requests, for eviction
	cacheBytes int
	sets       map[smi.TxID]*agent.Tree // tested, not yet cleaned up

	regMu sync.Mutex
	regs  []registration // what this session registered
}

type reqKey struct{ tx, packet uint32 }

type reqState struct {
	key  reqKey
	sum  uint64 // digest of the request
	resp []byte // encoded response, nil while executing (or for CleanupSet)
}

type registration struct {
	context  string
	root     smi.OID
	priority uint8
}

// connect dials the master, opens a session and registers every root.
func (a *Subagent) connect(ctx context.Context, network, address string) (*session, error) {
	d := net.Dialer{Timeout: a.cfg.MasterTimeout}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	rw := newSysConn(conn)
	s := &session{
		a: a, conn: conn, rw: rw, br: bufio.NewReaderSize(rw, 64<<10), log: a.log,
		ctx: sctx, cancel: cancel,
		done: make(chan struct{}), wake: make(chan struct{}, 1),
		sem:     make(chan struct{}, a.cfg.MaxInFlight),
		pending: make(map[uint32]chan *pdu.Packet),
		runs:    make(map[*run]struct{}),
		reqs:    make(map[reqKey]*reqState),
		sets:    make(map[smi.TxID]*agent.Tree),
	}
	// A context cancelled mid-connect must not leave the dial or the Open
	// wait hanging.
	stop := context.AfterFunc(ctx, func() { s.fail(ctx.Err()) })
	defer stop()
	s.wg.Add(2)
	go s.readLoop()
	go s.watchdog()
	if err := s.open(ctx); err != nil {
		s.fail(err)
		s.wait()
		return nil, err
	}
	if err := s.syncRegistrations(ctx, uint8(a.priority.Load())); err != nil {
		s.fail(err)
		s.wait()
		return nil, err
	}
	a.st.sessions.Add(1)
	if a.cfg.PingInterval > 0 {
		s.wg.Add(1)
		go s.pinger()
	}
	return s, nil
}

func (s *session) open(ctx context.Context) error {
	resp, err := s.request(ctx, "", &pdu.Open{
		Timeout: s.a.cfg.openTimeout(), ID: s.a.cfg.ID, Description: []byte(s.a.cfg.Description),
	})
	if err != nil {
		return fmt.Errorf("agentx: open: %w", err)
	}
	if resp.Error != pdu.NoAgentXError {
		return &MasterError{Op: pdu.TypeOpen, Code: resp.Error, Index: resp.Index}
	}
	return nil
}

// fail ends the session once: the connection is closed (so the read
// role's holder returns), handlers are cancelled, and PDUs sent from now
// on are dropped.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.errMu.Lock()
		s.cause = err
		s.errMu.Unlock()
		close(s.done)
		s.cancel()
		s.conn.Close()
	})
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.cause
}

// wait waits for every goroutine of the session, then releases what
// handlers reserved for SETs the master never finished.
func (s *session) wait() {
	s.wg.Wait()
	s.reqMu.Lock()
	sets := s.sets
	s.sets = map[smi.TxID]*agent.Tree{}
	s.reqMu.Unlock()
	for tx, tree := range sets {
		tree.CleanupSet(context.Background(), tx)
	}
}

// shutdown closes the session politely: Close with reasonShutdown (the
// master drops our registrations), a bounded wait for its answer, then the
// connection.
func (s *session) shutdown() {
	s.cancel() // handlers still running are told to stop
	ctx, cancel := context.WithTimeout(context.Background(), min(s.a.cfg.MasterTimeout, time.Second))
	_, err := s.request(ctx, "", &pdu.Close{Reason: pdu.ReasonShutdown})
	cancel()
	if err != nil && !errors.Is(err, ErrSessionClosed) {
		s.log.WithError(err).Debug("agentx close not acknowledged")
	}
	s.fail(ErrSessionClosed)
	s.wait()
}

func (s *session) masterUptime() uint32 {
	return s.openedUptime + uint32(time.Since(s.openedAt)/(10*time.Millisecond))
}

// inlineBudget is how long the goroutine that read a request serves it
// itself before handing the read role to a new goroutine. Almost every
// request finishes well inside it, so the common path has no goroutine
// hand-off at all: measured through snmpd, each hand-off (to a worker, to a
// writer) woke a thread and cost about 20 µs of latency and CPU per GET.
const inlineBudget = 2 * time.Millisecond

// readLoop holds the read role: it alone reads the socket, with io.ReadFull
// of the header and then of exactly the payload, on the one bufio.Reader
// of the connection, so no byte is ever lost between PDUs. It gives the
// role up (returns) when a request it is serving outlives inlineBudget and
// another readLoop has taken over.
func (s *session) readLoop() {
	defer s.wg.Done()
	var hdr [pdu.HeaderLength]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
			s.fail(fmt.Errorf("agentx: read: %w", err))
			return
		}
		h, err := pdu.ParseHeader(hdr[:])
		if err != nil {
			// Without a trustworthy length the stream cannot be resynchronised.
			s.a.st.parseErrors.Add(1)
			s.sendClose(pdu.ReasonParseError)
			s.fail(err)
			return
		}
		if cap(buf) < int(h.PayloadLength) {
			buf = make([]byte, h.PayloadLength)
		}
		payload := buf[:h.PayloadLength]
		if _, err := io.ReadFull(s.br, payload); err != nil {
			s.fail(fmt.Errorf("agentx: read %s payload: %w", h.Type, err))
			return
		}
		p, err := pdu.DecodePayload(h, payload)
		if err != nil {
			s.a.st.parseErrors.Add(1)
			s.log.WithError(err).Debug("agentx: undecodable PDU")
			if h.Type != pdu.TypeResponse {
				s.respond(h, &pdu.Response{Error: pdu.ParseError})
			}
			continue
		}
		if !s.handle(p, digest(h.Type, payload)) {
			return
		}
	}
}

// digest identifies a request's content, so that only a true copy (same
// ids and same bytes) counts as a re-send: a master that reuses packet ids
// for new requests gets them executed.
func digest(t pdu.Type, payload []byte) uint64 {
	// FNV-1a, inline: hash/fnv would allocate per request.
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	h = (h ^ uint64(t)) * prime
	for _, c := range payload {
		h = (h ^ uint64(c)) * prime
	}
	return h
}

// handle acts on one PDU; it reports whether this goroutine still holds
// the read role.
func (s *session) handle(p *pdu.Packet, sum uint64) bool {
	switch body := p.PDU.(type) {
	case *pdu.Response:
		s.pendMu.Lock()
		ch := s.pending[p.PacketID]
		delete(s.pending, p.PacketID)
		s.pendMu.Unlock()
		if ch != nil {
			ch <- p // buffered, one per request
		}
	case *pdu.Close:
		s.fail(fmt.Errorf("%w by the master: %s", ErrSessionClosed, body.Reason))
	case *pdu.Get, *pdu.GetNext, *pdu.GetBulk, *pdu.TestSet, *pdu.CommitSet, *pdu.UndoSet, *pdu.CleanupSet:
		return s.dispatch(p, sum)
	case *pdu.Ping:
		s.respond(p.Header, &pdu.Response{})
	default:
		// Open, Register, Notify... make no sense from a master.
		s.respond(p.Header, &pdu.Response{Error: pdu.ProcessingError})
	}
	return true
}

// run is one request being served.
type run struct {
	s      *session
	ctx    handlerCtx // the handlers' context, deadline start + Config.HandlerTimeout
	start  time.Time
	cancel context.CancelCauseFunc // ends ctx
	handed bool                    // the read role went to a new readLoop (guarded by runMu)
	slow   bool                    // ... because the watchdog found it slow (guarded by runMu)

	// Set by wait, on the request's goroutine.
	mustRun bool // a later SET phase: never refused
	slot    bool // holds one of sem's places
	waited  bool // wait was called
	refused bool
}

// wait is the request's agent.WithWait hook, called before the first
// handler that may block (the farm's): the request takes one of
// MaxInFlight places and gives the read role to a new goroutine at once,
// rather than at the watchdog's next tick, so that the master's next PDU
// (another request, the answer to our Ping) is read meanwhile. With every
// place taken it is refused (agent.ErrBusy, answered genErr or
// resourceUnavailable at once: left unanswered, snmpd would re-send it
// every agentXTimeout, then close the session). The later phases of a SET
// whose test was admitted always run.
func (r *run) wait() error {
	if r.refused {
		return agent.ErrBusy
	}
	if r.waited {
		return nil
	}
	select {
	case r.s.sem <- struct{}{}:
		r.slot = true
	default:
		if !r.mustRun {
			r.refused = true
			return agent.ErrBusy
		}
	}
	r.waited = true
	r.s.runMu.Lock()
	r.s.handOffLocked(r)
	r.s.runMu.Unlock()
	return nil
}

// handOffLocked gives the read role to a new goroutine while r is being
// served by its holder; r's goroutine ends once r is answered. Caller
// holds runMu.
func (s *session) handOffLocked(r *run) {
	if s.running != r || s.ended() {
		return
	}
	r.handed = true
	s.running = nil
	s.wg.Add(1)
	go s.readLoop()
}

// watchdog hands the read role on when the holder has been serving one
// request for longer than inlineBudget, and cancels the context of every
// request that outlived Config.HandlerTimeout. It ticks every inlineBudget
// only while requests arrive (it stops after watchdogIdleTicks quiet ticks
// and is woken by the next request), so an idle session costs no wake-ups
// and a busy one no timer per request: adding a runtime timer that is the
// earliest of its P (a context.WithTimeout, a write deadline) wakes a
// second thread to watch it (runtime.wakeNetPoller). Without the two
// timers per request a Get round trip (BenchmarkSessionRoundTrip) went
// from 26-31 µs to 16 µs p50, against a 13.5 µs bare TCP echo.
func (s *session) watchdog() {
	defer s.wg.Done()
	t := time.NewTicker(inlineBudget)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
			idle = 0
			t.Reset(inlineBudget)
			continue
		case <-t.C:
		}
		now := time.Now()
		s.runMu.Lock()
		// A request slow on the CPU (not waiting on the farm: that one
		// handed the role on itself) keeps the role once MaxInFlight of
		// them run: the master's PDUs then wait in the socket, which
		// bounds the goroutines without refusing anything.
		if r := s.running; r != nil && now.Sub(r.start) >= inlineBudget && s.slow < s.a.cfg.MaxInFlight {
			s.handOffLocked(r)
			if r.handed {
				r.slow = true
				s.slow++
			}
		}
		for r := range s.runs {
			if !now.Before(r.ctx.deadline) {
				r.cancel(context.DeadlineExceeded)
				delete(s.runs, r)
			}
		}
		busy := len(s.runs) > 0
		s.runMu.Unlock()
		if busy {
			idle = 0
			continue
		}
		if idle++; idle >= watchdogIdleTicks {
			// Publish "not ticking" before looking again, so a request that
			// started meanwhile either is seen here or sends a wake.
			s.ticking.Store(false)
			s.runMu.Lock()
			busy := len(s.runs) > 0
			s.runMu.Unlock()
			if busy {
				s.ticking.Store(true)
				continue
			}
			t.Stop()
		}
	}
}

// watchdogIdleTicks quiet ticks (100 ms) stop the watchdog's ticker.
const watchdogIdleTicks = 50

// dispatch serves a request unless it is a copy of one already executed
// or executing (a re-send by the master after its agentXTimeout). It
// reports whether the calling goroutine still holds the read role.
func (s *session) dispatch(p *pdu.Packet, sum uint64) bool {
	key := reqKey{p.TransactionID, p.PacketID}
	s.reqMu.Lock()
	if st, dup := s.reqs[key]; dup && st.sum == sum {
		resp := st.resp
		s.reqMu.Unlock()
		s.a.st.duplicates.Add(1)
		// Still executing: its answer will serve this copy too.
		if resp != nil {
			s.send(resp)
		}
		return true
	}
	st := &reqState{key: key, sum: sum}
	s.reqs[key] = st
	s.reqMu.Unlock()

	// Serve it here; if it takes longer than inlineBudget, or is about to
	// wait on the farm (run.wait), a new goroutine takes over reading so
	// that nothing else waits for this request. runMu orders this
	// goroutine's last use of the reader before the successor's first.
	hctx, cancel := context.WithCancelCause(s.ctx)
	now := time.Now()
	run := &run{s: s, ctx: handlerCtx{Context: hctx, deadline: now.Add(s.a.cfg.HandlerTimeout)}, start: now, cancel: cancel}
	switch p.PDU.(type) {
	case *pdu.CommitSet, *pdu.UndoSet, *pdu.CleanupSet:
		run.mustRun = true
	}
	s.runMu.Lock()
	s.running = run
	s.runs[run] = struct{}{}
	s.runMu.Unlock()
	if !s.ticking.Load() {
		s.ticking.Store(true)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}

	s.a.st.requests.Add(1)
	resp := s.serve(agent.WithWait(&run.ctx, run.wait), p)
	if run.slot {
		<-s.sem
	}
	s.runMu.Lock()
	if s.running == run {
		s.running = nil
	}
	delete(s.runs, run)
	if run.slow {
		s.slow--
	}
	handed := run.handed
	s.runMu.Unlock()
	cancel(nil)

	s.reqMu.Lock()
	st.resp = resp
	s.answered = append(s.answered, st)
	s.cacheBytes += len(resp)
	for len(s.answered) > resendCacheEntries || (s.cacheBytes > resendCacheBytes && len(s.answered) > 1) {
		old := s.answered[0]
		s.answered[0] = nil
		s.answered = s.answered[1:]
		s.cacheBytes -= len(old.resp)
		if s.reqs[old.key] == old { // not replaced by a new request with the same ids
			delete(s.reqs, old.key)
		}
	}
	s.reqMu.Unlock()
	if resp != nil {
		s.send(resp)
	}
	return !handed
}

// send writes one encoded PDU. Writers are serialized by wmu, held for the
// whole PDU, so PDUs never interleave; the goroutine that produced a
// response writes it (no writer goroutine to wake). After the session
// ended the PDU is dropped: the master already answered the manager
// (genErr) and closed the session, so a late answer has nowhere to go.
func (s *session) send(b []byte) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		s.a.st.lateDropped.Add(1)
		s.log.Debug("agentx: PDU after session end dropped")
		return false
	default:
	}
	// The deadline moves only when less than half of MasterTimeout is
	// left, so a write never waits more than MasterTimeout nor less than
	// half of it, and the common write modifies no runtime timer (see
	// watchdog: that would wake a second thread).
	if now := time.Now(); s.wdl.Sub(now) < s.a.cfg.MasterTimeout/2 {
		s.wdl = now.Add(s.a.cfg.MasterTimeout)
		s.conn.SetWriteDeadline(s.wdl)
	}
	if _, err := s.rw.Write(b); err != nil {
		s.fail(fmt.Errorf("agentx: write: %w", err))
		return false
	}
	return true
}

// respond answers a request header with body, in the request's byte order.
func (s *session) respond(h pdu.Header, body *pdu.Response) {
	b, err := pdu.Encode(&pdu.Packet{Header: responseHeader(h), PDU: body})
	if err != nil {
		s.log.WithError(err).Warn("agentx: cannot encode response")
		return
	}
	s.send(b)
}

func responseHeader(h pdu.Header) pdu.Header {
	return pdu.Header{
		Flags: h.Flags & pdu.FlagNetworkByteOrder, SessionID: h.SessionID,
		TransactionID: h.TransactionID, PacketID: h.PacketID,
	}
}

// request sends one of our PDUs and waits for the master's Response.
func (s *session) request(ctx context.Context, context string, body pdu.PDU) (*pdu.Response, error) {
	id := s.nextID.Add(1)
	h := pdu.Header{Flags: ourFlags, SessionID: s.id.Load(), TransactionID: id, PacketID: id}
	var ctxBytes []byte
	if context != "" {
		h.Flags |= pdu.FlagNonDefaultContext
		ctxBytes = []byte(context)
	}
	b, err := pdu.Encode(&pdu.Packet{Header: h, Context: ctxBytes, PDU: body})
	if err != nil {
		return nil, err
	}
	ch := make(chan *pdu.Packet, 1)
	s.pendMu.Lock()
	s.pending[id] = ch
	s.pendMu.Unlock()
	defer func() {
		s.pendMu.Lock()
		delete(s.pending, id)
		s.pendMu.Unlock()
	}()
	if !s.send(b) {
		return nil, ErrSessionClosed
	}
	t := time.NewTimer(s.a.cfg.MasterTimeout)
	defer t.Stop()
	select {
	case p := <-ch:
		resp := p.PDU.(*pdu.Response)
		if body.Type() == pdu.TypeOpen && resp.Error == pdu.NoAgentXError {
			s.id.Store(p.SessionID)
			s.openedAt, s.openedUptime = time.Now(), resp.SysUpTime
		}
		if resp.Error == pdu.NotOpen {
			s.fail(fmt.Errorf("%w: master says the session is not open", ErrSessionClosed))
		}
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrSessionClosed
	case <-t.C:
		return nil, fmt.Errorf("%w: %s after %v", ErrTimeout, body.Type(), s.a.cfg.MasterTimeout)
	}
}

func (s *session) sendClose(r pdu.CloseReason) {
	b, err := pdu.Encode(&pdu.Packet{Header: pdu.Header{Flags: ourFlags, SessionID: s.id.Load()}, PDU: &pdu.Close{Reason: r}})
	if err == nil {
		s.send(b)
	}
}

// pinger checks the session every PingInterval; a master that stops
// answering ends the session, so Run reconnects.
func (s *session) pinger() {
	defer s.wg.Done()
	t := time.NewTicker(s.a.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		resp, err := s.request(s.ctx, "", &pdu.Ping{})
		if err == nil && resp.Error != pdu.NoAgentXError {
			err = &MasterError{Op: pdu.TypePing, Code: resp.Error}
		}
		if err != nil {
			s.fail(fmt.Errorf("agentx: ping: %w", err))
			return
		}
	}
}

// maxPipelinedRegs bounds the Register/Unregister PDUs awaiting the
// master's answer at once (an SM with hundreds of SE contexts registers
// thousands of subtrees).
const maxPipelinedRegs = 32

// syncRegistrations registers every (context, root) not yet registered at
// priority, and unregisters what is no longer served. Requests are
// pipelined: all sent, then all answers collected.
func (s *session) syncRegistrations(ctx context.Context, priority uint8) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	var want []registration
	for _, name := range s.a.contexts.Names() {
		t := s.a.contexts.Tree(name)
		if t == nil {
			continue
		}
		for _, root := range t.Roots() {
			want = append(want, registration{context: name, root: root, priority: priority})
		}
	}
	key := func(r registration) string {
		return r.context + "\x00" + r.root.String() + "\x00" + strconv.Itoa(int(r.priority))
	}
	have := make(map[string]bool, len(s.regs))
	for _, r := range s.regs {
		have[key(r)] = true
	}
	wanted := make(map[string]bool, len(want))
	var add, drop, keep []registration
	for _, w := range want {
		wanted[key(w)] = true
		if have[key(w)] {
			keep = append(keep, w)
		} else {
			add = append(add, w)
		}
	}
	for _, r := range s.regs {
		if !wanted[key(r)] {
			drop = append(drop, r)
		}
	}
	// Register before unregistering, so a priority change leaves no gap.
	type result struct {
		reg  registration
		resp *pdu.Response
		err  error
	}
	run := func(regs []registration, mk func(registration) pdu.PDU) []result {
		out := make([]result, len(regs))
		var wg sync.WaitGroup
		window := make(chan struct{}, maxPipelinedRegs)
		for i, r := range regs {
			wg.Add(1)
			window <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-window }()
				resp, err := s.request(ctx, r.context, mk(r))
				out[i] = result{r, resp, err}
			}()
		}
		wg.Wait()
		return out
	}
	var firstErr error
	for _, r := range run(add, func(r registration) pdu.PDU { return &pdu.Register{Priority: r.priority, Subtree: r.root} }) {
		switch {
		case r.err != nil:
			firstErr = cmpErr(firstErr, fmt.Errorf("agentx: register %s: %w", r.reg.root, r.err))
		case r.resp.Error != pdu.NoAgentXError:
			// Another session holds it at the same priority: the master
			// refuses; log it and serve the rest rather than fail them all.
			s.log.WithFields(logrus.Fields{"subtree": r.reg.root.String(), "context": r.reg.context, "error": r.resp.Error.String()}).
				Warn("agentx register refused")
		default:
			keep = append(keep, r.reg)
			s.a.st.registrations.Add(1)
		}
	}
	for _, r := range run(drop, func(r registration) pdu.PDU { return &pdu.Unregister{Priority: r.priority, Subtree: r.root} }) {
		if r.err != nil {
			keep = append(keep, r.reg)
			firstErr = cmpErr(firstErr, fmt.Errorf("agentx: unregister %s: %w", r.reg.root, r.err))
		}
	}
	s.regs = keep
	if firstErr == nil && len(add)+len(drop) > 0 {
		s.log.WithFields(logrus.Fields{"registered": len(keep), "added": len(add), "removed": len(drop)}).Info("agentx registrations updated")
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
