package agentx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Errors callers branch on.
var (
	// ErrNotConnected: no session is open with the master right now.
	ErrNotConnected = errors.New("agentx: no open session with the master")
	// ErrRunning: Run was called while another Run is active.
	ErrRunning = errors.New("agentx: subagent already running")
	// ErrSessionClosed: the session ended while waiting for the master.
	ErrSessionClosed = errors.New("agentx: session closed")
	// ErrTimeout: the master did not answer within Config.MasterTimeout.
	ErrTimeout = errors.New("agentx: master did not answer in time")
)

// MasterError is a Response from the master with res.error set.
type MasterError struct {
	Op    pdu.Type
	Code  pdu.ResponseError
	Index uint16
}

func (e *MasterError) Error() string {
	return fmt.Sprintf("agentx: master refused %s: %s (index %d)", e.Op, e.Code, e.Index)
}

// Well-known OIDs of a notification's first two varbinds (RFC 3416 §4.2.6).
var (
	SysUpTimeOID   = smi.OID{1, 3, 6, 1, 2, 1, 1, 3, 0}
	SnmpTrapOIDOID = smi.OID{1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0}
)

// Stats are counters of one Subagent since New.
type Stats struct {
	Sessions      uint64 // sessions opened (1 + reconnects)
	Registrations uint64 // subtrees registered, summed over sessions
	Requests      uint64 // request PDUs from the master executed
	Failed        uint64 // of those, answered with an error (SNMP error-status)
	Duplicates    uint64 // re-sent PDUs answered without executing them again
	Busy          uint64 // requests refused (genErr) because MaxInFlight requests were waiting on the farm
	LateDropped   uint64 // responses dropped because their session had ended
	ParseErrors   uint64 // PDUs from the master that did not decode
	Notifications uint64 // notifications the master accepted
}

type counters struct {
	sessions, registrations, requests, failed, duplicates, busy, lateDropped, parseErrors, notifications atomic.Uint64
}

// Trees are the handler trees a Subagent serves, one per SNMP context
// ("" is the default context). *agent.Contexts implements it.
type Trees interface {
	Names() []string
	Tree(name string) *agent.Tree
}

// Subagent is one AgentX subagent serving a set of context trees. Create it
// with New, start it with Run.
type Subagent struct {
	cfg      Config
	contexts Trees
	log      logrus.FieldLogger
	empty    *agent.Tree // answers for a context that disappeared
	st       counters
	running  atomic.Bool
	priority atomic.Uint32 // registration priority; SetPriority changes it
	busyLog  logging.Limit

	mu     sync.Mutex
	cur    *session
	openCh chan struct{} // closed while cur != nil
}

// New returns a subagent serving contexts (usually an *agent.Contexts):
// every root of every context's tree is registered under its context name,
// "" being the default context. log may be nil.
func New(cfg Config, contexts Trees, log logrus.FieldLogger) *Subagent {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	if contexts == nil {
		contexts = agent.NewContexts()
	}
	a := &Subagent{
		cfg:      cfg.withDefaults(),
		contexts: contexts,
		log:      log.WithField("component", "agentx"),
		empty:    agent.NewTree(),
		openCh:   make(chan struct{}),
	}
	a.priority.Store(uint32(a.cfg.Priority))
	return a
}

// Stats returns a snapshot of the counters.
func (a *Subagent) Stats() Stats {
	return Stats{
		Sessions:      a.st.sessions.Load(),
		Registrations: a.st.registrations.Load(),
		Requests:      a.st.requests.Load(),
		Failed:        a.st.failed.Load(),
		Duplicates:    a.st.duplicates.Load(),
		Busy:          a.st.busy.Load(),
		LateDropped:   a.st.lateDropped.Load(),
		ParseErrors:   a.st.parseErrors.Load(),
		Notifications: a.st.notifications.Load(),
	}
}

