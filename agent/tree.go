package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Bounds on SET transactions held between phases. A master that vanishes
// between TestSet and CleanupSet must not leak state forever.
const (
	MaxPendingSets = 256
	PendingSetTTL  = 30 * time.Second
)

// Tree is the OID-ordered handler tree of one SNMP context. Handlers are
// registered at roots that own disjoint subtrees; requests are dispatched
// to them in batches. A Tree is safe for concurrent use. The zero value is
// not usable: call NewTree.
type Tree struct {
	mu   sync.RWMutex
	regs *oidMap[*registration]

	setMu sync.Mutex
	sets  map[smi.TxID]*setTx
	now   func() time.Time
}

type registration struct {
	root smi.OID
	h    Handler
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{regs: newOIDMap[*registration](), sets: make(map[smi.TxID]*setTx), now: time.Now}
}

// Register makes h answer for every OID under root. It fails with
// ErrOverlap when root lies inside, or contains, an existing registration.
func (t *Tree) Register(root smi.OID, h Handler) error {
	if len(root) == 0 {
		return fmt.Errorf("%w: empty root", ErrOverlap)
	}
	root = root.Clone()
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.regs.Floor(root); f != nil && root.HasPrefix(f.key) {
		return fmt.Errorf("%w: %s inside %s", ErrOverlap, root, f.key)
	}
	if c := t.regs.Ceil(root, true); c != nil && c.key.HasPrefix(root) {
		return fmt.Errorf("%w: %s contains %s", ErrOverlap, root, c.key)
	}
	t.regs.Set(root, &registration{root: root, h: h})
	return nil
}

// Unregister removes the registration at exactly root.
func (t *Tree) Unregister(root smi.OID) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.regs.Delete(root) {
		return fmt.Errorf("%w: %s", ErrNotRegistered, root)
	}
	return nil
}

// Roots returns the registered roots in OID order (what an AgentX session
// registers with its master).
func (t *Tree) Roots() []smi.OID {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]smi.OID, 0, t.regs.Len())
	for n := t.regs.First(); n != nil; n = n.Next() {
		out = append(out, n.key)
	}
	return out
}

// lookup returns the registration whose subtree holds o, or nil.
func (t *Tree) lookup(o smi.OID) *registration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if f := t.regs.Floor(o); f != nil && o.HasPrefix(f.key) {
		return f.val
	}
	return nil
}

// firstFor returns the first registration that may hold an OID of r.
func (t *Tree) firstFor(r smi.Range) *registration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if f := t.regs.Floor(r.Start); f != nil && r.Start.HasPrefix(f.key) {
		return f.val
	}
	return t.beforeEnd(t.regs.Ceil(r.Start, false), r.End)
}

// after returns the registration following reg if it starts before end.
// Looking it up by key again (instead of keeping the node) lets handlers
// run without the lock while registrations change.
func (t *Tree) after(reg *registration, end smi.OID) *registration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.beforeEnd(t.regs.Ceil(reg.root, false), end)
}

func (t *Tree) beforeEnd(n *oidNode[*registration], end smi.OID) *registration {
	if n == nil || (len(end) > 0 && n.key.Compare(end) >= 0) {
		return nil
	}
	return n.val
}

// batch is the part of one request that falls to one handler.
type batch struct {
	reg *registration
	idx []int // positions in the request
	off int   // where idx starts in the request's grouping (groupBy)
}

