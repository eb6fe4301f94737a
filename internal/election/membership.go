package election

import (
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Candidate is one manager as this node sees it.
type Candidate struct {
	ID       rmtp.NodeID
	Priority uint8  // higher wins
	Term     uint64 // highest term it is known to have announced; 0 unknown
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
	Managers []Candidate // the other managers; engines are not listed
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
}

// There is no Deactivate: the transport steps down by itself on hearing a
// higher term, and the Elector never gives the role up on its own (the
// election is non-preemptive). A manager that shuts down closes its
// endpoint, whose goodbye lets a backup take over at once.

// Endpoint adapts an *rmtp.Endpoint to Membership. It reads one
// rmtp.Stats snapshot per Observe: peers' priority and term come from
// their latest HELLO, the active manager is the owner of the view this
// node follows (PeerStats.Active), a peer declared down or gone says Gone.
//
// A manager that deactivated without leaving keeps looking active (rmtp
// does not say whether a peer still announces its view) until it leaves or
// goes silent: callers must not call Deactivate on an elected endpoint.
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
		if p.Role != rmtp.Manager {
			continue
		}
		o.Managers = append(o.Managers, Candidate{ID: p.Node, Priority: p.Priority, Term: p.Term,
			Active: p.Active, LastHeard: p.LastHeard,
			Gone: p.State == rmtp.PeerDown || p.State == rmtp.PeerLeft})
	}
	return o
}

// Activate implements Membership.
func (a *Endpoint) Activate(term uint64) error { return a.ep.Activate(term) }
