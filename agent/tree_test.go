package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

var base = smi.MustParseOID("1.3.6.1.4.1.99999")

// sliceHandler serves a fixed sorted list of instances: a reference
// implementation of a callback subtree.
type sliceHandler struct{ vbs []smi.VarBind }

func (h *sliceHandler) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, len(names))
	for i, n := range names {
		out[i] = smi.NoSuchInstance()
		if j, ok := slices.BinarySearchFunc(h.vbs, n, func(vb smi.VarBind, o smi.OID) int { return vb.Name.Compare(o) }); ok {
			out[i] = h.vbs[j].Value
		}
	}
	return out, nil
}

func (h *sliceHandler) GetNext(_ context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	for i, r := range ranges {
		out[i] = firstIn(h.vbs, r)
	}
	return out, nil
}

// firstIn is the reference answer to a search range over a sorted list.
func firstIn(ref []smi.VarBind, r smi.Range) smi.VarBind {
	for _, vb := range ref {
		if r.Contains(vb.Name) {
			return vb
		}
	}
	return smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
}

// randomTree registers scalars, tables (some empty, some sparse) and
// callback subtrees at random disjoint roots and returns the tree with
// the sorted list of every instance it must serve.
func randomTree(t *testing.T, r *rand.Rand) (*Tree, []smi.VarBind) {
	t.Helper()
	tr := NewTree()
	var ref []smi.VarBind
	for k := uint32(1); k <= 40; k++ {
		if r.IntN(4) == 0 {
			continue // a gap between registrations
		}
		root := base.Append(k)
		if r.IntN(3) == 0 {
			root = root.Append(uint32(r.IntN(3)), uint32(r.IntN(5)))
		}
		switch r.IntN(3) {
		case 0:
			v := smi.Counter64(r.Uint64())
			if err := tr.RegisterScalar(root, Const(v)); err != nil {
				t.Fatal(err)
			}
			ref = append(ref, smi.VarBind{Name: root.Append(0), Value: v})
		case 1:
			cols := []uint32{1, 2, uint32(3 + r.IntN(4))}
			tab := NewTable(root, cols...)
			rows := r.IntN(30) // often none: empty tables between full ones
			for i := 0; i < rows; i++ {
				idx := smi.OID{uint32(r.IntN(100))}
				if r.IntN(2) == 0 {
					idx = append(idx, uint32(r.IntN(4)))
				}
				row := Columns{}
				for _, c := range cols {
					if r.IntN(4) != 0 { // sparse columns
						row[c] = smi.Integer(r.Int32())
					}
				}
				tab.SetRow(idx, row)
			}
			for _, c := range slices.Compact(cols) {
				for _, idx := range tab.Indexes() {
					r, _ := tab.rows.Get(idx)
					if v, ok := r.Column(c); ok {
						ref = append(ref, smi.VarBind{Name: root.Append(c).Append(idx...), Value: v})
					}
				}
			}
			if err := tr.RegisterTable(tab); err != nil {
				t.Fatal(err)
			}
		case 2:
			h := &sliceHandler{}
			for i := 0; i < r.IntN(20); i++ {
				h.vbs = append(h.vbs, smi.VarBind{Name: root.Append(uint32(r.IntN(10)), uint32(r.IntN(10))), Value: smi.Gauge32(r.Uint32())})
			}
			slices.SortFunc(h.vbs, func(a, b smi.VarBind) int { return a.Name.Compare(b.Name) })
			h.vbs = slices.CompactFunc(h.vbs, func(a, b smi.VarBind) bool { return a.Name.Equal(b.Name) })
			if err := tr.Register(root, h); err != nil {
				t.Fatal(err)
			}
			ref = append(ref, h.vbs...)
		}
	}
	slices.SortFunc(ref, func(a, b smi.VarBind) int { return a.Name.Compare(b.Name) })
	return tr, ref
}

func randomOID(r *rand.Rand) smi.OID {
	o := base.Clone()
	if r.IntN(10) == 0 {
		return o[:r.IntN(len(o)+1)]
	}
	for i := 0; i < 1+r.IntN(5); i++ {
		o = append(o, uint32(r.IntN(42)))
	}
	return o
}

func sameVarBind(a, b smi.VarBind) bool { return a.Name.Equal(b.Name) && a.Value.Equal(b.Value) }

