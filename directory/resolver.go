package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Resolver defaults.
const (
	DefaultMaxHits      = 64
	DefaultAskTimeout   = 800 * time.Millisecond
	maxResolveSteps     = 64 // path entries one answer may carry (a loop guard as well)
	maxSummariesPerStep = 16 // summary hits one node resolves downward
)

// ErrLoop is returned when a lookup would ask more nodes than any tree of
// four levels needs: a wiring mistake (a parent that is a child).
var ErrLoop = errors.New("directory: lookup path too long")

// Query is one lookup across levels.
type Query struct {
	Key  string   `json:"key"`
	From Location `json:"from"` // the asking node: hops count from it
	// Down: resolve within the answering node's unit only (a parent
	// resolving a summary hit); never climb.
	Down bool `json:"down,omitempty"`
	// Steps already in the path (loop guard).
	Steps int `json:"-"`
}

// Step is one node asked during a lookup, in the order asked.
type Step struct {
	Node      uint32   `json:"node"`
	Level     Level    `json:"level"`
	Unit      Location `json:"unit"`
	Via       string   `json:"via"`       // "self", "parent" (climbed to) or "child" (resolving a summary)
	Hits      int      `json:"hits"`      // concrete hits in its store
	Summaries int      `json:"summaries"` // summary hits in its store
	Error     string   `json:"error,omitempty"`
}

// Resolution is the answer to a lookup across levels.
type Resolution struct {
	Key  string `json:"key"`
	Hits []Hit  `json:"hits"` // concrete SEs, nearest first
	// Unresolved are summary hits no child resolved (unreachable, or no
	// child interface): "somewhere in this unit".
	Unresolved []Hit  `json:"unresolved,omitempty"`
	Path       []Step `json:"path"`
}

// Peer answers lookups: a Resolver, or a client reaching one on another
// node (the CLI's control socket, an rmtp request).
type Peer interface {
	Resolve(ctx context.Context, q Query) (Resolution, error)
}

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	Node  uint32 // this node's id, for the path
	Store *Store // this level's directory (Level and Unit from its config)
	// Parent is the next level up (nil at the top, or when the policy
	// towards it is none).
	Parent Peer
	// Child returns the peer serving a summary hit's unit (a unit of the
	// level below this one); nil or false: the hit stays unresolved.
	Child   func(unit Location) (Peer, bool)
	MaxHits int           // hits returned (default 64)
	Timeout time.Duration // per question to another node (default 800 ms)
	Now     func() time.Time
}

// Resolver looks keys up across levels (DESIGN.md §7): from its own
// store; summary hits resolved downward through Child; a miss climbs to
// Parent. "Nearest" is fewest tree hops from the asking node, then the
// lowest location; hits of SEs declared down come last.
type Resolver struct {
	cfg  ResolverConfig
	unit Location
	lvl  Level

	digestAsked, digestFound, falseHits atomic.Uint64
}

// ResolverStats count the lookups a Resolver resolved through its child
// units' digests.
type ResolverStats struct {
	DigestAsked uint64 // digest matches asked of the child unit
	DigestFound uint64 // of those, the child had the key
	// FalseHits: the child answered that it holds no such key (a false
	// positive of the digest, or a key removed since the digest was
	// sent); each ended as a miss of that unit.
	FalseHits uint64
}

// Stats returns the totals.
func (r *Resolver) Stats() ResolverStats {
	return ResolverStats{DigestAsked: r.digestAsked.Load(), DigestFound: r.digestFound.Load(), FalseHits: r.falseHits.Load()}
}

// NewResolver returns a resolver.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: resolver without a store", ErrInvalid)
	}
	if cfg.MaxHits <= 0 {
		cfg.MaxHits = DefaultMaxHits
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultAskTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sc := cfg.Store.Config()
	return &Resolver{cfg: cfg, unit: sc.Unit, lvl: sc.Level}, nil
}

// Lookup resolves key for the asking location from.
func (r *Resolver) Lookup(ctx context.Context, key string, from Location) (Resolution, error) {
	return r.Resolve(ctx, Query{Key: key, From: from})
}

