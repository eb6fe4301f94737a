package agentx_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

const be = pdu.FlagNetworkByteOrder

func TestRegistersEveryRootOfEveryContext(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	other := agent.NewTree()
	other.RegisterScalar(smi.OID{1, 3, 6, 1, 4, 1, 8072, 9999, 4243, 1}, agent.Const(smi.Integer(1)))
	sa, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree, "se3": other}, 7)
	waitOpen(t, sa)
	want := len(tree.Roots()) + 1
	if len(mc.roots) != want {
		t.Fatalf("%d registrations, want %d", len(mc.roots), want)
	}
	n := 0
	for i, c := range mc.ctxs {
		if c == "se3" {
			n++
			if !mc.roots[i].Equal(other.Roots()[0]) {
				t.Errorf("se3 registered %s", mc.roots[i])
			}
		}
	}
	if n != 1 {
		t.Errorf("%d registrations in se3", n)
	}
	if id, ok := sa.SessionID(); !ok || id != 7 {
		t.Errorf("SessionID %d %v", id, ok)
	}
}

// A PDU re-sent with the same packet id while the first copy runs is not
// executed again; the one answer serves both; a copy arriving after the
// answer gets the same answer again from the cache.
func TestResentPDUExecutedOnce(t *testing.T) {
	tree := agenttest.New(agenttest.Options{SlowDelay: 300 * time.Millisecond})
	sa, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 1)
	get := &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.SlowScalar.Append(0)}}}
	mc.request(be, 10, 20, get)
	mc.request(be, 10, 20, get) // the master's retry
	first := mc.readResponse()
	if first.PacketID != 20 || first.PDU.(*pdu.Response).VarBinds[0].Value.Int != 77 {
		t.Fatalf("response %+v", first.PDU)
	}
	mc.expectSilence(100 * time.Millisecond) // one execution, one answer
	mc.request(be, 10, 20, get)              // a retry crossing the answer
	again := mc.readResponse()
	b1, _ := pdu.Encode(first)
	b2, _ := pdu.Encode(again)
	if !bytes.Equal(b1, b2) {
		t.Errorf("cached answer differs")
	}
	if n := tree.SlowCalls.Load(); n != 1 {
		t.Errorf("executed %d times", n)
	}
	if st := sa.Stats(); st.Duplicates != 2 || st.Requests != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A slow request does not hold up others.
func TestRequestsServedConcurrently(t *testing.T) {
	tree := agenttest.New(agenttest.Options{SlowDelay: 2 * time.Second})
	_, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 1)
	mc.request(be, 1, 1, &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.SlowScalar.Append(0)}}})
	for i := uint32(2); i < 12; i++ {
		mc.request(be, i, i, &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.ScalarInt.Append(0)}}})
	}
	for i := 2; i < 12; i++ {
		if r := mc.readResponse(); r.PacketID == 1 {
			t.Fatal("the slow request was answered before the fast ones")
		}
	}
	if r := mc.readResponse(); r.PacketID != 1 {
		t.Fatalf("packet %d", r.PacketID)
	}
}

// Responses use the request's byte order, and every varbind type and
// exception crosses intact.
func TestLittleEndianAndAllTypes(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	_, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 3)
	names := []smi.OID{agenttest.ScalarInt.Append(0), agenttest.ScalarString.Append(0), agenttest.ScalarC64.Append(0),
		agenttest.ScalarIP.Append(0), agenttest.ScalarTicks.Append(0), agenttest.ScalarOID.Append(0),
		agenttest.ScalarGauge.Append(0), agenttest.ScalarC32.Append(0), agenttest.ScalarInt.Append(1),
		agenttest.Base.Append(99)}
	var rs []pdu.SearchRange
	for _, n := range names {
		rs = append(rs, pdu.SearchRange{Start: n})
	}
	mc.request(0, 5, 6, &pdu.Get{Ranges: rs})
	r := mc.readResponse()
	if r.Flags&pdu.FlagNetworkByteOrder != 0 {
		t.Error("answered a little-endian request in network byte order")
	}
	want, _ := tree.Get(context.Background(), names)
	got := r.PDU.(*pdu.Response).VarBinds
	sameVarBinds(t, "Get", got, want)
}