// Run connects to the master and serves until ctx is done, reconnecting
// whenever the session is lost. On ctx's end it closes the session with
// reasonShutdown (which drops every registration) and returns nil once
// every goroutine it started has stopped. It returns an error only for an
// unusable Config or a second concurrent Run.
func (a *Subagent) Run(ctx context.Context) error {
	network, address, err := ParseSocket(a.cfg.Socket)
	if err != nil {
		return err
	}
	if !a.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer a.running.Store(false)
	log := a.log.WithField("master", a.cfg.Socket)
	failures := 0
	var lastErr string
	for ctx.Err() == nil {
		s, err := a.connect(ctx, network, address)
		if err == nil {
			failures = 0
			lastErr = ""
			a.setSession(s)
			log.WithField("session", s.id.Load()).Info("agentx session open")
			select {
			case <-ctx.Done():
				a.setSession(nil)
				s.shutdown()
				log.WithField("session", s.id.Load()).Info("agentx session closed (shutdown)")
				return nil
			case <-s.done:
			}
			a.setSession(nil)
			s.wait()
			log.WithField("session", s.id.Load()).WithError(s.err()).Warn("agentx session lost, reconnecting")
		} else if ctx.Err() == nil && err.Error() != lastErr {
			// One line per change of cause, not one per attempt.
			lastErr = err.Error()
			log.WithError(err).Warn("agentx connect failed, retrying")
		}
		d := backoff(failures, a.cfg.ReconnectMax)
		failures++
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// backoff returns the wait before attempt n+1: doubling from reconnectMin,
// capped at limit, and jittered to [d/2, d] so that subagents restarted
// together do not reconnect in lockstep, while never exceeding limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := reconnectMin << min(n, 20)
	if d > limit || d <= 0 {
		d = limit
	}
	return d/2 + rand.N(d/2+1)
}

func (a *Subagent) setSession(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s != nil {
		a.cur = s
		close(a.openCh)
		return
	}
	if a.cur != nil {
		a.cur = nil
		a.openCh = make(chan struct{})
	}
}

func (a *Subagent) session() *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

// WaitOpen blocks until a session is open and every subtree registered,
// or ctx is done.
func (a *Subagent) WaitOpen(ctx context.Context) error {
	for {
		a.mu.Lock()
		cur, ch := a.cur, a.openCh
		a.mu.Unlock()
		if cur != nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SessionID is the master's id of the open session, and whether one is open.
func (a *Subagent) SessionID() (uint32, bool) {
	if s := a.session(); s != nil {
		return s.id.Load(), true
	}
	return 0, false
}

// Notify sends a notification through the master in the default context:
// sysUpTime.0 (the master's uptime) and snmpTrapOID.0 = trapOID come
// first, then vbs. It returns when the master has accepted it.
func (a *Subagent) Notify(ctx context.Context, trapOID smi.OID, vbs []smi.VarBind) error {
	s := a.session()
	if s == nil {
		return ErrNotConnected
	}
	all := make([]smi.VarBind, 0, len(vbs)+2)
	all = append(all,
		smi.VarBind{Name: SysUpTimeOID, Value: smi.TimeTicks(s.masterUptime())},
		smi.VarBind{Name: SnmpTrapOIDOID, Value: smi.ObjectID(trapOID)})
	all = append(all, vbs...)
	resp, err := s.request(ctx, "", &pdu.Notify{VarBinds: all})
	if err != nil {
		return fmt.Errorf("agentx: notify %s: %w", trapOID, err)
	}
	if resp.Error != pdu.NoAgentXError {
		return &MasterError{Op: pdu.TypeNotify, Code: resp.Error, Index: resp.Index}
	}
	a.st.notifications.Add(1)
	return nil
}

// Sync brings the open session's registrations in line with the current
// contexts and their roots (after a context or handler was added or
// removed). Run registers everything anyway on every new session.
func (a *Subagent) Sync(ctx context.Context) error {
	s := a.session()
	if s == nil {
		return ErrNotConnected
	}
	return s.syncRegistrations(ctx, uint8(a.priority.Load()))
}

// SetPriority changes the registration priority (lower wins) and, when a
// session is open, re-registers everything at it: the new registrations
// first, then the old ones removed, so the master never lacks a route. A
// backup manager taking over calls it with the active manager's priority
// (DESIGN.md §7). Later sessions register at p too.
func (a *Subagent) SetPriority(ctx context.Context, p uint8) error {
	if p == 0 {
		p = DefaultPriority
	}
	a.priority.Store(uint32(p))
	if a.session() == nil {
		return nil
	}
	return a.Sync(ctx)
}