func TestTreeMatchesSortedReferenceOnRandomTrees(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(0); seed < 60; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		tr, ref := randomTree(t, r)

		// A full walk, GETNEXT by GETNEXT, is the reference list exactly.
		var walked []smi.VarBind
		cur := smi.OID{}
		for steps := 0; ; steps++ {
			if steps > len(ref)+1 {
				t.Fatalf("seed %d: walk did not end after %d steps", seed, steps)
			}
			vbs, err := tr.GetNext(ctx, []smi.Range{{Start: cur}})
			if err != nil {
				t.Fatal(err)
			}
			if vbs[0].Value.Type == smi.TypeEndOfMibView {
				break
			}
			if vbs[0].Name.Compare(cur) <= 0 {
				t.Fatalf("seed %d: walk went from %s back to %s", seed, cur, vbs[0].Name)
			}
			walked = append(walked, vbs[0])
			cur = vbs[0].Name
		}
		if !slices.EqualFunc(walked, ref, sameVarBind) {
			t.Fatalf("seed %d: walk has %d varbinds, reference %d", seed, len(walked), len(ref))
		}

		// Random search ranges, batched in one request.
		var ranges []smi.Range
		for i := 0; i < 50; i++ {
			rg := smi.Range{Start: randomOID(r), Include: r.IntN(2) == 0}
			if r.IntN(3) == 0 {
				rg.End = randomOID(r)
			}
			ranges = append(ranges, rg)
		}
		got, err := tr.GetNext(ctx, ranges)
		if err != nil {
			t.Fatal(err)
		}
		for i, rg := range ranges {
			if want := firstIn(ref, rg); !sameVarBind(got[i], want) {
				t.Fatalf("seed %d: range %+v: got %v want %v", seed, rg, got[i], want)
			}
		}

		// GETBULK equals repeated reference lookups.
		nonRep, maxRep := r.IntN(3), 1+r.IntN(12)
		bulk, err := tr.GetBulk(ctx, nonRep, maxRep, ranges[:5], 0)
		if err != nil {
			t.Fatal(err)
		}
		want := bulkReference(ref, nonRep, maxRep, ranges[:5])
		if !slices.EqualFunc(bulk, want, sameVarBind) {
			t.Fatalf("seed %d: bulk(%d,%d): got %d varbinds %v, want %d %v", seed, nonRep, maxRep, len(bulk), bulk, len(want), want)
		}

		// GET of every instance and of random names.
		var names []smi.OID
		for _, vb := range ref {
			names = append(names, vb.Name)
		}
		for i := 0; i < 30; i++ {
			names = append(names, randomOID(r))
		}
		vals, err := tr.Get(ctx, names)
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != len(names) {
			t.Fatalf("seed %d: %d answers for %d names", seed, len(vals), len(names))
		}
		for i, n := range names {
			j, ok := slices.BinarySearchFunc(ref, n, func(vb smi.VarBind, o smi.OID) int { return vb.Name.Compare(o) })
			switch {
			case ok && !vals[i].Value.Equal(ref[j].Value):
				t.Fatalf("seed %d: GET %s = %v want %v", seed, n, vals[i].Value, ref[j].Value)
			case !ok && vals[i].Value.Type != smi.TypeNoSuchObject && vals[i].Value.Type != smi.TypeNoSuchInstance:
				t.Fatalf("seed %d: GET of missing %s = %v", seed, n, vals[i].Value)
			}
		}
	}
}

func bulkReference(ref []smi.VarBind, nonRep, maxRep int, ranges []smi.Range) []smi.VarBind {
	var out []smi.VarBind
	n := min(nonRep, len(ranges))
	for _, rg := range ranges[:n] {
		out = append(out, firstIn(ref, rg))
	}
	reps := slices.Clone(ranges[n:])
	for round := 0; round < maxRep && len(reps) > 0; round++ {
		ended := 0
		for i := range reps {
			vb := firstIn(ref, reps[i])
			out = append(out, vb)
			if vb.Value.Type == smi.TypeEndOfMibView {
				ended++
				reps[i] = smi.Range{Start: reps[i].Start, Include: false, End: smi.OID{0}} // stays ended
				continue
			}
			reps[i] = smi.Range{Start: vb.Name, End: reps[i].End}
		}
		if ended == len(reps) {
			break
		}
	}
	return out
}

func TestRegisterRefusesOverlap(t *testing.T) {
	tr := NewTree()
	if err := tr.RegisterScalar(base.Append(1, 2), Const(smi.Integer(1))); err != nil {
		t.Fatal(err)
	}
	for _, root := range []smi.OID{base.Append(1), base.Append(1, 2), base.Append(1, 2, 0), base.Append(1, 2, 7, 7)} {
		if err := tr.Register(root, &sliceHandler{}); !errors.Is(err, ErrOverlap) {
			t.Errorf("Register(%s) = %v, want ErrOverlap", root, err)
		}
	}
	if err := tr.Register(base.Append(1, 3), &sliceHandler{}); err != nil {
		t.Errorf("sibling registration refused: %v", err)
	}
	if err := tr.Unregister(base.Append(9)); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("Unregister unknown = %v", err)
	}
	if err := tr.Unregister(base.Append(1, 2)); err != nil {
		t.Fatal(err)
	}
	if got := tr.Roots(); len(got) != 1 || !got[0].Equal(base.Append(1, 3)) {
		t.Errorf("Roots after unregister = %v", got)
	}
}

// liar answers outside its subtree and backwards; the Tree must not pass
// that on to a walker.
type liar struct{}

func (l *liar) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	return []smi.Value{smi.EndOfMibView()}, nil // wrong kind for a GET, and maybe wrong count
}

