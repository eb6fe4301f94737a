package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/control"
	"github.com/smsnmpd/smsnmpd/internal/election"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// ShutdownGrace is how long a clean stop may wait for the frontends:
// operators and systemd expect SIGTERM to end the process within 2 s.
const ShutdownGrace = 1500 * time.Millisecond

// Errors of the node's life.
var (
	// ErrRunning: Run was called while the node runs.
	ErrRunning = errors.New("node: already running")
	// ErrStopped: Run was called after Shutdown.
	ErrStopped = errors.New("node: stopped")
)

// Node is one running smsnmpd node: its handler trees, the northbound
// frontends serving them, and its farm side (an SE's responder and
// publisher, or a manager's coordinator, directory, election and links).
type Node struct {
	cfg     *config.Config
	log     logrus.FieldLogger
	version string
	role    atomic.Int32 // mib.Role

	// udp is what the built-in agent serves: the SNMPv2-MIB system and snmp
	// groups and SERVICE-MANAGER-MIB. ax is what is registered with snmpd,
	// SERVICE-MANAGER-MIB only, because snmpd serves its own system group.
	udp, ax *agent.Contexts
	system  *mib.System
	started time.Time // sysUpTime counts from here

	v2c      *snmp.Agent
	udpConn  *net.UDPConn
	subagent *agentx.Subagent
	// The farm objects of each frontend, set once registered; the
	// coordinator's event goroutine (engine contexts) reads them.
	mgrMu      sync.Mutex
	axManager  *mib.Manager // registered with snmpd
	udpManager *mib.Manager // served by the built-in agent
	farm       *southbound
	parent     *parentLink // a manager of level 1..3 with a parent; guarded by mgrMu
	lookups    *lookups    // a manager's resolver across levels
	control    *control.Server
	events     eventRing // what Snapshot shows of the node's recent past

	// stops is what New started, stopped in reverse by Shutdown (or by New
	// itself when it fails halfway).
	stops teardown
	// The life of Run: guarded by lifeMu.
	lifeMu    sync.Mutex
	runCancel context.CancelFunc
	runDone   chan struct{}
	stopped   bool
}

// Options are what the caller adds to the configuration.
type Options struct {
	Descr   string             // sysDescr
	Version string             // the software's version: the AgentX session's description, Snapshot
	Logger  logrus.FieldLogger // nil: discard
	// RMTP is the transport of the node's own group (tests, an in-memory
	// network); nil opens the configured multicast groups or unicast peers.
	RMTP rmtp.Transport
	// ParentRMTP is the transport of a manager's parent link (tests); nil
	// opens rmtp.parent as configured.
	ParentRMTP rmtp.Transport
	// CrashAfterSave is a test-only knob ("KEY=VALUE", e.g.
	// "smSeWeight=7"): an SE kills itself with SIGKILL right after it
	// persisted that value (crash.go). Empty on every real node.
	CrashAfterSave string
}

// New builds the trees, binds the sockets and joins the farm, so that every
// error an operator can fix (an address in use, a bad socket path) is
// reported before the frontends serve. The farm side runs from here on (an
// SE answers its managers, a manager takes part in the election); Run
// serves the northbound frontends, Shutdown stops everything. When New
// fails, what it had started is stopped again.
func New(cfg *config.Config, opts Options) (*Node, error) {
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	n := &Node{cfg: cfg, log: log, version: opts.Version, udp: agent.NewContexts(), ax: agent.NewContexts(), started: time.Now()}
	n.role.Store(int32(roleOf(cfg)))
	if err := n.start(opts); err != nil {
		if serr := n.stops.run(); serr != nil {
			log.WithError(serr).Warn("stopping what had started")
		}
		return nil, err
	}
	return n, nil
}