// GetBulk (snmpd never sends it; other masters do) maps onto Tree.GetBulk.
func TestGetBulk(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	_, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 3)
	rs := []pdu.SearchRange{{Start: agenttest.ScalarInt}, {Start: agenttest.TwoIndexTable}, {Start: agenttest.CallbackRoot.Append(100)}}
	mc.request(be, 1, 1, &pdu.GetBulk{NonRepeaters: 1, MaxRepetitions: 4, Ranges: rs})
	got := mc.readResponse().PDU.(*pdu.Response).VarBinds
	want, err := tree.GetBulk(context.Background(), 1, 4, []smi.Range{{Start: rs[0].Start}, {Start: rs[1].Start}, {Start: rs[2].Start}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 9 {
		t.Fatalf("tree gave %d", len(want))
	}
	sameVarBinds(t, "GetBulk", got, want)
}

// The SET phases map onto the tree's, keyed by session and transaction;
// CleanupSet is never answered; a failing test names its varbind.
func TestSetPhases(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	sa, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 4)
	vbs := []smi.VarBind{{Name: agenttest.WritableInt.Append(0), Value: smi.Integer(500)},
		{Name: agenttest.WritableStr.Append(0), Value: smi.String("new")}}
	mc.request(be, 100, 1, &pdu.TestSet{VarBinds: vbs})
	if r := mc.readResponse().PDU.(*pdu.Response); r.Error != 0 {
		t.Fatalf("TestSet: %s", r.Error)
	}
	mc.request(be, 100, 2, &pdu.CommitSet{})
	if r := mc.readResponse().PDU.(*pdu.Response); r.Error != 0 {
		t.Fatalf("CommitSet: %s", r.Error)
	}
	mc.request(be, 100, 3, &pdu.CleanupSet{})
	mc.expectSilence(100 * time.Millisecond)
	if tree.WritableIntValue() != 500 || tree.WritableStrValue() != "new" {
		t.Errorf("values %d %q", tree.WritableIntValue(), tree.WritableStrValue())
	}
	bad := []smi.VarBind{vbs[1], {Name: agenttest.WritableInt.Append(0), Value: smi.Integer(5000)}}
	mc.request(be, 101, 4, &pdu.TestSet{VarBinds: bad})
	r := mc.readResponse().PDU.(*pdu.Response)
	if r.Error != pdu.ResponseError(smi.WrongValue) || r.Index != 2 {
		t.Errorf("TestSet: %s at %d, want wrongValue at 2", r.Error, r.Index)
	}
	mc.request(be, 101, 5, &pdu.CleanupSet{})
	// A read-only object is notWritable.
	mc.request(be, 102, 6, &pdu.TestSet{VarBinds: []smi.VarBind{{Name: agenttest.ScalarInt.Append(0), Value: smi.Integer(1)}}})
	if r := mc.readResponse().PDU.(*pdu.Response); r.Error != pdu.ResponseError(smi.NotWritable) || r.Index != 1 {
		t.Errorf("read-only: %s at %d", r.Error, r.Index)
	}
	mc.request(be, 102, 7, &pdu.CleanupSet{})
	mc.expectSilence(50 * time.Millisecond)
	waitfor.True(t, 5*time.Second, "7 requests, 2 failed", func() bool { st := sa.Stats(); return st.Failed == 2 && st.Requests == 7 })
}

