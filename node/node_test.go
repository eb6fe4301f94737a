package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/control"
	"github.com/smsnmpd/smsnmpd/internal/leaktest"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// testConfig is a node of the given role on an in-memory farm: no key,
// state in a directory of its own, a manager's built-in agent on a free
// loopback port, no control socket unless the test gives one.
func testConfig(t *testing.T, role config.Role, id uint32) *config.Config {
	t.Helper()
	c := config.Default()
	c.Node.Role, c.Node.ID, c.Node.Level = role, id, 1
	c.Node.StateDir = t.TempDir()
	c.RMTP.Insecure = true
	c.Control.Socket = config.Addr{}
	if role == config.RoleManager {
		c.SNMP.Listen = config.MustAddr(fmt.Sprintf("udp:127.0.0.1:%d", freePort(t)))
		c.SNMP.ROCommunity = config.NewSecret("public")
	}
	return c
}

// freePort is a UDP port on loopback that was free a moment ago (the
// configuration refuses port 0).
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// socketIn is a control socket path in a short directory of its own (unix
// socket paths are limited to about 100 bytes).
func socketIn(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "nd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "control.sock")
}

// started is a node whose Run runs until the test stops it.
type started struct {
	*Node
	ran     chan error
	stopped sync.Once
}

func start(t *testing.T, cfg *config.Config, tr rmtp.Transport) *started {
	t.Helper()
	return run(t, cfg, Options{Version: "test", RMTP: tr})
}

func run(t *testing.T, cfg *config.Config, opts Options) *started {
	t.Helper()
	n, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("node %d: %v", cfg.Node.ID, err)
	}
	s := &started{Node: n, ran: make(chan error, 1)}
	go func() { s.ran <- n.Run(context.Background()) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop shuts the node down (once) and checks that Run returned nil.
func (s *started) stop(t *testing.T) {
	t.Helper()
	s.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown of node %d: %v", s.cfg.Node.ID, err)
		}
		select {
		case err := <-s.ran:
			if err != nil {
				t.Errorf("node %d: Run returned %v", s.cfg.Node.ID, err)
			}
		case <-ctx.Done():
			t.Errorf("node %d: Run did not return after Shutdown", s.cfg.Node.ID)
		}
	})
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasEvent(s Snapshot, match func(Event) bool) bool { return slices.ContainsFunc(s.Events, match) }