func (n *Node) start(opts Options) error {
	cfg, log := n.cfg, n.log
	var store mib.Store
	if cfg.Node.StateDir != "" {
		// systemd's StateDirectory= creates it in production; a node started
		// by hand (etc/*.toml) creates its own, private to the service user.
		if err := os.MkdirAll(cfg.Node.StateDir, 0o700); err != nil {
			return fmt.Errorf("node.state_dir: %w", err)
		}
		store = mib.NewFileStore(filepath.Join(cfg.Node.StateDir, "system.json"))
		if v := opts.CrashAfterSave; v != "" && cfg.Node.Role == config.RoleSE {
			store = crashAfterSave(store, v, log)
		}
	}
	sys, err := mib.RegisterSystem(n.udp.Default(), mib.SystemConfig{
		Descr:    opts.Descr,
		Contact:  cfg.System.Contact,
		Name:     cfg.System.Name,
		Location: cfg.System.Location,
		Store:    store,
		Start:    n.started,
	})
	if err != nil {
		return fmt.Errorf("system group: %w", err)
	}
	n.system = sys
	for _, c := range []*agent.Contexts{n.udp, n.ax} {
		if err := n.registerServiceManagerMIB(c.Default()); err != nil {
			return err
		}
	}

	if !cfg.SNMP.Listen.IsZero() {
		scfg, err := snmpConfig(cfg, log)
		if err != nil {
			return err
		}
		a, err := snmp.New(scfg, n.udp, log)
		if err != nil {
			return err
		}
		if err := a.RegisterSNMPGroup(n.udp.Default()); err != nil {
			return fmt.Errorf("snmp group: %w", err)
		}
		ap, err := netip.ParseAddrPort(cfg.SNMP.Listen.Address())
		if err != nil {
			return fmt.Errorf("snmp.listen: %w", err)
		}
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("snmp.listen: %w", err)
		}
		n.v2c, n.udpConn = a, conn
		n.stops.push(conn.Close)
	}
	if !cfg.AgentX.Socket.IsZero() {
		axcfg := agentx.FromConfig(cfg.AgentX)
		axcfg.Description = "smsnmpd " + opts.Version
		axcfg.Priority = n.agentxPriority(roleOf(cfg)) // a manager starts as a backup
		axcfg.MaxInFlight = cfg.SNMP.MaxInFlight
		n.subagent = agentx.New(axcfg, n.ax, log)
	}
	if n.v2c == nil && n.subagent == nil && cfg.Node.Role == config.RoleManager {
		return errors.New("a manager needs a northbound agent: set snmp.listen or agentx.socket")
	}
	// The farm side last: everything above can fail without having joined
	// the group.
	n.stops.push(n.closeFarm)
	if cfg.Node.Role == config.RoleSE {
		// An SE answers its managers from the same tree its own agent
		// (if any) serves: system, node and smSe groups.
		n.farm, err = startSE(cfg, opts.RMTP, n.udp.Default(), store, n.system.Name, log)
	} else {
		n.farm, err = startManager(cfg, opts.RMTP, log, managerHooks{onEvent: n.engineEvent, onRole: n.roleChange, send: n.notify, name: n.system.Name, event: n.events.add})
		if err == nil {
			err = n.registerFarmMIB()
		}
		if err == nil {
			err = n.startHierarchy(opts.ParentRMTP)
		}
	}
	if err != nil {
		return fmt.Errorf("farm: %w", err)
	}
	if !cfg.Control.Socket.IsZero() {
		if err := n.ListenControl(cfg.Control.Socket.Address()); err != nil {
			return err
		}
	}
	return nil
}

// ListenControl serves the control socket at path (control.socket does it
// for a node of its own) for this node and the SEs given: the demo runs
// several in one process, and its one socket publishes to any of them and
// looks up at this one. Shutdown closes it.
func (n *Node) ListenControl(path string, engines ...*Node) error {
	h := n.controlHandler(engines)
	srv, err := control.Listen(path, h.handle, n.log)
	if err != nil {
		return fmt.Errorf("control.socket: %w", err)
	}
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.stopped {
		srv.Close()
		return ErrStopped
	}
	n.control = srv
	n.stops.push(srv.Close)
	return nil
}

// startHierarchy joins the parent level (levels 1..3 with rmtp.parent)
// and starts the resolver across levels.
func (n *Node) startHierarchy(tr rmtp.Transport) error {
	if n.cfg.RMTP.Parent.Mode != config.ParentNone && n.cfg.RMTP.Parent.Mode != "" {
		// What the parent's management operations see of this manager:
		// its node group and directory, read-only.
		t := agent.NewTree()
		if err := n.registerServiceManagerMIB(t); err != nil {
			return err
		}
		if err := mib.RegisterDirectory(t, mib.DirectoryConfig{Source: directoryRows{n.farm.dir}, Limit: n.cfg.Directory.SNMPMaxRows}); err != nil {
			return err
		}
		ep := n.farm.ep
		l, err := startParentLink(n.cfg, tr, n.farm.dir, t, ep.Term, n.farm.subtree, n.system.Name, n.log)
		if err != nil {
			return err
		}
		n.events.add(Event{Kind: EventParentLink, Detail: string(n.cfg.RMTP.Parent.Mode) + ", forward " + l.policy.String()})
		n.mgrMu.Lock()
		n.parent = l
		// Only the active manager of a level forwards upward; a takeover
		// re-announces the whole directory (roleChange).
		l.fw.SetActive(mib.Role(n.role.Load()) == mib.RoleManager)
		n.mgrMu.Unlock()
	}
	lk, err := startLookups(n.cfg, n.farm, n.parent, n.log)
	if err != nil {
		return err
	}
	n.mgrMu.Lock()
	n.lookups = lk
	n.mgrMu.Unlock()
	return nil
}

