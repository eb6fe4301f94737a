package rmtp

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

func (e *Endpoint) ackSoon(at time.Time) {
	if e.ackAt.IsZero() || at.Before(e.ackAt) {
		e.ackAt = at
		e.wake(at)
	}
}

// acksPending reports whether a stream awaits an ACK (flushAcks would
// send something). It walks every stream: engines only, whose peers are
// the few managers.
func (e *Endpoint) acksPending() bool {
	for _, pr := range e.peers {
		if !pr.live() {
			continue
		}
		for _, st := range pr.streams {
			if st.started && (st.acked != st.next || st.force) {
				return true
			}
		}
	}
	return false
}

// flushAcks sends the cumulative ACK vector covering every stream whose
// position moved (or whose sender evidently missed our ACK). Engines send
// it up (only managers send down to them); managers send their entries
// for engines' streams down, where the engines hear them, and those for
// managers' streams up: one datagram per interval and direction however
// many senders it covers.
func (e *Endpoint) flushAcks() {
	e.ackAt, e.ackNow = time.Time{}, false
	// An engine's vector goes up. A manager's entries for engines'
	// streams go down, where those engines hear them; its entries for
	// other managers' streams go up, so that a backup manager's
	// acknowledgement of each request does not wake the whole farm.
	var down, up wire.Ack
	send := func(a *wire.Ack, d Dest) {
		if len(a.Entries) == 0 {
			return
		}
		e.queue(d, wire.Header{Type: wire.TypeAck}, wire.AppendAck(nil, a))
		e.stats.AcksSent++
		e.ackSent = time.Now()
		a.Entries = a.Entries[:0]
	}
	per := min(wire.MaxAckEntries, (e.segMax-2)/(wire.StreamIDLen+8))
	for _, pr := range e.peers {
		if !pr.live() {
			continue
		}
		a, d := &down, Down
		if e.cfg.Role == Engine || pr.role == Manager {
			a, d = &up, Up
		}
		for k, st := range pr.streams {
			if !st.started || (st.acked == st.next && !st.force) {
				continue
			}
			st.acked, st.force = st.next, false
			a.Entries = append(a.Entries, wire.AckEntry{
				Stream: wire.StreamID{Node: uint32(pr.id), Incarnation: pr.inc, Channel: k.ch, Up: k.up},
				Next:   st.next,
			})
			if len(a.Entries) == per {
				send(a, d)
			}
		}
	}
	send(&down, Down)
	send(&up, Up)
}
