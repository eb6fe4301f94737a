package directory_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/directory/wire"
)

func storeWith(t *testing.T, l directory.Level, unit directory.Location, recs map[string][]directory.Location) *directory.Store {
	t.Helper()
	s, err := directory.NewStore(directory.StoreConfig{Level: l, Unit: unit})
	if err != nil {
		t.Fatal(err)
	}
	for k, locs := range recs {
		for _, loc := range locs {
			res := s.Apply(&wire.Update{Level: uint8(l), Groups: []wire.Group{{Origin: loc, Incarnation: 1,
				Ops: []wire.Op{{Kind: wire.OpAdd, Seq: 1, Key: k}}}}}, loc.Engine, 1, time.Now())
			if res.Err() != nil {
				t.Fatal(res.Err())
			}
		}
	}
	return s
}

func newResolver(t *testing.T, cfg directory.ResolverConfig) *directory.Resolver {
	t.Helper()
	r, err := directory.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestResolverSummaryAndUnresolved: a summary hit with a child is
// resolved to SEs; one without a reachable child stays unresolved;
// the path says who was asked; the JSON carries it.
func TestResolverSummaryAndUnresolved(t *testing.T) {
	cdn1 := directory.Location{CDN: 1}
	dc1, dc2 := directory.Location{CDN: 1, DataCenter: 1}, directory.Location{CDN: 1, DataCenter: 2}
	se1 := directory.Location{CDN: 1, DataCenter: 1, Farm: 1, Engine: 5}
	top := storeWith(t, directory.LevelCDN, cdn1, map[string][]directory.Location{"k": {dc1, dc2}})
	low := storeWith(t, directory.LevelDataCenter, dc1, map[string][]directory.Location{"k": {se1}})
	lowR := newResolver(t, directory.ResolverConfig{Node: 21, Store: low})
	r := newResolver(t, directory.ResolverConfig{Node: 31, Store: top, Child: func(u directory.Location) (directory.Peer, bool) {
		if u == dc1 {
			return lowR, true
		}
		return peerFunc(func(context.Context, directory.Query) (directory.Resolution, error) {
			return directory.Resolution{}, errors.New("unreachable")
		}), true
	}})
	res, err := r.Lookup(context.Background(), "k", directory.Location{CDN: 1, DataCenter: 2, Farm: 1, Engine: 9})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].Location != se1 || res.Hits[0].Hops != 6 {
		t.Fatalf("hits %+v", res.Hits)
	}
	if len(res.Unresolved) != 1 || res.Unresolved[0].Location != dc2 {
		t.Fatalf("unresolved %+v", res.Unresolved)
	}
	// Summaries are resolved nearest first: data center 2 (the asker's).
	if len(res.Path) != 3 || res.Path[0].Node != 31 || res.Path[0].Summaries != 2 ||
		res.Path[1].Unit != dc2 || res.Path[1].Error == "" || res.Path[1].Level != directory.LevelDataCenter ||
		res.Path[2].Node != 21 || res.Path[2].Via != "child" || res.Path[2].Hits != 1 {
		t.Fatalf("path %+v", res.Path)
	}
	b, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(b), `"via":"child"`) {
		t.Fatalf("json %s %v", b, err)
	}
}

// TestResolverLoop: a parent wired back to its child is cut short.
func TestResolverLoop(t *testing.T) {
	s := storeWith(t, directory.LevelDataCenter, directory.Location{CDN: 1, DataCenter: 1}, nil)
	var r *directory.Resolver
	r = newResolver(t, directory.ResolverConfig{Store: s, Parent: peerFunc(func(ctx context.Context, q directory.Query) (directory.Resolution, error) {
		return r.Resolve(ctx, q)
	})})
	if _, err := r.Lookup(context.Background(), "k", directory.Location{}); !errors.Is(err, directory.ErrLoop) {
		t.Fatalf("loop: %v", err)
	}
	if _, err := r.Lookup(context.Background(), "", directory.Location{}); !errors.Is(err, directory.ErrBadKey) {
		t.Fatalf("empty key: %v", err)
	}
}