// forwardingStats is smDirectoryHierarchy: the parent link's forwarder
// and the lookups answered for other levels.
func (n *Node) forwardingStats() mib.ForwardingStats {
	st := mib.ForwardingStats{Policy: mib.ForwardNoParent}
	n.mgrMu.Lock()
	p, lk := n.parent, n.lookups
	n.mgrMu.Unlock()
	var links []directory.LinkStats
	if p != nil {
		switch p.policy {
		case directory.PolicySummary:
			st.Policy = mib.ForwardSummary
		case directory.PolicyNone:
			st.Policy = mib.ForwardNone
		case directory.PolicyDigest:
			st.Policy = mib.ForwardDigest
		default:
			st.Policy = mib.ForwardFull
		}
		fs := p.fw.Stats()
		st.Active, st.Pending, st.Ops, st.Bytes = fs.Active, uint64(max(fs.Pending, 0)), fs.Ops, fs.Bytes
		st.Retries, st.Overflows, st.Resyncs = fs.Retries, fs.Overflows, fs.Resyncs
		if p.policy == directory.PolicyDigest {
			st.DigestSize, st.DigestKeys, st.DigestBytes = (fs.DigestBits+7)/8, fs.DigestKeys, fs.Bytes
			st.DigestFill, st.DigestFPRate = fs.DigestFill, fs.DigestFP
		}
		links = append(links, p.up.Stats())
	}
	if lk != nil {
		st.DigestFalseHits = lk.res.Stats().FalseHits
	}
	if lk != nil && lk.down != nil {
		links = append(links, lk.down.Stats())
	}
	for _, l := range links {
		st.Lookups += l.Served + l.Dropped
		st.LookupFailures += l.Failed + l.Dropped
	}
	return st
}

// closeFarm stops what runs on rmtp: the resolver, the parent link, the
// farm side.
func (n *Node) closeFarm() error {
	var errs []error
	n.mgrMu.Lock()
	p, lk := n.parent, n.lookups
	n.parent, n.lookups = nil, nil
	n.mgrMu.Unlock()
	if lk != nil {
		lk.close()
	}
	if p != nil {
		errs = append(errs, p.close())
	}
	if n.farm != nil {
		errs = append(errs, n.farm.close())
	}
	return errors.Join(errs...)
}

// transportCounters are the endpoint's counters that smTransport shows.
func transportCounters(c rmtp.Counters) mib.TransportCounters {
	return mib.TransportCounters{
		Sent: c.Sent, Received: c.Received, Retransmits: c.Retransmits,
		NaksSent: c.NaksSent, NaksReceived: c.NaksReceived, NaksSuppressed: c.NaksSuppressed,
		Duplicates: c.Duplicates, AuthFailures: c.AuthFailures, Aborts: c.Aborts, AbortsReceived: c.AbortsReceived,
		LateReplies: c.LateReplies, DatagramsSent: c.DatagramsSent, DatagramsReceived: c.DatagramsReceived,
		Replays: c.Replays, Dropped: c.Dropped, Malformed: c.Malformed,
	}
}