func (l *liar) GetNext(_ context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	for i := range ranges {
		out[i] = smi.VarBind{Name: smi.OID{1, 3}, Value: smi.Integer(1)} // before everything
	}
	return out, nil
}

func TestTreeContainsMisbehavingHandlers(t *testing.T) {
	ctx := context.Background()
	tr := NewTree()
	if err := tr.Register(base.Append(1), &liar{}); err != nil {
		t.Fatal(err)
	}
	if err := tr.RegisterScalar(base.Append(2), Const(smi.Integer(5))); err != nil {
		t.Fatal(err)
	}
	vbs, err := tr.GetNext(ctx, []smi.Range{{Start: base}})
	if err != nil {
		t.Fatal(err)
	}
	if !vbs[0].Name.Equal(base.Append(2, 0)) {
		t.Errorf("walk past a lying handler reached %v, want %s.2.0", vbs[0], base)
	}
	// One name: the liar's single EndOfMibView becomes noSuchInstance.
	got, err := tr.Get(ctx, []smi.OID{base.Append(1, 1)})
	if err != nil || got[0].Value.Type != smi.TypeNoSuchInstance {
		t.Errorf("GET through liar = %v, %v; want noSuchInstance", got, err)
	}
	// Two names, one answer: a handler bug is genErr, never a short response.
	_, err = tr.Get(ctx, []smi.OID{base.Append(1, 1), base.Append(1, 2)})
	if st, idx := smi.StatusOf(err); st != smi.GenErr || idx != 0 {
		t.Errorf("short answer from handler: status %v index %d, want genErr 0", st, idx)
	}
}

func TestGetAnswersEveryVarbindWithExceptions(t *testing.T) {
	ctx := context.Background()
	tr := NewTree()
	must(t, tr.RegisterScalar(base.Append(1), Const(smi.Integer(1))))
	tab := NewTable(base.Append(2, 1), 1, 2)
	tab.SetRow(smi.OID{5}, Columns{1: smi.Integer(5)})
	must(t, tr.RegisterTable(tab))
	names := []smi.OID{
		base.Append(1, 0),       // exists
		base.Append(1, 1),       // scalar, wrong instance
		base.Append(2, 1, 1, 5), // row 5 column 1
		base.Append(2, 1, 2, 5), // row 5 has no column 2
		base.Append(2, 1, 9, 5), // no such column
		base.Append(2, 1, 1, 6), // no such row
		base.Append(3),          // nothing registered
	}
	want := []smi.Type{smi.TypeInteger, smi.TypeNoSuchInstance, smi.TypeInteger, smi.TypeNoSuchInstance,
		smi.TypeNoSuchObject, smi.TypeNoSuchInstance, smi.TypeNoSuchObject}
	got, err := tr.Get(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		if !got[i].Name.Equal(names[i]) || got[i].Value.Type != want[i] {
			t.Errorf("GET %s = %v, want type %v", names[i], got[i], want[i])
		}
	}
}

func TestGetBulkCapsVarbinds(t *testing.T) {
	tr := NewTree()
	tab := NewTable(base.Append(1, 1), 1)
	for i := uint32(1); i <= 100; i++ {
		tab.SetRow(smi.OID{i}, Columns{1: smi.Integer(int32(i))})
	}
	must(t, tr.RegisterTable(tab))
	got, err := tr.GetBulk(context.Background(), 0, 1000, []smi.Range{{Start: base}}, 37)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 37 || !got[36].Name.Equal(base.Append(1, 1, 1, 37)) {
		t.Fatalf("bulk capped at 37: got %d varbinds ending %v", len(got), got[len(got)-1])
	}
	got, _ = tr.GetBulk(context.Background(), 0, 1000, []smi.Range{{Start: base}}, 0)
	if len(got) != 101 || got[100].Value.Type != smi.TypeEndOfMibView {
		t.Fatalf("bulk to the end: %d varbinds, last %v; want 100 rows then endOfMibView", len(got), got[len(got)-1])
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRegisterScalars(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				tr := NewTree()
				for i := 0; i < n; i++ {
					_ = tr.RegisterScalar(base.Append(uint32(i/1000), uint32(i%1000)), Const(smi.Integer(1)))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/register")
		})
	}
}

func BenchmarkGetNextTable(b *testing.B) {
	tr := NewTree()
	tab := NewTable(base.Append(1, 1), 1, 2, 3)
	for i := uint32(1); i <= 10000; i++ {
		tab.SetRow(smi.OID{i}, Columns{1: smi.Integer(int32(i)), 2: smi.String("x"), 3: smi.Counter64(uint64(i))})
	}
	_ = tr.RegisterTable(tab)
	ctx := context.Background()
	cur := smi.OID(base)
	b.ReportAllocs()
	for b.Loop() {
		vbs, _ := tr.GetNext(ctx, []smi.Range{{Start: cur}})
		cur = vbs[0].Name
		if vbs[0].Value.Type == smi.TypeEndOfMibView {
			cur = base
		}
	}
}
