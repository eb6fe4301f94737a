package rmtp

import (
	"net/netip"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// PeerState is what this endpoint believes of a peer.
type PeerState uint8

// Peer states.
const (
	PeerAlive   PeerState = 1
	PeerSuspect PeerState = 2 // missed SuspectAfter heartbeats
	PeerDown    PeerState = 3 // missed DownAfter heartbeats
	PeerLeft    PeerState = 4 // said goodbye
)

func (s PeerState) String() string {
	switch s {
	case PeerAlive:
		return "alive"
	case PeerSuspect:
		return "suspect"
	case PeerDown:
		return "down"
	case PeerLeft:
		return "left"
	}
	return "PeerState(?)"
}

// replayWin is a sliding window over a peer's control sequence numbers,
// as IPsec's anti-replay window: a number seen before, or older than the
// window, is refused.
type replayWin struct {
	top  uint64
	bits [replayWindow / 64]uint64
}

func (w *replayWin) accept(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		shift := seq - w.top
		if shift >= replayWindow {
			w.bits = [replayWindow / 64]uint64{}
		} else {
			for i := w.top + 1; i <= seq; i++ {
				w.bits[(i%replayWindow)/64] &^= 1 << (i % 64)
			}
		}
		w.top = seq
		w.bits[(seq%replayWindow)/64] |= 1 << (seq % 64)
		return true
	}
	if w.top-seq >= replayWindow {
		return false
	}
	word, bit := (seq%replayWindow)/64, uint64(1)<<(seq%64)
	if w.bits[word]&bit != 0 {
		return false
	}
	w.bits[word] |= bit
	return true
}

type peer struct {
	id        NodeID
	inc       uint64
	role      Role // 0 until a HELLO says
	priority  uint8
	level     uint8
	term      uint64 // the term its latest HELLO announced
	addr      netip.AddrPort
	from      netip.AddrPort
	state     PeerState
	synced    bool // a fresh HELLO gave this incarnation's stream positions
	lastHeard time.Time
	srtt      time.Duration
	rttvar    time.Duration
	ctrl      replayWin
	streams   map[streamKey]*inStream
	mem       int
	app       []byte
}

func newPeer(id NodeID, inc uint64, now time.Time) *peer {
	return &peer{id: id, inc: inc, state: PeerAlive, lastHeard: now, streams: make(map[streamKey]*inStream)}
}

// heard records a sign of life and reports whether the peer came back
// from suspect or down.
func (pr *peer) heard(now time.Time) bool {
	pr.lastHeard = now
	if pr.state == PeerSuspect || pr.state == PeerDown {
		back := pr.state == PeerDown
		pr.state = PeerAlive
		return back
	}
	return false
}

func (pr *peer) live() bool { return pr.state == PeerAlive || pr.state == PeerSuspect }

// rttSample folds one measurement in (RFC 6298).
func (pr *peer) rttSample(r time.Duration) {
	if pr.srtt == 0 {
		pr.srtt, pr.rttvar = r, r/2
		return
	}
	d := pr.srtt - r
	if d < 0 {
		d = -d
	}
	pr.rttvar = (3*pr.rttvar + d) / 4
	pr.srtt = (7*pr.srtt + r) / 8
}

// inStream is the receive side of one (sender, channel, direction).
type inStream struct {
	started bool
	next    uint64 // next id to deliver
	highest uint64 // highest id known to exist
	parts   map[uint64]*partial
	aborted map[uint64]bool // ids aborted by the sender (kept until passed)
	gapAt   time.Time       // when to NAK unknown messages in [next, highest]
	gapTry  int
	acked   uint64 // Next value of the last ACK sent (or implied by a response)
	force   bool   // re-ACK even if unchanged (the sender missed it)
}

// segTableEntry is what one slot of a partial's segment table costs.
const segTableEntry = 24

type partial struct {
	kind     wire.Type
	count    uint32
	segs     [][]byte
	have     int
	size     int
	highSeq  uint32
	progress time.Time
	nakAt    time.Time
	nakTry   int
}

func (pr *peer) stream(k streamKey) *inStream {
	st := pr.streams[k]
	if st == nil {
		st = &inStream{parts: make(map[uint64]*partial), aborted: make(map[uint64]bool)}
		pr.streams[k] = st
	}
	return st
}

// receiverOf reports whether this endpoint is a destination of a stream in
// direction up (only managers receive upward traffic).
func (e *Endpoint) receiverOf(up bool) bool { return !up || e.cfg.Role == Manager }

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

