package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/fanout"
	fwire "github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/election"
	"github.com/smsnmpd/smsnmpd/internal/hoststat"
	"github.com/smsnmpd/smsnmpd/internal/replica"
	rwire "github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// southbound is a node's side of its farm: the rmtp endpoint and what runs
// on it (an SE's responder, or a manager's coordinator).
type southbound struct {
	tr    rmtp.Transport
	ep    *rmtp.Endpoint
	resp  *fanout.Responder
	coord *fanout.Coordinator
	se    *mib.SE

	content *contentSide       // SE: its published entries
	dir     *directory.Manager // manager: the directory of its level
	elector *election.Elector  // manager: active or backup
	// A manager's state beyond the farm's (counter sums,
	// reconciliations), its notifications, and the session that
	// replicates both to the backups.
	state    *mib.FarmState
	notifier *mib.Notifier
	replica  *replica.Replicator
	// A manager's totals of everything below it (smSubtree), which its
	// heartbeats report to its parent and to the other managers.
	subtree *mib.Subtree

	stops teardown // what started, stopped in reverse by close
}

// teardown stops what a node started, last started first: a component
// is pushed as soon as it runs, so a failure halfway through start-up
// stops exactly what had started.
type teardown []func() error

func (t *teardown) push(stop func() error) { *t = append(*t, stop) }

// pushClose pushes a Close that returns nothing.
func (t *teardown) pushClose(stop func()) { t.push(func() error { stop(); return nil }) }

func (t *teardown) run() error {
	var errs []error
	for i := len(*t) - 1; i >= 0; i-- {
		errs = append(errs, (*t)[i]())
	}
	*t = nil
	return errors.Join(errs...)
}

// rmtpEndpoint opens the farm's multicast groups and the endpoint on them.
// The transport is given (tests and the demo pass their own) or opened from
// the configuration.
func rmtpEndpoint(cfg *config.Config, tr rmtp.Transport, log logrus.FieldLogger, helloApp func() []byte) (rmtp.Transport, *rmtp.Endpoint, error) {
	role := rmtp.Engine
	if cfg.Node.Role == config.RoleManager {
		role = rmtp.Manager
	}
	keys, err := rmtpKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	if tr == nil && cfg.RMTP.Mode == config.ParentUnicast {
		tr, err = listenUnicast("rmtp", cfg.RMTP.Listen, cfg.RMTP.Peers, cfg.RMTP.RecvBuffer, log)
		if err != nil {
			return nil, nil, err
		}
	}
	if tr == nil {
		down, err := groupAddr(cfg.RMTP.Group, cfg.RMTP.Port)
		if err != nil {
			return nil, nil, fmt.Errorf("rmtp.group: %w", err)
		}
		up, err := groupAddr(cfg.RMTP.ManagerGroup, cfg.RMTP.Port)
		if err != nil {
			return nil, nil, fmt.Errorf("rmtp.manager_group: %w", err)
		}
		u, err := rmtp.ListenMulticast(rmtp.MulticastConfig{
			Interface: cfg.RMTP.Interface, Down: down, Up: up, JoinUp: role == rmtp.Manager,
			TTL: cfg.RMTP.TTL, ReadBuffer: cfg.RMTP.RecvBuffer, Logger: log,
		})
		if err != nil {
			return nil, nil, err
		}
		tr = u
	}
	level := cfg.Node.Level
	if role == rmtp.Engine {
		level = 1
	}
	ep, err := rmtp.New(tr, rmtpConfig(cfg, role, level, keys, helloApp, log))
	if err != nil {
		tr.Close()
		return nil, nil, err
	}
	return tr, ep, nil
}

// rmtpConfig is the endpoint configuration of both of a node's groups
// (its own, and a manager's parent link): the same timers, caps and keys.
func rmtpConfig(cfg *config.Config, role rmtp.Role, level int, keys *rmtp.Keyring, helloApp func() []byte, log logrus.FieldLogger) rmtp.Config {
	return rmtp.Config{
		Node: rmtp.NodeID(cfg.Node.ID), Role: role, Priority: uint8(cfg.Node.Priority), Level: uint8(level),
		Keys: keys, Insecure: cfg.RMTP.Insecure, MaxMessage: cfg.RMTP.MaxMessage,
		PeerMemory: cfg.RMTP.ReassemblyPerPeer, MTU: cfg.RMTP.MaxSegment,
		HelloInterval: cfg.RMTP.Heartbeat.Duration, SuspectAfter: cfg.RMTP.SuspectAfter, DownAfter: cfg.RMTP.DownAfter,
		AckDelay: cfg.RMTP.AckInterval.Duration, HelloApp: helloApp, Logger: log,
		// Every protocol reads its own channel (Endpoint.Channel, Handle).
		DropUnclaimed: true,
	}
}

