package rmtp

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// AbortReport says how an abort ended (seed Fig 6).
type AbortReport struct {
	// Complete: the abort is known to be complete everywhere, from the
	// SM's acknowledgement (sent only after every other receiver's) or,
	// when there is no other SM, from every member's.
	Complete bool
	// CompletedBy is the SM whose acknowledgement completed it (0 when
	// every member's did).
	CompletedBy NodeID
	Discarded   []NodeID // members that dropped the message undelivered
	Delivered   []NodeID // members that had delivered it before the abort
	Missing     []NodeID // members that did not acknowledge the abort
}

// Abort aborts the transfer (seed Fig 6): the sender multicasts ABORT;
// every other receiver acknowledges; the SM acknowledges only after all
// the others have (or were declared down), so its acknowledgement completes
// the abort. When this endpoint is the SM, or no SM is known, the abort
// completes when every member has acknowledged. ABORT is re-sent on the
// retransmission timer until then or until ctx is done.
func (t *Transfer) Abort(ctx context.Context) (AbortReport, error) {
	e, m := t.e, t.m
	e.mu.Lock()
	if m.finished {
		e.mu.Unlock()
		return AbortReport{}, ErrFinished
	}
	if !m.aborting {
		m.aborting = true
		m.abortDone = make(chan struct{})
		if sm := e.activeSM(); sm != e.self && m.members[sm] != nil && !m.members[sm].down {
			m.abortSM = sm
		}
		e.stats.Aborts++
		e.queueAbort(m)
		m.abortAt = time.Now().Add(e.backoff(0))
		e.log.WithFields(logrus.Fields{"channel": m.key.ch, "dest": m.key.dest(), "msg": m.id, "sm": m.abortSM}).Info("rmtp: aborting transfer")
		e.checkAbort(m) // nobody to wait for
		e.poke()
	}
	done := m.abortDone
	e.unlockAndFlush()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := AbortReport{Complete: m.abortOK, CompletedBy: m.abortSM}
	for _, mb := range m.members {
		switch {
		case !mb.abortAcked:
			r.Missing = append(r.Missing, mb.id)
		case mb.abortStatus == wire.AbortDelivered:
			r.Delivered = append(r.Delivered, mb.id)
		default:
			r.Discarded = append(r.Discarded, mb.id)
		}
	}
	slices.Sort(r.Missing)
	slices.Sort(r.Delivered)
	slices.Sort(r.Discarded)
	if !m.abortOK {
		m.aborted = true
		e.release(m)
		if err == nil {
			err = ErrClosed
		}
		return r, fmt.Errorf("%w: abort of message %d not confirmed: %w", ErrIncomplete, m.id, err)
	}
	return r, nil
}

func (e *Endpoint) queueAbort(m *outMsg) {
	f := wire.Flags(0)
	if m.key.up {
		f = wire.FlagUp
	}
	e.queue(Down, wire.Header{Type: wire.TypeAbort, Flags: f, Channel: m.key.ch}, wire.AppendAbort(nil, &wire.Abort{MsgID: m.id}))
}

// checkAbort completes an abort when its rule is met.
func (e *Endpoint) checkAbort(m *outMsg) {
	if !m.aborting || m.abortOK || m.finished {
		return
	}
	if m.abortSM != 0 {
		if !m.members[m.abortSM].abortAcked {
			return
		}
	} else {
		for _, mb := range m.members {
			if !mb.abortAcked && !mb.down {
				return
			}
		}
	}
	m.abortOK = true
	m.aborted = true
	close(m.abortDone)
	e.release(m)
}

// activeSM is the manager that owns the view: this endpoint when active,
// else the announcer of the current view if still alive; 0 if none.
func (e *Endpoint) activeSM() NodeID {
	if e.active {
		return e.self
	}
	if e.view.term == 0 || e.view.owner == 0 {
		return 0
	}
	if pr := e.peers[e.view.owner]; pr == nil || !pr.live() {
		return 0
	}
	return e.view.owner
}

type abortKey struct {
	node NodeID
	inc  uint64
	k    streamKey
	id   uint64
}

// smAbort is the active SM's side of someone else's abort: it waits for
// the other receivers before acknowledging.
type smAbort struct {
	key      abortKey
	waiting  map[NodeID]bool
	deadline time.Time
	status   wire.AbortStatus
	acked    bool
	forget   time.Time
}