// registerFarmMIB puts the manager's farm objects (engine table,
// aggregates, per-engine proxy, all-engines SET, transport counters) on
// both frontends' trees.
func (n *Node) registerFarmMIB() error {
	counters := func() mib.TransportCounters { return transportCounters(n.farm.ep.Stats().Counters) }
	for _, c := range []*agent.Contexts{n.udp, n.ax} {
		t := c.Default()
		m, err := mib.RegisterManager(t, mib.ManagerConfig{Farm: n.farm.coord, State: n.farm.state, Start: n.started, Logger: n.log})
		if err != nil {
			return err
		}
		n.mgrMu.Lock()
		if c == n.ax {
			n.axManager = m
		} else {
			n.udpManager = m
		}
		n.mgrMu.Unlock()
		if err := mib.RegisterTransport(t, counters); err != nil {
			return err
		}
		if err := mib.RegisterDirectory(t, mib.DirectoryConfig{Source: directoryRows{n.farm.dir}, Limit: n.cfg.Directory.SNMPMaxRows}); err != nil {
			return err
		}
		if err := mib.RegisterForwarding(t, mib.ForwardingConfig{Stats: n.forwardingStats}); err != nil {
			return err
		}
		if err := mib.RegisterSubtree(t, n.farm.subtree); err != nil {
			return err
		}
	}
	// Engines that came up while the objects were being registered got no
	// context from their event; give them one now.
	for _, e := range n.farm.coord.Engines() {
		if e.State != fanout.EngineDown {
			n.engineContext(e.ID)
		}
	}
	return nil
}

// engineContext serves engine id under the SNMP context "se<id>", so an
// NMS reaches one SE with its usual OIDs: through snmpd (SNMPv3 context, or
// a community mapped to it) and on the built-in agent (community
// "public@se<id>"). The context stays when the engine goes down (it answers
// noSuchInstance meanwhile): its name, like its smEngineTable row, is
// stable across restarts.
func (n *Node) engineContext(id fanout.NodeID) {
	// Above the farm the "engines" are the child levels' managers, which
	// serve SNMP themselves: no "se<N>" context for them.
	if !n.cfg.Manager.EngineContexts || n.cfg.Node.Level > 1 {
		return
	}
	name := mib.EngineContextName(id)
	n.mgrMu.Lock()
	fronts := []struct {
		c *agent.Contexts
		m *mib.Manager
	}{{n.udp, n.udpManager}, {n.ax, n.axManager}}
	n.mgrMu.Unlock()
	for _, fe := range fronts {
		if fe.m == nil || fe.c.Tree(name) != nil {
			continue
		}
		t, err := fe.m.EngineTree(id)
		if err != nil {
			n.log.WithError(err).WithField("engine", id).Warn("no SNMP context for engine")
			return
		}
		fe.c.Set(name, t)
	}
	if n.subagent == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.subagent.Sync(ctx); err != nil && !errors.Is(err, agentx.ErrNotConnected) {
		n.log.WithError(err).WithField("context", name).Warn("registering engine context with snmpd failed; retried at the next session")
	}
}

// engineEvent gives an engine that came up its SNMP context. Its
// smEngineUp/smEngineDown is the farm side's (startManager): only the
// active manager sends it.
func (n *Node) engineEvent(ev fanout.EngineEvent) {
	e := Event{Time: ev.At, Kind: EventEngineDown, Engine: uint32(ev.Engine.ID), Incarnation: ev.Engine.Incarnation}
	switch {
	case ev.Restarted:
		e.Kind = EventEngineRestarted
	case ev.Up:
		e.Kind = EventEngineUp
	}
	n.events.add(e)
	if ev.Up {
		n.engineContext(ev.Engine.ID)
	}
}

// notify sends a notification through every northbound frontend: to the
// trap sinks of the built-in agent, and through snmpd in AgentX mode.
// mib.Notifier calls it, on the active manager only.
func (n *Node) notify(ctx context.Context, oid smi.OID, vbs []smi.VarBind) {
	if n.v2c != nil && n.v2c.HasSinks() {
		if err := n.v2c.Notify(ctx, oid, vbs); err != nil {
			n.log.WithError(err).Warn("notification to trap sinks failed")
		}
	}
	if n.subagent != nil {
		if err := n.subagent.Notify(ctx, oid, vbs); err != nil {
			n.log.WithError(err).Warn("notification through the AgentX master failed")
		}
	}
}

// roleOf is smNodeRole at start: a manager is a backup until the
// election makes it the active one.
func roleOf(cfg *config.Config) mib.Role {
	if cfg.Node.Role == config.RoleSE {
		return mib.RoleEngine
	}
	return mib.RoleBackup
}

