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
	replied uint64 // highest request id on the stream this endpoint answered
}

// segTableEntry is what one slot of a partial's segment table costs.
const segTableEntry = 24

// A message of several segments is copied into buf as its segments
// arrive (every segment but the last has the sender's segment size, which
// the first one that is not the last tells), so delivering it costs no
// further copy and the datagrams are not kept: a transport may reuse
// their buffers (recvBorrowed). segs[i] is non-nil once segment i is in:
// a view of buf, or for the last segment before any other, a copy.
type partial struct {
	kind     wire.Type
	count    uint32
	segs     [][]byte
	buf      []byte // count > 1: the message, allocated once segLen is known
	segLen   int
	have     int
	size     int
	highSeq  uint32
	progress time.Time
	nakAt    time.Time
	nakTry   int
	one      [1][]byte // segs of a one-segment message: no allocation of its own
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

// admit applies the peer's reassembly budget to need more bytes. Over
// it a segment is dropped and repaired later, except for the message next
// in order (allowed one message and its table beyond), so a full budget
// cannot block delivery for good.
func (e *Endpoint) admit(pr *peer, st *inStream, id uint64, need int) bool {
	if pr.mem+need > e.cfg.PeerMemory && !(id == st.next && pr.mem+need <= e.cfg.PeerMemory+2*e.cfg.MaxMessage) {
		e.stats.Dropped++
		return false
	}
	return true
}

// storeSegment keeps segment p of message id (see partial); false: it was
// refused (counted). borrowed: p's bytes are the transport's and must be
// copied to be kept.
func (e *Endpoint) storeSegment(pr *peer, k streamKey, st *inStream, id uint64, part *partial, p *wire.Packet, borrowed bool) bool {
	n := len(p.Payload)
	maxLen := e.cfg.MaxMessage
	if part.kind == wire.TypeResponse {
		maxLen += wire.ResponseRefLen
	}
	lastSeq := part.count - 1
	hold := func(n int) bool { // keep p's bytes as they are
		if !e.admit(pr, st, id, n) {
			return false
		}
		seg := p.Payload
		if borrowed || seg == nil {
			seg = append([]byte{}, seg...) // a copy; non-nil marks "have"
		}
		part.segs[p.Seq] = seg
		part.size += n
		pr.mem += n
		return true
	}
	if part.count == 1 {
		if n > maxLen {
			e.discardTooLarge(pr, k, st, id, part)
			return false
		}
		return hold(n) // the message itself: no copy unless borrowed
	}
	if n == 0 {
		e.stats.Malformed++ // the sender fills every segment of a split message
		return false
	}
	if part.buf == nil {
		if p.Seq == lastSeq {
			// The last came first: its length says nothing of the
			// others'. Keep a copy until one of them comes.
			if int(lastSeq)+n > maxLen {
				e.discardTooLarge(pr, k, st, id, part)
				return false
			}
			return hold(n)
		}
		if int(lastSeq)*n >= maxLen { // the last adds at least one byte
			e.discardTooLarge(pr, k, st, id, part)
			return false
		}
		size := n * int(part.count)
		if !e.admit(pr, st, id, size) {
			return false
		}
		part.buf, part.segLen = e.bufs.get(size), n
		part.size += size
		pr.mem += size
		if l := part.segs[lastSeq]; l != nil { // move the early last segment in
			part.segs[lastSeq] = nil
			part.size -= len(l)
			pr.mem -= len(l)
			if len(l) > n || int(lastSeq)*n+len(l) > maxLen {
				part.have--
				e.stats.Malformed++ // longer than the others: asked for again
			} else {
				off := int(lastSeq) * n
				part.segs[lastSeq] = part.buf[off : off+len(l) : off+len(l)]
				copy(part.segs[lastSeq], l)
			}
		}
	}
	if (p.Seq == lastSeq && n > part.segLen) || (p.Seq != lastSeq && n != part.segLen) {
		e.stats.Malformed++
		return false
	}
	if p.Seq == lastSeq && int(lastSeq)*part.segLen+n > maxLen {
		e.discardTooLarge(pr, k, st, id, part)
		return false
	}
	off := int(p.Seq) * part.segLen
	part.segs[p.Seq] = part.buf[off : off+n : off+n]
	copy(part.segs[p.Seq], p.Payload)
	return true
}

// discardTooLarge drops a message over MaxMessage for good.
func (e *Endpoint) discardTooLarge(pr *peer, k streamKey, st *inStream, id uint64, part *partial) {
	e.stats.TooLarge++
	pr.mem -= part.size
	delete(st.parts, id)
	st.aborted[id] = true // never deliverable: skip it in order
	e.deliverStream(pr, k, st)
}

// onSegment files one segment; borrowed: p's bytes belong to the
// transport and are copied if kept.
func (e *Endpoint) onSegment(pr *peer, p *wire.Packet, now time.Time, borrowed bool) {
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
		e.onDuplicate(pr, k, st, p, now)
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
		part = &partial{kind: p.Type, count: p.Count, progress: now, size: table}
		if p.Count == 1 {
			part.segs = part.one[:]
		} else {
			part.segs = make([][]byte, p.Count)
		}
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
	if !e.storeSegment(pr, k, st, id, part, p, borrowed) {
		return
	}
	part.have++
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
	}
}

