package node

import (
	"sync"
	"time"
)

// Event kinds: what an operator looks for first in a node's recent past.
// The strings are part of Snapshot's JSON: append-only.
const (
	// EventEngineUp, EventEngineDown, EventEngineRestarted: an engine of
	// the farm (above level 1, a child level's manager) came up, went
	// down (silent or left), or came back with a new incarnation.
	EventEngineUp        = "engine-up"
	EventEngineDown      = "engine-down"
	EventEngineRestarted = "engine-restarted"
	// EventRole: the election moved this manager (Role, Cause, Term):
	// elected or taken over (Role "manager"), or stepped down, fenced by
	// the SEs' term, waiting (Role "backup").
	EventRole = "role"
	// EventDirectory: how the manager's directory caught up at start.
	EventDirectory = "directory"
	// EventParentLink: the link to the parent level is up.
	EventParentLink = "parent-link"
)

// MaxEvents is how many events a node keeps: the oldest go first.
const MaxEvents = 256

// Event is one entry of the node's recent past.
type Event struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	Engine      uint32    `json:"engine,omitempty"`      // engine events
	Incarnation uint64    `json:"incarnation,omitempty"` // engine events
	Role        string    `json:"role,omitempty"`        // EventRole: smNodeRole after the change
	Cause       string    `json:"cause,omitempty"`       // EventRole: the election's cause (elected, takeover, fenced, ...)
	Term        uint64    `json:"term,omitempty"`
	Detail      string    `json:"detail,omitempty"`
}

// eventRing keeps the last MaxEvents events. The zero value is ready; it
// is safe for concurrent use.
type eventRing struct {
	mu    sync.Mutex
	buf   []Event // grows to MaxEvents, then wraps at next
	next  int
	total uint64
}

func (r *eventRing) add(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.buf) < MaxEvents {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % MaxEvents
}

// list returns the events kept, oldest first, and how many were ever
// added.
func (r *eventRing) list() ([]Event, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	out = append(out, r.buf[:r.next]...)
	return out, r.total
}
