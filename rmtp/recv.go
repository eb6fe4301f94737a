package rmtp

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

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

// receiverOf reports whether this endpoint is a destination of a stream in
// direction up (only managers receive upward traffic).
func (e *Endpoint) receiverOf(up bool) bool { return !up || e.cfg.Role == Manager }

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
