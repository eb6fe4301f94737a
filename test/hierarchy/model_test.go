package hierarchy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// model is what the SEs have published and not removed: the concrete
// records (key, SE location) the tree must converge to.
type model struct {
	records map[string][]location
	// digestTop: level 3 forwards digest, so level 4 holds no record.
	digestTop bool
}

func (m *model) add(key string, loc location) {
	if !slices.Contains(m.records[key], loc) {
		m.records[key] = append(m.records[key], loc)
	}
}

func (m *model) remove(key string, loc location) {
	m.records[key] = slices.DeleteFunc(m.records[key], func(l location) bool { return l == loc })
	if len(m.records[key]) == 0 {
		delete(m.records, key)
	}
}

func (m *model) keys() []string { return slices.Sorted(maps.Keys(m.records)) }

// stores is what a manager holds for key under the typical policy (Fig 1,
// Fig 2a; forward full from levels 1 and 2, summary from level 3): levels
// 1-3 the concrete records inside their unit, level 4 one summary per CDN
// holding the key.
func (m *model) stores(n *node, key string) []location {
	var out []location
	for _, l := range m.records[key] {
		switch n.level {
		case 1, 2:
			if int(l.CDN) == n.cdn && int(l.DataCenter) == n.dc {
				out = append(out, l)
			}
		case 3:
			if int(l.CDN) == n.cdn {
				out = append(out, l)
			}
		case 4:
			if m.digestTop {
				continue
			}
			s := location{CDN: l.CDN}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	sortLocations(out)
	return out
}

// count is how many records n holds in all.
func (m *model) count(n *node) int {
	c := 0
	for k := range m.records {
		c += len(m.stores(n, k))
	}
	return c
}

func sortLocations(ls []location) {
	slices.SortFunc(ls, func(a, b location) int { return strings.Compare(a.String(), b.String()) })
}

// verifyLocal checks, for every (manager, key), that `lookup -local`
// answers exactly the records the model says that level stores: nothing
// more (another unit's content, concrete records at level 4), nothing
// less, none marked down. Lookups run on a few workers: hundreds of CLI
// processes one after the other would take most of the time budget.
func (tr *tree) verifyLocal(m *model, ms []*node, keys []string) {
	tr.t.Helper()
	type job struct {
		n   *node
		key string
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if e := tr.checkLocal(m, j.n, j.key); e != "" {
					mu.Lock()
					errs = append(errs, e)
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range ms {
		for _, k := range keys {
			jobs <- job{n, k}
		}
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		slices.Sort(errs)
		if len(errs) > 20 {
			errs = append(errs[:20], fmt.Sprintf("... and %d more", len(errs)-20))
		}
		tr.t.Errorf("%d of %d local lookups wrong:\n  %s", len(errs), len(ms)*len(keys), strings.Join(errs, "\n  "))
	}
}

// checkLocal is one local lookup; it returns what is wrong, or "". It may
// run off the test goroutine, so it never calls Fatal.
func (tr *tree) checkLocal(m *model, n *node, key string) string {
	r, code, err := tr.lookupE(n, key, true)
	if err != nil {
		return err.Error()
	}
	want := m.stores(n, key)
	got := r.locations()
	sortLocations(got)
	if !slices.Equal(got, want) {
		return fmt.Sprintf("%s: lookup -local %q (exit %d) = %v, want %v", n.name(), key, code, got, want)
	}
	if (code == 0) != (len(want) > 0) {
		return fmt.Sprintf("%s: lookup -local %q: exit %d with %d hits", n.name(), key, code, len(got))
	}
	for _, h := range r.Hits {
		if h.Down {
			return fmt.Sprintf("%s: lookup -local %q: %v marked down", n.name(), key, h.Location)
		}
	}
	if len(r.Path) > 1 {
		return fmt.Sprintf("%s: lookup -local %q asked other nodes: %s", n.name(), key, r.pathString())
	}
	return ""
}