// coordinatorConfig is a manager's coordinator configuration: the fan-out
// deadlines and caps.
func coordinatorConfig(cfg *config.Config, log logrus.FieldLogger) fanout.CoordinatorConfig {
	return fanout.CoordinatorConfig{
		Deadline: cfg.Fanout.ReadDeadline.Duration, PhaseDeadline: cfg.Fanout.SetPhaseDeadline.Duration,
		SnapshotTTL: cfg.Fanout.WalkCacheTTL.Duration, SnapshotMemory: cfg.Fanout.WalkCacheMax,
		MaxVarBinds: cfg.Fanout.MaxVarbinds, Logger: log,
	}
}

// responderConfig is the configuration of a responder serving tree: an
// SE's, and a manager's on its parent link.
func responderConfig(cfg *config.Config, tree fanout.Tree, log logrus.FieldLogger) fanout.ResponderConfig {
	return fanout.ResponderConfig{
		Tree: tree, ReservationTTL: cfg.Fanout.ReservationTTL.Duration,
		ReplyCacheTTL: cfg.Fanout.ReplyCacheTTL.Duration, ReplyCacheSize: cfg.Fanout.ReplyCacheSize, Logger: log,
	}
}

// rmtpKeys loads the group key file (nil when rmtp.insecure).
func rmtpKeys(cfg *config.Config) (*rmtp.Keyring, error) {
	if cfg.RMTP.Insecure {
		return nil, nil
	}
	return rmtp.LoadKeyFile(cfg.RMTP.KeyFile)
}

func groupAddr(group string, port int) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(group)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !a.Is4() || !a.IsMulticast() {
		return netip.AddrPort{}, fmt.Errorf("%s is not an IPv4 multicast group", a)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// startSE joins the farm as a service engine: its own objects (system and
// smSe groups) go on seTree, which the responder serves to the managers.
func startSE(cfg *config.Config, tr rmtp.Transport, seTree *agent.Tree, store mib.Store, name func() string, log logrus.FieldLogger) (*southbound, error) {
	s := &southbound{}
	// The responder and the publisher start after the endpoint whose
	// heartbeats report their numbers, so the heartbeat goroutine reads
	// them through atomics.
	var resp atomic.Pointer[fanout.Responder]
	var content atomic.Pointer[contentSide]
	requests := func() uint64 {
		if r := resp.Load(); r != nil {
			return r.Counters().Requests
		}
		return 0
	}
	held := func() uint64 {
		if c := content.Load(); c != nil {
			return uint64(c.pub.Stats().Held)
		}
		return 0
	}
	// An SE has no cache software of its own to ask yet, so the bytes it
	// sent are the host's (every interface but lo, from /proc/net/dev).
	host := &hoststat.Reader{}
	se, err := mib.RegisterSE(seTree, mib.SEConfig{
		MaxWeight:    uint32(cfg.SE.MaxWeight),
		Store:        store,
		Requests:     requests,
		ContentCount: held,
		BytesOut: func() uint64 {
			n, err := host.Net()
			if err != nil {
				return 0
			}
			return n.TxBytes
		},
		Host: host,
		Name: name,
	})
	if err != nil {
		return nil, fmt.Errorf("smSe group: %w", err)
	}
	s.se = se
	// The SE's numbers ride in its heartbeats, so smEngineTable costs the
	// farm no transaction.
	hello := func() []byte { return fwire.AppendEngineInfo(nil, se.EngineInfo()) }
	s.tr, s.ep, err = rmtpEndpoint(cfg, tr, log, hello)
	if err != nil {
		return nil, err
	}
	s.stops.push(s.tr.Close)
	s.stops.push(s.ep.Close) // sends a graceful leave
	var la *fanout.LocalAgent
	if !cfg.SE.LocalAgent.Address.IsZero() {
		ap, err := netip.ParseAddrPort(cfg.SE.LocalAgent.Address.Address())
		if err != nil {
			s.close()
			return nil, fmt.Errorf("se.local_agent.address: %w", err)
		}
		la = &fanout.LocalAgent{Address: ap, Community: cfg.SE.LocalAgent.Community,
			Timeout: cfg.SE.LocalAgent.Timeout.Duration, Retries: cfg.SE.LocalAgent.Retries}
	}
	rc := responderConfig(cfg, seTree, log)
	rc.LocalAgent = la
	r, err := fanout.NewResponder(s.ep, rc)
	if err != nil {
		s.close()
		return nil, err
	}
	resp.Store(r)
	s.resp = r
	s.stops.push(r.Close)
	c, err := startContent(cfg, s.ep, log)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("directory: %w", err)
	}
	content.Store(c)
	s.content = c
	s.stops.pushClose(c.close)
	return s, nil
}

