package rmtp

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Kind is what a delivered message is.
type Kind uint8

// Message kinds.
const (
	KindData     Kind = 1 // one-way (Send)
	KindRequest  Kind = 2 // answer it with Reply
	KindResponse Kind = 3 // a response to someone's request (seen by managers)
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	}
	return "Kind(?)"
}

// Message is one delivered message.
type Message struct {
	From        NodeID
	Incarnation uint64
	Channel     uint8
	Dest        Dest
	ID          uint64 // per (From, Incarnation, Channel, Dest), from 1, no gaps except skipped or aborted ones
	Kind        Kind
	Payload     []byte

	// KindResponse: the request answered.
	Requester        NodeID
	RequesterInc     uint64
	RequestID        uint64
	RequestDirection Dest

	pool  *bufPool // where Release returns whole; nil: nothing to return
	whole []byte   // the reassembly buffer Payload is a view of
}

// Errors.
var (
	ErrIncomplete = errors.New("rmtp: not every member acknowledged by the deadline")
	ErrTooLarge   = errors.New("rmtp: message over the configured maximum")
	ErrNotRequest = errors.New("rmtp: not a request")
	ErrFinished   = errors.New("rmtp: transfer already finished")
	ErrDirection  = errors.New("rmtp: engines send up only")
)

// Endpoint is one member's rmtp session: it sends and receives reliable
// messages, runs the membership view and the abort protocol, and keeps the
// counters. One mutex guards the state; two goroutines run it (the receive
// loop and the timer loop), both stopped by Close.
type Endpoint struct {
	cfg    Config
	tr     Transport
	log    logrus.FieldLogger
	keys   *Keyring
	self   NodeID
	inc    uint64
	segMax int

	mu          sync.Mutex
	closed      bool
	rng         *rand.Rand
	peers       map[NodeID]*peer
	out         map[streamKey]*outStream
	ctrlSeq     uint64
	txq         []txItem
	notes       []note // responses for StartRequestEach callbacks (handleBatch)
	handlers    map[uint8]*Handler
	handled     []handled // messages for handlers, in delivery order (handler.go)
	handling    bool      // a goroutine drains handled
	outBytes    int       // payload bytes of every message in out
	view        viewState
	active      bool
	ackAt       time.Time
	helloAt     time.Time
	earlyHello  time.Time // last HELLO sent early for a newcomer
	liveAt      time.Time
	viewAt      time.Time
	tokens      float64
	tokensAt    time.Time
	backlog     bool
	smAborts    map[abortKey]*smAbort
	spacing     time.Duration // fan-in: smoothed time between two answers to one transfer
	answerWait  time.Duration // smoothed time from sending an answer to its acknowledgement
	nakDue      time.Time     // earliest NAK timer set since the last scan; zero: none
	wakeAt      time.Time     // when the timer loop runs next; zero: it is about to
	ackNow      bool          // send the ACK vector in this flush (an engine delivered something)
	ackSent     time.Time     // when the last ACK went out
	retime      bool          // recompute the timer loop's deadline in this flush
	stats       counters
	sendFailing atomic.Bool // a streak of send errors was logged
	bufs        bufPool     // reassembly buffers given back by Message.Release

	deliverQ chan *Message
	// chanQ: channels with an inbox of their own (Channel); the rest go
	// to deliverQ. Guarded by mu.
	chanQ  map[uint8]chan *Message
	events chan Event
	kick   chan struct{}
	timer  *time.Timer // the timer loop's; reset only under mu
	done   chan struct{}
	wg     sync.WaitGroup
}

type streamKey struct {
	ch uint8
	up bool
}

func (k streamKey) dest() Dest {
	if k.up {
		return Up
	}
	return Down
}

// batchSender is implemented by transports that can send a burst in few
// system calls (UDP's sendmmsg).
type batchSender interface {
	SendBatch(to Dest, bs [][]byte) error
}

type txItem struct {
	dest Dest
	b    []byte
}

