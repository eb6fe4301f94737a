package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// shutdownGrace bounds a clean stop: operators and systemd expect SIGTERM
// to end the process within 2 s.
const shutdownGrace = 1500 * time.Millisecond

// Node is one running smsnmpd node: its handler trees and the northbound
// frontends serving them.
type Node struct {
	cfg  *config.Config
	log  logrus.FieldLogger
	role atomic.Int32 // mib.Role

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

	wg   sync.WaitGroup
	errs chan error
}

// Options are what the command line adds to the configuration.
type Options struct {
	Descr   string         // sysDescr
	Version string         // the AgentX session's description
	RMTP    rmtp.Transport // nil: open the configured multicast groups
}

// New builds the trees and binds the sockets, so that every error an
// operator can fix (an address in use, a bad socket path) is reported
// before anything runs.
func New(cfg *config.Config, log logrus.FieldLogger, opts Options) (*Node, error) {
	n := &Node{cfg: cfg, log: log, udp: agent.NewContexts(), ax: agent.NewContexts(), errs: make(chan error, 4), started: time.Now()}
	n.role.Store(int32(roleOf(cfg)))

	var store mib.Store
	if cfg.Node.StateDir != "" {
		// systemd's StateDirectory= creates it in production; a node started
		// by hand (etc/*.toml) creates its own, private to the service user.
		if err := os.MkdirAll(cfg.Node.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("node.state_dir: %w", err)
		}
		store = mib.NewFileStore(filepath.Join(cfg.Node.StateDir, "system.json"))
		if v := os.Getenv(crashAfterSaveEnv); v != "" && cfg.Node.Role == config.RoleSE {
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
		return nil, fmt.Errorf("system group: %w", err)
	}
	n.system = sys
	for _, c := range []*agent.Contexts{n.udp, n.ax} {
		if err := n.registerServiceManagerMIB(c.Default()); err != nil {
			return nil, err
		}
	}

	if !cfg.SNMP.Listen.IsZero() {
		scfg, err := snmpConfig(cfg, log)
		if err != nil {
			return nil, err
		}
		a, err := snmp.New(scfg, n.udp, log)
		if err != nil {
			return nil, err
		}
		if err := a.RegisterSNMPGroup(n.udp.Default()); err != nil {
			return nil, fmt.Errorf("snmp group: %w", err)
		}
		ap, err := netip.ParseAddrPort(cfg.SNMP.Listen.Address())
		if err != nil {
			return nil, fmt.Errorf("snmp.listen: %w", err)
		}
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return nil, fmt.Errorf("snmp.listen: %w", err)
		}
		n.v2c, n.udpConn = a, conn
	}
	if !cfg.AgentX.Socket.IsZero() {
		axcfg := agentx.FromConfig(cfg.AgentX)
		axcfg.Description = "smsnmpd " + opts.Version
		axcfg.Priority = n.agentxPriority(roleOf(cfg)) // a manager starts as a backup
		axcfg.MaxInFlight = cfg.SNMP.MaxInFlight
		n.subagent = agentx.New(axcfg, n.ax, log)
	}
	if n.v2c == nil && n.subagent == nil && cfg.Node.Role == config.RoleManager {
		return nil, errors.New("a manager needs a northbound agent: set snmp.listen or agentx.socket")
	}
	// The farm side last: everything above can fail without having joined
	// the group.
	if cfg.Node.Role == config.RoleSE {
		// An SE answers its managers from the same tree its own agent
		// (if any) serves: system, node and smSe groups.
		n.farm, err = startSE(cfg, opts.RMTP, n.udp.Default(), store, n.system.Name, log)
	} else {
		n.farm, err = startManager(cfg, opts.RMTP, log, managerHooks{onEvent: n.engineEvent, onRole: n.roleChange, send: n.notify, name: n.system.Name})
		if err == nil {
			err = n.registerFarmMIB()
		}
		if err == nil {
			err = n.startHierarchy()
		}
	}
	if err != nil {
		n.closeFarm()
		n.closeSockets()
		return nil, fmt.Errorf("farm: %w", err)
	}
	if !cfg.Control.Socket.IsZero() {
		if err := n.listenControl(cfg.Control.Socket.Address(), n.controlHandler()); err != nil {
			n.closeFarm()
			n.closeSockets()
			return nil, err
		}
	}
	return n, nil
}

// ListenControl serves the control socket at path for this node and the
// SEs given (the demo runs several in one process: publish to any of them,
// look up at this one).
func (n *Node) ListenControl(path string, engines ...*Node) error {
	h := n.controlHandler()
	for _, e := range engines {
		if e.farm != nil && e.farm.content != nil {
			h.engines[e.cfg.Node.ID] = e.farm.content
		}
	}
	return n.listenControl(path, h)
}