// A handler value its wire type cannot carry is answered genErr, not
// dropped (snmpd would wait and re-send).
func TestUnencodableValueIsGenErr(t *testing.T) {
	tree := agent.NewTree()
	bad := smi.OID{1, 3, 6, 1, 4, 1, 99, 1}
	tree.RegisterScalar(bad, agent.Const(smi.Value{Type: smi.TypeInteger, Int: 1 << 40}))
	_, mc := startSession(t, agentx.Config{}, treeSet{"": tree}, 1)
	mc.request(be, 1, 1, &pdu.Get{Ranges: []pdu.SearchRange{{Start: bad.Append(0)}}})
	if r := mc.readResponse().PDU.(*pdu.Response); r.Error != pdu.ResponseError(smi.GenErr) {
		t.Errorf("got %s", r.Error)
	}
}

// An undecodable request gets parseError; the session goes on.
func TestParseErrorAnswered(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	sa, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 4)
	// A Get whose range claims 9 sub-identifiers but carries 1.
	bad := []byte{1, 5, 0x10, 0, 0, 0, 0, 4, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 8, 9, 0, 0, 0, 0, 0, 0, 1}
	if _, err := mc.c.Write(bad); err != nil {
		t.Fatal(err)
	}
	r := mc.readResponse()
	if r.PacketID != 9 || r.PDU.(*pdu.Response).Error != pdu.ParseError {
		t.Fatalf("got %+v", r.PDU)
	}
	mc.request(be, 1, 10, &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.ScalarInt.Append(0)}}})
	if r := mc.readResponse(); r.PDU.(*pdu.Response).VarBinds[0].Value.Int != 42 {
		t.Fatal("session unusable after a parse error")
	}
	if sa.Stats().ParseErrors != 1 {
		t.Errorf("stats %+v", sa.Stats())
	}
}

// A Close from the master (as snmpd sends after agentXRetries) makes the
// subagent reconnect and register everything again; a late answer to the
// old session is dropped.
func TestReconnectAfterMasterClose(t *testing.T) {
	tree := agenttest.New(agenttest.Options{SlowDelay: 200 * time.Millisecond})
	m := newFakeMaster(t)
	sa, mc := startSessionWith(t, m, agentx.Config{}, treeSet{"": tree.Tree}, 1)
	mc.request(be, 1, 1, &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.SlowScalar.Append(0)}}})
	mc.write(&pdu.Packet{Header: pdu.Header{Flags: be, SessionID: 1}, PDU: &pdu.Close{Reason: pdu.ReasonTimeouts}})
	mc2 := m.accept(2)
	if len(mc2.roots) != len(mc.roots) {
		t.Errorf("re-registered %d of %d", len(mc2.roots), len(mc.roots))
	}
	mc2.request(be, 2, 2, &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.ScalarInt.Append(0)}}})
	if r := mc2.readResponse(); r.PacketID != 2 || r.SessionID != 2 {
		t.Errorf("response %+v", r.Header)
	}
	waitfor.True(t, 5*time.Second, "late answer dropped", func() bool { return sa.Stats().LateDropped == 1 })
	waitfor.True(t, 5*time.Second, "second session counted", func() bool { return sa.Stats().Sessions == 2 })
}

// A master that stops answering Pings is left, and reconnected to.
func TestPingTimeoutReconnects(t *testing.T) {
	m := newFakeMaster(t)
	tree := agenttest.New(agenttest.Options{})
	sa, mc := startSessionWith(t, m, agentx.Config{PingInterval: 50 * time.Millisecond, MasterTimeout: 500 * time.Millisecond},
		treeSet{"": tree.Tree}, 1)
	if p := mc.read(); p.Type != pdu.TypePing {
		t.Fatalf("got %s, want Ping", p.Type)
	}
	// No answer: the next session follows.
	m.accept(2)
	waitfor.True(t, 5*time.Second, "second session", func() bool { return sa.Stats().Sessions == 2 })
}

