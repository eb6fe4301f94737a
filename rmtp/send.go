package rmtp

import (
	"bytes"
	"context"
	"fmt"
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