func (n *Node) controlHandler() *controlHandler {
	h := &controlHandler{dir: n.farm.dir, node: n.cfg.Node.ID, at: nodeLocation(n.cfg), engines: map[uint32]*contentSide{}}
	if n.lookups != nil {
		h.resolver = n.lookups.res
	}
	if n.farm.content != nil {
		h.engines[n.cfg.Node.ID] = n.farm.content
	}
	return h
}

func (n *Node) listenControl(path string, h *controlHandler) error {
	srv, err := control.Listen(path, h.handle, n.log)
	if err != nil {
		return fmt.Errorf("control.socket: %w", err)
	}
	n.control = srv
	return nil
}

// startHierarchy joins the parent level (levels 1..3 with rmtp.parent)
// and starts the resolver across levels.
func (n *Node) startHierarchy() error {
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
		l, err := startParentLink(n.cfg, n.farm.dir, t, ep.Term, n.farm.subtree, n.system.Name, n.log)
		if err != nil {
			return err
		}
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
		default:
			st.Policy = mib.ForwardFull
		}
		fs := p.fw.Stats()
		st.Active, st.Pending, st.Ops, st.Bytes = fs.Active, uint64(max(fs.Pending, 0)), fs.Ops, fs.Bytes
		st.Retries, st.Overflows, st.Resyncs = fs.Retries, fs.Overflows, fs.Resyncs
		links = append(links, p.up.Stats())
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

// registerFarmMIB puts the manager's farm objects (engine table,
// aggregates, per-engine proxy, all-engines SET, transport counters) on
// both frontends' trees.
func (n *Node) registerFarmMIB() error {
	counters := func() rmtp.Counters { return n.farm.ep.Stats().Counters }
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

func (n *Node) closeSockets() {
	if n.udpConn != nil {
		n.udpConn.Close()
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

// Start runs the frontends until ctx is done.
func (n *Node) Start(ctx context.Context) {
	if n.v2c != nil {
		n.log.WithField("listen", n.udpConn.LocalAddr().String()).Info("built-in SNMPv2c agent serving")
		n.spawn(func() error { return n.v2c.Serve(ctx, n.udpConn) })
	}
	if n.subagent != nil {
		n.log.WithField("master", n.cfg.AgentX.Socket.String()).Info("AgentX subagent starting")
		n.spawn(func() error { return n.subagent.Run(ctx) })
	}
}

func (n *Node) spawn(f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			n.errs <- err
		}
	}()
}

// Errs reports a frontend that failed.
func (n *Node) Errs() <-chan error { return n.errs }

// Role is smNodeRole now.
func (n *Node) Role() mib.Role { return mib.Role(n.role.Load()) }

// Stop waits, at most shutdownGrace, for the frontends to finish after
// their context was cancelled, and closes the sockets.
func (n *Node) Stop() error {
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		err = fmt.Errorf("shutdown: frontends still busy after %v", shutdownGrace)
	}
	if n.control != nil {
		n.control.Close()
	}
	if ferr := n.closeFarm(); ferr != nil && err == nil {
		err = ferr
	}
	n.closeSockets()
	return err
}

// crashAfterSaveEnv is a test-only knob, not a configuration key: set to
// KEY=VALUE (e.g. smSeWeight=7) in an SE's environment, the SE kills
// itself with SIGKILL right after it persisted that value, before it
// answers the COMMIT that wrote it. test/e2e uses it to interrupt a SET
// deterministically at its worst moment (an engine that has written and
// persisted the new value while the others will undo it). Nothing else
// reads it; never set it on a production node.
const crashAfterSaveEnv = "SMSNMPD_TEST_CRASH_AFTER_SAVE"

// crashStore is a Store that dies after one particular save.
type crashStore struct {
	mib.Store
	key, value string
}

func crashAfterSave(s mib.Store, spec string, log logrus.FieldLogger) mib.Store {
	key, value, ok := strings.Cut(spec, "=")
	if !ok {
		log.WithField(crashAfterSaveEnv, spec).Warn("test knob ignored: not KEY=VALUE")
		return s
	}
	log.WithField(crashAfterSaveEnv, spec).Warn("test knob set: this SE kills itself after saving that value")
	return &crashStore{Store: s, key: key, value: value}
}

func (c *crashStore) Save(key, value string) error {
	err := c.Store.Save(key, value)
	if err == nil && key == c.key && value == c.value {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	return err
}