// A manager and an SE started with New over an in-memory farm: each
// Snapshot says what an operator must see (roles, the view and its term,
// the engine table, the links, the directory, the publisher, the events),
// the control socket answers the same snapshot, a publish shows up on both
// sides, and Shutdown leaves no goroutine behind.
func TestSnapshotOfAManagerAndAnEngine(t *testing.T) {
	leaktest.Check(t, "smsnmpd")
	farm := memnet.New(1472)
	mcfg := testConfig(t, config.RoleManager, 1000)
	mcfg.Control.Socket = config.MustAddr("unix:" + socketIn(t))
	scfg := testConfig(t, config.RoleSE, 7)
	scfg.Control.Socket = config.MustAddr("unix:" + socketIn(t))
	scfg.System.Name = "cache-7"
	mgr := start(t, mcfg, farm.Attach(true, memnet.Faults{}, 1))
	se := start(t, scfg, farm.Attach(false, memnet.Faults{}, 2))

	eventually(t, "the manager active with engine 7 up, named, in its totals", func() bool {
		s := mgr.Snapshot()
		return s.Role == "manager" && len(s.Engines) == 1 && s.Engines[0].State == "up" && s.Engines[0].Name == "cache-7" &&
			s.Subtree != nil && s.Subtree.Up == 1
	})
	eventually(t, "the engine in the manager's view", func() bool {
		s := se.Snapshot()
		return s.View.Owner == 1000 && len(s.View.Members) == 2
	})
	if !mgr.Active() || se.Active() {
		t.Errorf("Active: manager %v, engine %v", mgr.Active(), se.Active())
	}
	m := mgr.Snapshot()
	if m.Node != 1000 || m.Level != 1 || m.Version != "test" || m.Term == 0 || m.View.Term != m.Term || m.View.Owner != 1000 {
		t.Errorf("manager: node %d level %d version %q term %d, view %+v", m.Node, m.Level, m.Version, m.Term, m.View)
	}
	if e := m.Engines[0]; e.ID != 7 || e.Incarnation == 0 || e.LastSeen.IsZero() {
		t.Errorf("engine row %+v", e)
	}
	if m.Manager == nil || m.Manager.Election != "active" || m.Manager.Cause != "elected" || m.Engine != nil || m.Publisher != nil {
		t.Errorf("manager sections: manager %+v, engine %+v, publisher %+v", m.Manager, m.Engine, m.Publisher)
	}
	if m.Directory == nil || m.Directory.MaxEntries != mcfg.Directory.MaxEntries || m.Parent != nil {
		t.Errorf("manager directory %+v, parent %+v", m.Directory, m.Parent)
	}
	if !m.Farm.Active || !slices.ContainsFunc(m.Farm.Peers, func(p Peer) bool { return p.Node == 7 && p.Role == "engine" && p.State == "alive" }) {
		t.Errorf("manager's farm link %+v", m.Farm)
	}
	if !hasEvent(m, func(e Event) bool { return e.Kind == EventEngineUp && e.Engine == 7 }) ||
		!hasEvent(m, func(e Event) bool {
			return e.Kind == EventRole && e.Role == "manager" && e.Cause == "elected" && e.Term == m.Term
		}) {
		t.Errorf("manager events %+v", m.Events)
	}
	s := se.Snapshot()
	if s.Role != "engine" || s.Name != "cache-7" || s.Level != 1 || s.Location.Engine != 7 || s.Term != m.Term || s.Manager != nil || s.Engines != nil || s.Directory != nil {
		t.Errorf("engine: %+v", s)
	}
	if s.Engine == nil || s.Publisher == nil || s.Publisher.Rate != float64(scfg.Directory.PublishRate) {
		t.Errorf("engine sections: %+v, %+v", s.Engine, s.Publisher)
	}
	if !slices.ContainsFunc(s.Farm.Peers, func(p Peer) bool { return p.Node == 1000 && p.Role == "manager" && p.Active }) {
		t.Errorf("engine's farm link %+v", s.Farm)
	}

	// Through the control sockets, as `smsnmpd status` asks.
	ctx := context.Background()
	var got Snapshot
	if err := control.Call(ctx, mcfg.Control.Socket.Address(), control.CmdStatus, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Node != 1000 || got.Role != "manager" || len(got.Engines) != 1 || got.Manager == nil || len(got.Events) == 0 {
		t.Errorf("status over the socket: %+v", got)
	}
	var ps Process
	if err := control.Call(ctx, mcfg.Control.Socket.Address(), control.CmdStats, nil, &ps); err != nil ||
		ps.PID != os.Getpid() || ps.Goroutines < 1 || ps.HeapBytes == 0 {
		t.Errorf("stats: %+v, %v; want this process's pid, its goroutines, a heap", ps, err)
	}
	if err := control.Call(ctx, mcfg.Control.Socket.Address(), control.CmdStatus, control.StatusArgs{Engine: 9}, &got); err == nil {
		t.Error("status of an engine that does not run here answered")
	}
	var res control.PublishResult
	if err := control.Call(ctx, scfg.Control.Socket.Address(), control.CmdPublish,
		control.PublishArgs{Entries: []control.PublishEntry{{Key: "video/a.mp4", Size: 5}}}, &res); err != nil || res.Queued != 1 {
		t.Fatalf("publish: %+v, %v", res, err)
	}
	eventually(t, "the entry at the manager and accepted", func() bool {
		return mgr.Snapshot().Directory.Entries == 1 && se.Snapshot().Publisher.Pending == 0
	})
	if p := se.Snapshot().Publisher; p.Held != 1 || p.Ops != 1 || !slices.Equal(p.Managers, []uint32{1000}) {
		t.Errorf("publisher after the publish: %+v", p)
	}

	// The engine leaves: the manager records it.
	se.stop(t)
	eventually(t, "engine 7 down at the manager", func() bool {
		return hasEvent(mgr.Snapshot(), func(e Event) bool { return e.Kind == EventEngineDown && e.Engine == 7 })
	})
	// What the SE published was saved, by the one state-file writer.
	st, err := os.Stat(filepath.Join(scfg.Node.StateDir, publishedFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("published entries file: %v, %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(mcfg.Node.StateDir, "term.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("term file: %v, %v", st, err)
	}
}

// A snapshot survives JSON as the CLI and the status page read it.
func TestSnapshotJSONRoundTrip(t *testing.T) {
	leaktest.Check(t, "smsnmpd")
	farm := memnet.New(1472)
	mgr := start(t, testConfig(t, config.RoleManager, 1000), farm.Attach(true, memnet.Faults{}, 1))
	start(t, testConfig(t, config.RoleSE, 3), farm.Attach(false, memnet.Faults{}, 2))
	eventually(t, "the manager active, engine 3 up", func() bool {
		s := mgr.Snapshot()
		return s.Role == "manager" && len(s.Engines) == 1 && s.Engines[0].State == "up" && len(s.Events) >= 2
	})
	a := mgr.Snapshot()
	b1, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b1, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b1) != string(b2) {
		t.Errorf("JSON round trip differs:\n%s\n%s", b1, b2)
	}
	for _, key := range []string{`"role":"manager"`, `"engines":[{"id":3,`, `"events":[`, `"view":{"owner":1000,`, `"transport":{"sent":`} {
		if !strings.Contains(string(b1), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b1)
		}
	}
}

// When the active manager goes, the backup's snapshot says it took over,
// with a higher term, and the engine's says whom it follows now.
func TestSnapshotRecordsATakeover(t *testing.T) {
	leaktest.Check(t, "smsnmpd")
	farm := memnet.New(1472)
	sm := start(t, testConfig(t, config.RoleManager, 1000), farm.Attach(true, memnet.Faults{}, 1))
	eventually(t, "the SM active", func() bool { return sm.Snapshot().Role == "manager" })
	bcfg := testConfig(t, config.RoleManager, 1001)
	bcfg.Node.Priority = 50
	bsm := start(t, bcfg, farm.Attach(true, memnet.Faults{}, 2))
	se := start(t, testConfig(t, config.RoleSE, 4), farm.Attach(false, memnet.Faults{}, 3))
	eventually(t, "the BSM a backup with the engine up", func() bool {
		s := bsm.Snapshot()
		return s.Role == "backup" && s.Manager.Election == "backup" && s.Manager.Owner == 1000 && len(s.Engines) == 1 && s.Engines[0].State == "up"
	})
	term := sm.Snapshot().Term
	sm.stop(t)
	eventually(t, "the BSM active", func() bool { return bsm.Snapshot().Role == "manager" })
	b := bsm.Snapshot()
	if b.Term <= term || b.Manager.Cause != "takeover" ||
		!hasEvent(b, func(e Event) bool {
			return e.Kind == EventRole && e.Role == "manager" && e.Cause == "takeover" && e.Term == b.Term
		}) {
		t.Errorf("after the takeover: term %d (was %d), manager %+v, events %+v", b.Term, term, b.Manager, b.Events)
	}
	eventually(t, "the engine following the BSM", func() bool { s := se.Snapshot(); return s.View.Owner == 1001 && s.Term == b.Term })
}

// A manager of level 1 with a parent link: its snapshot shows the link
// (mode, policy, the parent's managers, the forwarding queue), and the
// parent lists it among its engines (its children).
func TestSnapshotOfTheParentLink(t *testing.T) {
	leaktest.Check(t, "smsnmpd")
	farm, dc := memnet.New(1472), memnet.New(1472)
	pcfg := testConfig(t, config.RoleManager, 2000)
	pcfg.Node.Level = 2
	parent := start(t, pcfg, dc.Attach(true, memnet.Faults{}, 1))
	ccfg := testConfig(t, config.RoleManager, 1000)
	ccfg.RMTP.Parent.Mode = config.ParentMulticast
	ccfg.Directory.Forward = config.ForwardSummary
	child := run(t, ccfg, Options{RMTP: farm.Attach(true, memnet.Faults{}, 2), ParentRMTP: dc.Attach(false, memnet.Faults{}, 3)})
	eventually(t, "the child active and forwarding, the parent hearing it", func() bool {
		s := child.Snapshot()
		return s.Role == "manager" && s.Parent != nil && s.Parent.Forwarder.Active &&
			slices.ContainsFunc(s.Parent.Link.Peers, func(p Peer) bool { return p.Node == 2000 && p.State == "alive" })
	})
	c := child.Snapshot()
	if c.Parent.Mode != "multicast" || c.Parent.Policy != "summary" || c.Parent.Forwarder.Pending != 0 {
		t.Errorf("parent link %+v", c.Parent)
	}
	if !hasEvent(c, func(e Event) bool { return e.Kind == EventParentLink && strings.Contains(e.Detail, "summary") }) {
		t.Errorf("child events %+v", c.Events)
	}
	eventually(t, "the child among the parent's engines", func() bool {
		s := parent.Snapshot()
		return len(s.Engines) == 1 && s.Engines[0].ID == 1000 && s.Engines[0].State == "up"
	})
	if d := parent.Snapshot().Directory; d == nil || d.ChildLookups == nil {
		t.Errorf("a level-2 manager's directory has no lookups with its children: %+v", d)
	}
}

// New failing halfway stops exactly what had started: the farm side (its
// transport closed, its goroutines gone) and the agent's socket (free to
// bind again), with the error naming the cause.
func TestFailedStartStopsWhatStarted(t *testing.T) {
	leaktest.Check(t, "smsnmpd")
	t.Run("manager: control socket path taken by a file", func(t *testing.T) {
		leaktest.Check(t, "smsnmpd")
		port := freePort(t)
		cfg := testConfig(t, config.RoleManager, 1000)
		cfg.SNMP.Listen = config.MustAddr(fmt.Sprintf("udp:127.0.0.1:%d", port))
		path := socketIn(t)
		if err := os.WriteFile(path, []byte("not a socket"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Control.Socket = config.MustAddr("unix:" + path)
		tr := memnet.New(1472).Attach(true, memnet.Faults{}, 1)
		if _, err := New(cfg, Options{RMTP: tr}); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("New: %v, want the control socket's error", err)
		}
		if err := tr.Send(rmtp.Down, []byte("x")); !errors.Is(err, rmtp.ErrClosed) {
			t.Errorf("the farm's transport is still open: %v", err)
		}
		again, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Errorf("the agent's port is still held: %v", err)
		} else {
			again.Close()
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "not a socket" {
			t.Errorf("the file at the socket path was touched: %q, %v", b, err)
		}
	})
	t.Run("engine: content root missing, after it joined the farm", func(t *testing.T) {
		leaktest.Check(t, "smsnmpd")
		cfg := testConfig(t, config.RoleSE, 5)
		cfg.SE.ContentRoot = filepath.Join(t.TempDir(), "missing")
		tr := memnet.New(1472).Attach(false, memnet.Faults{}, 1)
		if _, err := New(cfg, Options{RMTP: tr}); err == nil || !strings.Contains(err.Error(), "se.content_root") {
			t.Fatalf("New: %v, want the content root's error", err)
		}
		if err := tr.Send(rmtp.Down, []byte("x")); !errors.Is(err, rmtp.ErrClosed) {
			t.Errorf("the farm's transport is still open: %v", err)
		}
	})
	t.Run("before the farm: state directory is a file", func(t *testing.T) {
		leaktest.Check(t, "smsnmpd")
		cfg := testConfig(t, config.RoleSE, 5)
		cfg.Node.StateDir = filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(cfg.Node.StateDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		tr := memnet.New(1472).Attach(false, memnet.Faults{}, 1)
		if _, err := New(cfg, Options{RMTP: tr}); err == nil || !strings.Contains(err.Error(), "node.state_dir") {
			t.Fatalf("New: %v, want the state directory's error", err)
		}
		// Nothing had started: the transport the caller gave is its own.
		if err := tr.Send(rmtp.Down, []byte("x")); err != nil {
			t.Errorf("the unused transport was closed: %v", err)
		}
		tr.Close()
	})
}

// Run runs once, not after Shutdown; Shutdown is idempotent and works on
// a node that never ran.
func TestRunAndShutdown(t *testing.T) {
	leaktest.Check(t, "smsnmpd")
	farm := memnet.New(1472)
	n, err := New(testConfig(t, config.RoleManager, 1000), Options{RMTP: farm.Attach(true, memnet.Faults{}, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	eventually(t, "Run running", func() bool {
		n.lifeMu.Lock()
		defer n.lifeMu.Unlock()
		return n.runDone != nil
	})
	if err := n.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("a second Run: %v, want ErrRunning", err)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("Run after Shutdown: %v, want ErrStopped", err)
	}
	if s := n.Snapshot(); s.Node != 1000 {
		t.Errorf("snapshot after Shutdown: %+v", s)
	}

	idle, err := New(testConfig(t, config.RoleSE, 2), Options{RMTP: farm.Attach(false, memnet.Faults{}, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a node that never ran: %v", err)
	}
}

// The event ring keeps the last MaxEvents, oldest first, and counts all.
func TestEventRingKeepsTheLast(t *testing.T) {
	var r eventRing
	if ev, total := r.list(); len(ev) != 0 || total != 0 {
		t.Fatalf("empty ring: %v, %d", ev, total)
	}
	for i := range MaxEvents + 10 {
		r.add(Event{Kind: EventEngineUp, Engine: uint32(i)})
	}
	ev, total := r.list()
	if total != MaxEvents+10 || len(ev) != MaxEvents {
		t.Fatalf("%d events of %d kept, want %d of %d", len(ev), total, MaxEvents, MaxEvents+10)
	}
	for i, e := range ev {
		if e.Engine != uint32(i+10) || e.Time.IsZero() {
			t.Fatalf("event %d: %+v, want engine %d, stamped", i, e, i+10)
		}
	}
}
