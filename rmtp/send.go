package rmtp

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

type outStream struct {
	next uint64 // id of the next message
	msgs map[uint64]*outMsg
}

// low is the oldest id still held for repair.
func (os *outStream) low() uint64 {
	low := os.next
	for id := range os.msgs {
		low = min(low, id)
	}
	return low
}

type member struct {
	id          NodeID
	target      bool // requests: must respond
	acked       bool // ACKed (or answered, which implies it)
	responded   bool
	resp        []byte
	down        bool
	abortAcked  bool
	abortStatus wire.AbortStatus
}

// outMsg is a message this endpoint sent and still holds for repair.
type outMsg struct {
	key  streamKey
	id   uint64
	kind wire.Type
	segs [][]byte
	// slab holds the first transmission, segs are views of it; a large
	// one goes back to the endpoint's pool when m is released, unless
	// start is still sending from it (flushing).
	slab      []byte
	flushing  bool
	bytes     int
	ahead     int               // bytes in flight when it was sent, its own included
	answers   *wire.ResponseRef // responses: the request answered
	lastSent  []time.Time
	firstSent time.Time
	retx      bool
	members   map[NodeID]*member
	// Members not done yet (memberDone), and of them the targets: kept
	// as members become done so that each acknowledgement and answer
	// checks completion in constant time, not by a walk of the farm.
	undone        int
	unanswered    int
	managerTarget bool // requests: a manager must answer (answerAckDelay)
	rtoAt         time.Time
	rtoTry        int
	// Fan-in progress: when a member last became done (acknowledged or
	// answered): the timer does not fire while they are still coming in.
	// And, for the spacing estimate, the first and last of the answers
	// that came before any re-send (later ones measure recovery, not
	// fan-in) and how many.
	lastDone  time.Time
	cleanFrom time.Time
	cleanTo   time.Time
	cleanN    int
	stop      func() bool
	done      chan struct{}
	finished  bool
	aborted   bool
	// Requests: closed once every target has answered or is down, which
	// may come well before done (that also waits for the other members'
	// acknowledgements: a backup manager, untargeted engines).
	answered     chan struct{}
	answeredDone bool

	aborting  bool
	abortSM   NodeID // whose ABORT_ACK completes the abort; 0: everyone's
	abortAt   time.Time
	abortTry  int
	abortDone chan struct{}
	abortOK   bool

	// A context with a deadline ends the transfer through the timer loop
	// (tickSend) and Wait; one without, through stop (context.AfterFunc).
	ctx      context.Context
	deadline time.Time

	each func(Response) // requests: StartRequestEach's callback

	// Storage for the common small case, so that a one-segment message
	// costs few allocations: its segment, its send time, its handle.
	seg1  [1][]byte
	last1 [1]time.Time
	xfer  Transfer
}

func (m *outMsg) finish() {
	if m.finished {
		return
	}
	m.finished = true
	if m.stop != nil {
		m.stop()
	}
	m.markAnswered()
	close(m.done)
	if m.aborting && !m.abortOK {
		close(m.abortDone)
	}
}

func (m *outMsg) markAnswered() {
	if m.answered != nil && !m.answeredDone {
		m.answeredDone = true
		close(m.answered)
	}
}

func (m *outMsg) memberDone(mb *member) bool {
	if mb.down {
		return true
	}
	if mb.target {
		return mb.responded
	}
	return mb.acked
}

// update applies change to mb and counts it if that made mb done.
func (m *outMsg) update(mb *member, change func()) {
	if m.memberDone(mb) {
		change()
		return
	}
	change()
	if m.memberDone(mb) {
		m.undone--
		if mb.target {
			m.unanswered--
		}
	}
}

// Response is one member's answer to a request.
type Response struct {
	From    NodeID
	Payload []byte
}

