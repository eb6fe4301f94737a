package rmtp

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// nullTransport drops what is sent and receives nothing until closed
// (memnet imports this package, so internal tests cannot use it).
type nullTransport struct{ closed chan struct{} }

func (n nullTransport) Send(Dest, []byte) error             { return nil }
func (n nullTransport) SendTo(netip.AddrPort, []byte) error { return nil }
func (n nullTransport) Recv() (Datagram, error)             { <-n.closed; return Datagram{}, ErrClosed }
func (n nullTransport) MaxDatagram() int                    { return 1472 }
func (n nullTransport) LocalAddr() netip.AddrPort           { return netip.AddrPort{} }
func (n nullTransport) Close() error                        { close(n.closed); return nil }

// TestRTOFanIn checks the retransmission timer's rule (doc.go,
// "Retransmission timer") on synthetic state: MinRTO for a plain message
// on a fast LAN, 2×RTT on a slower one, and the fan-in allowance of
// (pending - 1) × spacing for a request still waiting for many answers.
func TestRTOFanIn(t *testing.T) {
	e := &Endpoint{cfg: Config{MinRTO: 2 * time.Millisecond, MaxRTO: 200 * time.Millisecond}, peers: map[NodeID]*peer{}}
	msg := func(n int, done int) *outMsg {
		m := &outMsg{members: map[NodeID]*member{}}
		for i := range n {
			id := NodeID(100 + i)
			e.peers[id] = &peer{id: id, srtt: 300 * time.Microsecond, rttvar: 50 * time.Microsecond}
			m.members[id] = &member{id: id, target: true, responded: i < done}
		}
		return m
	}
	if got := e.rto(msg(1, 0)); got != 2*time.Millisecond {
		t.Errorf("plain message, 300 µs RTT: %v, want MinRTO", got)
	}
	m := msg(1, 0)
	e.peers[100].srtt = 3 * time.Millisecond
	if got := e.rto(m); got != 6*time.Millisecond {
		t.Errorf("plain message, 3 ms RTT: %v, want 2×RTT", got)
	}
	e.spacing = 40 * time.Microsecond
	m = msg(256, 0)
	if got, want := e.rto(m), 2*time.Millisecond+255*40*time.Microsecond; got != want {
		t.Errorf("request to 256, none answered: %v, want %v", got, want)
	}
	m = msg(256, 250)
	if got, want := e.rto(m), 2*time.Millisecond+5*40*time.Microsecond; got != want {
		t.Errorf("request to 256, 6 missing: %v, want %v", got, want)
	}
	m.rtoTry = 2
	if got, want := e.rto(m), 4*(2*time.Millisecond+5*40*time.Microsecond); got != want {
		t.Errorf("third try: %v, want %v", got, want)
	}
	m.rtoTry = 0
	e.spacing = maxSpacing
	if got := e.rto(msg(1024, 0)); got != e.cfg.MaxRTO {
		t.Errorf("huge fan-in: %v, want MaxRTO", got)
	}

	// An engine's answer: the managers' vector comes up to AckDelay
	// late, and (held until the request completes) as late as answers
	// were acknowledged lately.
	e.spacing, e.cfg.AckDelay = 0, 2*time.Millisecond
	ans := &outMsg{kind: wire.TypeResponse, members: map[NodeID]*member{1: {id: 1}}}
	e.peers[1] = &peer{id: 1, role: Manager, srtt: 300 * time.Microsecond}
	if got, want := e.rto(ans), 2*time.Millisecond+e.cfg.AckDelay; got != want {
		t.Errorf("answer to a manager: %v, want MinRTO + AckDelay = %v", got, want)
	}
	e.answerWait = 7 * time.Millisecond
	if got, want := e.rto(ans), 14*time.Millisecond; got != want {
		t.Errorf("answer after 7 ms acknowledgements: %v, want 2 × 7 ms", got)
	}
}