// New starts an endpoint on a transport. The endpoint owns the transport
// from now on and closes it in Close.
func New(tr Transport, cfg Config) (*Endpoint, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	mtu := tr.MaxDatagram()
	if cfg.MTU > 0 && cfg.MTU < mtu {
		mtu = cfg.MTU
	}
	seg := min(mtu, wire.MaxDatagram) - wire.Overhead
	if seg < minSegment {
		return nil, fmt.Errorf("%w: datagram size %d leaves %d bytes per segment", ErrConfig, mtu, seg)
	}
	if (cfg.MaxMessage+seg-1)/seg > wire.MaxSegments {
		return nil, fmt.Errorf("%w: max message %d needs more than %d segments of %d", ErrConfig, cfg.MaxMessage, wire.MaxSegments, seg)
	}
	now := time.Now()
	e := &Endpoint{
		cfg: cfg, tr: tr, keys: cfg.Keys, self: cfg.Node, inc: cfg.Incarnation, segMax: seg,
		log:      cfg.Logger.WithFields(logrus.Fields{"node": cfg.Node, "role": cfg.Role.String()}),
		rng:      rand.New(rand.NewPCG(uint64(cfg.Node), cfg.Incarnation)),
		peers:    make(map[NodeID]*peer),
		out:      make(map[streamKey]*outStream),
		smAborts: make(map[abortKey]*smAbort),
		helloAt:  now,
		tokens:   float64(cfg.RepairRate) / 10,
		tokensAt: now,
		deliverQ: make(chan *Message, cfg.DeliveryQueue),
		events:   make(chan Event, eventQueue),
		kick:     make(chan struct{}, 1),
		timer:    time.NewTimer(time.Hour),
		done:     make(chan struct{}),
	}
	if sf, ok := tr.(senderFilter); ok {
		if err := sf.IgnoreSender(e.self, e.inc); err != nil {
			// Only a cost: handle drops our own datagrams anyway.
			e.log.WithError(err).Warn("rmtp: cannot filter our own multicast loopback in the kernel")
		}
	}
	e.log.WithFields(logrus.Fields{"incarnation": e.inc, "segment": seg, "insecure": e.keys == nil}).Info("rmtp: endpoint up")
	e.wg.Add(2)
	go e.recvLoop()
	go e.timerLoop()
	return e, nil
}

// Node returns this endpoint's node id.
func (e *Endpoint) Node() NodeID { return e.self }

// Incarnation returns this endpoint's incarnation.
func (e *Endpoint) Incarnation() uint64 { return e.inc }

// Close leaves the group gracefully (a HELLO with LEAVE, so the others drop
// this member at once instead of waiting for it to go down), stops the
// goroutines, fails pending transfers and closes the transport.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for range 2 { // a lost LEAVE only delays the others until "down"
		e.queueHello(true)
	}
	for _, os := range e.out {
		for _, m := range os.msgs {
			m.finish()
		}
		clear(os.msgs)
	}
	e.unlockAndFlush()
	close(e.done)
	err := e.tr.Close()
	e.wg.Wait()
	e.log.Info("rmtp: endpoint closed")
	return err
}

// queue signs a datagram for later sending by unlockAndFlush. Caller holds mu.
func (e *Endpoint) queue(dest Dest, h wire.Header, body []byte) {
	e.queueIn(nil, dest, h, body)
}

// queueIn is queue building the datagram in buf (appended to buf[:0] when
// it has the room) and returns it; nil if it could not be encoded.
func (e *Endpoint) queueIn(buf []byte, dest Dest, h wire.Header, body []byte) []byte {
	h.Node = uint32(e.self)
	h.Incarnation = e.inc
	if !h.Type.IsSegment() {
		e.ctrlSeq++
		h.MsgID = e.ctrlSeq
	}
	if cap(buf) < wire.Overhead+len(body) {
		buf = make([]byte, 0, wire.Overhead+len(body))
	}
	b, err := wire.AppendPacket(buf[:0], h, body)
	if err != nil {
		e.log.WithError(err).Error("rmtp: encoding a datagram")
		return nil
	}
	e.keys.Sign(b)
	e.txq = append(e.txq, txItem{dest, b})
	return b
}

