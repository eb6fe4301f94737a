package rmtp

import (
	"net/netip"
	"time"
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

func (pr *peer) stream(k streamKey) *inStream {
	st := pr.streams[k]
	if st == nil {
		st = &inStream{parts: make(map[uint64]*partial), aborted: make(map[uint64]bool)}
		pr.streams[k] = st
	}
	return st
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
