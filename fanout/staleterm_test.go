package fanout_test

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// deafNode is a memnet node that drops what comes from one address: a
// manager that cannot hear another one, although both reach the SEs.
type deafNode struct {
	*memnet.Node
	from netip.AddrPort
}

func (d *deafNode) Recv() (rmtp.Datagram, error) {
	for {
		dg, err := d.Node.Recv()
		if err != nil || dg.From != d.from {
			return dg, err
		}
	}
}

// syncLog collects log lines from several goroutines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// A manager whose term the SEs have left (another manager, which it
// cannot hear, activated above it) gets staleTerm replies: the coordinator
// reports the higher term (StaleTerm, for the election) and logs it at
// warning once per episode, not once per request; a higher term later,
// after its own term moved, is a new episode.
func TestCoordinatorReportsStaleTerm(t *testing.T) {
	checkNoLeak(t)
	net := memnet.New(1472)
	mnode := net.Attach(true, memnet.Faults{}, 1)
	other := net.Attach(true, memnet.Faults{}, 2)
	mgr, err := rmtp.New(&deafNode{Node: mnode, from: other.LocalAddr()}, fastRMTP(1, rmtp.Manager))
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	log.Out = &logs
	coord, err := fanout.NewCoordinator(mgr, fanout.CoordinatorConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	f := &farm{t: t, net: net, mnode: mnode, mgr: mgr, coord: coord}
	for i := range 3 {
		f.ses = append(f.ses, f.addSE(i, farmOpts{}))
	}
	f.waitEngines(3)
	name := []smi.OID{agenttest.ScalarInt.Append(0)}
	get := func() *fanout.Result {
		t.Helper()
		res, err := coord.Get(context.Background(), nil, name)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := get(); len(r.Replies) != 3 || coord.StaleTerm() != 0 {
		t.Fatalf("before any other manager: %d replies, stale term %d", len(r.Replies), coord.StaleTerm())
	}

	bsm, err := rmtp.New(other, fastRMTP(2, rmtp.Manager))
	if err != nil {
		t.Fatal(err)
	}
	defer bsm.Close()
	if err := bsm.Activate(2); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 10*time.Second, "the SEs follow term 2", func() bool {
		for _, s := range f.ses {
			if s.ep.Term() != 2 {
				return false
			}
		}
		return true
	})
	if mgr.Term() != 1 || !mgr.Active() {
		t.Fatalf("the deaf manager heard the other one: term %d active %v", mgr.Term(), mgr.Active())
	}
	for range 5 {
		r := get()
		for _, rep := range r.Replies {
			if rep.Status != fanout.StatusStaleTerm {
				t.Fatalf("engine %d answered %v to a fenced manager, want staleTerm", rep.Engine, rep.Status)
			}
		}
	}
	if got := coord.StaleTerm(); got != 2 {
		t.Errorf("StaleTerm %d, want 2", got)
	}
	const msg = "refuse this manager's term"
	if n := logs.count(msg); n != 1 {
		t.Errorf("%d warnings for one episode of 5 refused GETs, want 1:\n%s", n, logs.b.String())
	}

	// This manager moves above (the SEs follow it), the other one above
	// again: a second episode, a second line.
	if err := mgr.Activate(3); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 10*time.Second, "the SEs follow term 3", func() bool {
		for _, s := range f.ses {
			if s.ep.Term() != 3 {
				return false
			}
		}
		return true
	})
	if r := get(); len(r.Replies) != 3 || r.Replies[0].Status != fanout.StatusOK {
		t.Fatalf("at term 3: %+v", r.Replies)
	}
	waitfor.True(t, 10*time.Second, "the other manager steps down on term 3", func() bool { return !bsm.Active() })
	if err := bsm.Activate(4); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 10*time.Second, "the SEs follow term 4", func() bool {
		for _, s := range f.ses {
			if s.ep.Term() != 4 {
				return false
			}
		}
		return true
	})
	get()
	get()
	if got := coord.StaleTerm(); got != 4 {
		t.Errorf("StaleTerm %d, want 4", got)
	}
	if n := logs.count(msg); n != 2 {
		t.Errorf("%d warnings after a second episode, want 2:\n%s", n, logs.b.String())
	}
}
