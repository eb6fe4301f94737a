package fanout

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Shared deadlines: deadlines in one grain share a context, which ends
// once the grain's end has passed (never before), when a later grain's
// context is created or at expire; a deadline already passed gets an ended
// context.
func TestSharedDeadlines(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := newSharedDeadlines(parent, 50*time.Millisecond)
	now := d.base
	a := d.at(now, now.Add(time.Millisecond))
	b := d.at(now, now.Add(49*time.Millisecond))
	c := d.at(now, now.Add(51*time.Millisecond))
	if a != b {
		t.Error("deadlines in one grain got different contexts")
	}
	if a == c {
		t.Error("deadlines in different grains share a context")
	}
	// Each reports its grain's end as its deadline: rmtp ends a
	// reply's repairs there from its own timer loop.
	if dl, ok := a.Deadline(); !ok || !dl.Equal(now.Add(50*time.Millisecond)) {
		t.Errorf("first grain's deadline %v %v, want %v", dl, ok, now.Add(50*time.Millisecond))
	}
	if dl, _ := c.Deadline(); !dl.Equal(now.Add(100 * time.Millisecond)) {
		t.Errorf("second grain's deadline %v, want %v", dl, now.Add(100*time.Millisecond))
	}
	if past := d.at(now, now.Add(-time.Second)); past.Err() == nil {
		t.Error("a deadline already passed got a live context")
	}
	d.expire(now.Add(49 * time.Millisecond))
	if a.Err() != nil || d.len() != 2 {
		t.Fatalf("ended before its grain's end: %v, %d held", a.Err(), d.len())
	}
	d.expire(now.Add(50 * time.Millisecond))
	if a.Err() == nil || c.Err() != nil || d.len() != 1 {
		t.Fatalf("at the first grain's end: first %v, second %v, %d held", a.Err(), c.Err(), d.len())
	}
	// A new grain ends the passed ones on the way.
	e := d.at(now.Add(100*time.Millisecond), now.Add(time.Second))
	if c.Err() == nil || e.Err() != nil || d.len() != 1 {
		t.Fatalf("after a new grain: second %v, new %v, %d held", c.Err(), e.Err(), d.len())
	}
	cancel()
	if e.Err() == nil {
		t.Error("a shared deadline outlived its parent")
	}
}

// The reply cache drops expired replies and, over its size, the oldest
// finished ones, but never an entry still executing (a repeat would then
// execute the request twice).
func TestEvictInFinishOrder(t *testing.T) {
	r := &Responder{cfg: ResponderConfig{ReplyCacheSize: 3}, cache: make(map[cacheKey]*cacheEntry)}
	now := time.Now()
	key := func(tx uint64) cacheKey { return cacheKey{mgr: 1, inc: 1, tx: tx, op: OpGet} }
	executing := &cacheEntry{done: make(chan struct{})}
	r.cache[key(100)] = executing
	finish := func(tx uint64, at time.Time) {
		e := &cacheEntry{done: make(chan struct{}), expires: at}
		close(e.done)
		r.cache[key(tx)] = e
		r.done = append(r.done, finished{key(tx), e})
	}
	finish(1, now.Add(1*time.Second))
	finish(2, now.Add(2*time.Second))
	finish(3, now.Add(3*time.Second))
	r.evictLocked(now) // 4 entries, size 3: the oldest finished goes
	if _, ok := r.cache[key(1)]; ok || len(r.cache) != 3 {
		t.Fatalf("over size: %d entries, tx 1 kept %v", len(r.cache), ok)
	}
	// A dropped key cached again (the manager asked after the TTL) is a
	// new entry; its old queue slot must not drop it.
	delete(r.cache, key(2))
	finish(2, now.Add(10*time.Second))
	r.evictLocked(now.Add(2500 * time.Millisecond))
	if _, ok := r.cache[key(2)]; !ok {
		t.Fatal("a stale queue slot dropped a newer entry")
	}
	r.evictLocked(now.Add(time.Hour))
	if len(r.cache) != 1 || r.cache[key(100)] != executing {
		t.Fatalf("after every TTL: %d entries, executing kept %v", len(r.cache), r.cache[key(100)] == executing)
	}
	if len(r.done) != 0 || r.doneHead != 0 {
		t.Fatalf("queue not reclaimed: %d slots, head %d", len(r.done), r.doneHead)
	}
}

// A zero configuration is filled with the Default...Config, field for
// field, and with nothing else but the logger (and the caller's tree).
func TestFillIsDefaultConfig(t *testing.T) {
	check := func(what string, got, want any, own ...string) {
		g, w := reflect.ValueOf(got), reflect.ValueOf(want)
		for i := range g.NumField() {
			name := g.Type().Field(i).Name
			gf, wf := g.Field(i), w.Field(i)
			switch {
			case slices.Contains(own, name):
			case wf.IsZero() && !gf.IsZero():
				t.Errorf("%s: fill defaults %s to %v, the default config has none", what, name, gf)
			case !wf.IsZero() && !reflect.DeepEqual(gf.Interface(), wf.Interface()):
				t.Errorf("%s: fill defaults %s to %v, the default config to %v", what, name, gf, wf)
			}
		}
	}
	var cc CoordinatorConfig
	cc.fill()
	check("coordinator", cc, DefaultCoordinatorConfig(), "Logger")
	rc := ResponderConfig{Tree: nopTree{}}
	if err := rc.fill(); err != nil {
		t.Fatal(err)
	}
	check("responder", rc, DefaultResponderConfig(), "Logger", "Tree")
}

// nopTree is a Tree with nothing in it.
type nopTree struct{}

func (nopTree) Roots() []smi.OID                                            { return nil }
func (nopTree) Get(context.Context, []smi.OID) ([]smi.VarBind, error)       { return nil, nil }
func (nopTree) GetNext(context.Context, []smi.Range) ([]smi.VarBind, error) { return nil, nil }
func (nopTree) GetBulk(context.Context, int, int, []smi.Range, int) ([]smi.VarBind, error) {
	return nil, nil
}
func (nopTree) TestSet(context.Context, smi.TxID, []smi.VarBind) error { return nil }
func (nopTree) CommitSet(context.Context, smi.TxID) error              { return nil }
func (nopTree) UndoSet(context.Context, smi.TxID) error                { return nil }
func (nopTree) CleanupSet(context.Context, smi.TxID)                   {}