// Resolve implements Peer.
func (r *Resolver) Resolve(ctx context.Context, q Query) (Resolution, error) {
	res := Resolution{Key: q.Key, Hits: []Hit{}}
	if q.Steps >= maxResolveSteps {
		return res, fmt.Errorf("%w: %d nodes asked", ErrLoop, q.Steps)
	}
	if err := CheckKey(q.Key, wireMaxKey(r.cfg.Store)); err != nil {
		return res, err
	}
	self := Step{Node: r.cfg.Node, Level: r.lvl, Unit: r.unit, Via: "self"}
	var summaries []Hit
	for _, h := range r.cfg.Store.Lookup(q.Key, q.From, r.cfg.Now()) {
		if isSummary(h.Location) {
			summaries = append(summaries, h)
			self.Summaries++
		} else {
			res.Hits = append(res.Hits, h)
			self.Hits++
		}
	}
	// Child units whose digest matches: "maybe there", resolved like a
	// summary (a unit that also has a summary record is asked once).
	for _, h := range r.cfg.Store.DigestMatches(q.Key, q.From) {
		if !q.Down && Contains(h.Location, q.From) {
			continue // the asker's own unit: it had no hit, or the query would not have climbed
		}
		if !slices.ContainsFunc(summaries, func(s Hit) bool { return s.Location == h.Location }) {
			summaries = append(summaries, h)
			self.Summaries++
		}
	}
	sortHits(summaries)
	res.Path = append(res.Path, self)
	for i, s := range summaries {
		if i >= maxSummariesPerStep || len(res.Path) >= maxResolveSteps {
			res.Unresolved = append(res.Unresolved, summaries[i:]...)
			break
		}
		var p Peer
		ok := false
		if r.cfg.Child != nil && Contains(r.unit, s.Location) && s.Location != r.unit {
			p, ok = r.cfg.Child(s.Location)
		}
		if !ok {
			res.Unresolved = append(res.Unresolved, s)
			continue
		}
		sub, err := r.ask(ctx, p, Query{Key: q.Key, From: q.From, Down: true, Steps: q.Steps + len(res.Path)})
		if errors.Is(err, ErrLoop) {
			return res, err
		}
		if err != nil && len(sub.Path) == 0 {
			sub.Path = []Step{{Level: r.lvl - 1, Unit: s.Location, Error: err.Error()}}
		}
		for j := range sub.Path {
			if j == 0 {
				sub.Path[j].Via = "child"
			}
		}
		res.Path = append(res.Path, sub.Path...)
		res.Hits = append(res.Hits, sub.Hits...)
		res.Unresolved = append(res.Unresolved, sub.Unresolved...)
		none := err == nil && len(sub.Hits) == 0 && len(sub.Unresolved) == 0
		if s.Maybe {
			r.digestAsked.Add(1)
			switch {
			case none:
				r.falseHits.Add(1) // the child said no: a miss, not "somewhere there"
				continue
			case len(sub.Hits) > 0:
				r.digestFound.Add(1)
			}
		}
		if err != nil || none {
			res.Unresolved = append(res.Unresolved, s)
		}
	}
	if len(res.Hits) == 0 && !q.Down && r.cfg.Parent != nil {
		sub, err := r.ask(ctx, r.cfg.Parent, Query{Key: q.Key, From: q.From, Steps: q.Steps + len(res.Path)})
		if errors.Is(err, ErrLoop) {
			return res, err
		}
		if err != nil && len(sub.Path) == 0 {
			// Which parent manager failed is unknown (the question went to
			// all of them); the unit says where.
			sub.Path = []Step{{Level: r.lvl + 1, Unit: (r.lvl + 1).Unit(r.unit), Error: err.Error()}}
		}
		if len(sub.Path) > 0 {
			sub.Path[0].Via = "parent"
		}
		res.Path = append(res.Path, sub.Path...)
		if err == nil {
			res.Hits = append(res.Hits, sub.Hits...)
			res.Unresolved = append(res.Unresolved, sub.Unresolved...)
		}
	}
	sortHits(res.Hits)
	sortHits(res.Unresolved)
	res.Unresolved = slices.CompactFunc(res.Unresolved, func(a, b Hit) bool { return a.Location == b.Location })
	if len(res.Hits) > r.cfg.MaxHits {
		res.Hits = res.Hits[:r.cfg.MaxHits]
	}
	if len(res.Path) > maxResolveSteps {
		res.Path = res.Path[:maxResolveSteps]
	}
	return res, nil
}

func (r *Resolver) ask(ctx context.Context, p Peer, q Query) (Resolution, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	return p.Resolve(ctx, q)
}

// isSummary: a location with no SE is a unit ("somewhere in it").
func isSummary(l Location) bool { return l.Engine == 0 }

func wireMaxKey(s *Store) int { return s.Config().MaxKey }

// sortHits orders hits nearest first, as Store.Lookup does.
func sortHits(hits []Hit) {
	slices.SortStableFunc(hits, func(a, b Hit) int {
		switch {
		case a.Down != b.Down:
			if a.Down {
				return 1
			}
			return -1
		case a.Hops != b.Hops:
			return a.Hops - b.Hops
		}
		return compareLoc(a.Location, b.Location)
	})
}
