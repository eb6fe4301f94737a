package rmtp

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

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

func (e *Endpoint) backoff(try int) time.Duration {
	d := e.cfg.MinRTO
	for range min(try, 10) {
		d *= 2
	}
	return min(d, e.cfg.MaxRTO)
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