// TestSpacingSample: the estimate comes from answers before any re-send,
// needs minFanInSample of them, and one straggler cannot blow it up.
func TestSpacingSample(t *testing.T) {
	e := &Endpoint{}
	t0 := time.Unix(1000, 0)
	m := &outMsg{}
	for i := range 3 {
		m.memberProgress(t0.Add(time.Duration(i) * 100 * time.Microsecond))
	}
	e.sampleSpacing(m)
	if e.spacing != 0 {
		t.Fatalf("3 answers gave a sample: %v", e.spacing)
	}
	m.memberProgress(t0.Add(300 * time.Microsecond))
	e.sampleSpacing(m)
	if e.spacing != 100*time.Microsecond {
		t.Fatalf("4 answers 100 µs apart: %v", e.spacing)
	}
	m.retx = true
	m.memberProgress(t0.Add(time.Second)) // recovered by a re-send: not fan-in
	if m.cleanN != 4 || !m.lastDone.Equal(t0.Add(time.Second)) {
		t.Fatalf("after re-send: clean %d, last %v", m.cleanN, m.lastDone)
	}
	s := &outMsg{}
	s.memberProgress(t0)
	s.memberProgress(t0)
	s.memberProgress(t0)
	s.memberProgress(t0.Add(time.Hour))
	e.sampleSpacing(s)
	if want := (7*100*time.Microsecond + maxSpacing) / 8; e.spacing != want {
		t.Fatalf("straggler: %v, want %v", e.spacing, want)
	}
}

// TestTimerWaitsForFanIn: a timer that expires while answers are still
// arriving is pushed to quiet after the latest one, without a re-send or
// a backoff step; once they stop, it re-sends.
func TestTimerWaitsForFanIn(t *testing.T) {
	e, err := New(nullTransport{make(chan struct{})}, Config{Node: 1, Role: Manager, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.mu.Lock()
	defer e.unlockAndFlush()
	t0 := time.Now().Add(time.Hour) // the timer loop's own ticks see nothing due
	k := streamKey{ch: 9}
	os := &outStream{next: 2, msgs: map[uint64]*outMsg{}}
	e.out[k] = os
	m := &outMsg{key: k, id: 1, kind: wire.TypeRequest, segs: [][]byte{[]byte("get")}, lastSent: make([]time.Time, 1),
		firstSent: t0, members: map[NodeID]*member{}, done: make(chan struct{}), undone: 4, unanswered: 4}
	for i := range 4 {
		id := NodeID(100 + i)
		m.members[id] = &member{id: id, target: true}
	}
	os.msgs[1] = m
	m.rtoAt = t0.Add(2 * time.Millisecond)
	m.update(m.members[100], func() { m.members[100].responded = true })
	m.memberProgress(t0.Add(1900 * time.Microsecond))
	retx := e.stats.Retransmits

	e.tickSend(t0.Add(2 * time.Millisecond))
	if e.stats.Retransmits != retx || m.rtoTry != 0 {
		t.Fatalf("re-sent while answers were arriving (try %d)", m.rtoTry)
	}
	if want := t0.Add(1900 * time.Microsecond).Add(e.quiet()); !m.rtoAt.Equal(want) {
		t.Fatalf("timer at %v, want %v", m.rtoAt.Sub(t0), want.Sub(t0))
	}
	e.tickSend(m.rtoAt)
	if e.stats.Retransmits != retx+1 || m.rtoTry != 1 {
		t.Fatalf("no re-send after the fan-in went quiet: retransmits %d, try %d", e.stats.Retransmits-retx, m.rtoTry)
	}
	delete(os.msgs, 1)
}

// TestDoneCounters: the counts checkDone relies on (members not done,
// targets not answered) match a recount after any sequence of the
// changes that make a member done, repeated or in any order.
func TestDoneCounters(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		m := &outMsg{members: map[NodeID]*member{}}
		n := 1 + rng.IntN(20)
		for i := range n {
			mb := &member{id: NodeID(i + 1), target: rng.IntN(2) == 0, down: rng.IntN(8) == 0}
			m.members[mb.id] = mb
			if !m.memberDone(mb) {
				m.undone++
				if mb.target {
					m.unanswered++
				}
			}
		}
		for range 3 * n {
			mb := m.members[NodeID(1+rng.IntN(n))]
			switch rng.IntN(3) {
			case 0:
				m.update(mb, func() { mb.acked = true })
			case 1:
				m.update(mb, func() { mb.responded, mb.acked = true, true })
			case 2:
				m.update(mb, func() { mb.down = true })
			}
			undone, unanswered := 0, 0
			for _, mb := range m.members {
				if !m.memberDone(mb) {
					undone++
					if mb.target {
						unanswered++
					}
				}
			}
			if undone != m.undone || unanswered != m.unanswered {
				t.Fatalf("counted %d undone, %d unanswered; recount %d, %d", m.undone, m.unanswered, undone, unanswered)
			}
		}
	}
}
