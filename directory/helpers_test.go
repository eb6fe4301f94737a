package directory_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/leaktest"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
)

var farmUnit = directory.Location{CDN: 1, DataCenter: 1, Farm: 1}

// rmtpConfig shortens the membership timers; DownAfter is generous so a
// busy machine does not look like a death.
func rmtpConfig(id rmtp.NodeID, role rmtp.Role) rmtp.Config {
	return rmtp.Config{Node: id, Role: role, Insecure: true, HelloInterval: 20 * time.Millisecond, DownAfter: 50}
}

// farmNet builds a farm on some transport: managers 1.., SEs 101...
type farmNet struct {
	t        testing.TB
	listen   func(joinUp bool, id rmtp.NodeID) rmtp.Transport
	mgrEPs   []*rmtp.Endpoint
	mgrs     []*directory.Manager
	engEPs   []*rmtp.Endpoint
	pubs     []*directory.Publisher
	mutStore func(*directory.StoreConfig)
	mutPub   func(*directory.PublisherConfig)
	mutMgr   func(*directory.ManagerConfig)
}

func memFarm(t testing.TB, f memnet.Faults) *farmNet {
	n := memnet.New(1472)
	return &farmNet{t: t, listen: func(joinUp bool, id rmtp.NodeID) rmtp.Transport {
		return n.Attach(joinUp, f, uint64(id))
	}}
}

func udpFarm(t testing.TB) *farmNet {
	down, up := rmtptest.Groups(t)
	return &farmNet{t: t, listen: func(joinUp bool, id rmtp.NodeID) rmtp.Transport {
		tr, err := rmtp.ListenMulticast(rmtp.MulticastConfig{Interface: "lo", Down: down, Up: up, JoinUp: joinUp})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}}
}

func (f *farmNet) endpoint(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
	ep, err := rmtp.New(f.listen(role == rmtp.Manager, id), rmtpConfig(id, role))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ep.Close() })
	return ep
}

// addManager starts manager node id; the first one is activated.
func (f *farmNet) addManager(id rmtp.NodeID) *directory.Manager {
	ep := f.endpoint(id, rmtp.Manager)
	if len(f.mgrs) == 0 {
		if err := ep.Activate(1); err != nil {
			f.t.Fatal(err)
		}
	}
	cfg := directory.ManagerConfig{Store: directory.StoreConfig{Unit: farmUnit}, MaintainInterval: 50 * time.Millisecond,
		WatchInterval: 20 * time.Millisecond, Logger: testLogger(f.t)}
	if f.mutStore != nil {
		f.mutStore(&cfg.Store)
	}
	if f.mutMgr != nil {
		f.mutMgr(&cfg)
	}
	m, err := directory.NewManager(ep, cfg, ep)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { m.Close() })
	f.mgrEPs = append(f.mgrEPs, ep)
	f.mgrs = append(f.mgrs, m)
	return m
}

func (f *farmNet) publisher(ep *rmtp.Endpoint, initial []directory.Entry) *directory.Publisher {
	loc := farmUnit
	loc.Engine = uint32(ep.Node())
	cfg := directory.PublisherConfig{Location: loc, Incarnation: ep.Incarnation(), Initial: initial, Inbox: ep}
	if f.mutPub != nil {
		f.mutPub(&cfg)
	}
	p, err := directory.NewPublisher(ep, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { p.Close() })
	return p
}

// addEngines starts n SEs with publishers (nodes 101..).
func (f *farmNet) addEngines(n int) {
	for range n {
		ep := f.endpoint(rmtp.NodeID(101+len(f.engEPs)), rmtp.Engine)
		f.engEPs = append(f.engEPs, ep)
		f.pubs = append(f.pubs, f.publisher(ep, nil))
	}
}

// waitPeers waits until every manager sees every other member alive.
func (f *farmNet) waitPeers() {
	want := len(f.mgrEPs) + len(f.engEPs) - 1
	for _, ep := range f.mgrEPs {
		waitfor.True(f.t, 10*time.Second, "managers see the farm", func() bool { return livePeers(ep) >= want })
	}
	for _, ep := range f.engEPs {
		waitfor.True(f.t, 10*time.Second, "engines see the managers", func() bool { return livePeers(ep) >= len(f.mgrEPs) })
	}
}

func livePeers(e *rmtp.Endpoint) int {
	n := 0
	for _, p := range e.Stats().Peers {
		if p.State == rmtp.PeerAlive && p.Role != 0 {
			n++
		}
	}
	return n
}

// sesDigest is the union of the publishers' digests at now.
func (f *farmNet) sesDigest(now time.Time) directory.Digest {
	var d directory.Digest
	for _, p := range f.pubs {
		d = d.Combine(p.Digest(now))
	}
	return d
}

func (f *farmNet) flush(timeout time.Duration) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, p := range f.pubs {
		if err := p.Flush(ctx); err != nil {
			f.t.Fatalf("flush of SE %d: %v (%+v)", i, err, p.Stats())
		}
	}
}

// converge waits until every manager's digest equals the SEs' own.
func (f *farmNet) converge(what string, mgrs ...*directory.Manager) directory.Digest {
	f.t.Helper()
	if mgrs == nil {
		mgrs = f.mgrs
	}
	var want directory.Digest
	waitfor.True(f.t, 30*time.Second, what, func() bool {
		now := time.Now()
		want = f.sesDigest(now)
		for _, m := range mgrs {
			if m.Store().Digest(now) != want {
				return false
			}
		}
		return true
	})
	return want
}

func key(se, i int) string { return fmt.Sprintf("http://cdn.example/se%d/object/%06d.bin", se, i) }

// checkNoLeak fails if goroutines started by the test outlive it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	leaktest.Check(t, "smsnmpd/")
}

func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(tlogWriter{t})
	l.SetLevel(logrus.WarnLevel)
	return l
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