// advanceLow skips what the sender will never repair: ids below its
// low-water mark were completed or given up while this member was absent
// or unreachable.
func (e *Endpoint) advanceLow(pr *peer, st *inStream, low uint64) {
	if !st.started {
		st.started = true
		st.next = max(low, 1)
		st.acked = st.next
		return
	}
	if low <= st.next {
		return
	}
	skipped := low - st.next // the gap can be huge after a long absence: walk the maps, not the ids
	for id, p := range st.parts {
		if id < low {
			pr.mem -= p.size
			delete(st.parts, id)
		}
	}
	for id := range st.aborted {
		if id >= st.next && id < low {
			skipped--
		}
	}
	e.stats.Skipped += skipped
	st.next = low
	st.highest = max(st.highest, low-1)
}

func (e *Endpoint) onSegment(pr *peer, p *wire.Packet, now time.Time) {
	k := streamKey{p.Channel, p.Flags&wire.FlagUp != 0}
	if !e.receiverOf(k.up) {
		return
	}
	st := pr.stream(k)
	if !st.started && !pr.synced {
		// A stream starts only after the sender's fresh HELLO: a
		// segment alone cannot tell a restarted member whether it is
		// new or a replay of one it delivered before restarting. The
		// sender's timer re-sends it.
		e.stats.Unsynced++
		return
	}
	e.advanceLow(pr, st, p.Ref)
	id := p.MsgID
	if id < st.next || st.aborted[id] {
		e.stats.Duplicates++
		st.force = true
		e.ackSoon(now)
		e.deliverStream(pr, k, st)
		return
	}
	if id-st.next >= reorderWindow {
		e.stats.Dropped++
		return
	}
	part := st.parts[id]
	if part == nil {
		if int(p.Count) > (e.cfg.MaxMessage+minSegment-1)/minSegment+1 {
			e.stats.TooLarge++
			return
		}
		// The segment table counts against the peer's budget too, or a
		// member could pin memory with first segments of huge counts.
		table := int(p.Count) * segTableEntry
		if pr.mem+table > e.cfg.PeerMemory && id != st.next {
			e.stats.Dropped++
			return
		}
		part = &partial{kind: p.Type, count: p.Count, segs: make([][]byte, p.Count), progress: now, size: table}
		pr.mem += table
		st.parts[id] = part
	}
	if part.count != p.Count || part.kind != p.Type {
		e.stats.Malformed++
		return
	}
	if part.segs[p.Seq] != nil {
		e.stats.Duplicates++
		return
	}
	n := len(p.Payload)
	// Over the peer's budget a segment is dropped and repaired later,
	// except for the message next in order (allowed one message and its
	// table beyond), so a full budget cannot block delivery for good.
	if pr.mem+n > e.cfg.PeerMemory && !(id == st.next && pr.mem+n <= e.cfg.PeerMemory+2*e.cfg.MaxMessage) {
		e.stats.Dropped++
		return
	}
	if part.size+n > e.cfg.MaxMessage+int(part.count)*segTableEntry {
		e.stats.TooLarge++
		pr.mem -= part.size
		delete(st.parts, id)
		st.aborted[id] = true // never deliverable: skip it in order
		e.deliverStream(pr, k, st)
		return
	}
	seg := p.Payload // aliases the datagram, which the transport handed over
	if seg == nil {
		seg = []byte{} // non-nil marks "have"
	}
	part.segs[p.Seq] = seg
	part.have++
	part.size += n
	pr.mem += n
	part.progress = now
	if id > st.highest {
		st.highest = id
	}
	if p.Seq > part.highSeq+1 || (part.highSeq == 0 && p.Seq > 0 && part.segs[0] == nil) {
		if part.nakAt.IsZero() {
			part.nakAt = now.Add(e.nakBackoff())
			e.armNak(part.nakAt)
		}
	}
	part.highSeq = max(part.highSeq, p.Seq)
	if id > st.next && st.gapAt.IsZero() {
		for g := st.next; g < id; g++ {
			if st.parts[g] == nil && !st.aborted[g] {
				st.gapAt = now.Add(e.nakBackoff())
				e.armNak(st.gapAt)
				break
			}
		}
	}
	if part.have == int(part.count) {
		part.nakAt = time.Time{}
		e.deliverStream(pr, k, st)
	} else {
		e.poke()
	}
}

