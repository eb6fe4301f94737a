package fanout

import (
	"context"
	"time"
)

// sharedDeadlines hands out contexts that end shortly after a deadline:
// one per grain (the deadline rounded up to it), shared by every request
// whose deadline falls in it, and ended by their owner (when a later
// grain's context is created, and by the Responder's janitor) rather than
// by a timer each. A request thus costs a map lookup instead of a timer
// and a context of its own (two per request were 4 % of the SEs' CPU at
// 256 SEs in the benchmark's one process), and no goroutine starts when a
// deadline passes. A context ends no earlier than its deadline, and at most a grain
// later while requests keep coming (a janitor interval when the SE is
// idle). Its Deadline is the grain's end, though the context itself is
// ended by its owner: rmtp then ends a reply's repairs from its own timer
// loop at that deadline instead of registering a callback with the
// context per reply. Not safe for concurrent use: the Responder guards it
// with its mutex.
type sharedDeadlines struct {
	parent context.Context
	base   time.Time // keys count grains from here, on the monotonic clock
	grain  time.Duration
	ctxs   map[int64]sharedDeadline
}

type sharedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newSharedDeadlines(parent context.Context, grain time.Duration) sharedDeadlines {
	return sharedDeadlines{parent: parent, base: time.Now(), grain: grain, ctxs: make(map[int64]sharedDeadline)}
}

// at returns the context that ends once t, rounded up to the grain, has
// passed (or when the parent ends).
func (d *sharedDeadlines) at(now, t time.Time) context.Context {
	k := int64((t.Sub(d.base) + d.grain - 1) / d.grain)
	if c, ok := d.ctxs[k]; ok {
		return c.ctx
	}
	d.expire(now) // a new grain: end those that passed, while here
	c, cancel := context.WithCancel(d.parent)
	ctx := grainContext{c, d.end(k)}
	if !ctx.end.After(now) {
		cancel()
		return ctx
	}
	d.ctxs[k] = sharedDeadline{ctx, cancel}
	return ctx
}

// grainContext is a shared context that reports its grain's end as its
// deadline (its parent's, if that is earlier).
type grainContext struct {
	context.Context
	end time.Time
}

func (c grainContext) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.end) {
		return d, true
	}
	return c.end, true
}

// end is the deadline of key k.
func (d *sharedDeadlines) end(k int64) time.Time { return d.base.Add(time.Duration(k) * d.grain) }

// expire ends the contexts whose deadline is not after now; the map thus
// holds at most the longest deadline handed out divided by the grain.
func (d *sharedDeadlines) expire(now time.Time) {
	for k, c := range d.ctxs {
		if !d.end(k).After(now) {
			c.cancel()
			delete(d.ctxs, k)
		}
	}
}

// len is the number of contexts held.
func (d *sharedDeadlines) len() int { return len(d.ctxs) }