// Report says what became of a message: the delivery report.
type Report struct {
	Channel   uint8
	Dest      Dest
	ID        uint64
	Members   []NodeID   // the destination when it was sent
	Acked     []NodeID   // members that received it (ACK or response)
	Responses []Response // requests: the answers, by member id
	Missing   []NodeID   // members not done by the deadline, including Down ones
	Down      []NodeID   // members declared down or gone during the transfer
	Aborted   bool
}

// Complete reports whether every member is done.
func (r *Report) Complete() bool { return len(r.Missing) == 0 && !r.Aborted }

// Transfer is one message in flight.
type Transfer struct {
	e *Endpoint
	m *outMsg
}

// ID is the message id on its stream.
func (t *Transfer) ID() uint64 { return t.m.id }

// Done is closed when the transfer finished: every member done, the
// deadline passed, aborted, or the endpoint closed.
func (t *Transfer) Done() <-chan struct{} { return t.m.done }

// Answered is closed when every target of a request has answered or is
// down (and at the latest with Done); for other messages it is Done. A
// requester that only needs the answers takes Progress then, while the
// transfer goes on repairing to the members that only acknowledge (a
// backup manager, untargeted engines) until they have it or its context
// ends: keep the context alive for that.
func (t *Transfer) Answered() <-chan struct{} {
	if t.m.answered != nil {
		return t.m.answered
	}
	return t.m.done
}

// Progress returns the delivery report so far without waiting: who has
// acknowledged or answered, and in Missing who has not yet (members
// declared down are in Missing and Down). After Done it is the final
// report. The coordinator uses it to re-request silent members while the
// first round stays open.
func (t *Transfer) Progress() Report {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	return t.e.report(t.m)
}

// Wait blocks until the transfer finishes and returns its report. The error
// wraps ErrIncomplete when members are missing.
func (t *Transfer) Wait() (Report, error) {
	if ctx := t.m.ctx; ctx != nil {
		select {
		case <-t.m.done:
		case <-ctx.Done():
			t.e.expire(t.m)
			<-t.m.done
		}
	}
	<-t.m.done
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	r := t.e.report(t.m)
	if !r.Complete() {
		return r, fmt.Errorf("%w: message %d on channel %d %s: %d of %d missing %v",
			ErrIncomplete, r.ID, r.Channel, r.Dest, len(r.Missing), len(r.Members), r.Missing)
	}
	return r, nil
}

func (e *Endpoint) report(m *outMsg) Report {
	r := Report{Channel: m.key.ch, Dest: m.key.dest(), ID: m.id, Aborted: m.aborted,
		Members: make([]NodeID, 0, len(m.members)), Acked: make([]NodeID, 0, len(m.members))}
	if m.kind == wire.TypeRequest {
		r.Responses = make([]Response, 0, len(m.members))
	}
	for _, mb := range m.members {
		r.Members = append(r.Members, mb.id)
		if mb.acked || mb.responded {
			r.Acked = append(r.Acked, mb.id)
		}
		if mb.responded {
			r.Responses = append(r.Responses, Response{From: mb.id, Payload: mb.resp})
		}
		if !m.memberDone(mb) || mb.down {
			r.Missing = append(r.Missing, mb.id)
		}
		if mb.down {
			r.Down = append(r.Down, mb.id)
		}
	}
	slices.Sort(r.Members)
	slices.Sort(r.Acked)
	slices.Sort(r.Missing)
	slices.Sort(r.Down)
	slices.SortFunc(r.Responses, func(a, b Response) int { return int(a.From) - int(b.From) })
	return r
}

// Send sends payload reliably on channel ch to dest and waits until every
// member of the destination has it or ctx is done. Give ctx a deadline.
func (e *Endpoint) Send(ctx context.Context, ch uint8, dest Dest, payload []byte) (Report, error) {
	t, err := e.Start(ctx, ch, dest, payload)
	if err != nil {
		return Report{}, err
	}
	return t.Wait()
}