func TestNotifyAndClose(t *testing.T) {
	m := newFakeMaster(t)
	tree := agenttest.New(agenttest.Options{})
	sa := agentx.New(agentx.Config{Socket: m.socket()}, treeSet{"": tree.Tree}, nil)
	m.regs = countRegs(treeSet{"": tree.Tree})
	if err := sa.Notify(context.Background(), smi.OID{1, 2}, nil); !errors.Is(err, agentx.ErrNotConnected) {
		t.Errorf("Notify before Run: %v", err)
	}
	stop := runSubagent(t, sa)
	mc := m.accept(1)
	waitOpen(t, sa)
	done := make(chan error, 1)
	go func() {
		done <- sa.Notify(context.Background(), smi.OID{1, 3, 6, 1, 4, 1, 99, 0, 1}, []smi.VarBind{{Name: smi.OID{1, 3, 6, 1, 4, 1, 99, 1, 0}, Value: smi.Integer(3)}})
	}()
	p := mc.read()
	n, ok := p.PDU.(*pdu.Notify)
	if !ok || len(n.VarBinds) != 3 || !n.VarBinds[0].Name.Equal(agentx.SysUpTimeOID) || !n.VarBinds[1].Name.Equal(agentx.SnmpTrapOIDOID) ||
		n.VarBinds[0].Value.Uint < 1000 || !n.VarBinds[1].Value.OID.Equal(smi.OID{1, 3, 6, 1, 4, 1, 99, 0, 1}) {
		t.Fatalf("Notify %+v", p.PDU)
	}
	mc.reply(p, &pdu.Response{Error: pdu.ProcessingError})
	var me *agentx.MasterError
	if err := <-done; !errors.As(err, &me) || me.Code != pdu.ProcessingError {
		t.Errorf("refused Notify: %v", err)
	}
	// Shutdown closes the session with reasonShutdown.
	go stop()
	p = mc.read()
	if c, ok := p.PDU.(*pdu.Close); !ok || c.Reason != pdu.ReasonShutdown {
		t.Fatalf("got %+v, want Close(shutdown)", p.PDU)
	}
	mc.reply(p, &pdu.Response{})
}

func TestRunTwiceAndBadSocket(t *testing.T) {
	sa := agentx.New(agentx.Config{Socket: "nonsense"}, treeSet{}, nil)
	if err := sa.Run(context.Background()); !errors.Is(err, agentx.ErrConfig) {
		t.Errorf("bad socket: %v", err)
	}
	sa, _ = startSession(t, agentx.Config{}, treeSet{"": agent.NewTree()}, 1)
	waitOpen(t, sa)
	if err := sa.Run(context.Background()); !errors.Is(err, agentx.ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
}

// Every goroutine stops: Run's return leaves none behind, also when it
// is cancelled while the master is unreachable.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		m := newFakeMaster(t)
		tree := agenttest.New(agenttest.Options{SlowDelay: time.Hour})
		sa := agentx.New(agentx.Config{Socket: m.socket(), PingInterval: time.Millisecond * 20}, treeSet{"": tree.Tree}, nil)
		m.regs = countRegs(treeSet{"": tree.Tree})
		stop := runSubagent(t, sa)
		mc := m.accept(1)
		mc.request(be, 1, 1, &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.SlowScalar.Append(0)}}})
		stop()
		m.ln.Close()
		mc.c.Close()
	}
	sa := agentx.New(agentx.Config{Socket: "tcp:127.0.0.1:1"}, treeSet{}, nil) // refused: in backoff
	stop := runSubagent(t, sa)
	time.Sleep(50 * time.Millisecond)
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// SetPriority re-registers every subtree at the new priority before
// dropping the old registrations (a backup manager taking over).
func TestSetPriorityReregisters(t *testing.T) {
	tree := agent.NewTree()
	tree.RegisterScalar(smi.OID{1, 3, 6, 1, 4, 1, 99, 1}, agent.Const(smi.Integer(1)))
	tree.RegisterScalar(smi.OID{1, 3, 6, 1, 4, 1, 99, 2}, agent.Const(smi.Integer(2)))
	sa, mc := startSession(t, agentx.Config{Priority: 128}, treeSet{"": tree}, 1)
	waitOpen(t, sa)
	done := make(chan error, 1)
	go func() { done <- sa.SetPriority(context.Background(), 127) }()
	var seq []string
	for len(seq) < 4 {
		p := mc.read()
		switch b := p.PDU.(type) {
		case *pdu.Register:
			seq = append(seq, "reg"+strconv.Itoa(int(b.Priority)))
		case *pdu.Unregister:
			seq = append(seq, "unreg"+strconv.Itoa(int(b.Priority)))
		default:
			t.Fatalf("unexpected %s", p.Type)
		}
		mc.reply(p, &pdu.Response{})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seq, " "); got != "reg127 reg127 unreg128 unreg128" {
		t.Errorf("sequence %s", got)
	}
}

