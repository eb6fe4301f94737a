package fanout_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/leaktest"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// fastRMTP shortens membership timers so dying engines are noticed in
// half a second, yet a loaded machine's scheduling hiccups do not declare
// live engines down.
func fastRMTP(id rmtp.NodeID, role rmtp.Role) rmtp.Config {
	return rmtp.Config{Node: id, Role: role, Insecure: true, HelloInterval: 20 * time.Millisecond,
		SuspectAfter: 5, DownAfter: 25}
}

// weightOID is a writable scalar like smSeWeight: Unsigned32 0..max.
var weightOID = agenttest.Base.Append(50)

// se is one service engine of a test farm.
type se struct {
	id    rmtp.NodeID
	node  *memnet.Node
	ep    *rmtp.Endpoint
	tree  *agenttest.Tree
	resp  *fanout.Responder
	dead  bool
	mu    sync.Mutex
	w     uint32
	sets  int // commits executed
	maxW  uint32
	close sync.Once
}

func (s *se) weight() (uint32, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w, s.sets
}

// kill stops the engine the way a crash does: no goodbye.
func (s *se) kill() {
	s.close.Do(func() {
		s.dead = true
		s.node.Close() // the transport first, so the LEAVE never goes out
		s.resp.Close()
		s.ep.Close()
	})
}

type farm struct {
	t     testing.TB
	net   *memnet.Network
	mnode *memnet.Node
	mgr   *rmtp.Endpoint
	coord *fanout.Coordinator
	ses   []*se
	evMu  sync.Mutex
	evs   []fanout.EngineEvent
}

type farmOpts struct {
	faults   memnet.Faults
	coord    fanout.CoordinatorConfig
	resp     fanout.ResponderConfig
	maxW     map[int]uint32 // per engine index
	term     uint64
	noActive bool
}

func newFarm(t testing.TB, n int, o farmOpts) *farm {
	t.Helper()
	f := &farm{t: t, net: memnet.New(1472)}
	f.mnode = f.net.Attach(true, memnet.Faults{}, 1)
	var err error
	f.mgr, err = rmtp.New(f.mnode, fastRMTP(1, rmtp.Manager))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.mgr.Close() })
	if !o.noActive {
		term := o.term
		if term == 0 {
			term = 1
		}
		if err := f.mgr.Activate(term); err != nil {
			t.Fatal(err)
		}
	}
	cc := o.coord
	cc.OnEngineEvent = func(ev fanout.EngineEvent) {
		f.evMu.Lock()
		f.evs = append(f.evs, ev)
		f.evMu.Unlock()
	}
	cc.Logger = testLogger(t)
	f.coord, err = fanout.NewCoordinator(f.mgr, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.coord.Close() })
	for i := range n {
		f.ses = append(f.ses, f.addSE(i, o))
	}
	f.waitEngines(n)
	return f
}

func (f *farm) addSE(i int, o farmOpts) *se {
	t := f.t
	s := &se{id: rmtp.NodeID(101 + i), tree: agenttest.New(agenttest.Options{}), maxW: 1000}
	if m, ok := o.maxW[i]; ok {
		s.maxW = m
	}
	if err := s.tree.RegisterScalar(weightOID, &agent.Scalar{
		Type: smi.TypeGauge32,
		Value: func(context.Context) (smi.Value, error) {
			w, _ := s.weight()
			return smi.Gauge32(w), nil
		},
		Check: func(v smi.Value) error {
			if v.Uint > uint64(s.maxW) {
				return smi.Errorf(smi.WrongValue, fmt.Sprintf("above max_weight %d", s.maxW))
			}
			return nil
		},
		Set: func(_ context.Context, v smi.Value) error {
			s.mu.Lock()
			s.w = uint32(v.Uint)
			s.sets++
			s.mu.Unlock()
			return nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	s.node = f.net.Attach(false, o.faults, uint64(s.id))
	var err error
	s.ep, err = rmtp.New(s.node, fastRMTP(s.id, rmtp.Engine))
	if err != nil {
		t.Fatal(err)
	}
	rc := o.resp
	rc.Tree = s.tree.Tree
	rc.Logger = testLogger(t)
	s.resp, err = fanout.NewResponder(s.ep, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	return s
}

// waitEngines waits until the view holds n engines (and every engine has
// heard it, so their terms are current).
func (f *farm) waitEngines(n int) {
	f.t.Helper()
	waitfor.True(f.t, 10*time.Second, fmt.Sprintf("%d engines in the view", n), func() bool {
		v := f.mgr.View()
		k := 0
		for _, m := range v.Members {
			if m.Role == rmtp.Engine {
				k++
			}
		}
		if k != n {
			return false
		}
		for _, s := range f.ses {
			if !s.dead && s.ep.View().Term != v.Term {
				return false
			}
		}
		return true
	})
}

func (f *farm) events() []fanout.EngineEvent {
	f.evMu.Lock()
	defer f.evMu.Unlock()
	return append([]fanout.EngineEvent(nil), f.evs...)
}

func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	if os.Getenv("FANOUT_DEBUG") != "" {
		l.SetLevel(logrus.DebugLevel)
	}
	l.Out = testWriter{t}
	return l
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// checkNoLeak fails if goroutines started by the test outlive it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	leaktest.Check(t, "smsnmpd/")
}

// The SE's agent.Tree is what a Responder serves.
var _ fanout.Tree = (*agent.Tree)(nil)

// A Responder holds as many SET reservations as the tree under it.
func TestReservationsBoundedAsTheTree(t *testing.T) {
	if fanout.MaxSets != agent.MaxPendingSets {
		t.Errorf("fanout.MaxSets %d, agent.MaxPendingSets %d", fanout.MaxSets, agent.MaxPendingSets)
	}
}