// Start sends like Send but returns at once; the transfer can then be
// waited for or aborted. Retransmission stops when ctx is done: at its
// deadline, or on a cancel before it at the transfer's next timer event
// (Wait returns at once either way).
func (e *Endpoint) Start(ctx context.Context, ch uint8, dest Dest, payload []byte) (*Transfer, error) {
	return e.start(ctx, ch, dest, wire.TypeData, payload, nil, nil, nil)
}

// Request sends a request down on channel ch and waits for a response from
// every targeted engine (nil: every engine of the view) or for ctx. Members
// that are not targeted (managers, untargeted engines) only acknowledge.
// The responses are in the report; they count as acknowledgements.
func (e *Endpoint) Request(ctx context.Context, ch uint8, payload []byte, targets []NodeID) (Report, error) {
	t, err := e.StartRequest(ctx, ch, payload, targets)
	if err != nil {
		return Report{}, err
	}
	return t.Wait()
}

// StartRequest is Request without waiting.
func (e *Endpoint) StartRequest(ctx context.Context, ch uint8, payload []byte, targets []NodeID) (*Transfer, error) {
	return e.start(ctx, ch, Down, wire.TypeRequest, payload, targets, nil, nil)
}

// StartRequestEach is StartRequest that also hands each response to each
// as it arrives, so the caller can decode answers while the others are
// still coming instead of all of them once the last is in. each runs on
// the endpoint's receive goroutine with no lock held and must not block;
// it may run after the transfer is answered or done (the report has
// every response regardless): a response the endpoint delivered off its
// receive path (after a full Receive queue drained) is handed over with
// the receive loop's next batch.
func (e *Endpoint) StartRequestEach(ctx context.Context, ch uint8, payload []byte, targets []NodeID, each func(Response)) (*Transfer, error) {
	return e.start(ctx, ch, Down, wire.TypeRequest, payload, targets, nil, each)
}

// Reply answers a request: the response goes up to the managers (so the
// BSM sees it too), reliably, and acknowledges the request. It waits until
// every manager has it or ctx is done.
func (e *Endpoint) Reply(ctx context.Context, req *Message, payload []byte) (Report, error) {
	t, err := e.StartReply(ctx, req, payload)
	if err != nil {
		return Report{}, err
	}
	return t.Wait()
}

// StartReply is Reply without waiting: the response is queued for sending
// before it returns, and the transport keeps repairing it until every
// manager has it or ctx is done, whether or not anyone waits. A responder
// can thus answer from memory inline and never hold a goroutine per reply;
// ctx must outlive the call (its deadline bounds the repairs).
func (e *Endpoint) StartReply(ctx context.Context, req *Message, payload []byte) (*Transfer, error) {
	if req.Kind != KindRequest {
		return nil, ErrNotRequest
	}
	ref := wire.ResponseRef{Node: uint32(req.From), Incarnation: req.Incarnation, MsgID: req.ID, Up: req.Dest == Up}
	body := append(wire.AppendResponseRef(make([]byte, 0, wire.ResponseRefLen+len(payload)), &ref), payload...)
	e.mu.Lock()
	if pr := e.peers[req.From]; pr != nil && pr.inc == req.Incarnation {
		if st := pr.streams[streamKey{req.Channel, req.Dest == Up}]; st != nil && st.next > req.ID {
			if st.acked < req.ID+1 {
				st.acked = req.ID + 1 // the response is the acknowledgement
			}
			st.replied = max(st.replied, req.ID)
		}
	}
	if e.cfg.Role == Engine && !e.ackAt.IsZero() && !e.acksPending() {
		// The ACK that waited for this answer is not needed: no timer
		// wake-up for it.
		e.ackAt, e.retime = time.Time{}, true
	}
	e.mu.Unlock()
	return e.start(ctx, req.Channel, Up, wire.TypeResponse, body, nil, &ref, nil)
}