// Same ids but different content is a new request, not a re-send.
func TestReusedPacketIDWithNewContentExecuted(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	sa, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 1)
	for i, oid := range []smi.OID{agenttest.ScalarInt.Append(0), agenttest.ScalarTicks.Append(0)} {
		mc.request(be, 5, 5, &pdu.Get{Ranges: []pdu.SearchRange{{Start: oid}}})
		vb := mc.readResponse().PDU.(*pdu.Response).VarBinds[0]
		if !vb.Name.Equal(oid) {
			t.Errorf("request %d answered for %s", i, vb.Name)
		}
	}
	if st := sa.Stats(); st.Duplicates != 0 || st.Requests != 2 {
		t.Errorf("stats %+v", st)
	}
}

// The re-send cache is bounded: after more than 1,024 answered requests the
// oldest is forgotten (a copy of it would run again), the newest is not.
func TestResendCacheBounded(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	sa, mc := startSession(t, agentx.Config{}, treeSet{"": tree.Tree}, 1)
	get := &pdu.Get{Ranges: []pdu.SearchRange{{Start: agenttest.ScalarInt.Append(0)}}}
	const n = 1100
	for i := uint32(1); i <= n; i++ {
		mc.request(be, i, i, get)
		mc.readResponse()
	}
	mc.request(be, n, n, get) // recent: from the cache
	mc.readResponse()
	mc.request(be, 1, 1, get) // evicted: executed again
	mc.readResponse()
	if st := sa.Stats(); st.Duplicates != 1 || st.Requests != n+1 {
		t.Errorf("stats %+v", st)
	}
}

// gate is a handler whose Gets block until released, counting how many
// run at once.
type gate struct {
	running, peak atomic.Int32
	release       chan struct{}
}

func (g *gate) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]smi.Value, len(names))
	for i := range out {
		out[i] = smi.Integer(1)
	}
	return out, nil
}

func (g *gate) GetNext(context.Context, []smi.Range) ([]smi.VarBind, error) { return nil, nil }

// No more than MaxInFlight requests wait on the farm at once; the rest
// are answered genErr at once (left unanswered, snmpd would re-send them,
// then close the session), and the admitted ones are answered when the
// farm answers.
func TestInFlightBound(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	tree := agent.NewTree()
	root := smi.OID{1, 3, 6, 1, 4, 1, 99}
	tree.Register(root, g)
	sa, mc := startSession(t, agentx.Config{MaxInFlight: 2}, treeSet{"": tree}, 1)
	for i := uint32(1); i <= 5; i++ {
		mc.request(be, i, i, &pdu.Get{Ranges: []pdu.SearchRange{{Start: root.Append(i)}}})
		if i == 2 {
			waitfor.True(t, 5*time.Second, "two requests running", func() bool { return g.running.Load() == 2 })
		}
	}
	for range 3 {
		r := mc.readResponse()
		if resp := r.PDU.(*pdu.Response); r.PacketID < 3 || resp.Error != pdu.ResponseError(smi.GenErr) || len(resp.VarBinds) != 1 {
			t.Fatalf("packet %d answered %+v before the farm answered; want genErr for 3, 4 and 5", r.PacketID, resp)
		}
	}
	close(g.release)
	for range 2 {
		r := mc.readResponse()
		if resp := r.PDU.(*pdu.Response); r.PacketID > 2 || resp.Error != pdu.NoAgentXError {
			t.Fatalf("packet %d answered %+v; want 1 and 2 answered", r.PacketID, resp)
		}
	}
	if p := g.peak.Load(); p != 2 {
		t.Errorf("peak %d running, want 2", p)
	}
	if st := sa.Stats(); st.Busy != 3 {
		t.Errorf("Stats.Busy %d, want 3", st.Busy)
	}
}