// deliverStream hands complete messages over in order.
func (e *Endpoint) deliverStream(pr *peer, k streamKey, st *inStream) {
	delivered, request := false, false
	for {
		if st.aborted[st.next] {
			st.next++ // the entry stays: a repeated ABORT must still answer "discarded"
			continue
		}
		part := st.parts[st.next]
		if part == nil || part.have < int(part.count) {
			break
		}
		msg := e.assemble(pr, k, st.next, part)
		if msg != nil {
			if !e.dispatch(msg) {
				e.backlog = true
				break
			}
			e.stats.Received++
		}
		pr.mem -= part.size
		delete(st.parts, st.next)
		st.next++
		delivered = true
		request = request || part.kind == wire.TypeRequest
	}
	if st.next > st.highest {
		st.gapAt, st.gapTry = time.Time{}, 0
	}
	if len(st.aborted) > maxAbortMemory {
		for id := range st.aborted {
			if id+maxAbortMemory < st.next {
				delete(st.aborted, id)
			}
		}
	}
	if delivered {
		// A request's response will carry the acknowledgement if the
		// application answers within AckDelay; an engine acknowledges
		// anything else at once, since the sender's timer runs on RTT.
		// Managers coalesce: their vector goes to the whole farm, so one
		// per AckDelay however many engines just sent something.
		switch {
		case request || e.cfg.Role == Manager:
			e.ackSoon(time.Now().Add(e.cfg.AckDelay))
		default:
			e.flushAcks() // an engine's ACK goes to the managers only
		}
	}
}

func (e *Endpoint) assemble(pr *peer, k streamKey, id uint64, part *partial) *Message {
	var buf []byte
	if len(part.segs) == 1 {
		buf = part.segs[0] // nothing to join; the datagram is ours
	} else {
		buf = make([]byte, 0, part.size-int(part.count)*segTableEntry)
		for _, s := range part.segs {
			buf = append(buf, s...)
		}
	}
	m := &Message{From: pr.id, Incarnation: pr.inc, Channel: k.ch, Dest: k.dest(), ID: id, Payload: buf}
	switch part.kind {
	case wire.TypeData:
		m.Kind = KindData
	case wire.TypeRequest:
		m.Kind = KindRequest
	case wire.TypeResponse:
		ref, rest, err := wire.ParseResponseRef(buf)
		if err != nil {
			e.stats.Malformed++
			return nil
		}
		m.Kind = KindResponse
		m.Payload = rest
		m.Requester, m.RequesterInc, m.RequestID = NodeID(ref.Node), ref.Incarnation, ref.MsgID
		if ref.Up {
			m.RequestDirection = Up
		}
	}
	return m
}

// dispatch routes a delivered message: responses to our own requests go
// to their transfer, everything else to Receive. False: the queue is full.
func (e *Endpoint) dispatch(m *Message) bool {
	if m.Kind == KindResponse && m.Requester == e.self && m.RequesterInc == e.inc {
		if e.onResponse(m) {
			return true
		}
		e.stats.LateReplies++
	}
	select {
	case e.deliverQ <- m:
		return true
	default:
		return false
	}
}

// deliverAll retries delivery after Receive made room.
func (e *Endpoint) deliverAll() {
	e.backlog = false
	for _, pr := range e.peers {
		for k, st := range pr.streams {
			e.deliverStream(pr, k, st)
		}
	}
}

func (e *Endpoint) ackSoon(at time.Time) {
	if e.ackAt.IsZero() || at.Before(e.ackAt) {
		e.ackAt = at
		e.poke()
	}
}

// flushAcks sends one cumulative ACK vector covering every stream whose
// position moved (or whose sender evidently missed our ACK). Engines send
// it up (only managers send down to them); managers send it down, where
// every member, SE or manager, hears it: one datagram per interval however
// many senders it covers.
func (e *Endpoint) flushAcks() {
	e.ackAt = time.Time{}
	var a wire.Ack
	send := func() {
		if len(a.Entries) == 0 {
			return
		}
		d := Up
		if e.cfg.Role == Manager {
			d = Down
		}
		e.queue(d, wire.Header{Type: wire.TypeAck}, wire.AppendAck(nil, &a))
		e.stats.AcksSent++
		a.Entries = a.Entries[:0]
	}
	per := min(wire.MaxAckEntries, (e.segMax-2)/(wire.StreamIDLen+8))
	for _, pr := range e.peers {
		if !pr.live() {
			continue
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
				send()
			}
		}
	}
	send()
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

// dropPartials frees a peer's reassembly memory but keeps the stream
// positions.
func (pr *peer) dropPartials() {
	for _, st := range pr.streams {
		clear(st.parts)
		st.gapAt, st.gapTry = time.Time{}, 0
	}
	pr.mem = 0
}

// dropStreams forgets a peer's streams entirely (it restarted).
func (pr *peer) dropStreams() {
	clear(pr.streams)
	pr.mem = 0
}
