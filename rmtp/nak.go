package rmtp

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// nakBackoff is the random wait before a first NAK: members that lost the
// same datagram spread their NAKs so that the first one heard suppresses
// the rest.
func (e *Endpoint) nakBackoff() time.Duration {
	return time.Duration(e.rng.Int64N(int64(e.cfg.NakDelay))) + e.cfg.NakDelay/4
}

// nakRetry is how long a receiver waits for a repair before asking again.
func (e *Endpoint) nakRetry(try int) time.Duration {
	d := 2 * e.cfg.MinRTO
	for range min(try, 10) {
		d *= 2
	}
	return min(d, e.cfg.MaxRTO)
}

// tickReceive sends the NAKs that are due and returns the next due time.
// Between NAK deadlines it returns at once: a manager has hundreds of
// peers, and scanning every stream on every wake-up of the timer loop
// was its largest cost at 256 engines.
func (e *Endpoint) tickReceive(now time.Time) time.Time {
	if e.nakDue.IsZero() || now.Before(e.nakDue) {
		return e.nakDue
	}
	next := e.scanReceive(now)
	e.nakDue = next
	return next
}

// armNak records that a NAK timer was set to t, so that tickReceive
// scans again by then. Caller holds mu.
func (e *Endpoint) armNak(t time.Time) {
	if e.nakDue.IsZero() || t.Before(e.nakDue) {
		e.nakDue = t
	}
	e.wake(t)
}

// scanReceive sends the NAKs that are due and returns the next due time.
func (e *Endpoint) scanReceive(now time.Time) time.Time {
	var next time.Time
	upd := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, pr := range e.peers {
		if !pr.live() {
			continue
		}
		for k, st := range pr.streams {
			var ranges []wire.NakRange
			if !st.gapAt.IsZero() && !now.Before(st.gapAt) {
				for g := st.next; g <= st.highest && len(ranges) < wire.MaxNakRanges/2; g++ {
					if st.parts[g] == nil && !st.aborted[g] {
						ranges = append(ranges, wire.NakRange{MsgID: g, First: 0, Last: wire.SegAll})
					}
				}
				if len(ranges) > 0 {
					st.gapTry++
					st.gapAt = now.Add(e.nakRetry(st.gapTry))
				} else {
					st.gapAt, st.gapTry = time.Time{}, 0
				}
			}
			upd(st.gapAt)
			for id, part := range st.parts {
				if part.nakAt.IsZero() || part.have == int(part.count) {
					continue
				}
				if now.Before(part.nakAt) {
					upd(part.nakAt)
					continue
				}
				if quiet := part.progress.Add(e.cfg.NakDelay); now.Before(quiet) {
					// Segments are still arriving: the "holes" may be
					// datagrams this member has not read yet. Wait
					// for the burst to end.
					part.nakAt = quiet
					upd(quiet)
					continue
				}
				// Ask for the holes below the highest segment seen.
				// The tail is the sender's: its timer re-sends the last
				// segment, which turns a lost tail into holes.
				before := len(ranges)
				ranges = appendMissing(ranges, id, part, part.highSeq)
				if len(ranges) == before {
					part.nakAt = time.Time{} // holes filled; a new one re-arms it
					continue
				}
				part.nakTry++
				part.nakAt = now.Add(e.nakRetry(part.nakTry))
				upd(part.nakAt)
				if len(ranges) >= wire.MaxNakRanges {
					// The partials not visited keep their timers,
					// which may be due: scan again after this
					// NAK's round.
					upd(now.Add(e.cfg.NakDelay))
					break
				}
			}
			if len(ranges) > 0 {
				ranges = ranges[:min(len(ranges), wire.MaxNakRanges)]
				n := wire.Nak{Stream: wire.StreamID{Node: uint32(pr.id), Incarnation: pr.inc, Channel: k.ch, Up: k.up}, Ranges: ranges}
				e.queue(Down, wire.Header{Type: wire.TypeNak}, wire.AppendNak(nil, &n))
				e.stats.NaksSent++
			}
		}
	}
	return next
}

func appendMissing(r []wire.NakRange, id uint64, part *partial, last uint32) []wire.NakRange {
	for s := uint32(0); s <= last && len(r) < wire.MaxNakRanges; s++ {
		if part.segs[s] != nil {
			continue
		}
		end := s
		for end+1 <= last && part.segs[end+1] == nil {
			end++
		}
		r = append(r, wire.NakRange{MsgID: id, First: s, Last: end})
		s = end
	}
	return r
}

// suppressNaks defers our own pending NAKs that another member's NAK
// already covers: the repair it triggers is multicast and reaches us too.
func (e *Endpoint) suppressNaks(n *wire.Nak, now time.Time) {
	pr := e.peers[NodeID(n.Stream.Node)]
	if pr == nil || pr.inc != n.Stream.Incarnation {
		return
	}
	st := pr.streams[streamKey{n.Stream.Channel, n.Stream.Up}]
	if st == nil {
		return
	}
	byMsg := make(map[uint64][]wire.NakRange, len(n.Ranges))
	for _, g := range n.Ranges {
		byMsg[g.MsgID] = append(byMsg[g.MsgID], g)
	}
	suppressed := false
	for id, rs := range byMsg {
		if part := st.parts[id]; part != nil {
			if !part.nakAt.IsZero() && part.have < int(part.count) && covers(part, rs) {
				part.nakAt = now.Add(e.nakRetry(part.nakTry))
				e.armNak(part.nakAt)
				suppressed = true
			}
		} else if rs[0].First == 0 && rs[0].Last == wire.SegAll && !st.gapAt.IsZero() && id >= st.next {
			st.gapAt = now.Add(e.nakRetry(st.gapTry))
			e.armNak(st.gapAt)
			suppressed = true
		}
	}
	if suppressed {
		e.stats.NaksSuppressed++
	}
}

// covers reports whether the ranges ask for every segment part misses up
// to its highest received one.
func covers(part *partial, rs []wire.NakRange) bool {
	for s := uint32(0); s <= part.highSeq; s++ {
		if part.segs[s] != nil {
			continue
		}
		in := false
		for _, g := range rs {
			if s >= g.First && s <= g.Last {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}
