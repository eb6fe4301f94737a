package agent

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGroupBy: batches in order of first appearance, each with its
// positions in request order, laid out back to back (off) in one array;
// positions without a registration in none. Random requests over few
// handlers (the linear search) and many (past linearMax, the map).
func TestGroupBy(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, handlers := range []int{1, 3, 8, 9, 40} {
		regs := make([]*registration, handlers)
		for i := range regs {
			regs[i] = &registration{}
		}
		for range 200 {
			n := rng.IntN(60)
			of := make([]*registration, n)
			for i := range of {
				if rng.IntN(10) > 0 {
					of[i] = regs[rng.IntN(handlers)]
				}
			}
			got := groupBy(n, func(i int) *registration { return of[i] })
			// The reference: the obvious map-of-slices grouping.
			var order []*registration
			want := map[*registration][]int{}
			for i, r := range of {
				if r == nil {
					continue
				}
				if want[r] == nil {
					order = append(order, r)
				}
				want[r] = append(want[r], i)
			}
			if len(got) != len(order) {
				t.Fatalf("%d handlers, n=%d: %d batches, want %d", handlers, n, len(got), len(order))
			}
			off := 0
			for k, b := range got {
				if b.reg != order[k] || !slices.Equal(b.idx, want[b.reg]) {
					t.Fatalf("batch %d: %v, want %v", k, b.idx, want[order[k]])
				}
				if b.off != off {
					t.Fatalf("batch %d at %d, want %d", k, b.off, off)
				}
				off += len(b.idx)
			}
		}
	}
}
