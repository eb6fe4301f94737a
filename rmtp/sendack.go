package rmtp

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

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
