package logging

import (
	"sync"
	"time"
)

// DefaultLimitEvery is how often a Limit with no interval of its own lets
// a recurring event through.
const DefaultLimitEvery = time.Minute

// Limit lets a recurring event through to the log at most once per Every
// (DefaultLimitEvery when zero): the first at once, the next no sooner
// than Every later, so that input arriving per packet (bad requests, a
// flood over a limit) never grows the log per packet. The events held
// back in between are counted and reported with the next one let through.
// The zero value is ready to use; a Limit is safe for concurrent use.
type Limit struct {
	Every time.Duration

	mu   sync.Mutex
	next time.Time
	held uint64
}

// Allow reports whether to log the event happening now, and how many
// were held back since the last one let through.
func (l *Limit) Allow() (ok bool, held uint64) { return l.AllowAt(time.Now()) }

// AllowAt is Allow for an event at now.
func (l *Limit) AllowAt(now time.Time) (ok bool, held uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.next.IsZero() && now.Before(l.next) {
		l.held++
		return false, 0
	}
	every := l.Every
	if every <= 0 {
		every = DefaultLimitEvery
	}
	l.next = now.Add(every)
	held, l.held = l.held, 0
	return true, held
}