// unlockAndFlush releases mu and sends what was queued under it, so no
// system call runs under the lock.
func (e *Endpoint) unlockAndFlush() {
	if e.ackNow {
		e.flushAcks()
	}
	if e.retime && !e.closed {
		// A deadline the timer loop waits for went away: run what is
		// due here and set the timer to the next real deadline.
		e.retime = false
		now := time.Now()
		next := e.tick(now)
		e.wakeAt = next
		e.timer.Reset(max(next.Sub(now), 50*time.Microsecond))
	}
	// Delivered off the receive goroutine (which took its own above):
	// a goroutine of their own, since this caller may be anyone.
	e.spawnDrainer()
	q := e.txq
	e.txq = nil
	e.stats.DatagramsSent += uint64(len(q))
	e.mu.Unlock()
	failed := 0
	var first error
	fail := func(n int, err error) {
		if err != nil && !errors.Is(err, ErrClosed) {
			failed += n
			first = cmp.Or(first, err)
		}
	}
	bs, batching := e.tr.(batchSender)
	for i := 0; i < len(q); {
		j := i + 1
		for batching && j < len(q) && q[j].dest == q[i].dest {
			j++
		}
		if j-i == 1 {
			fail(1, e.tr.Send(q[i].dest, q[i].b))
		} else {
			run := make([][]byte, 0, j-i)
			for _, it := range q[i:j] {
				run = append(run, it.b)
			}
			fail(j-i, bs.SendBatch(q[i].dest, run))
		}
		i = j
	}
	// Counted, not logged per datagram: one line when sending starts
	// failing, one when it works again.
	switch {
	case failed > 0:
		e.mu.Lock()
		e.stats.SendErrors += uint64(failed)
		e.mu.Unlock()
		if !e.sendFailing.Swap(true) {
			e.log.WithError(first).Warn("rmtp: sending failed")
		}
	case len(q) > 0 && e.sendFailing.Load():
		if e.sendFailing.Swap(false) {
			e.log.Info("rmtp: sending works again")
		}
	}
}

// wake makes sure the timer loop runs by t. It moves the loop's timer
// forward when t is before the planned wake-up and otherwise does
// nothing, so arming a timer (per received segment, per request, per
// answer) costs no goroutine switch now, only the wake-up at t. Caller
// holds mu.
func (e *Endpoint) wake(t time.Time) {
	if t.Before(e.wakeAt) {
		e.wakeAt = t
		e.timer.Reset(max(time.Until(t), 50*time.Microsecond))
	}
}

// poke wakes the timer loop to recompute its deadline.
func (e *Endpoint) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// batchReceiver is implemented by transports that hand over every
// datagram already waiting in one call (UDP's recvmmsg), so that the
// endpoint takes its lock and flushes its sends once per batch instead of
// once per datagram. Wrappers of a Transport may forward it.
type batchReceiver interface {
	RecvBatch(ds []Datagram) (int, error)
}

// senderFilter is implemented by transports that can drop this endpoint's
// own multicast loopback before it is read (UDP's socket filter).
// Wrappers of a Transport may forward it.
type senderFilter interface {
	IgnoreSender(node NodeID, incarnation uint64) error
}

// borrowingReceiver is RecvBatch whose datagrams stay the transport's:
// their bytes are valid until its next read, and the endpoint copies what
// it keeps (segments into their message), which spares copying every
// datagram out of the receive buffers first. Only UDP's own sockets
// implement it.
type borrowingReceiver interface {
	recvBorrowed(ds []Datagram) (int, error)
}

// recvBatchLen is the most datagrams the endpoint handles under one lock.
const recvBatchLen = batchLen

func (e *Endpoint) recvLoop() {
	defer e.wg.Done()
	rc := e.newDrainer(true)
	ds := make([]Datagram, recvBatchLen)
	var os []opened
	var hs []handled
	if br, ok := e.tr.(borrowingReceiver); ok {
		for {
			n, err := br.recvBorrowed(ds)
			if err != nil {
				return
			}
			os, hs = e.handleBatch(ds[:n], os, true)
			clear(ds[:n])
			if hs != nil && !rc.drain(hs) {
				return
			}
		}
	}
	if br, ok := e.tr.(batchReceiver); ok {
		for {
			n, err := br.RecvBatch(ds)
			if err != nil {
				return
			}
			os, hs = e.handleBatch(ds[:n], os, false)
			clear(ds[:n])
			if hs != nil && !rc.drain(hs) {
				return
			}
		}
	}
	for {
		d, err := e.tr.Recv()
		if err != nil {
			return
		}
		if hs := e.handle(d); hs != nil && !rc.drain(hs) {
			return
		}
	}
}

