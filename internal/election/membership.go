package election

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Candidate is one manager (or, in Observation.Engines, one engine) as
// this node sees it.
type Candidate struct {
	ID       rmtp.NodeID
	Priority uint8 // higher wins
	// Term: for a manager, the term of the view it holds (from its
	// HELLO); 0 unknown. For an engine, the term of the view it obeys,
	// from its HELLO: 0 when it obeys none, or when the owner of its view
	// is down or gone for it (rmtp says so).
	Term uint64
	// Active: it owns the view this node follows.
	Active bool
	// Gone: the transport declared it down or it said goodbye. A gone
	// manager is dead at once, whatever LastHeard says.
	Gone bool
	// LastHeard is when anything was last received from it. The Elector
	// compares it with its Clock, so both must be the same clock.
	LastHeard time.Time
}

// Observation is one consistent snapshot of the membership.
type Observation struct {
	Self     Candidate   // ID and Priority; the other fields are unused
	Managers []Candidate // the other managers
	// Engines are the engines heard (ID, Term, Gone, LastHeard; Priority
	// and Active unused): the terms they obey tell a manager that cannot
	// hear the active one, but reaches the same engines, that it exists.
	Engines  []Candidate
	ViewTerm uint64      // term of the view this node follows (or owns)
	Owner    rmtp.NodeID // owner of that view; 0 if none was heard
	Active   bool        // this node owns the view now
}

// Membership is what the Elector needs from the transport. Observe is
// called from one goroutine every Poll and must not block for long.
type Membership interface {
	Observe() Observation
	// Activate makes this node the active manager under term. It fails if
	// term is not above the view's term (another manager got there first).
	Activate(term uint64) error
	// Deactivate stops announcing this node's view. The Elector calls it
	// only when the members obey a higher term whose VIEW does not reach
	// this node (CauseFenced); on hearing that VIEW the transport steps
	// down by itself.
	Deactivate()
}

// The election is non-preemptive: the Elector never gives the role up to
// a better-ranked manager, only to a higher term. A manager that shuts
// down closes its endpoint, whose goodbye lets a backup take over at once.

// Endpoint adapts an *rmtp.Endpoint to Membership. It reads one
// rmtp.Stats snapshot per Observe: peers' priority and term come from
// their latest HELLO, the active manager is the owner of the view this
// node follows (PeerStats.Active), a peer declared down or gone says Gone.
//
// A manager that deactivated without leaving keeps looking active to the
// managers that followed its view (rmtp does not say whether a peer still
// announces it) until it leaves or goes silent, which is why callers must
// not call Deactivate on an elected endpoint themselves. The Elector does
// so only when fenced, and then the SEs' terms tell those managers the
// same thing they told it.
type Endpoint struct {
	ep       *rmtp.Endpoint
	priority uint8
}

// FromEndpoint returns the adapter. ep must be a manager and priority must
// be its rmtp.Config.Priority (what its HELLOs tell the others: every
// manager must rank every other by the same numbers).
func FromEndpoint(ep *rmtp.Endpoint, priority uint8) *Endpoint {
	return &Endpoint{ep: ep, priority: priority}
}

// Observe implements Membership.
func (a *Endpoint) Observe() Observation {
	s := a.ep.Stats()
	o := Observation{
		Self:     Candidate{ID: s.Node, Priority: a.priority, Active: s.Active, Term: s.View.Term},
		ViewTerm: s.View.Term,
		Owner:    s.View.Owner,
		Active:   s.Active,
	}
	for _, p := range s.Peers {
		gone := p.State == rmtp.PeerDown || p.State == rmtp.PeerLeft
		switch p.Role {
		case rmtp.Manager:
			o.Managers = append(o.Managers, Candidate{ID: p.Node, Priority: p.Priority, Term: p.Term,
				Active: p.Active, LastHeard: p.LastHeard, Gone: gone})
		case rmtp.Engine:
			o.Engines = append(o.Engines, Candidate{ID: p.Node, Term: p.Term, LastHeard: p.LastHeard, Gone: gone})
		}
	}
	return o
}

// Activate implements Membership.
func (a *Endpoint) Activate(term uint64) error { return a.ep.Activate(term) }

// Deactivate implements Membership.
func (a *Endpoint) Deactivate() { a.ep.Deactivate() }