// managerHooks are what the node does on a manager's events.
type managerHooks struct {
	onEvent func(fanout.EngineEvent) // an engine came up or went down (its SNMP context)
	onRole  func(election.Change)    // smNodeRole, the AgentX priority, upward forwarding
	// send hands a notification to the northbound frontends.
	send func(ctx context.Context, trapOID smi.OID, vbs []smi.VarBind)
	// name is the node's sysName, carried in its heartbeats (nil: none).
	name func() string
	// event records what Snapshot lists of the manager's recent past
	// (nil: nothing).
	event func(Event)
}

// replicaSource is what a manager replicates: the farm state and the
// journal of notifications.
type replicaSource struct {
	state *mib.FarmState
	notes *mib.Notifier
}

func (r replicaSource) Export(st *rwire.State) {
	r.state.Export(st)
	st.Journal = r.notes.Journal()
}

func (r replicaSource) Adopt(st *rwire.State) {
	r.state.Adopt(st)
	r.notes.Adopt(st.Journal)
}

// startManager joins the farm as a manager: the coordinator, the
// directory of its level, the farm state and notifications that the
// active manager replicates to the backups, and the election that decides
// whether it is the active manager (SM) or a backup (BSM). A backup is
// warm: it receives every update and reply the active one does, and the
// active one's state.
func startManager(cfg *config.Config, tr rmtp.Transport, log logrus.FieldLogger, hooks managerHooks) (*southbound, error) {
	s := &southbound{}
	var err error
	// The managers' heartbeats carry their subtree totals (startSubtree),
	// so the managers of a level keep the same counters.
	hello := &helloApp{}
	s.tr, s.ep, err = rmtpEndpoint(cfg, tr, log, hello.get)
	if err != nil {
		return nil, err
	}
	s.stops.push(s.tr.Close)
	s.stops.push(s.ep.Close) // sends a graceful leave

	// What changed in the replicated state is sent soon, coalesced.
	dirty := make(chan struct{}, 1)
	changed := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	// Everything of the last takeover interval must still be in the
	// journal when a backup takes over.
	takeover := cfg.Manager.TakeoverAfter.Duration
	if takeover <= 0 {
		takeover = election.DefaultTakeoverAfter
	}
	ep := s.ep
	s.notifier, err = mib.NewNotifier(mib.NotifierConfig{
		Node: cfg.Node.ID, Term: ep.Term, Send: hooks.send, Changed: changed, Logger: log,
		Retention: max(mib.DefaultNotifyRetention, 2*takeover+replica.DefaultInterval),
	})
	if err != nil {
		s.close()
		return nil, err
	}
	var state atomic.Pointer[mib.FarmState]
	onEvent := func(ev fanout.EngineEvent) {
		if hooks.onEvent != nil {
			hooks.onEvent(ev)
		}
		if st := state.Load(); st != nil && ev.Up {
			st.EngineUp(ev.Engine.ID)
		}
		oid, vbs := mib.EngineNotification(ev)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.notifier.Notify(ctx, mib.Notification{Key: mib.EngineNotifyKey(ev), TrapOID: oid, VarBinds: vbs})
	}
	cc := coordinatorConfig(cfg, log)
	cc.OnEngineEvent = onEvent
	s.coord, err = fanout.NewCoordinator(s.ep, cc)
	if err != nil {
		s.close()
		return nil, err
	}
	s.stops.push(s.coord.Close)
	if err := startSubtree(cfg, s, hooks.name, hello, log); err != nil {
		s.close()
		return nil, err
	}
	s.state, err = mib.NewFarmState(mib.FarmStateConfig{Farm: s.coord, Active: ep.Active, Changed: changed, Logger: log,
		StaleAfter: max(mib.DefaultStateStaleAfter, takeover+2*replica.DefaultInterval)})
	if err != nil {
		s.close()
		return nil, err
	}
	state.Store(s.state)
	stateCtx, stateStop := context.WithCancel(context.Background())
	stateDone := make(chan struct{})
	go func() {
		defer close(stateDone)
		s.state.Run(stateCtx)
	}()
	s.stops.pushClose(func() { stateStop(); <-stateDone })
	maxState := rwire.MaxState
	if cfg.RMTP.MaxMessage > 0 {
		maxState = min(maxState, cfg.RMTP.MaxMessage)
	}
	s.replica, err = replica.New(s.ep, s.ep.Channel(rmtp.ChannelReplica), replicaSource{s.state, s.notifier},
		replica.Config{MaxState: maxState, Dirty: dirty, Logger: log})
	if err != nil {
		s.close()
		return nil, err
	}
	s.stops.pushClose(s.replica.Close)
	var dirStop context.CancelFunc
	s.dir, dirStop, err = startDirectory(cfg, s.ep, hooks.event, log)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("directory: %w", err)
	}
	s.stops.push(s.dir.Close)
	s.stops.pushClose(dirStop)
	floor, save, err := termStore(cfg.Node.StateDir)
	if err != nil {
		s.close()
		return nil, err
	}
	el, err := election.New(election.FromEndpoint(s.ep, uint8(cfg.Node.Priority)), election.Config{
		Heartbeat:     cfg.RMTP.Heartbeat.Duration,
		TakeoverAfter: cfg.Manager.TakeoverAfter.Duration,
		TermFloor:     floor,
		SaveTerm:      save,
		// The SEs' staleTerm replies: a manager cut off from the other
		// managers (not from the SEs) steps down on the first one.
		ReportedTerm: s.coord.StaleTerm,
		OnChange:     func(c election.Change) { s.roleChange(cfg.Node.ID, c, hooks.onRole) },
		Logger:       log,
	})
	if err != nil {
		s.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = el.Run(ctx)
	}()
	s.stops.pushClose(func() { cancel(); <-done })
	s.elector = el
	return s, nil
}

