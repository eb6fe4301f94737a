package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Role is this manager's part. Not on the wire; smNodeRole maps Active to
// manager and Electing and Backup to backup.
type Role uint8

// Roles.
const (
	Electing Role = 1 // observing after start: not active, not yet following anyone
	Backup   Role = 2 // another manager is active, or is expected to activate
	Active   Role = 3 // this manager owns the view
)

func (r Role) String() string {
	switch r {
	case Electing:
		return "electing"
	case Backup:
		return "backup"
	case Active:
		return "active"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Cause says why the role (or the manager followed) changed. Append-only.
type Cause uint8

// Causes.
const (
	// CauseElected: no manager was active after the observation window and
	// this one ranked best.
	CauseElected Cause = 1
	// CauseTakeover: the active manager went silent (TakeoverAfter) or
	// left, and this one ranked best among the live backups.
	CauseTakeover Cause = 2
	// CauseActiveHeard: another manager is active; this one follows it.
	CauseActiveHeard Cause = 3
	// CauseWaiting: no manager is active and a better-ranked live one is
	// expected to activate.
	CauseWaiting Cause = 4
	// CauseSteppedDown: this manager was active and the transport gave the
	// view to a manager with a higher term (equal term: a lower node id).
	CauseSteppedDown Cause = 5
	// CauseAdopted: the transport was already active (the caller activated
	// it directly).
	CauseAdopted Cause = 6
	// CauseFenced: this manager was active and the members report a
	// higher term than its own (an SE's or a manager's HELLO, an SE's
	// staleTerm reply) while no VIEW of that term reaches it: a manager
	// it cannot hear was elected, and the SEs obey that one. It stopped
	// announcing its view at once (Membership.Deactivate) and stays a
	// backup while the SEs obey that term. Term is the higher term, Owner
	// 0 (unknown).
	CauseFenced Cause = 7
	// CauseUnseenActive: no manager this one hears is active, but live
	// SEs obey a term above every view it knows: a manager it cannot hear
	// is active, so it waits instead of activating (Term is that term,
	// Owner 0). It may activate once the SEs say they lost that manager
	// too (their HELLO term drops to 0).
	CauseUnseenActive Cause = 8
)

var causeNames = [...]string{"", "elected", "takeover", "active-heard", "waiting", "stepped-down", "adopted", "fenced", "unseen-active"}

func (c Cause) String() string {
	if int(c) < len(causeNames) && c != 0 {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// Change is one role change, reported to OnChange and logged.
type Change struct {
	Role  Role
	Cause Cause
	// Term: when Active, the term this manager activated with; otherwise
	// the term of the view it follows (0 before any).
	Term uint64
	// Owner is the active manager (this node when Active); 0 if none is
	// known (Electing, or Backup waiting for a better candidate).
	Owner rmtp.NodeID
	At    time.Time     // Clock.Now
	Mono  time.Duration // Clock.Mono: CLOCK_MONOTONIC, comparable across processes
	// CauseTakeover: the manager that went silent and when it was last
	// heard here, so At-PreviousHeard is the takeover time as seen by the
	// winner.
	Previous      rmtp.NodeID
	PreviousHeard time.Time
}

// Defaults.
const (
	DefaultHeartbeat     = rmtp.DefaultHello
	DefaultTakeoverAfter = 700 * time.Millisecond
)

// Config configures an Elector. Zero fields take the defaults.
type Config struct {
	// Heartbeat is the managers' HELLO period (rmtp.Config.HelloInterval).
	Heartbeat time.Duration
	// Window is how long a starting manager listens for an active one
	// before it may activate; default 3 heartbeats (the active manager
	// announces its view every heartbeat).
	Window time.Duration
	// TakeoverAfter is how long the active manager may stay silent before
	// it is dead for the election; default 700 ms, at least 2 heartbeats.
	TakeoverAfter time.Duration
	// Poll is how often the membership is observed; default Heartbeat/4.
	Poll time.Duration
	// StallAfter is how long a better-ranked live manager may stay
	// inactive while none is active before it is passed over; default
	// Window + TakeoverAfter.
	StallAfter time.Duration
	// TermFloor: every term this manager activates with is above it (the
	// highest term it saved before a restart).
	TermFloor uint64
	// SaveTerm, if set, persists a term before this manager activates with
	// it; on error it does not activate (and retries on the next poll).
	SaveTerm func(term uint64) error
	// ReportedTerm, if set, returns the highest term reported to this
	// manager outside the membership: the term in the SEs' staleTerm
	// replies to its requests (fanout.Coordinator.StaleTerm). It is read
	// every poll and must not block.
	ReportedTerm func() uint64
	// OnChange, if set, is called on the Elector's goroutine, in order,
	// after each change. Keep it short: the next poll waits for it.
	OnChange func(Change)
	Clock    Clock // nil: the system clock
	Logger   logrus.FieldLogger
}

// Errors.
var (
	ErrConfig  = errors.New("election: config")
	ErrRunning = errors.New("election: Run called twice")
)

func (c *Config) fill() error {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Heartbeat, DefaultHeartbeat)
	def(&c.Window, 3*c.Heartbeat)
	def(&c.TakeoverAfter, DefaultTakeoverAfter)
	def(&c.Poll, c.Heartbeat/4)
	def(&c.StallAfter, c.Window+c.TakeoverAfter)
	switch {
	case c.TakeoverAfter < 2*c.Heartbeat:
		return fmt.Errorf("%w: takeover after %v is under 2 heartbeats of %v: one lost heartbeat would be a death", ErrConfig, c.TakeoverAfter, c.Heartbeat)
	case c.Window < c.Heartbeat:
		return fmt.Errorf("%w: window %v is under one heartbeat of %v", ErrConfig, c.Window, c.Heartbeat)
	case c.Poll > c.TakeoverAfter/2:
		return fmt.Errorf("%w: poll %v is over half of takeover after %v", ErrConfig, c.Poll, c.TakeoverAfter)
	case c.StallAfter < c.Window:
		return fmt.Errorf("%w: stall after %v is under the window %v", ErrConfig, c.StallAfter, c.Window)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	c.Logger = logging.OrDiscard(c.Logger)
	return nil
}

// Elector runs the election for one manager. Create it with New, run it
// with Run; Role and Status are safe for concurrent use.
type Elector struct {
	m       Membership
	cfg     Config
	log     logrus.FieldLogger
	running atomic.Bool
	role    atomic.Uint32

	mu     sync.Mutex
	status Change

	// Owned by the goroutine in Run.
	started    time.Time
	lastStep   time.Time
	graceUntil time.Time
	maxTerm    uint64
	waitFor    rmtp.NodeID
	waitSince  time.Time
	passedOver map[rmtp.NodeID]bool // at most one entry per manager, cleared when one is active
	failing    bool                 // an activation failure was logged
	// A higher term that fenced this manager off, or that a staleTerm
	// reply named, counts as another manager being active until
	// evidenceUntil: the SEs' heartbeats, which say it for as long as it
	// lasts, may still carry the term before.
	evidence      uint64
	evidenceUntil time.Time
	lastReported  uint64
}

// evidenceHeartbeats is how long (in heartbeats) a higher term heard once
// holds a manager back: every SE's next heartbeat arrives within it.
const evidenceHeartbeats = 2

// New returns an Elector for m.
func New(m Membership, cfg Config) (*Elector, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: no membership", ErrConfig)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	e := &Elector{m: m, cfg: cfg, log: cfg.Logger, maxTerm: cfg.TermFloor, passedOver: make(map[rmtp.NodeID]bool)}
	e.role.Store(uint32(Electing))
	e.status = Change{Role: Electing}
	return e, nil
}

// Role returns the current role.
func (e *Elector) Role() Role { return Role(e.role.Load()) }

// Status returns the last change (Role Electing with zero times before
// the first one).
func (e *Elector) Status() Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Run observes the membership every Poll and acts, until ctx is done; it
// then returns ctx.Err(). It runs on the caller's goroutine and starts
// none. It does not deactivate on return: the caller closes the endpoint,
// whose goodbye lets a backup take over at once.
func (e *Elector) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	t := time.NewTicker(e.cfg.Poll)
	defer t.Stop()
	e.begin(e.cfg.Clock.Now())
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			e.step(e.cfg.Clock.Now())
		}
	}
}

func (e *Elector) begin(now time.Time) {
	e.started = now
	e.log.WithFields(logrus.Fields{"window": e.cfg.Window, "takeover_after": e.cfg.TakeoverAfter,
		"term_floor": e.cfg.TermFloor, "mono_ns": int64(e.cfg.Clock.Mono())}).Info("election: electing")
	e.step(now)
}

// step observes once and acts.
func (e *Elector) step(now time.Time) {
	o := e.m.Observe()
	e.maxTerm = max(e.maxTerm, o.ViewTerm)
	for _, c := range o.Managers {
		e.maxTerm = max(e.maxTerm, c.Term)
	}
	for _, c := range o.Engines {
		e.maxTerm = max(e.maxTerm, c.Term)
	}
	reported := e.reported()
	e.maxTerm = max(e.maxTerm, reported)
	if reported > e.lastReported {
		e.lastReported = reported
		e.heardAbove(now, reported)
	}
	// obeyed: the highest term another manager is known to be active
	// with, as far as the SEs tell.
	obeyed := e.obeyed(&o, now)
	if now.Before(e.evidenceUntil) {
		obeyed = max(obeyed, e.evidence)
	}
	// A loop that ran late means the transport's receive loop may have
	// been starved too: heartbeats queued meanwhile must be read before
	// anyone is declared dead.
	if !e.lastStep.IsZero() && now.Sub(e.lastStep) > e.cfg.Poll+e.cfg.Heartbeat/2 {
		e.graceUntil = now.Add(e.cfg.Heartbeat)
	}
	e.lastStep = now

	cur := e.Role()
	switch {
	case cur == Active && o.Active:
		if t := max(obeyed, reported, e.managersTerm(&o, now)); t > o.ViewTerm {
			e.fenced(now, t, o.ViewTerm)
		}
		return
	case cur == Active:
		clear(e.passedOver)
		e.change(now, Change{Role: Backup, Cause: CauseSteppedDown, Term: o.ViewTerm, Owner: o.Owner}, nil)
		return
	case o.Active:
		e.change(now, Change{Role: Active, Cause: CauseAdopted, Term: o.ViewTerm, Owner: o.Self.ID}, nil)
		return
	}
	// A live owner the SEs have left for a higher term is being fenced
	// off itself: it is not worth following.
	if owner, term, ok := e.liveOwner(&o, now); ok && term >= obeyed {
		clear(e.passedOver)
		e.waitFor = 0
		if st := e.Status(); cur != Backup || st.Owner != owner || st.Term != term {
			e.change(now, Change{Role: Backup, Cause: CauseActiveHeard, Term: term, Owner: owner}, nil)
		}
		return
	}
	inWindow := cur == Electing && now.Sub(e.started) < e.cfg.Window
	if obeyed > o.ViewTerm {
		// The SEs obey a manager this one cannot hear: activating would
		// split the farm (and the SEs would refuse the lower term anyway).
		// Inside the window its VIEW may still come: no change yet.
		if !inWindow {
			e.unseenActive(now, cur, obeyed)
		}
		return
	}
	if inWindow || now.Before(e.graceUntil) {
		return
	}
	best := e.best(&o, now)
	if best == o.Self.ID {
		e.activate(now, &o)
		return
	}
	switch {
	case e.waitFor != best:
		e.waitFor, e.waitSince = best, now
	case now.Sub(e.waitSince) >= e.cfg.StallAfter:
		e.log.WithFields(logrus.Fields{"candidate": best, "waited": now.Sub(e.waitSince)}).Warn("election: better candidate never activated; passing it over")
		e.passedOver[best] = true
		e.waitFor = 0
	}
	if st := e.Status(); cur != Backup || st.Owner != 0 {
		e.change(now, Change{Role: Backup, Cause: CauseWaiting, Term: o.ViewTerm}, nil)
	}
}

// reported is the highest term reported outside the membership.
func (e *Elector) reported() uint64 {
	if e.cfg.ReportedTerm == nil {
		return 0
	}
	return e.cfg.ReportedTerm()
}

// obeyed is the highest term the live engines say they obey (0: none, or
// their view's owner is gone for them too).
func (e *Elector) obeyed(o *Observation, now time.Time) uint64 {
	var t uint64
	for i := range o.Engines {
		if c := &o.Engines[i]; e.live(c, now) {
			t = max(t, c.Term)
		}
	}
	return t
}

// managersTerm is the highest term the live managers' HELLOs carry.
func (e *Elector) managersTerm(o *Observation, now time.Time) uint64 {
	var t uint64
	for i := range o.Managers {
		if c := &o.Managers[i]; e.live(c, now) {
			t = max(t, c.Term)
		}
	}
	return t
}

// fenced steps an active manager down at once: the members obey term,
// above its own, of a manager whose VIEW does not reach it. Until now its
// requests were refused (staleTerm) and its role a lie.
func (e *Elector) fenced(now time.Time, term, own uint64) {
	e.m.Deactivate()
	e.heardAbove(now, term)
	clear(e.passedOver)
	e.waitFor = 0
	e.change(now, Change{Role: Backup, Cause: CauseFenced, Term: term}, logrus.Fields{"own_term": own})
}

// heardAbove notes a higher term heard once (not in every SE heartbeat).
func (e *Elector) heardAbove(now time.Time, term uint64) {
	if now.After(e.evidenceUntil) {
		e.evidence = 0
	}
	e.evidence = max(e.evidence, term)
	e.evidenceUntil = now.Add(evidenceHeartbeats * e.cfg.Heartbeat)
}

// unseenActive holds a manager that is not active back while the SEs obey
// term: one change when it starts (or the term moves), none per poll.
func (e *Elector) unseenActive(now time.Time, cur Role, term uint64) {
	clear(e.passedOver)
	e.waitFor = 0
	st := e.Status()
	if cur == Backup && st.Owner == 0 && st.Term == term && (st.Cause == CauseFenced || st.Cause == CauseUnseenActive) {
		return
	}
	e.change(now, Change{Role: Backup, Cause: CauseUnseenActive, Term: term}, nil)
}

// liveOwner returns the active manager this node follows if it is alive:
// not gone and heard within TakeoverAfter.
func (e *Elector) liveOwner(o *Observation, now time.Time) (rmtp.NodeID, uint64, bool) {
	var id rmtp.NodeID
	var term uint64
	for _, c := range o.Managers {
		if !c.Active || !e.live(&c, now) {
			continue
		}
		t := c.Term
		if c.ID == o.Owner {
			t = max(t, o.ViewTerm)
		}
		if id == 0 || t > term || (t == term && c.ID < id) {
			id, term = c.ID, t
		}
	}
	return id, term, id != 0
}

func (e *Elector) live(c *Candidate, now time.Time) bool {
	return !c.Gone && !c.LastHeard.IsZero() && now.Sub(c.LastHeard) < e.cfg.TakeoverAfter
}

// best ranks this node and the live managers not passed over: highest
// priority, then lowest id.
func (e *Elector) best(o *Observation, now time.Time) rmtp.NodeID {
	id, prio := o.Self.ID, o.Self.Priority
	for _, c := range o.Managers {
		if c.ID == o.Self.ID || !e.live(&c, now) || e.passedOver[c.ID] {
			continue
		}
		if c.Priority > prio || (c.Priority == prio && c.ID < id) {
			id, prio = c.ID, c.Priority
		}
	}
	return id
}

func (e *Elector) activate(now time.Time, o *Observation) {
	term := e.maxTerm + 1
	if e.cfg.SaveTerm != nil {
		if err := e.cfg.SaveTerm(term); err != nil {
			e.activationFailed(term, fmt.Errorf("saving the term: %w", err))
			return
		}
	}
	// A saved term is never used twice, even if activating fails.
	e.maxTerm = term
	if err := e.m.Activate(term); err != nil {
		// Usually a view with a higher term arrived since Observe: the next
		// poll follows it.
		e.activationFailed(term, err)
		return
	}
	e.failing = false
	c := Change{Role: Active, Cause: CauseElected, Term: term, Owner: o.Self.ID}
	if o.Owner != 0 && o.Owner != o.Self.ID {
		c.Cause, c.Previous = CauseTakeover, o.Owner
		for _, m := range o.Managers {
			if m.ID == o.Owner {
				c.PreviousHeard = m.LastHeard
			}
		}
	}
	e.change(now, c, nil)
}

// activationFailed logs the first failure of a streak, not every poll.
func (e *Elector) activationFailed(term uint64, err error) {
	if !e.failing {
		e.failing = true
		e.log.WithError(err).WithField("term", term).Error("election: cannot activate; retrying every poll")
	}
}

func (e *Elector) change(now time.Time, c Change, extra logrus.Fields) {
	c.At, c.Mono = now, e.cfg.Clock.Mono()
	e.mu.Lock()
	e.status = c
	e.mu.Unlock()
	e.role.Store(uint32(c.Role))
	f := logrus.Fields{"role": c.Role.String(), "cause": c.Cause.String(), "term": c.Term,
		"owner": c.Owner, "mono_ns": int64(c.Mono)}
	if c.Cause == CauseTakeover {
		f["previous"] = c.Previous
		if !c.PreviousHeard.IsZero() {
			f["silent"] = now.Sub(c.PreviousHeard).Round(time.Millisecond)
		}
	}
	for k, v := range extra {
		f[k] = v
	}
	if c.Cause == CauseFenced {
		// An operator must see this one: until now this manager claimed
		// the farm while the SEs refused it.
		e.log.WithFields(f).Warn("election: role change")
	} else {
		e.log.WithFields(f).Info("election: role change")
	}
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(c)
	}
}