// groupBy collects request positions per registration, in order of first
// appearance, so handlers are called in request order. Positions with no
// registration are left out. All the batches' positions share one array,
// in batch order (off), so that callers can lay out per-batch arguments
// the same way: a request costs a few allocations however many handlers
// it spans.
func groupBy(n int, regOf func(i int) *registration) []batch {
	if n == 0 {
		return nil
	}
	first := regOf(0)
	same := first != nil
	for i := 1; same && i < n; i++ {
		same = regOf(i) == first
	}
	if same {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return []batch{{reg: first, idx: idx}}
	}
	// Which batch each position falls to (-1: none), counting each
	// batch's size in off for now. A handful of handlers is the
	// common case: a linear search beats a map until there are many.
	const linearMax = 8
	which := make([]int, n)
	var out []batch
	var byReg map[*registration]int
	for i := range n {
		reg := regOf(i)
		if reg == nil {
			which[i] = -1
			continue
		}
		b := -1
		if byReg != nil {
			if k, ok := byReg[reg]; ok {
				b = k
			}
		} else {
			for k := range out {
				if out[k].reg == reg {
					b = k
					break
				}
			}
		}
		if b < 0 {
			b = len(out)
			out = append(out, batch{reg: reg})
			if byReg != nil {
				byReg[reg] = b
			} else if len(out) > linearMax {
				byReg = make(map[*registration]int, 2*len(out))
				for k := range out {
					byReg[out[k].reg] = k
				}
			}
		}
		which[i] = b
		out[b].off++
	}
	all := make([]int, 0, n)
	for k := range out {
		c := out[k].off
		out[k].off = len(all)
		out[k].idx = all[len(all) : len(all) : len(all)+c]
		all = all[:len(all)+c]
	}
	for i, b := range which {
		if b >= 0 {
			out[b].idx = append(out[b].idx, i)
		}
	}
	return out
}