func (e *Endpoint) start(ctx context.Context, ch uint8, dest Dest, kind wire.Type, payload []byte, targets []NodeID, answers *wire.ResponseRef, each func(Response)) (*Transfer, error) {
	if len(payload) > e.cfg.MaxMessage+wire.ResponseRefLen || (kind != wire.TypeResponse && len(payload) > e.cfg.MaxMessage) {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, len(payload), e.cfg.MaxMessage)
	}
	if dest == Down && e.cfg.Role == Engine {
		// Engines' acknowledgements go up, where another engine would
		// never hear them: only managers send down (DESIGN.md §4).
		return nil, ErrDirection
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if !e.ackAt.IsZero() && e.ackAt.Sub(now) <= e.cfg.AckDelay && now.Sub(e.ackSent) >= e.cfg.AckDelay {
		// Acknowledgements due within AckDelay go first, in the same
		// flush: one wake-up of every receiver for both. Not more
		// often than the timer would send them: back-to-back short
		// requests still share one vector per AckDelay, and answers
		// held for AnswerAckDelay stay held until nearly due.
		e.flushAcks()
	}
	k := streamKey{ch, dest == Up}
	os := e.out[k]
	if os == nil {
		os = &outStream{next: 1, msgs: make(map[uint64]*outMsg)}
		e.out[k] = os
	}
	ids := e.destMembers(dest)
	// Sized once: a request to 256 engines would otherwise grow the
	// map several times.
	m := &outMsg{key: k, id: os.next, kind: kind, firstSent: now, members: make(map[NodeID]*member, len(ids)),
		done: make(chan struct{}), answers: answers, each: each}
	if kind == wire.TypeRequest {
		m.answered = make(chan struct{})
	}
	os.next++
	mbs := make([]member, len(ids)) // one allocation for the farm
	for i, id := range ids {
		mbs[i].id = id
		m.members[id] = &mbs[i]
	}
	if kind == wire.TypeRequest {
		if targets == nil {
			for id, mb := range m.members {
				if pr := e.peers[id]; pr != nil && pr.role == Engine {
					mb.target = true
				}
			}
		} else {
			for _, id := range targets {
				if m.members[id] == nil {
					m.members[id] = &member{id: id, down: true} // not in the view
				}
				m.members[id].target = true
			}
		}
	}
	for _, mb := range m.members {
		if !m.memberDone(mb) {
			m.undone++
			if mb.target {
				m.unanswered++
			}
		}
		if mb.target {
			if pr := e.peers[mb.id]; pr != nil && pr.role == Manager {
				m.managerTarget = true
			}
		}
	}
	if len(payload) <= e.segMax {
		m.segs = m.seg1[:0]
	}
	for off := 0; off < len(payload) || off == 0; off += e.segMax {
		m.segs = append(m.segs, payload[off:min(off+e.segMax, len(payload))])
		if len(payload) == 0 {
			break
		}
	}
	if len(m.segs) == 1 {
		m.lastSent = m.last1[:]
	} else {
		m.lastSent = make([]time.Time, len(m.segs))
	}
	m.bytes = len(payload)
	// Bytes the receivers must drain before this message's last segment
	// (see rto): what is in flight on every stream, since all of it
	// shares their sockets.
	e.outBytes += m.bytes
	m.ahead = e.outBytes
	os.msgs[m.id] = m
	// The first transmission is built in one allocation, and the
	// segments kept for repair are its payload bytes: the caller's
	// buffer is copied once and may change as soon as this returns.
	slab := e.bufs.get(len(payload) + len(m.segs)*wire.Overhead)
	if len(slab) >= poolMin {
		m.slab, m.flushing = slab, true
	}
	low := os.low()
	for s, seg := range m.segs {
		b := e.queueIn(slab[:0:wire.Overhead+len(seg)], m.key.dest(), m.segHeader(s, low), seg)
		if b == nil { // cannot happen: segMax fits a datagram
			m.segs[s] = bytes.Clone(seg)
			continue
		}
		m.segs[s] = b[wire.HeaderLen : len(b)-wire.TagLen]
		m.lastSent[s] = now
		slab = slab[len(b):]
	}
	e.stats.Sent++
	m.rtoAt = now.Add(e.rto(m))
	e.checkDone(m)
	wake := m.rtoAt
	if !m.finished {
		if dl, ok := ctx.Deadline(); ok {
			// The timer loop ends it at the deadline, and notices an
			// earlier cancel at its next visit (Wait notices at once):
			// no callback registered with ctx per message.
			m.ctx, m.deadline = ctx, dl
			if dl.Before(wake) {
				wake = dl
			}
		} else if ctx.Done() != nil {
			m.stop = context.AfterFunc(ctx, func() { e.expire(m) })
		}
	}
	e.wake(wake)
	e.unlockAndFlush()
	if m.slab != nil {
		// Released while it was being sent (a deadline that passed
		// at once): its slab could not go back to the pool then.
		e.mu.Lock()
		m.flushing = false
		if m.finished {
			e.recycle(m)
		}
		e.mu.Unlock()
	}
	m.xfer = Transfer{e: e, m: m}
	return &m.xfer, nil
}