// Requests waiting on the farm do not hold the session: with MaxInFlight
// of them waiting, a local request is answered, the master's answers to
// our Pings are read (so the session lives on), a Ping from the master is
// answered, and a re-sent copy of a waiting PDU joins it (executed once,
// answered once).
func TestWaitingRequestsDoNotBlockTheSession(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	tree := agent.NewTree()
	root, local := smi.OID{1, 3, 6, 1, 4, 1, 99}, smi.OID{1, 3, 6, 1, 4, 1, 98}
	tree.Register(root, g)
	tree.RegisterScalar(local, agent.Const(smi.Integer(5)))
	sa, mc := startSession(t, agentx.Config{MaxInFlight: 2, PingInterval: 50 * time.Millisecond,
		MasterTimeout: 500 * time.Millisecond}, treeSet{"": tree}, 1)
	waiting := &pdu.Get{Ranges: []pdu.SearchRange{{Start: root.Append(1)}}}
	mc.request(be, 1, 1, waiting)
	mc.request(be, 2, 2, &pdu.Get{Ranges: []pdu.SearchRange{{Start: root.Append(2)}}})
	waitfor.True(t, 5*time.Second, "two requests waiting", func() bool { return g.running.Load() == 2 })
	mc.request(be, 3, 3, &pdu.Get{Ranges: []pdu.SearchRange{{Start: local.Append(0)}}})
	if r := mc.readResponse(); r.PacketID != 3 || r.PDU.(*pdu.Response).VarBinds[0].Value.Int != 5 {
		t.Fatalf("local request while the farm is busy: packet %d %+v", r.PacketID, r.PDU)
	}
	mc.request(be, 1, 1, waiting) // snmpd's re-send after its agentXTimeout

	// Three ping intervals and more, answering every Ping: a session
	// whose reader were stuck would miss the answers and fail.
	pings := 0
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		mc.c.SetReadDeadline(end)
		p, err := mc.tryRead()
		if err != nil {
			break
		}
		if p.Type != pdu.TypePing {
			t.Fatalf("got %s (packet %d) while the farm is busy", p.Type, p.PacketID)
		}
		pings++
		mc.reply(p, &pdu.Response{})
	}
	mc.c.SetReadDeadline(time.Time{})
	if pings < 3 {
		t.Errorf("%d Pings in a second at a 50 ms interval", pings)
	}
	mc.request(be, 77, 77, &pdu.Ping{}) // a master's Ping is answered too
	if r := mc.readResponse(); r.PacketID != 77 {
		t.Fatalf("answer to packet %d, want the master's Ping (77)", r.PacketID)
	}
	close(g.release)
	got := map[uint32]int{}
	for range 2 {
		got[mc.readResponse().PacketID]++
	}
	if got[1] != 1 || got[2] != 1 {
		t.Errorf("answers %v, want packets 1 and 2 once each", got)
	}
	mc.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		p, err := mc.tryRead()
		if err != nil {
			break
		}
		if p.Type == pdu.TypeResponse {
			t.Errorf("extra answer to packet %d", p.PacketID)
		}
		mc.reply(p, &pdu.Response{})
	}
	mc.c.SetReadDeadline(time.Time{})
	if st := sa.Stats(); st.Sessions != 1 || st.Duplicates != 1 || st.Requests != 3 {
		t.Errorf("stats %+v: want one session, the re-send joined, 3 requests executed", st)
	}
}

