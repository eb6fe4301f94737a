package rmtp

import "time"

// EventKind is a membership change. Append-only.
type EventKind uint8

// Event kinds: what smEngineUp, smEngineDown and smManagerTakeover are made
// of.
const (
	PeerJoined    EventKind = 1 // first HELLO of a member (or of its new incarnation)
	PeerRecovered EventKind = 2 // heard again after being declared down
	PeerSuspected EventKind = 3
	PeerWentDown  EventKind = 4
	PeerLeaving   EventKind = 5 // graceful leave
	PeerRestarted EventKind = 6 // a higher incarnation replaced the old one
	ViewChanged   EventKind = 7 // a new view (term or members) was adopted or announced
	SteppedDown   EventKind = 8 // this manager stopped owning the view
)

var eventNames = [...]string{"", "joined", "recovered", "suspected", "down", "left", "restarted", "view", "stepped-down"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "EventKind(?)"
}

// Event is one membership change.
type Event struct {
	Time        time.Time
	Kind        EventKind
	Node        NodeID // the peer (0 for view events)
	Incarnation uint64
	Role        Role
	Term        uint64 // view events: the term
}

// eventQueue is the bound on undelivered events; beyond it events are
// dropped and counted (Counters.EventsDropped), never blocking the
// protocol.
const eventQueue = 256

// Events returns the membership events channel. Read it or ignore it: a
// slow reader loses events (counted), it never slows the transport.
func (e *Endpoint) Events() <-chan Event { return e.events }

// emit queues an event. Caller holds mu.
func (e *Endpoint) emit(k EventKind, pr *peer, now time.Time) {
	ev := Event{Time: now, Kind: k, Term: e.view.term}
	if pr != nil {
		ev.Node, ev.Incarnation, ev.Role = pr.id, pr.inc, pr.role
	}
	select {
	case e.events <- ev:
	default:
		e.stats.EventsDropped++
	}
}