// roleChange follows the election: smNodeRole and the AgentX registration
// priority (the active manager holds the better one, so a shared snmpd
// routes to it). smManagerTakeover is the farm side's (southbound's
// roleChange), sent after this returns.
func (n *Node) roleChange(c election.Change) {
	role := mib.RoleBackup
	if c.Role == election.Active {
		role = mib.RoleManager
	}
	n.role.Store(int32(role))
	n.events.add(Event{Kind: EventRole, Role: role.String(), Cause: c.Cause.String(), Term: c.Term})
	n.mgrMu.Lock()
	if n.parent != nil {
		n.parent.fw.SetActive(role == mib.RoleManager) // only the active manager forwards upward
	}
	n.mgrMu.Unlock()
	n.log.WithFields(logrus.Fields{"role": role.String(), "term": c.Term, "cause": c.Cause.String()}).Info("northbound role")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n.subagent != nil {
		if err := n.subagent.SetPriority(ctx, n.agentxPriority(role)); err != nil && !errors.Is(err, agentx.ErrNotConnected) {
			n.log.WithError(err).Warn("changing the AgentX registration priority failed")
		}
	}
}

// agentxPriority: lower wins in snmpd; a backup registers one worse.
func (n *Node) agentxPriority(role mib.Role) uint8 {
	p := n.cfg.AgentX.Priority
	if role != mib.RoleManager && p < 255 {
		p++
	}
	return uint8(p)
}

// registerServiceManagerMIB puts this node's SERVICE-MANAGER-MIB objects on
// a tree. It runs once per frontend tree; the objects read shared state.
func (n *Node) registerServiceManagerMIB(t *agent.Tree) error {
	level := n.cfg.Node.Level
	if n.cfg.Node.Role == config.RoleSE {
		level = 1
	}
	err := mib.RegisterNode(t, mib.NodeInfo{
		Role:  func() mib.Role { return mib.Role(n.role.Load()) },
		Level: level,
		ID:    n.cfg.Node.ID,
		// smViewTerm: the term of the view this node follows (an SE) or
		// owns (the active manager); 0 before the farm is joined.
		Term: func() uint64 {
			if f := n.farm; f != nil && f.ep != nil {
				return f.ep.View().Term
			}
			return 0
		},
	})
	if err != nil {
		return err
	}
	return mib.RegisterActivePeer(t, func() uint32 {
		if f := n.farm; f != nil && f.ep != nil {
			return activePeer(f.ep)
		}
		return 0
	})
}

// Run serves the northbound frontends (the built-in SNMP agent, the AgentX
// subagent) until ctx is done or one of them fails, then stops them and
// waits for them: it returns nil after ctx ended, else the failure. A node
// without frontends (an SE that only answers its managers) waits for ctx.
// Run runs once; Shutdown stops the rest of the node.
func (n *Node) Run(ctx context.Context) error {
	n.lifeMu.Lock()
	switch {
	case n.stopped:
		n.lifeMu.Unlock()
		return ErrStopped
	case n.runDone != nil:
		n.lifeMu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	n.runCancel, n.runDone = cancel, done
	n.lifeMu.Unlock()
	defer close(done)
	defer cancel()

	var wg sync.WaitGroup
	failed := make(chan error, 2)
	spawn := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				failed <- err
			}
		}()
	}
	if n.v2c != nil {
		n.log.WithField("listen", n.udpConn.LocalAddr().String()).Info("built-in SNMPv2c agent serving")
		spawn(func() error { return n.v2c.Serve(ctx, n.udpConn) })
	}
	if n.subagent != nil {
		n.log.WithField("master", n.cfg.AgentX.Socket.String()).Info("AgentX subagent starting")
		spawn(func() error { return n.subagent.Run(ctx) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}
	cancel()
	wg.Wait()
	return err
}

// Role is smNodeRole now.
func (n *Node) Role() mib.Role { return mib.Role(n.role.Load()) }

// Active reports whether the node is the active manager of its level.
func (n *Node) Active() bool { return n.Role() == mib.RoleManager }

// Shutdown stops the node: it ends Run, waits for the frontends until ctx
// is done (ShutdownGrace is what an operator expects), then closes the
// control socket, the parent link, the farm side (an SE leaves its group
// gracefully) and the sockets, in the reverse order of their start. It
// returns an error when the frontends did not finish in time (everything
// is closed all the same) or a component failed to close. A second call
// does nothing.
func (n *Node) Shutdown(ctx context.Context) error {
	n.lifeMu.Lock()
	if n.stopped {
		n.lifeMu.Unlock()
		return nil
	}
	n.stopped = true
	cancel, done := n.runCancel, n.runDone
	n.lifeMu.Unlock()
	var err error
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("shutdown: frontends still busy: %w", ctx.Err())
		}
	}
	if serr := n.stops.run(); serr != nil && err == nil {
		err = serr
	}
	return err
}