// runBatches calls fn once per batch: inline for a single batch or a
// Local handler, concurrently otherwise (handlers may block on I/O). The
// context's wait hook runs first when any batch's handler may block. The
// first error in request order wins.
func runBatches(ctx context.Context, batches []batch, fn func(b *batch) error) error {
	for i := range batches {
		if _, local := batches[i].reg.h.(Local); !local {
			if err := waitFor(ctx, batches[i].reg, batches[i].idx[0], smi.GenErr); err != nil {
				return err
			}
			break
		}
	}
	if len(batches) == 1 {
		return fn(&batches[0])
	}
	var errs []error
	var wg sync.WaitGroup
	for i := range batches {
		b := &batches[i]
		if _, fast := b.reg.h.(Local); fast {
			if err := fn(b); err != nil {
				if errs == nil {
					errs = make([]error, len(batches))
				}
				errs[i] = err
			}
			continue
		}
		if errs == nil {
			errs = make([]error, len(batches))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(b)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func handlerError(err error, b *batch, what string) error {
	st := statusFor(err, smi.GenErr)
	return &smi.Error{Status: st, Index: b.idx[0], Err: fmt.Errorf("%s %s: %w", what, b.reg.root, err)}
}

// Get answers an SNMP GET: one varbind per name, exception values where
// there is no value.
func (t *Tree) Get(ctx context.Context, names []smi.OID) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(names))
	regs := make([]*registration, len(names))
	for i, n := range names {
		out[i] = smi.VarBind{Name: n, Value: smi.NoSuchObject()}
		regs[i] = t.lookup(n)
	}
	batches := groupBy(len(names), func(i int) *registration { return regs[i] })
	// Every batch's names in one array, laid out as groupBy laid out
	// the positions.
	reqs := make([]smi.OID, 0, len(names))
	for _, b := range batches {
		for _, i := range b.idx {
			reqs = append(reqs, names[i])
		}
	}
	err := runBatches(ctx, batches, func(b *batch) error {
		req := reqs[b.off : b.off+len(b.idx)]
		vals, err := b.reg.h.Get(ctx, req)
		if err != nil {
			return handlerError(err, b, "get")
		}
		if len(vals) != len(req) {
			return handlerError(fmt.Errorf("%d values for %d names", len(vals), len(req)), b, "get")
		}
		for j, i := range b.idx {
			v := vals[j]
			if v.Type == smi.TypeEndOfMibView || !v.Type.Valid() {
				v = smi.NoSuchInstance() // a GET never ends a MIB view
			}
			out[i].Value = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetNext answers one varbind per range: the first instance inside it, or
// endOfMibView named by the range's start. Ranges travel from handler to
// handler in rounds, each round one batched call per handler.
func (t *Tree) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	if len(ranges) == 1 {
		return t.getNext1(ctx, ranges)
	}
	out := make([]smi.VarBind, len(ranges))
	cur := make([]*registration, len(ranges))
	for i, r := range ranges {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
		cur[i] = t.firstFor(r)
	}
	for {
		batches := groupBy(len(ranges), func(i int) *registration { return cur[i] })
		if len(batches) == 0 {
			return out, nil
		}
		err := runBatches(ctx, batches, func(b *batch) error {
			req := ranges
			if len(b.idx) != len(ranges) {
				req = make([]smi.Range, len(b.idx))
				for j, i := range b.idx {
					req[j] = ranges[i]
				}
			}
			vbs, err := b.reg.h.GetNext(ctx, req)
			if err != nil {
				return handlerError(err, b, "getnext")
			}
			if len(vbs) != len(req) {
				return handlerError(fmt.Errorf("%d answers for %d ranges", len(vbs), len(req)), b, "getnext")
			}
			for j, i := range b.idx {
				vb := vbs[j]
				// The Tree, not the handler, guarantees walk order: an
				// answer outside the range or the subtree counts as none.
				if vb.Value.Type.IsException() || !vb.Value.Type.Valid() ||
					!vb.Name.HasPrefix(b.reg.root) || !ranges[i].Contains(vb.Name) {
					cur[i] = t.after(b.reg, ranges[i].End)
					continue
				}
				out[i] = vb
				cur[i] = nil
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
}

// GetBulk answers a GETBULK (RFC 3416 §4.2.3; AgentX §7.2.3.3): GetNext for
// the first nonRepeaters ranges, then up to maxRepetitions rounds for the
// others, each continuing from the previous round's answer. It stops early
// once every repeater has reached endOfMibView, and once maxVarBinds
// varbinds are collected when maxVarBinds > 0 (the caller's message size
// decides the rest).
func (t *Tree) GetBulk(ctx context.Context, nonRepeaters, maxRepetitions int, ranges []smi.Range, maxVarBinds int) ([]smi.VarBind, error) {
	n := min(max(nonRepeaters, 0), len(ranges))
	m := max(maxRepetitions, 0)
	out, err := t.GetNext(ctx, ranges[:n])
	if err != nil {
		return nil, err
	}
	reps := append([]smi.Range(nil), ranges[n:]...)
	if len(reps) == 0 || m == 0 {
		return out, nil
	}
	done := make([]bool, len(reps))
	ask := make([]smi.Range, 0, len(reps))
	askIdx := make([]int, 0, len(reps))
	row := make([]smi.VarBind, len(reps))
	for round := 0; round < m; round++ {
		ask, askIdx = ask[:0], askIdx[:0]
		for i, r := range reps {
			if !done[i] {
				ask = append(ask, r)
				askIdx = append(askIdx, i)
			}
		}
		res, err := t.GetNext(ctx, ask)
		if err != nil {
			return nil, err
		}
		for i := range reps {
			row[i] = smi.VarBind{Name: reps[i].Start, Value: smi.EndOfMibView()}
		}
		for j, i := range askIdx {
			row[i] = res[j]
			if res[j].Value.Type == smi.TypeEndOfMibView {
				done[i] = true
				continue
			}
			reps[i] = smi.Range{Start: res[j].Name, End: reps[i].End}
		}
		for _, vb := range row {
			if maxVarBinds > 0 && len(out) >= maxVarBinds {
				return out, nil
			}
			out = append(out, vb)
		}
		if len(ask) == 0 || allTrue(done) {
			return out, nil
		}
	}
	return out, nil
}

func allTrue(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

// getNext1 is GetNext for one range (every step of a walk): no grouping,
// no goroutines, no closures.
func (t *Tree) getNext1(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	r := ranges[0]
	for reg := t.firstFor(r); reg != nil; reg = t.after(reg, r.End) {
		if err := waitFor(ctx, reg, 0, smi.GenErr); err != nil {
			return nil, err
		}
		vbs, err := reg.h.GetNext(ctx, ranges)
		if err != nil {
			return nil, handlerError(err, &batch{reg: reg, idx: []int{0}}, "getnext")
		}
		if len(vbs) != 1 {
			return nil, handlerError(fmt.Errorf("%d answers for 1 range", len(vbs)), &batch{reg: reg, idx: []int{0}}, "getnext")
		}
		vb := vbs[0]
		if vb.Value.Type.IsException() || !vb.Value.Type.Valid() || !vb.Name.HasPrefix(reg.root) || !r.Contains(vb.Name) {
			continue
		}
		return vbs, nil
	}
	return []smi.VarBind{{Name: r.Start, Value: smi.EndOfMibView()}}, nil
}
