package agent

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

func TestOIDMapMatchesSortedReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := newOIDMap[int]()
	ref := map[string]smi.OID{}
	for step := 0; step < 20000; step++ {
		k := smi.OID{uint32(r.IntN(50)), uint32(r.IntN(50))}[:1+r.IntN(2)]
		if r.IntN(3) == 0 {
			_, had := ref[k.String()]
			if m.Delete(k) != had {
				t.Fatalf("Delete(%s) disagreed with reference (had=%v)", k, had)
			}
			delete(ref, k.String())
			continue
		}
		_, had := ref[k.String()]
		if m.Set(k, step) == had {
			t.Fatalf("Set(%s) reported new=%v, reference had=%v", k, !had, had)
		}
		ref[k.String()] = k
	}
	var want []smi.OID
	for _, k := range ref {
		want = append(want, k)
	}
	slices.SortFunc(want, smi.OID.Compare)
	var got []smi.OID
	for n := m.First(); n != nil; n = n.Next() {
		got = append(got, n.key)
	}
	if m.Len() != len(want) || len(got) != len(want) {
		t.Fatalf("len: map %d, walk %d, reference %d", m.Len(), len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("position %d: got %s want %s", i, got[i], want[i])
		}
	}
	// Floor and Ceil against the reference at random probes.
	for i := 0; i < 2000; i++ {
		p := smi.OID{uint32(r.IntN(52)), uint32(r.IntN(52))}[:1+r.IntN(2)]
		j, found := slices.BinarySearchFunc(want, p, smi.OID.Compare)
		var floor, ceilIncl, ceilExcl smi.OID
		if found {
			floor, ceilIncl = want[j], want[j]
			if j+1 < len(want) {
				ceilExcl = want[j+1]
			}
		} else {
			if j > 0 {
				floor = want[j-1]
			}
			if j < len(want) {
				ceilIncl, ceilExcl = want[j], want[j]
			}
		}
		check := func(what string, n *oidNode[int], w smi.OID) {
			t.Helper()
			if (n == nil) != (w == nil) || (n != nil && !n.key.Equal(w)) {
				t.Fatalf("%s(%s): got %v want %v", what, p, n, w)
			}
		}
		check("Floor", m.Floor(p), floor)
		check("Ceil incl", m.Ceil(p, true), ceilIncl)
		check("Ceil excl", m.Ceil(p, false), ceilExcl)
	}
}

// Registering n objects must cost O(n log n) node visits, not O(n²): the
// number of visits per insert is compared across sizes, never the time.
func TestOIDMapInsertIsLogarithmic(t *testing.T) {
	perInsert := func(n int, shuffle bool) float64 {
		keys := make([]smi.OID, n)
		for i := range keys {
			keys[i] = smi.OID{1, 3, 6, 1, 4, 1, 8072, 9999, uint32(i / 1000), uint32(i % 1000), 0}
		}
		if shuffle {
			r := rand.New(rand.NewPCG(3, 4))
			r.Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		}
		m := newOIDMap[struct{}]()
		for _, k := range keys {
			m.Set(k, struct{}{})
		}
		if m.Len() != n {
			t.Fatalf("len %d want %d", m.Len(), n)
		}
		return float64(m.steps) / float64(n)
	}
	for _, shuffle := range []bool{false, true} {
		small, large := perInsert(10000, shuffle), perInsert(100000, shuffle)
		bound := 4 * math.Log2(100000)
		t.Logf("shuffle=%v: %.1f visits/insert at 10k, %.1f at 100k (bound %.1f)", shuffle, small, large, bound)
		if large > bound {
			t.Errorf("shuffle=%v: %.1f node visits per insert at 100k, want <= %.1f", shuffle, large, bound)
		}
		// 10x the objects: logarithmic growth adds a constant, quadratic
		// would multiply by 10.
		if large > 2*small {
			t.Errorf("shuffle=%v: visits per insert grew from %.1f to %.1f for 10x the objects", shuffle, small, large)
		}
	}
}