// sendSeg queues segment s of m again with the stream's current
// low-water mark.
func (e *Endpoint) sendSeg(m *outMsg, os *outStream, s int, now time.Time) {
	e.queue(m.key.dest(), m.segHeader(s, os.low()), m.segs[s])
	m.lastSent[s] = now
}

// segHeader is the header of segment s of m.
func (m *outMsg) segHeader(s int, low uint64) wire.Header {
	f := wire.Flags(0)
	if s == 0 {
		f |= wire.FlagInit
	}
	if s == len(m.segs)-1 {
		f |= wire.FlagNoMore
	}
	if m.key.up {
		f |= wire.FlagUp
	}
	return wire.Header{Type: m.kind, Flags: f, Channel: m.key.ch, MsgID: m.id, Seq: uint32(s),
		Count: uint32(len(m.segs)), Ref: low}
}

// rto is the retransmission timeout: twice the slowest pending member's
// smoothed RTT, never under MinRTO, plus the fan-in allowance (pending
// members - 1) × the observed response spacing, doubled per retry. (Not
// TCP's srtt+4·rttvar: a spurious re-send here costs one datagram to
// every member and an ACK back from each, a late one costs the whole
// operation its deadline.) See doc.go, "Retransmission timer".
func (e *Endpoint) rto(m *outMsg) time.Duration {
	var rtt time.Duration
	pending, manager := 0, false
	for _, mb := range m.members {
		if m.memberDone(mb) {
			continue
		}
		pending++
		if pr := e.peers[mb.id]; pr != nil {
			rtt = max(rtt, pr.srtt)
			manager = manager || pr.role == Manager
		}
	}
	d := max(2*rtt, e.cfg.MinRTO)
	if manager {
		// Managers acknowledge with a vector at most every AckDelay
		// (engines at once): the timer must not fire before that
		// vector could have come.
		d += e.cfg.AckDelay
	}
	if m.kind == wire.TypeResponse {
		d = max(d, 2*e.answerWait)
		if e.cfg.Role == Engine {
			// Managers hold acknowledgements of engines' answers up
			// to AnswerAckDelay; the requester's own timer recovers
			// a lost one.
			d = max(d, 2*e.cfg.AnswerAckDelay+e.cfg.AckDelay)
		}
	}
	if pending > 1 {
		// N answers converge on this one receiver and are read one at
		// a time: the last one lands (N-1) spacings after the first,
		// whatever the network's RTT.
		d += time.Duration(pending-1) * e.spacing
	}
	if m.rtoTry == 0 {
		// A big message takes a while to drain at the receivers, and
		// so does everything sent before it; a timer that fires
		// mid-burst re-sends what is merely unread.
		d += time.Duration(m.ahead) * time.Second / drainRate
	}
	for range min(m.rtoTry, 10) {
		d *= 2
	}
	return min(d, e.cfg.MaxRTO)
}