func (e *Endpoint) timerLoop() {
	defer e.wg.Done()
	defer e.timer.Stop()
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return
		}
		now := time.Now()
		next := e.tick(now)
		e.wakeAt = next
		// Reset under mu, as wake does: the timer always holds the
		// earliest deadline anyone asked for.
		e.timer.Reset(max(next.Sub(now), 50*time.Microsecond))
		e.unlockAndFlush()
		select {
		case <-e.timer.C:
		case <-e.kick:
		case <-e.done:
			return
		}
	}
}

// tick runs everything that is due and returns when it next has work.
// Caller holds mu.
func (e *Endpoint) tick(now time.Time) time.Time {
	next := now.Add(time.Second)
	upd := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	upd(e.tickMembership(now))
	upd(e.tickReceive(now))
	upd(e.tickSend(now))
	upd(e.tickAborts(now))
	if !e.ackAt.IsZero() {
		if !now.Before(e.ackAt) {
			e.flushAcks()
		} else {
			upd(e.ackAt)
		}
	}
	if e.backlog {
		e.deliverAll()
		if e.backlog {
			upd(now.Add(time.Millisecond))
		}
	}
	return next
}

// opened is a received datagram after authentication, before the
// protocol has looked at it.
type opened struct {
	d        Datagram
	p        wire.Packet
	err      error
	borrowed bool // d.Data is the transport's until its next read
}

// open checks a datagram's tag; false: it is our own multicast loopback,
// not worth an HMAC. It needs no lock: the keyring is immutable.
func (e *Endpoint) open(d Datagram) (opened, bool) {
	if len(d.Data) >= wire.HeaderLen && binary.BigEndian.Uint32(d.Data[8:]) == uint32(e.self) &&
		binary.BigEndian.Uint64(d.Data[12:]) == e.inc {
		return opened{}, false
	}
	p, err := e.keys.Open(d.Data)
	return opened{d: d, p: p, err: err}, true
}

// handle authenticates and dispatches one datagram.
func (e *Endpoint) handle(d Datagram) []handled {
	o, ok := e.open(d)
	if !ok {
		return nil
	}
	e.mu.Lock()
	if !e.closed {
		e.handleOpened(&o)
	}
	return e.unlockAndNotify()
}

// handleBatch is handle for what one read returned: the tags are checked
// outside the lock, then the protocol takes the lock once for the batch
// and sends what it queued (ACKs, NAKs, repairs) in one flush.
func (e *Endpoint) handleBatch(ds []Datagram, os []opened, borrowed bool) ([]opened, []handled) {
	os = os[:0]
	for _, d := range ds {
		if o, ok := e.open(d); ok {
			o.borrowed = borrowed
			os = append(os, o)
		}
	}
	if len(os) == 0 {
		return os, nil
	}
	e.mu.Lock()
	for i := range os {
		if e.closed {
			break
		}
		e.handleOpened(&os[i])
	}
	clear(os) // drop the datagrams' memory with the batch
	return os, e.unlockAndNotify()
}

// unlockAndNotify is unlockAndFlush for the receive loop, which then
// hands queued responses to their StartRequestEach callbacks, with no
// lock held, and returns the messages for handlers if it is to drain
// them (drainer.drain).
func (e *Endpoint) unlockAndNotify() []handled {
	notes := e.notes
	e.notes = nil // not reused: another goroutine may append under mu
	var hs []handled
	if len(e.handled) > 0 && !e.handling {
		hs, e.handled, e.handling = e.handled, nil, true
	}
	e.unlockAndFlush()
	for _, n := range notes {
		n.fn(n.r)
	}
	return hs
}

