package replica

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/internal/leaktest"
	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}

// source exports a fixed body and records what it adopts.
type source struct {
	mu      sync.Mutex
	body    wire.State
	adopted []*wire.State
	got     chan struct{}
}

func newSource(body wire.State) *source { return &source{body: body, got: make(chan struct{}, 64)} }

func (s *source) Export(st *wire.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Sums, st.Reconciles, st.Journal, st.Discontinuity = s.body.Sums, s.body.Reconciles, s.body.Journal, s.body.Discontinuity
}

func (s *source) Adopt(st *wire.State) {
	s.mu.Lock()
	s.adopted = append(s.adopted, st)
	s.mu.Unlock()
	select {
	case s.got <- struct{}{}:
	default:
	}
}

func (s *source) last() *wire.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.adopted) == 0 {
		return nil
	}
	return s.adopted[len(s.adopted)-1]
}

func (s *source) wait(t *testing.T, what string) *wire.State {
	t.Helper()
	select {
	case <-s.got:
		return s.last()
	case <-time.After(10 * time.Second):
		t.Fatalf("no state adopted after 10 s: %s", what)
		return nil
	}
}

func memManager(t *testing.T, net *memnet.Network, id rmtp.NodeID) *rmtp.Endpoint {
	t.Helper()
	ep, err := rmtp.New(net.Attach(true, memnet.Faults{}, uint64(id)), rmtp.Config{Node: id, Role: rmtp.Manager, Insecure: true,
		HelloInterval: 20 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

var body = wire.State{Discontinuity: 77,
	Sums: []wire.Sum{{OID: smi.OID{1, 3, 6}, Engines: []wire.Count{{Engine: 1, Incarnation: 2, Last: 300, Offset: 4_000_000}}}}}

// TestReplicateOverRMTP: the active manager's state reaches the backup
// on a change at once and, with nothing changing, every Interval; the
// backup sends nothing.
func TestReplicateOverRMTP(t *testing.T) {
	leaktest.Check(t, "smsnmpd/")
	net := memnet.New(1472)
	a, b := memManager(t, net, 1000), memManager(t, net, 1001)
	if err := a.Activate(3); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) until the backup follows the view.
	deadline := time.Now().Add(10 * time.Second)
	for b.View().Owner != 1000 || len(a.View().Members) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the backup does not follow the active manager's view")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srcA, srcB := newSource(body), newSource(wire.State{})
	dirty := make(chan struct{}, 1)
	ra, err := New(a, a.Channel(rmtp.ChannelReplica), srcA, Config{Interval: time.Hour, Dirty: dirty, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := New(b, b.Channel(rmtp.ChannelReplica), srcB, Config{Interval: 50 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	dirty <- struct{}{}
	st := srcB.wait(t, "after a change")
	if st.Node != 1000 || st.Term != 3 || st.Seq != 1 || st.Incarnation != a.Incarnation() ||
		st.Discontinuity != 77 || len(st.Sums) != 1 || st.Sums[0].Engines[0].Offset != 4_000_000 {
		t.Errorf("adopted %+v", *st)
	}
	// The send completes when the backup's acknowledgement is in.
	for deadline := time.Now().Add(5 * time.Second); ra.Stats().Sent == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if s := ra.Stats(); s.Sent != 1 || s.SendFailures != 0 {
		t.Errorf("active manager's stats %+v", s)
	}
	if s := rb.Stats(); s.Sent != 0 || s.Adopted != 1 || s.LastFrom != 1000 || s.LastTerm != 3 {
		t.Errorf("backup's stats %+v", s)
	}
	if got := srcA.last(); got != nil {
		t.Errorf("the active manager adopted %+v", *got)
	}
}

func TestReplicateEveryInterval(t *testing.T) {
	net := memnet.New(1472)
	a, b := memManager(t, net, 1000), memManager(t, net, 1001)
	if err := a.Activate(1); err != nil {
		t.Fatal(err)
	}
	srcB := newSource(wire.State{})
	ra, err := New(a, a.Channel(rmtp.ChannelReplica), newSource(body), Config{Interval: 30 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := New(b, b.Channel(rmtp.ChannelReplica), srcB, Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	var seq uint64
	for range 3 {
		st := srcB.wait(t, "with nothing changing")
		if st.Seq <= seq {
			t.Errorf("sequence %d after %d", st.Seq, seq)
		}
		seq = st.Seq
	}
}

// fakeEndpoint is an Endpoint whose role and view the test sets.
type fakeEndpoint struct {
	mu     sync.Mutex
	active bool
	term   uint64
	owner  rmtp.NodeID
	sent   [][]byte
	others bool // another manager is in the view
}

func (f *fakeEndpoint) Node() rmtp.NodeID   { return 1001 }
func (f *fakeEndpoint) Incarnation() uint64 { return 55 }
func (f *fakeEndpoint) Active() bool        { f.mu.Lock(); defer f.mu.Unlock(); return f.active }
func (f *fakeEndpoint) Term() uint64        { f.mu.Lock(); defer f.mu.Unlock(); return f.term }
func (f *fakeEndpoint) View() rmtp.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := rmtp.View{Term: f.term, Owner: f.owner, Members: []rmtp.Member{{Node: 1001, Role: rmtp.Manager}}}
	if f.others {
		v.Members = append(v.Members, rmtp.Member{Node: 1000, Role: rmtp.Manager})
	}
	return v
}

func (f *fakeEndpoint) Send(_ context.Context, _ uint8, _ rmtp.Dest, b []byte) (rmtp.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, b)
	return rmtp.Report{}, nil
}

// chanReceiver hands the test's messages to the session.
type chanReceiver chan *rmtp.Message

func (c chanReceiver) Receive(ctx context.Context) (*rmtp.Message, error) {
	select {
	case m := <-c:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestAcceptance: a backup adopts the newest state of the manager it
// follows and nothing else.
func TestAcceptance(t *testing.T) {
	ep := &fakeEndpoint{term: 5, owner: 1000}
	in := make(chanReceiver)
	src := newSource(wire.State{})
	r, err := New(ep, in, src, Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msg := func(from rmtp.NodeID, st wire.State) *rmtp.Message {
		b, err := wire.Append(nil, &st)
		if err != nil {
			t.Fatal(err)
		}
		return &rmtp.Message{From: from, Channel: rmtp.ChannelReplica, Dest: rmtp.Up, Payload: b}
	}
	steps := []struct {
		name    string
		setup   func()
		m       *rmtp.Message
		adopted bool
	}{
		{"the active manager's first state", nil, msg(1000, wire.State{Node: 1000, Incarnation: 9, Term: 5, Seq: 10}), true},
		{"its next one", nil, msg(1000, wire.State{Node: 1000, Incarnation: 9, Term: 5, Seq: 11}), true},
		{"an older one, late", nil, msg(1000, wire.State{Node: 1000, Incarnation: 9, Term: 5, Seq: 10}), false},
		{"a deposed manager's (lower term)", nil, msg(1002, wire.State{Node: 1002, Incarnation: 1, Term: 4, Seq: 99}), false},
		{"a manager this one does not follow", nil, msg(1002, wire.State{Node: 1002, Incarnation: 1, Term: 5, Seq: 99}), false},
		{"sent in another's name", nil, msg(1002, wire.State{Node: 1000, Incarnation: 9, Term: 5, Seq: 12}), false},
		{"not a state", nil, &rmtp.Message{From: 1000, Payload: []byte("hello")}, false},
		{"the owner restarted with a higher term", func() { ep.mu.Lock(); ep.term = 6; ep.mu.Unlock() },
			msg(1000, wire.State{Node: 1000, Incarnation: 10, Term: 6, Seq: 1}), true},
		{"while this manager is active", func() { ep.mu.Lock(); ep.active = true; ep.mu.Unlock() },
			msg(1000, wire.State{Node: 1000, Incarnation: 10, Term: 6, Seq: 2}), false},
	}
	var adopted uint64
	for _, s := range steps {
		if s.setup != nil {
			s.setup()
		}
		before := r.Stats().Received
		in <- s.m
		deadline := time.Now().Add(5 * time.Second)
		for r.Stats().Received == before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s.adopted {
			adopted++
		}
		if got := r.Stats().Adopted; got != adopted {
			t.Errorf("%s: %d states adopted, want %d", s.name, got, adopted)
			adopted = got
		}
	}
	st := r.Stats()
	if st.Malformed != 2 || st.Stale != 3 || st.Ignored != 1 || st.LastTerm != 6 || st.LastSeq != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPartial: over MaxState the least recently used sums are left out
// and the state says so.
func TestPartial(t *testing.T) {
	ep := &fakeEndpoint{active: true, term: 2, owner: 1001, others: true}
	big := wire.State{}
	for i := range 10 {
		big.Sums = append(big.Sums, wire.Sum{OID: smi.OID{1, uint32(i)}, Engines: make([]wire.Count, 10)})
	}
	dirty := make(chan struct{}, 1)
	one := wire.SumLen(&big.Sums[0])
	r, err := New(ep, make(chanReceiver), newSource(big), Config{MaxState: wire.HeaderLen + 6 + 3*one + one/2, Dirty: dirty, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dirty <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Sent == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.sent) == 0 {
		t.Fatal("nothing sent")
	}
	st, err := wire.Parse(ep.sent[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Flags&wire.FlagPartial == 0 || len(st.Sums) != 3 || !st.Sums[2].OID.Equal(smi.OID{1, 2}) {
		t.Errorf("sent flags %v with %d sums (last %v), want partial with the first 3", st.Flags, len(st.Sums), st.Sums[len(st.Sums)-1].OID)
	}
	if st.Node != 1001 || st.Term != 2 || st.Incarnation != 55 {
		t.Errorf("header %+v", st)
	}
}