// quiet is how long a transfer's acknowledgements must have stopped
// coming in before its timer may re-send: while they still arrive, the
// missing ones are more likely queued behind them than lost.
func (e *Endpoint) quiet() time.Duration {
	return max(e.cfg.MinRTO, 8*e.spacing)
}

// memberProgress records that one more member of m is done (acknowledged
// or answered).
func (m *outMsg) memberProgress(now time.Time) {
	m.lastDone = now
	if m.retx {
		return
	}
	if m.cleanN == 0 {
		m.cleanFrom = now
	}
	m.cleanTo = now
	m.cleanN++
}

// ewma folds sample s into the smoothed value v (gain 1/8, as srtt).
func ewma(v, s time.Duration) time.Duration {
	if v == 0 {
		return s
	}
	return (7*v + s) / 8
}

// sampleSpacing folds a finished transfer's response spread into the
// fan-in spacing estimate: (last - first) / (answers - 1), smoothed like
// an RTT. Transfers with fewer than minFanInSample answers say nothing
// about fan-in.
func (e *Endpoint) sampleSpacing(m *outMsg) {
	if m.cleanN < minFanInSample {
		return
	}
	s := m.cleanTo.Sub(m.cleanFrom) / time.Duration(m.cleanN-1)
	s = min(s, maxSpacing)
	if e.spacing == 0 {
		e.spacing = s
		return
	}
	e.spacing = (7*e.spacing + s) / 8
}

// checkDone finishes m once every member is done.
func (e *Endpoint) checkDone(m *outMsg) {
	if m.finished || m.aborting {
		return
	}
	if m.answered != nil && !m.answeredDone {
		if m.unanswered == 0 {
			m.markAnswered()
			// The answers held while it collected: one vector for
			// them (and, for engines' answers, those of the requests
			// after it), not when the last bystander acked.
			e.ackSoon(time.Now().Add(e.answerAckDelay(m)))
		}
	}
	if m.undone > 0 {
		return
	}
	e.release(m)
}

// answerAckDelay is how long the answers to request m may wait for
// their acknowledgement: AnswerAckDelay when only engines answer (they
// would wake for a vector per request), AckDelay when a manager does: a
// manager that answers (a directory snapshot chunk) may be waiting for
// the acknowledgement before it serves the next request.
func (e *Endpoint) answerAckDelay(m *outMsg) time.Duration {
	if m.managerTarget {
		return e.cfg.AckDelay
	}
	return e.cfg.AnswerAckDelay
}

// release finishes m and forgets it: no more repairs, and the stream's
// low-water mark moves past it.
func (e *Endpoint) release(m *outMsg) {
	if !m.finished {
		e.sampleSpacing(m)
		if m.kind == wire.TypeRequest {
			// The answers held while it collected (deliverStream):
			// one vector acknowledges them all, with those of every
			// request completed within AnswerAckDelay: the engines
			// wake for it once per AnswerAckDelay, not per request.
			e.ackSoon(time.Now().Add(e.answerAckDelay(m)))
		}
		// Its timer is likely the one the timer loop waits for: move
		// the loop to the next real deadline instead of waking it
		// for nothing.
		e.retime = true
	}
	m.finish()
	if os := e.out[m.key]; os != nil && os.msgs[m.id] == m {
		delete(os.msgs, m.id)
		e.outBytes -= m.bytes
	}
	e.recycle(m)
}

// recycle gives a released m's slab back to the pool, unless start is
// still sending from it. Nothing repairs m any more: its segments are not
// read again.
func (e *Endpoint) recycle(m *outMsg) {
	if m.slab == nil || m.flushing {
		return
	}
	e.bufs.put(m.slab)
	m.slab, m.segs = nil, nil
}

func (e *Endpoint) expire(m *outMsg) {
	e.mu.Lock()
	defer e.unlockAndFlush()
	if !m.aborting {
		e.release(m)
	}
}