// onDuplicate answers a segment of a message already delivered: its
// sender has not seen our acknowledgement (or re-sent for someone else).
//
// A request we answered is acknowledged by the answer: if that is still
// unacknowledged, the manager re-asking means it most likely lost it, so
// the answer goes again at once (no ACK: that would not give the manager
// what it lacks); if it was acknowledged, the re-send is for other
// members and needs nothing from us. So a request re-sent to a farm costs
// one datagram per member that actually lacks something, not an ACK from
// every member.
//
// Otherwise the stream is re-acknowledged: at once by an engine (its ACK
// goes to the managers only), within AckDelay by a manager, whose vector
// goes to every member: engines' spurious re-sends of answers must not
// each cost the farm a vector. Answers to this manager's own requests
// still collecting are acknowledged when the request completes (or its
// timer fires), see deliverStream.
func (e *Endpoint) onDuplicate(pr *peer, k streamKey, st *inStream, p *wire.Packet, now time.Time) {
	if p.Type == wire.TypeRequest && st.replied != 0 && p.MsgID <= st.replied {
		e.resendAnswers(pr, k, p.MsgID, now)
		return
	}
	st.force = true
	switch {
	case e.cfg.Role == Engine:
		e.ackSoon(now)
	case p.Type == wire.TypeResponse && e.collecting(pr.id):
		// held until the request completes
	default:
		e.ackSoon(now.Add(e.cfg.AckDelay))
	}
}

// resendAnswers re-sends the last segment of our unacknowledged answers
// to requests id and later on pr's stream k (the last segment tells the
// manager how many to NAK if there are more).
func (e *Endpoint) resendAnswers(pr *peer, k streamKey, id uint64, now time.Time) {
	os := e.out[streamKey{k.ch, true}]
	if os == nil {
		return
	}
	for _, m := range os.msgs {
		r := m.answers
		if m.kind != wire.TypeResponse || m.finished || m.aborting || r == nil ||
			NodeID(r.Node) != pr.id || r.Incarnation != pr.inc || r.Up != k.up || r.MsgID < id {
			continue
		}
		last := len(m.segs) - 1
		if now.Sub(m.lastSent[last]) < e.cfg.MinRTO/2 {
			continue // one re-send per round, however many copies of the request
		}
		if !e.takeTokens(len(m.segs[last])+wire.Overhead, now) {
			e.stats.RepairsThrottled++
			return
		}
		e.sendSeg(m, os, last, now)
		m.retx = true
		e.stats.Retransmits++
	}
}

// collecting reports whether this endpoint has a request in flight that
// engine id is still expected to answer.
func (e *Endpoint) collecting(id NodeID) bool {
	for _, os := range e.out {
		for _, m := range os.msgs {
			if m.kind == wire.TypeRequest && !m.finished && !m.answeredDone {
				if mb := m.members[id]; mb != nil && mb.target {
					return true
				}
			}
		}
	}
	return false
}

// deliverStream hands complete messages over in order.
func (e *Endpoint) deliverStream(pr *peer, k streamKey, st *inStream) {
	delivered, request, held, answers := false, false, true, true
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
		own := false
		if msg != nil {
			ok := false
			if ok, own = e.dispatch(msg); !ok {
				e.backlog = true
				break
			}
			e.stats.Received++
		}
		held = held && own
		pr.mem -= part.size
		delete(st.parts, st.next)
		st.next++
		delivered = true
		request = request || part.kind == wire.TypeRequest
		answers = answers && part.kind == wire.TypeResponse
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
		//
		// Answers to this manager's own request are held while the
		// request collects: its completion (or timer) sends one vector
		// for all of them (release, tickSend). A vector per AckDelay
		// during a fan-in of hundreds would wake every engine each time.
		//
		// Other engines' answers (a backup manager overhears every
		// fan-in) wait AnswerAckDelay: their requester has them.
		switch {
		case held && e.cfg.Role == Manager:
		case answers && e.cfg.Role == Manager && pr.role == Engine:
			e.ackSoon(time.Now().Add(e.cfg.AnswerAckDelay))
		case request || e.cfg.Role == Manager:
			e.ackSoon(time.Now().Add(e.cfg.AckDelay))
		default:
			// An engine's ACK goes to the managers only: one per
			// batch of datagrams, sent by unlockAndFlush.
			e.ackNow = true
		}
	}
}

func (e *Endpoint) assemble(pr *peer, k streamKey, id uint64, part *partial) *Message {
	buf := part.segs[0] // one segment: the message itself
	if part.count > 1 {
		n := int(part.count-1)*part.segLen + len(part.segs[part.count-1])
		buf = part.buf[:n:n] // filled in place (storeSegment)
	}
	m := &Message{From: pr.id, Incarnation: pr.inc, Channel: k.ch, Dest: k.dest(), ID: id, Payload: buf}
	if part.count > 1 {
		m.pool, m.whole = &e.bufs, part.buf
	}
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
// to their transfer, everything else to its channel's handler or inbox,
// or else to Receive (with DropUnclaimed: nowhere). ok false: the queue is
// full; own: the message answered a request of ours still in flight.
func (e *Endpoint) dispatch(m *Message) (ok, own bool) {
	if m.Kind == KindResponse && m.Requester == e.self && m.RequesterInc == e.inc {
		if e.onResponse(m) {
			return true, true
		}
		e.stats.LateReplies++
	}
	if h := e.handlers[m.Channel]; h != nil {
		e.handled = append(e.handled, handled{m, h})
		return true, false
	}
	q := e.deliverQ
	if cq := e.chanQ[m.Channel]; cq != nil {
		q = cq
	} else if e.cfg.DropUnclaimed {
		e.stats.Unclaimed++
		m.Release()
		return true, false
	}
	select {
	case q <- m:
		return true, false
	default:
		return false, false
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
