package mib

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// DefaultSubtreeInterval is how often a manager recomputes its subtree
// totals (smSubtree) and the report its heartbeats carry: rmtp's default
// heartbeat, so a report is never more than one heartbeat behind its rows.
const DefaultSubtreeInterval = 200 * time.Millisecond

// MaxSubtreeMembers bounds the engines (level 1) or child units (above)
// whose counts a Subtree keeps; beyond it a newcomer is left out of the
// totals, and the log says so once.
const MaxSubtreeMembers = 16384

// SubtreeConfig configures a Subtree.
type SubtreeConfig struct {
	// Level is this manager's level, 1..4. At level 1 the rows are service
	// engines and their heartbeats' numbers are summed; above, the rows
	// are the managers of the level below and what their heartbeats
	// report of their own subtree is summed, one report per child unit.
	Level int
	// CDN, DataCenter and Farm name this manager's unit (as its level
	// names them: 0 beyond), carried in its reports.
	CDN, DataCenter, Farm uint32
	// Engines returns the rows (a Farm's Engines). Required.
	Engines func() []fanout.Engine
	// Peers returns the subtree reports of the other live managers of
	// this level (their heartbeats'). This manager keeps its counters no
	// lower than any of theirs, so that the managers of a level agree
	// and a takeover continues the counters. nil = none.
	Peers func() []wire.Subtree
	// Active and Term go into the report: whether this manager is its
	// level's active one (the parent counts the active manager's report)
	// and its level's term. nil = false, 0.
	Active func() bool
	Term   func() uint64
	// Interval: see DefaultSubtreeInterval. SNMP reads recompute totals
	// older than this.
	Interval time.Duration
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Logger gets a line per episode (a member left out at the cap, a
	// child unit lost or back); nil = discard.
	Logger logrus.FieldLogger
}

// Subtree keeps a manager's totals of everything below it (smSubtree),
// from heartbeats only: no transaction. The counters (requests, bytes
// out) are Counter64s that never go back while the manager runs:
//
//   - at level 1 each engine counts as its smEngineRequests row does: its
//     whole count when first seen, then across its restarts its last value
//     plus what it counts anew, and its last value after it left;
//   - above, each child unit (a farm, data center or CDN of the level
//     below, whatever manager reports it) counts its first report whole,
//     then only what its reports rise by: a report lower than the last
//     (its manager restarted, or one that knew less took over) adds
//     nothing, and the unit counts on from there;
//   - the managers of one level hear each other's reports (Peers) and
//     none keeps counters lower than another's, so a backup that takes
//     over answers no less than the manager before it did.
//
// The gauges (content count, load, engines by state) are the current
// rows'. One Subtree serves every frontend of a node; Update, Report and
// the SNMP reads are safe for concurrent use.
type Subtree struct {
	cfg SubtreeConfig
	now func() time.Time
	log logrus.FieldLogger

	// updating serializes Update from reading the rows to applying
	// them: rows applied out of the order they were read would look like
	// counters going back (restarts).
	updating sync.Mutex

	mu      sync.Mutex
	at      time.Time // of the last update; zero: none yet
	engines map[fanout.NodeID]*rowCounters
	units   map[subtreeUnit]*unitCounts
	capped  bool // a member was left out at MaxSubtreeMembers (logged once)

	raw     [2]uint64 // Σ of the members' counts: requests, bytes out
	total   [2]uint64 // what smSubtree answers: raw's growth, no lower than a peer's
	current wire.Subtree
}

// subtreeUnit names a child unit by what its reports say.
type subtreeUnit struct {
	level                 uint8
	cdn, dataCenter, farm uint32
}

// unitCounts is what a level above 1 keeps of one child unit.
type unitCounts struct {
	reporter fanout.NodeID // the manager whose report was taken last
	last     wire.Subtree  // its last report
	counts   [2]uint64     // what the unit adds to the counters
	lost     bool          // no manager reports it now (logged once per episode)
}

// NewSubtree returns the totals of cfg's manager; Update or an SNMP read
// computes them.
func NewSubtree(cfg SubtreeConfig) (*Subtree, error) {
	if cfg.Engines == nil {
		return nil, fmt.Errorf("%w: a Subtree needs its rows (Engines)", ErrInvalid)
	}
	if cfg.Level < MinLevel || cfg.Level > MaxLevel {
		return nil, fmt.Errorf("%w: subtree of level %d outside %d..%d", ErrInvalid, cfg.Level, MinLevel, MaxLevel)
	}
	s := &Subtree{cfg: cfg, now: cfg.Now, log: cfg.Logger,
		engines: make(map[fanout.NodeID]*rowCounters), units: make(map[subtreeUnit]*unitCounts)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		s.log = l
	}
	if s.cfg.Interval <= 0 {
		s.cfg.Interval = DefaultSubtreeInterval
	}
	return s, nil
}

// Run updates the totals every Interval until ctx is done, and hands each
// report to publish (nil: none), which must not block: a node's
// heartbeats carry it.
func (s *Subtree) Run(ctx context.Context, publish func(wire.Subtree)) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		r := s.Update()
		if publish != nil {
			publish(r)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Report returns the totals as last computed, without computing them.
func (s *Subtree) Report() wire.Subtree {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// fresh returns the totals, computed again when older than Interval.
func (s *Subtree) fresh() wire.Subtree {
	s.mu.Lock()
	stale := s.at.IsZero() || s.now().Sub(s.at) >= s.cfg.Interval
	r := s.current
	s.mu.Unlock()
	if stale {
		r = s.Update()
	}
	return r
}

// Update computes the totals from the rows and the peers' reports and
// returns the report.
func (s *Subtree) Update() wire.Subtree {
	s.updating.Lock()
	defer s.updating.Unlock()
	rows := s.cfg.Engines()
	var peers []wire.Subtree
	if s.cfg.Peers != nil {
		peers = s.cfg.Peers()
	}
	r := wire.Subtree{Level: uint8(s.cfg.Level), CDN: s.cfg.CDN, DataCenter: s.cfg.DataCenter, Farm: s.cfg.Farm}
	if s.cfg.Active != nil {
		r.Active = s.cfg.Active()
	}
	if s.cfg.Term != nil {
		r.Term = s.cfg.Term()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.raw
	if s.cfg.Level == 1 {
		s.engineTotalsLocked(rows, &r)
	} else {
		s.unitTotalsLocked(rows, &r)
	}
	first := s.at.IsZero()
	for i := range s.total {
		if first {
			s.total[i] = s.raw[i]
		} else {
			s.total[i] += s.raw[i] - before[i] // the raw sums only grow
		}
	}
	for _, p := range peers {
		if p.Level != r.Level || p.CDN != r.CDN || p.DataCenter != r.DataCenter || p.Farm != r.Farm {
			continue // another unit's manager: not ours to follow
		}
		s.total[0] = max(s.total[0], p.Requests)
		s.total[1] = max(s.total[1], p.BytesOut)
	}
	r.Requests, r.BytesOut = s.total[0], s.total[1]
	s.at, s.current = s.now(), r
	return r
}

// engineTotalsLocked sums the engines' own numbers (level 1).
func (s *Subtree) engineTotalsLocked(rows []fanout.Engine, r *wire.Subtree) {
	for _, e := range rows {
		if e.ID < MinNodeID || e.ID > MaxNodeID {
			continue // not an index the MIB allows; not in smEngineTable either
		}
		live := e.State == fanout.EngineUp || e.State == fanout.EngineSuspect
		switch e.State {
		case fanout.EngineUp:
			r.Up++
		case fanout.EngineSuspect:
			r.Suspect++
		default:
			r.Down++
		}
		if !e.HasInfo {
			continue
		}
		if live {
			r.ContentCount += e.Info.ContentCount
			r.LoadSum += uint64(e.Info.Load)
			r.LoadEngines++
		}
		rc := s.engines[e.ID]
		if rc == nil {
			if len(s.engines) >= MaxSubtreeMembers {
				s.capLocked(e.ID)
				continue
			}
			rc = &rowCounters{restarts: e.Restarts}
			s.engines[e.ID] = rc
		}
		restarted := e.Restarts != rc.restarts
		rc.restarts = e.Restarts
		oldReq, oldBytes := rc.requests.offset+rc.requests.last, rc.bytes.offset+rc.bytes.last
		s.raw[0] += rc.requests.update(e.Info.Requests, restarted) - oldReq
		s.raw[1] += rc.bytes.update(e.Info.BytesOut, restarted) - oldBytes
	}
}

// unitTotalsLocked sums one report per child unit (levels 2..4).
func (s *Subtree) unitTotalsLocked(rows []fanout.Engine, r *wire.Subtree) {
	type candidate struct {
		id   fanout.NodeID
		up   bool
		info wire.Subtree
	}
	best := map[subtreeUnit]candidate{}
	better := func(u *unitCounts, a, b candidate) bool {
		if a.info.Active != b.info.Active {
			return a.info.Active
		}
		if a.info.Term != b.info.Term {
			return a.info.Term > b.info.Term
		}
		// Stay with the manager taken last: two reports of one unit
		// differ by a heartbeat's counts, and taking turns between them
		// would count those again at every turn.
		if u != nil && (a.id == u.reporter) != (b.id == u.reporter) {
			return a.id == u.reporter
		}
		if a.up != b.up {
			return a.up
		}
		return a.id < b.id
	}
	for _, e := range rows {
		if !e.HasInfo || !e.Info.HasSubtree || (e.State != fanout.EngineUp && e.State != fanout.EngineSuspect) {
			continue
		}
		st := e.Info.Subtree
		k := subtreeUnit{st.Level, st.CDN, st.DataCenter, st.Farm}
		c := candidate{id: e.ID, up: e.State == fanout.EngineUp, info: st}
		if cur, ok := best[k]; !ok || better(s.units[k], c, cur) {
			best[k] = c
		}
	}
	for k, c := range best {
		u := s.units[k]
		if u == nil {
			if len(s.units) >= MaxSubtreeMembers {
				s.capLocked(c.id)
				continue
			}
			// A unit first seen brings its whole count.
			u = &unitCounts{counts: [2]uint64{c.info.Requests, c.info.BytesOut}}
			s.units[k] = u
			s.raw[0] += c.info.Requests
			s.raw[1] += c.info.BytesOut
		} else {
			for i, v := range [2]uint64{c.info.Requests, c.info.BytesOut} {
				old := [2]uint64{u.last.Requests, u.last.BytesOut}[i]
				if v > old {
					u.counts[i] += v - old
					s.raw[i] += v - old
				}
			}
		}
		if u.lost {
			u.lost = false
			s.log.WithFields(logrus.Fields{"unit": unitString(k), "manager": c.id}).Info("mib: subtree totals: a manager reports the unit again")
		}
		u.reporter, u.last = c.id, c.info
	}
	for k, u := range s.units {
		if _, ok := best[k]; ok {
			r.Up += u.last.Up
			r.Suspect += u.last.Suspect
			r.Down += u.last.Down
			r.ContentCount += u.last.ContentCount
			r.LoadSum += u.last.LoadSum
			r.LoadEngines += u.last.LoadEngines
			continue
		}
		// Nobody reports the unit: its engines are managed by no one now.
		r.Down += u.last.Up + u.last.Suspect + u.last.Down
		if !u.lost {
			u.lost = true
			s.log.WithFields(logrus.Fields{"unit": unitString(k), "last_manager": u.reporter}).Warn("mib: subtree totals: no manager reports the unit; its engines count as down")
		}
	}
}

func (s *Subtree) capLocked(id fanout.NodeID) {
	if !s.capped {
		s.capped = true
		s.log.WithFields(logrus.Fields{"member": id, "cap": MaxSubtreeMembers}).Warn("mib: subtree totals: too many members; newcomers are left out")
	}
}

func unitString(k subtreeUnit) string {
	return fmt.Sprintf("level %d %d/%d/%d", k.level, k.cdn, k.dataCenter, k.farm)
}

// subtreeObjects are smSubtree's scalars in OID order.
var subtreeObjects = []ID{SmSubtreeRequests, SmSubtreeBytesOut, SmSubtreeContentCount, SmSubtreeLoad,
	SmSubtreeEnginesUp, SmSubtreeEnginesSuspect, SmSubtreeEnginesDown}

// SubtreeValues returns what smSubtree answers for a report, in OID order
// (subtreeObjects): the gauges latch at 2^32-1.
func SubtreeValues(r wire.Subtree) []smi.Value {
	load := uint64(0)
	if r.LoadEngines > 0 {
		load = (r.LoadSum + uint64(r.LoadEngines)/2) / uint64(r.LoadEngines)
	}
	return []smi.Value{
		smi.Counter64(r.Requests), smi.Counter64(r.BytesOut), smi.Gauge32(latch32(r.ContentCount)),
		smi.Gauge32(latch32(load)), smi.Gauge32(r.Up), smi.Gauge32(r.Suspect), smi.Gauge32(r.Down),
	}
}

// RegisterSubtree puts smSubtree on tree, answered from s (recomputed when
// older than its Interval).
func RegisterSubtree(tree *agent.Tree, s *Subtree) error {
	if s == nil {
		return fmt.Errorf("%w: RegisterSubtree needs a Subtree", ErrInvalid)
	}
	h := newGroupHandler(subtreeObjects, func() ([]smi.Value, error) { return SubtreeValues(s.fresh()), nil })
	return tree.Register(SmSubtree.OID(), h)
}