func (e *Endpoint) markAcked(m *outMsg, id NodeID, now time.Time) {
	mb := m.members[id]
	if mb == nil || mb.acked {
		return
	}
	m.update(mb, func() { mb.acked = true })
	if !mb.responded && !mb.down {
		m.memberProgress(now)
	}
	if m.kind == wire.TypeResponse && !mb.down {
		// How long managers take to acknowledge an answer: they hold
		// it until the request completes (deliverStream), so early
		// answers wait for the whole fan-in. Not an RTT (no Karn
		// filter: a re-sent answer is acknowledged no sooner than
		// the request completes either way); it only keeps the
		// answer's timer from firing before that, and the manager
		// re-asks for an answer it lost (onDuplicate).
		//
		// Up at once, down slowly: one late acknowledgement (a slow
		// fan-in) stretches the next answers' timers at once, so they
		// do not all fire early while the estimate catches up. A
		// sample is capped at MaxRTO/2, the most the timer can use.
		if w := min(now.Sub(m.firstSent), e.cfg.MaxRTO/2); w > e.answerWait {
			e.answerWait = w
		} else {
			e.answerWait = ewma(e.answerWait, w)
		}
	}
	// Karn: after a re-send the ACK may answer either copy. And a
	// message queued behind a burst measures the receivers' drain, not
	// the round trip (rto allows for the drain separately).
	if !m.retx && m.ahead <= e.segMax {
		if pr := e.peers[id]; pr != nil {
			pr.rttSample(now.Sub(m.firstSent))
		}
	}
	e.checkDone(m)
}

// onAckEntry applies one entry of an ACK vector that covers one of our
// streams (wire.ScanAck filters by node).
func (e *Endpoint) onAckEntry(pr *peer, en wire.AckEntry, now time.Time) {
	if NodeID(en.Stream.Node) != e.self || en.Stream.Incarnation != e.inc {
		return
	}
	os := e.out[streamKey{en.Stream.Channel, en.Stream.Up}]
	if os == nil {
		return
	}
	for id, m := range os.msgs {
		if id < en.Next {
			e.markAcked(m, pr.id, now)
		}
	}
}

// onResponse files a response to one of our requests; false if the request
// is no longer in flight (a late reply).
func (e *Endpoint) onResponse(r *Message) bool {
	os := e.out[streamKey{r.Channel, r.RequestDirection == Up}]
	if os == nil {
		return false
	}
	m := os.msgs[r.RequestID]
	if m == nil || m.kind != wire.TypeRequest {
		return false
	}
	mb := m.members[r.From]
	if mb == nil {
		return false
	}
	now := time.Now()
	if !mb.responded {
		m.update(mb, func() { mb.responded, mb.resp = true, r.Payload })
		if m.each != nil {
			e.notes = append(e.notes, note{m.each, Response{From: r.From, Payload: r.Payload}})
		}
		if !mb.acked {
			m.memberProgress(now)
		} else {
			m.lastDone = now
		}
	}
	// In-order delivery: answering request n means having had every
	// message before it.
	for id, om := range os.msgs {
		if id <= r.RequestID {
			e.markAcked(om, r.From, now)
		}
	}
	e.checkDone(m)
	return true
}

// onNak repairs our own stream, or, for someone else's, suppresses our
// own pending NAKs.
func (e *Endpoint) onNak(pr *peer, n *wire.Nak, now time.Time) {
	if NodeID(n.Stream.Node) != e.self {
		if e.receiverOf(n.Stream.Up) {
			e.suppressNaks(n, now)
		}
		return
	}
	if n.Stream.Incarnation != e.inc {
		return
	}
	e.stats.NaksReceived++
	os := e.out[streamKey{n.Stream.Channel, n.Stream.Up}]
	if os == nil {
		return
	}
	guard := e.cfg.MinRTO / 2 // one repair per round, however many NAKs
	for _, g := range n.Ranges {
		m := os.msgs[g.MsgID]
		if m == nil || m.aborting {
			continue
		}
		last := min(g.Last, uint32(len(m.segs)-1))
		for s := g.First; s <= last; s++ {
			if now.Sub(m.lastSent[s]) < guard {
				continue
			}
			if !e.takeTokens(len(m.segs[s])+wire.Overhead, now) {
				e.stats.RepairsThrottled++
				return
			}
			e.sendSeg(m, os, int(s), now)
			m.retx = true
			e.stats.Retransmits++
		}
	}
}