// termStore returns the highest term this manager used before (0 without
// a state directory: the election also goes above every term it hears,
// including the one the SEs follow) and a function keeping a new one.
func termStore(stateDir string) (uint64, func(uint64) error, error) {
	if stateDir == "" {
		return 0, nil, nil
	}
	store := mib.NewFileStore(filepath.Join(stateDir, "term.json"))
	saved, err := store.Load()
	if err != nil {
		return 0, nil, fmt.Errorf("term state: %w", err)
	}
	floor, _ := strconv.ParseUint(saved["term"], 10, 64)
	save := func(t uint64) error { return store.Save("term", strconv.FormatUint(t, 10)) }
	return floor, save, nil
}

// roleChange follows the election on the farm side: a manager becoming
// active continues the previous one's counter sums (or says they may have
// jumped); only the active manager notifies, and one that becomes active
// first sends smManagerTakeover (on a takeover), then what the previous
// one may not have sent.
func (s *southbound) roleChange(node uint32, c election.Change, onRole func(election.Change)) {
	if c.Role != election.Active {
		s.notifier.Deactivate()
		if onRole != nil {
			onRole(c)
		}
		return
	}
	if c.Cause != election.CauseAdopted {
		s.state.Activated(c.Cause == election.CauseTakeover)
	}
	if onRole != nil {
		onRole(c)
	}
	var lead []mib.Notification
	if c.Cause == election.CauseTakeover {
		oid, vbs := mib.TakeoverNotification(node, c.Term)
		lead = append(lead, mib.Notification{Key: mib.NotifyKey{Kind: mib.NotifyTakeover, Subject: node, Instance: c.Term},
			TrapOID: oid, VarBinds: vbs})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.notifier.Activate(ctx, lead...)
}

func (s *southbound) close() error { return s.stops.run() }