// ctxProbe is a handler that waits for its context to end and records
// what the context said.
type ctxProbe struct {
	deadline atomic.Pointer[time.Time]
	err      atomic.Pointer[error]
}

func (p *ctxProbe) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	if d, ok := ctx.Deadline(); ok {
		p.deadline.Store(&d)
	}
	<-ctx.Done()
	err := ctx.Err()
	p.err.Store(&err)
	return nil, err
}

func (p *ctxProbe) GetNext(context.Context, []smi.Range) ([]smi.VarBind, error) { return nil, nil }

// Handlers see Config.HandlerTimeout as their context's deadline, and the
// context ends there with DeadlineExceeded (the session's watchdog ends
// it, not a timer per request); the request is answered genErr and the
// session keeps serving.
func TestHandlerTimeout(t *testing.T) {
	probe := &ctxProbe{}
	tree := agent.NewTree()
	root := smi.OID{1, 3, 6, 1, 4, 1, 99}
	tree.Register(root, probe)
	fast := smi.OID{1, 3, 6, 1, 4, 1, 98}
	tree.RegisterScalar(fast, agent.Const(smi.Integer(5)))
	const timeout = 150 * time.Millisecond
	sa, mc := startSession(t, agentx.Config{HandlerTimeout: timeout}, treeSet{"": tree}, 1)
	sent := time.Now()
	mc.request(be, 1, 1, &pdu.Get{Ranges: []pdu.SearchRange{{Start: root.Append(0)}}})
	mc.request(be, 2, 2, &pdu.Get{Ranges: []pdu.SearchRange{{Start: fast.Append(0)}}})
	if r := mc.readResponse(); r.PacketID != 2 || r.PDU.(*pdu.Response).Error != pdu.NoAgentXError {
		t.Fatalf("first answer: packet %d %+v, want packet 2 served while 1 waits", r.PacketID, r.PDU)
	}
	r := mc.readResponse()
	resp := r.PDU.(*pdu.Response)
	if r.PacketID != 1 || resp.Error != pdu.ResponseError(smi.GenErr) || resp.Index != 1 {
		t.Fatalf("timed-out request: packet %d error %s index %d, want packet 1 genErr index 1", r.PacketID, resp.Error, resp.Index)
	}
	if len(resp.VarBinds) != 1 || !resp.VarBinds[0].Name.Equal(root.Append(0)) {
		t.Errorf("varbinds %v, want the request's name echoed", resp.VarBinds)
	}
	if got := time.Since(sent); got < timeout {
		t.Errorf("answered after %v, before the %v deadline", got, timeout)
	}
	d := probe.deadline.Load()
	if d == nil {
		t.Fatal("the handler's context has no deadline")
	}
	if lo, hi := sent.Add(timeout), time.Now().Add(timeout); d.Before(lo) || d.After(hi) {
		t.Errorf("deadline %v not about HandlerTimeout after the request (sent %v)", d.Sub(sent), sent)
	}
	if err := probe.err.Load(); err == nil || !errors.Is(*err, context.DeadlineExceeded) {
		t.Errorf("handler saw %v, want context.DeadlineExceeded", err)
	}
	mc.request(be, 3, 3, &pdu.Get{Ranges: []pdu.SearchRange{{Start: fast.Append(0)}}})
	if r := mc.readResponse(); r.PacketID != 3 || r.PDU.(*pdu.Response).Error != pdu.NoAgentXError {
		t.Errorf("after the timeout: packet %d %+v", r.PacketID, r.PDU)
	}
	if st := sa.Stats(); st.Failed != 1 {
		t.Errorf("Failed = %d, want 1", st.Failed)
	}
}
