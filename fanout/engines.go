package fanout

import (
	"context"
	"slices"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// engineLocked returns the row of id, creating it. Caller holds c.mu.
func (c *Coordinator) engineLocked(id NodeID) *Engine {
	e := c.engines[id]
	if e == nil {
		e = &Engine{ID: id, State: EngineDown, LastStatus: StatusNoAnswer}
		c.engines[id] = e
	}
	return e
}

// Engines returns smEngineTable: every engine ever seen, by id, with its
// current transport state merged in.
func (c *Coordinator) Engines() []Engine {
	c.refreshEngines(time.Now())
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Engine, 0, len(c.engines))
	for _, e := range c.engines {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Engine) int { return cmpNode(a.ID, b.ID) })
	return out
}

// Engine returns one row of smEngineTable.
func (c *Coordinator) Engine(id NodeID) (Engine, bool) {
	c.refreshEngines(time.Now())
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.engines[id]
	if e == nil {
		return Engine{}, false
	}
	return *e, true
}

func stateOf(s rmtp.PeerState) EngineState {
	switch s {
	case rmtp.PeerAlive:
		return EngineUp
	case rmtp.PeerSuspect:
		return EngineSuspect
	}
	return EngineDown
}

// refreshEngines merges rmtp's peer table into the rows.
func (c *Coordinator) refreshEngines(time.Time) {
	st := c.ep.Stats()
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[NodeID]bool, len(st.Peers))
	for _, p := range st.Peers {
		if p.Role != rmtp.Engine {
			continue
		}
		seen[p.Node] = true
		e := c.engineLocked(p.Node)
		e.Addr, e.RTT, e.LastSeen = p.Addr, p.RTT, p.LastHeard
		if len(p.App) > 0 {
			if info, err := wire.ParseEngineInfo(p.App); err == nil {
				e.Info, e.HasInfo = info, true
			}
		}
		e.State = stateOf(p.State)
		if e.Incarnation != 0 && p.Incarnation != e.Incarnation {
			e.Restarts++
		}
		e.Incarnation = p.Incarnation
	}
	for id, e := range c.engines {
		if !seen[id] {
			e.State = EngineDown
		}
	}
}

// reported is what the last event said of an engine.
type reported struct {
	up  bool
	inc uint64
}

// transitions compares the rows with what was last reported. Caller holds
// c.mu.
func (c *Coordinator) transitionsLocked(now time.Time, last map[NodeID]reported) []EngineEvent {
	var evs []EngineEvent
	for id, e := range c.engines {
		up := e.State != EngineDown
		r, known := last[id]
		switch {
		case up && (!known || !r.up):
			evs = append(evs, EngineEvent{Engine: *e, Up: true, Restarted: known && r.inc != e.Incarnation, At: now})
		case up && r.inc != e.Incarnation:
			evs = append(evs, EngineEvent{Engine: *e, Up: true, Restarted: true, At: now})
		case !up && known && r.up:
			evs = append(evs, EngineEvent{Engine: *e, Up: false, At: now})
		default:
			continue
		}
		last[id] = reported{up: up, inc: e.Incarnation}
	}
	slices.SortFunc(evs, func(a, b EngineEvent) int { return cmpNode(a.Engine.ID, b.Engine.ID) })
	return evs
}

// watchLoop turns state changes into engine events, in order, on one
// goroutine, and expires abandoned SET transactions.
func (c *Coordinator) watchLoop(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	last := make(map[NodeID]reported)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.refreshEngines(now)
			c.mu.Lock()
			evs := c.transitionsLocked(now, last)
			c.mu.Unlock()
			for _, ev := range evs {
				c.log.WithField("engine", ev.Engine.ID).WithField("up", ev.Up).WithField("restarted", ev.Restarted).Info("fanout: engine state")
				if c.cfg.OnEngineEvent != nil {
					c.cfg.OnEngineEvent(ev)
				}
			}
			c.expireSets(ctx, now)
		}
	}
}