func (e *Endpoint) onAbort(pr *peer, h *wire.Header, id uint64, now time.Time) {
	k := streamKey{h.Channel, h.Flags&wire.FlagUp != 0}
	if !e.receiverOf(k.up) {
		return
	}
	e.stats.AbortsReceived++
	st := pr.stream(k)
	status := wire.AbortDiscarded
	if st.started && id < st.next && !st.aborted[id] {
		status = wire.AbortDelivered
	} else if !st.aborted[id] {
		if p := st.parts[id]; p != nil {
			pr.mem -= p.size
			delete(st.parts, id)
		}
		st.aborted[id] = true
		if st.started {
			e.deliverStream(pr, k, st)
		}
	}
	if !e.active {
		e.queueAbortAck(pr, k, id, status)
		return
	}
	ak := abortKey{pr.id, pr.inc, k, id}
	sa := e.smAborts[ak]
	if sa == nil {
		sa = &smAbort{key: ak, waiting: make(map[NodeID]bool), deadline: now.Add(e.cfg.AbortWait), status: status}
		for _, m := range e.destMembers(k.dest()) {
			if m != pr.id {
				sa.waiting[m] = true
			}
		}
		e.smAborts[ak] = sa
	}
	if sa.acked {
		e.queueAbortAck(pr, k, id, sa.status) // the sender missed it
		return
	}
	e.checkSMAbort(sa, now)
}

func (e *Endpoint) queueAbortAck(pr *peer, k streamKey, id uint64, status wire.AbortStatus) {
	a := wire.AbortAck{Stream: wire.StreamID{Node: uint32(pr.id), Incarnation: pr.inc, Channel: k.ch, Up: k.up}, MsgID: id, Status: status}
	d := Up
	if e.cfg.Role == Manager {
		d = Down
	}
	e.queue(d, wire.Header{Type: wire.TypeAbortAck}, wire.AppendAbortAck(nil, &a))
}

// checkSMAbort sends the SM's acknowledgement once all others have
// acknowledged, were declared down, or the wait ran out.
func (e *Endpoint) checkSMAbort(sa *smAbort, now time.Time) {
	if sa.acked {
		return
	}
	if len(sa.waiting) > 0 && now.Before(sa.deadline) {
		return
	}
	if len(sa.waiting) > 0 {
		e.log.WithFields(logrus.Fields{"sender": sa.key.node, "msg": sa.key.id, "silent": len(sa.waiting)}).
			Warn("rmtp: abort: acknowledging without every member")
	}
	sa.acked = true
	sa.forget = now.Add(10 * e.cfg.HelloInterval)
	if pr := e.peers[sa.key.node]; pr != nil && pr.inc == sa.key.inc {
		e.queueAbortAck(pr, sa.key.k, sa.key.id, sa.status)
	}
}

func (e *Endpoint) onAbortAck(pr *peer, a *wire.AbortAck, now time.Time) {
	if NodeID(a.Stream.Node) == e.self && a.Stream.Incarnation == e.inc {
		if os := e.out[streamKey{a.Stream.Channel, a.Stream.Up}]; os != nil {
			if m := os.msgs[a.MsgID]; m != nil && m.aborting {
				if mb := m.members[pr.id]; mb != nil && !mb.abortAcked {
					mb.abortAcked, mb.abortStatus = true, a.Status
					e.checkAbort(m)
				}
			}
		}
		return
	}
	ak := abortKey{NodeID(a.Stream.Node), a.Stream.Incarnation, streamKey{a.Stream.Channel, a.Stream.Up}, a.MsgID}
	if sa := e.smAborts[ak]; sa != nil && sa.waiting[pr.id] {
		delete(sa.waiting, pr.id)
		e.checkSMAbort(sa, now)
	}
}

// tickAborts times out the SM's waits and forgets finished ones.
func (e *Endpoint) tickAborts(now time.Time) time.Time {
	var next time.Time
	for k, sa := range e.smAborts {
		if sa.acked {
			if now.After(sa.forget) {
				delete(e.smAborts, k)
			}
			continue
		}
		e.checkSMAbort(sa, now)
		if !sa.acked && (next.IsZero() || sa.deadline.Before(next)) {
			next = sa.deadline
		}
	}
	return next
}