// note is a response for StartRequestEach's callback, queued under mu
// and handed over by the receive loop once mu is released.
type note struct {
	fn func(Response)
	r  Response
}

// handleOpened runs the protocol on one authenticated datagram. Caller
// holds mu.
func (e *Endpoint) handleOpened(o *opened) {
	d, p, err := o.d, o.p, o.err
	e.stats.DatagramsReceived++
	if err != nil {
		if errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrNoKey) {
			e.stats.AuthFailures++
		} else {
			e.stats.Malformed++
		}
		return
	}
	if NodeID(p.Node) == e.self {
		if p.Incarnation != e.inc {
			e.stats.ForeignSelf++ // another process claims our node id
		}
		return // our own multicast loopback
	}
	now := time.Now()
	pr := e.peerFor(NodeID(p.Node), p.Incarnation, d.From, now)
	if pr == nil {
		e.stats.Stale++
		return
	}
	if !p.Type.IsSegment() && !pr.ctrl.accept(p.MsgID) {
		e.stats.Replays++
		return
	}
	var hello wire.Hello
	if p.Type == wire.TypeHello {
		if hello, err = wire.ParseHello(p.Payload); err != nil {
			e.stats.Malformed++
			return
		}
		// The replay window starts empty when this endpoint starts, so
		// freshness comes from the sender's clock: an old HELLO replayed
		// to a restarted member must not set its stream positions.
		if skew := now.Sub(time.Unix(0, hello.Time)).Abs(); skew > e.cfg.MaxClockSkew {
			e.stats.Replays++
			return
		}
	}
	if pr.heard(now) {
		e.log.WithField("peer", pr.id).Info("rmtp: peer back")
		e.armNak(now) // its streams' NAK timers were not scanned while it was down
		e.emit(PeerRecovered, pr, now)
		if e.active {
			e.viewAt = now
		}
	}
	switch p.Type {
	case wire.TypeData, wire.TypeRequest, wire.TypeResponse:
		e.onSegment(pr, &p, now, o.borrowed)
	case wire.TypeAck:
		if err := wire.ScanAck(p.Payload, uint32(e.self), func(en wire.AckEntry) { e.onAckEntry(pr, en, now) }); err == nil {
			e.stats.AcksReceived++
		} else {
			e.stats.Malformed++
		}
	case wire.TypeNak:
		if n, err := wire.ParseNak(p.Payload); err == nil {
			e.onNak(pr, &n, now)
		} else {
			e.stats.Malformed++
		}
	case wire.TypeAbort:
		if a, err := wire.ParseAbort(p.Payload); err == nil {
			e.onAbort(pr, &p.Header, a.MsgID, now)
		} else {
			e.stats.Malformed++
		}
	case wire.TypeAbortAck:
		if a, err := wire.ParseAbortAck(p.Payload); err == nil {
			e.onAbortAck(pr, &a, now)
		} else {
			e.stats.Malformed++
		}
	case wire.TypeHello:
		e.onHello(pr, &hello, p.Flags&wire.FlagLeave != 0, now)
	case wire.TypeView:
		if v, err := wire.ParseView(p.Payload); err == nil {
			e.onView(pr, &v, now)
		} else {
			e.stats.Malformed++
		}
	}
}

// peerFor finds or creates the peer, handling incarnations: a higher one
// is a restart (the old state goes), a lower one is stale (nil).
func (e *Endpoint) peerFor(id NodeID, inc uint64, from netip.AddrPort, now time.Time) *peer {
	pr := e.peers[id]
	switch {
	case pr == nil:
		pr = newPeer(id, inc, now)
		e.peers[id] = pr
	case inc < pr.inc:
		return nil
	case inc > pr.inc:
		e.log.WithFields(logrus.Fields{"peer": id, "old": pr.inc, "new": inc}).Info("rmtp: peer restarted")
		pr.dropStreams()
		e.peerGone(pr, now)
		np := newPeer(id, inc, now)
		np.role, np.priority, np.level = pr.role, pr.priority, pr.level
		pr = np
		e.peers[id] = pr
		e.emit(PeerRestarted, pr, now)
	}
	if from.IsValid() {
		pr.from = from
	}
	return pr
}