// takeTokens charges the repair rate limit.
func (e *Endpoint) takeTokens(n int, now time.Time) bool {
	rate := float64(e.cfg.RepairRate)
	e.tokens = min(e.tokens+rate*now.Sub(e.tokensAt).Seconds(), rate/10)
	e.tokensAt = now
	if e.tokens < float64(n) {
		return false
	}
	e.tokens -= float64(n)
	return true
}

// tickSend runs the retransmission timers: tail loss (a whole message, or
// its last segment) is invisible to receivers, so the sender re-sends the
// last segment, which tells a receiver the message exists and how many
// segments it has, and its NAKs do the rest.
func (e *Endpoint) tickSend(now time.Time) time.Time {
	var next time.Time
	for _, os := range e.out {
		for _, m := range os.msgs {
			if m.finished {
				continue
			}
			if !m.aborting && m.ctx != nil && (!now.Before(m.deadline) || m.ctx.Err() != nil) {
				e.release(m) // its context ended (start)
				continue
			}
			if m.aborting {
				if !now.Before(m.abortAt) {
					e.queueAbort(m)
					m.abortTry++
					m.abortAt = now.Add(e.backoff(m.abortTry))
				}
				if next.IsZero() || m.abortAt.Before(next) {
					next = m.abortAt
				}
				continue
			}
			if !now.Before(m.rtoAt) && !m.lastDone.IsZero() && now.Before(m.lastDone.Add(e.quiet())) {
				// Answers are still coming in: the silent members are
				// more likely queued behind them than lost. Wait for
				// the fan-in to go quiet; each deferral needs a new
				// answer, so there are at most as many as members.
				m.rtoAt = m.lastDone.Add(e.quiet())
			}
			if !now.Before(m.rtoAt) {
				if m.kind == wire.TypeRequest {
					// Acknowledge the answers we have before asking
					// again (same flush, so the vector arrives
					// first): an engine re-sends its answer when it
					// sees the request again unacknowledged.
					e.flushAcks()
				}
				last := len(m.segs) - 1
				if e.takeTokens(len(m.segs[last])+wire.Overhead, now) {
					e.sendSeg(m, os, last, now)
					e.stats.Retransmits++
				} else {
					e.stats.RepairsThrottled++
				}
				m.retx = true
				m.rtoTry++
				m.rtoAt = now.Add(e.rto(m))
			}
			if next.IsZero() || m.rtoAt.Before(next) {
				next = m.rtoAt
			}
			if !m.deadline.IsZero() && m.deadline.Before(next) {
				next = m.deadline
			}
		}
	}
	return next
}

func (e *Endpoint) backoff(try int) time.Duration {
	d := e.cfg.MinRTO
	for range min(try, 10) {
		d *= 2
	}
	return min(d, e.cfg.MaxRTO)
}

// memberGone counts a member that went down or left as done-but-missing
// in every transfer, so that nothing waits for it.
func (e *Endpoint) memberGone(id NodeID) {
	for _, os := range e.out {
		for _, m := range os.msgs {
			mb := m.members[id]
			if mb == nil || mb.down || (m.aborting && mb.abortAcked) || (!m.aborting && m.memberDone(mb)) {
				continue
			}
			{
				m.update(mb, func() { mb.down = true })
				if m.aborting {
					if m.abortSM == id {
						m.abortSM = 0
					}
					e.checkAbort(m)
				} else {
					e.checkDone(m)
				}
			}
		}
	}
	for _, sa := range e.smAborts {
		if sa.waiting[id] {
			delete(sa.waiting, id)
			e.checkSMAbort(sa, time.Now())
		}
	}
}
