package mib

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// ErrFenced fails a read of the farm when SEs refused this manager's term
// (staleTerm): they obey a manager elected above it, which it cannot hear.
// What the others answered would pass a part of the farm off as the whole
// (an aggregate with a count of 0, or of a few), so the request fails
// with genErr until the election steps this manager down, and a backup's
// reads keep failing while the SEs refuse its term.
var ErrFenced = errors.New("mib: the SEs refuse this manager's term: another manager was elected above it")

// fenced returns ErrFenced, naming how many of the engines asked refused,
// when any engine answered staleTerm.
func fenced(res *fanout.Result) error {
	if res == nil {
		return nil
	}
	n := 0
	for i := range res.Replies {
		if res.Replies[i].Status == fanout.StatusStaleTerm {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w (%d of %d engines)", ErrFenced, n, len(res.Expected))
}

// class groups value types by what the aggregate functions do with them
// (the result syntax documented under smAggregate).
type class uint8

const (
	classOther    class = iota // strings, OIDs, addresses: count only
	classCounter               // Counter32, Counter64
	classInteger               // Integer32
	classUnsigned              // Gauge32 / Unsigned32
	classTicks                 // TimeTicks
)

func classOf(t smi.Type) class {
	switch t {
	case smi.TypeCounter32, smi.TypeCounter64:
		return classCounter
	case smi.TypeInteger:
		return classInteger
	case smi.TypeGauge32:
		return classUnsigned
	case smi.TypeTimeTicks:
		return classTicks
	}
	return classOther
}

// engineValue is one engine's value of an object.
type engineValue struct {
	engine fanout.NodeID
	inc    uint64 // its incarnation when it answered (0: unknown)
	v      smi.Value
}

// hasValue reports whether v is a value (not an exception or NULL).
func hasValue(v smi.Value) bool {
	return v.Type.Valid() && !v.Type.IsException() && v.Type != smi.TypeNull
}

// aggregate computes fn over vals, the values the responding engines have
// for inner. Sums of counters go through the tracker, fed with the
// fan-out's window w.
func (m *Manager) aggregate(fn Func, inner smi.OID, vals []engineValue, w window) smi.Value {
	if fn == FuncCount {
		return smi.Gauge32(latch32(uint64(len(vals))))
	}
	cls, mixed := classOther, false
	for i, ev := range vals {
		c := classOf(ev.v.Type)
		if i == 0 {
			cls = c
		} else if c != cls {
			mixed = true
		}
	}
	if len(vals) == 0 {
		// Nobody answered: only a counter sum still has a value, the one
		// it had, so it never goes back.
		if fn == FuncSum {
			if total, ok := m.tracker.update(inner, w, nil); ok {
				return smi.Counter64(total)
			}
		}
		return smi.NoSuchInstance()
	}
	if mixed || cls == classOther {
		return smi.NoSuchInstance()
	}
	switch cls {
	case classCounter:
		if fn != FuncSum {
			return smi.NoSuchInstance()
		}
		rs := make([]reading, len(vals))
		for i, ev := range vals {
			rs[i] = reading{engine: ev.engine, inc: ev.inc, value: ev.v.Uint, wide: ev.v.Type == smi.TypeCounter64}
		}
		total, _ := m.tracker.update(inner, w, rs)
		return smi.Counter64(total)
	case classInteger:
		return aggregateInt(fn, vals)
	case classTicks:
		if fn == FuncSum {
			return smi.NoSuchInstance() // a sum of times means nothing
		}
	}
	return aggregateUint(fn, vals)
}

// aggregateInt is sum (saturated at the Integer32 bounds), min, max and
// avg of Integer32 values. Values are clamped to int32, so the int64 sum of
// up to 2^32 of them cannot overflow.
func aggregateInt(fn Func, vals []engineValue) smi.Value {
	var sum int64
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, ev := range vals {
		// An engine's codec may hand out more than 32 bits; the MIB's
		// bounds hold whatever it sent.
		x := max(math.MinInt32, min(math.MaxInt32, ev.v.Int))
		sum += x
		lo, hi = min(lo, x), max(hi, x)
	}
	n := int64(len(vals))
	switch fn {
	case FuncSum:
		return smi.Integer(int32(max(math.MinInt32, min(math.MaxInt32, sum))))
	case FuncMin:
		return smi.Integer(int32(lo))
	case FuncMax:
		return smi.Integer(int32(hi))
	}
	// Round half away from zero.
	q := sum / n
	if r := sum % n; 2*abs(r) >= n {
		if sum < 0 {
			q--
		} else {
			q++
		}
	}
	return smi.Integer(int32(q))
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// aggregateUint is sum (latched, RFC 2578 §7.1.7), min, max and avg of
// Gauge32 and TimeTicks values, in the values' type.
func aggregateUint(fn Func, vals []engineValue) smi.Value {
	typ := vals[0].v.Type
	var sum uint64
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for _, ev := range vals {
		x := uint64(latch32(ev.v.Uint))
		sum += x // at most 2^32 values below 2^32: no overflow
		lo, hi = min(lo, x), max(hi, x)
	}
	var r uint64
	switch fn {
	case FuncSum:
		r = uint64(latch32(sum))
	case FuncMin:
		r = lo
	case FuncMax:
		r = hi
	default:
		n := uint64(len(vals))
		r = (sum + n/2) / n
	}
	return smi.Value{Type: typ, Uint: r}
}

// valuesAt returns the engines' values of the i-th of n names of a GET.
func valuesAt(res *fanout.Result, i, n int) []engineValue {
	if res == nil {
		return nil
	}
	var out []engineValue
	for _, r := range res.Replies {
		if r.Status != fanout.StatusOK || len(r.VarBinds) != n {
			continue
		}
		if v := r.VarBinds[i].Value; hasValue(v) {
			out = append(out, engineValue{engine: r.Engine, inc: r.Incarnation, v: v})
		}
	}
	return out
}

// splitName cuts name = root.first.rest; ok is false when name has no
// sub-identifier after root or nothing after first.
func splitName(name, root smi.OID) (first uint32, rest smi.OID, ok bool) {
	if !name.HasPrefix(root) || len(name) < len(root)+2 {
		return 0, nil, false
	}
	return name[len(root)], name[len(root)+1:], true
}

// rangeStart says where a range starts inside root: at first.rest, with
// before = true when it starts before the whole subtree, and after = true
// when it starts beyond it.
func rangeStart(r smi.Range, root smi.OID) (first uint32, rest smi.OID, before, after bool) {
	switch {
	case r.Start.HasPrefix(root):
		if len(r.Start) == len(root) {
			return 0, nil, true, false
		}
		return r.Start[len(root)], r.Start[len(root)+1:], false, false
	case r.Start.Compare(root) < 0:
		return 0, nil, true, false
	}
	return 0, nil, false, true
}

// aggregateHandler serves smAggregate.<function>.<OID>.
type aggregateHandler struct {
	m    *Manager
	warn logging.Limit // a failing fan-out, once a minute at most
}

// farmFailed logs a failed fan-out, at most once a minute however many
// requests fail (a flood of requests over the fan-out's MaxVarBinds must
// not grow the log per request), with the count of those not logged.
func farmFailed(l *logging.Limit, m *Manager, err error, what string, fields logrus.Fields) {
	if ok, held := l.Allow(); ok {
		m.log.WithError(err).WithFields(fields).WithField("not_logged_since", held).Warn(what)
	}
}

// innerOK reports whether inner can name an object of the engines: it
// must have a BER encoding to travel to them (at least 2 arcs, the first
// 0, 1 or 2). Any other is an instance no engine has, answered as such
// instead of failing the fan-out of every varbind of its request.
func innerOK(inner smi.OID) bool { return ber.CheckOID(inner) == nil }

// Get answers every varbind of the request from one fan-out of the
// distinct OIDs they name.
func (h *aggregateHandler) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	root := SmAggregate.OID()
	out := make([]smi.Value, len(names))
	type ask struct {
		fn  Func
		idx int
	}
	asks := make([]ask, len(names))
	var uniq oidList
	for i, n := range names {
		fn, inner, ok := splitName(n, root)
		if !ok || !Func(fn).Valid() {
			out[i] = smi.NoSuchObject()
			asks[i].idx = -1
			continue
		}
		if !innerOK(inner) {
			out[i] = smi.NoSuchInstance()
			asks[i].idx = -1
			continue
		}
		j := uniq.add(inner)
		asks[i] = ask{fn: Func(fn), idx: j}
	}
	if len(uniq.oids) == 0 {
		return out, nil
	}
	var res *fanout.Result
	w, err := h.m.fanoutWindow(func() (err error) {
		res, err = h.m.farm.Get(ctx, nil, uniq.oids)
		return err
	})
	if err != nil && !noEngines(err) {
		farmFailed(&h.warn, h.m, err, "mib: smAggregate fan-out failed", nil)
		return nil, err
	}
	// Not logged here: the fan-out says it once per episode.
	if err := fenced(res); err != nil {
		return nil, err
	}
	vals := make([][]engineValue, len(uniq.oids))
	for j := range uniq.oids {
		vals[j] = valuesAt(res, j, len(uniq.oids))
	}
	// One tracker update per OID even when sum is asked twice.
	sums := make(map[int]smi.Value)
	for i, a := range asks {
		if a.idx < 0 {
			continue
		}
		if a.fn == FuncSum {
			if v, ok := sums[a.idx]; ok {
				out[i] = v
				continue
			}
		}
		out[i] = h.m.aggregate(a.fn, uniq.oids[a.idx], vals[a.idx], w)
		if a.fn == FuncSum {
			sums[a.idx] = out[i]
		}
	}
	return out, nil
}

// GetNext lists, for each function, the engines' own numeric objects
// that have a value, from the walk snapshots of the native subtrees.
func (h *aggregateHandler) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	root := SmAggregate.OID()
	return h.m.nextFromNative(ctx, &h.warn, root, ranges, func(nv *nativeView, r smi.Range, startFn uint32, startInner smi.OID, before bool) (smi.VarBind, bool) {
		for _, fn := range Funcs {
			if !before && uint32(fn) < startFn {
				continue
			}
			k := 0
			if !before && uint32(fn) == startFn {
				k = searchAfter(nv.numeric, startInner, r.Include)
			}
			for ; k < len(nv.numeric); k++ {
				inner := nv.numeric[k]
				name := root.Append(uint32(fn)).Append(inner...)
				if len(r.End) > 0 && name.Compare(r.End) >= 0 {
					return smi.VarBind{}, false
				}
				if !r.Contains(name) {
					continue
				}
				if v := h.m.aggregate(fn, inner, nv.valuesOf(inner), nv.window); hasValue(v) {
					return smi.VarBind{Name: name, Value: v}, true
				}
			}
		}
		return smi.VarBind{}, false
	})
}

// nextFromNative answers a GetNext of the subtree under root from the
// walk snapshots of the engines' native subtrees, taken once for all the
// ranges and only when one of them needs them. For each range that does
// not start beyond root, next returns the first instance of the range
// inside root, if any: first and rest are where the range starts below
// root (its first arc, and the arcs after it), unless before (it starts
// before root). The others are endOfMibView. A failed snapshot fails the
// request and is logged through warn.
func (m *Manager) nextFromNative(ctx context.Context, warn *logging.Limit, root smi.OID, ranges []smi.Range,
	next func(nv *nativeView, r smi.Range, first uint32, rest smi.OID, before bool) (smi.VarBind, bool)) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	var nv *nativeView
	for i, r := range ranges {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
		first, rest, before, after := rangeStart(r, root)
		if after {
			continue
		}
		if nv == nil {
			var err error
			if nv, err = m.native(ctx); err != nil {
				farmFailed(warn, m, err, "mib: snapshot of the engines' objects failed", nil)
				return nil, err
			}
		}
		if vb, ok := next(nv, r, first, rest, before); ok {
			out[i] = vb
		}
	}
	return out, nil
}

// searchAfter returns the index of the first OID in sorted that comes
// after start (or at it, when include).
func searchAfter(sorted []smi.OID, start smi.OID, include bool) int {
	k, found := slices.BinarySearchFunc(sorted, start, smi.OID.Compare)
	if found && !include {
		k++
	}
	return k
}

// nativeView is the engines' own objects, from one snapshot of each
// native subtree.
type nativeView struct {
	snaps   []*fanout.Snapshot
	engines []fanout.NodeID                 // engines that answered, sorted
	vbs     map[fanout.NodeID][]smi.VarBind // their instances, in OID order
	inc     map[fanout.NodeID]uint64        // their incarnations when they answered
	numeric []smi.OID                       // every instance with a numeric value on some engine, sorted
	window  window
}

// valuesOf returns the engines' values of one instance.
func (nv *nativeView) valuesOf(inner smi.OID) []engineValue {
	var out []engineValue
	for _, id := range nv.engines {
		vbs := nv.vbs[id]
		if k, ok := slices.BinarySearchFunc(vbs, inner, func(vb smi.VarBind, o smi.OID) int { return vb.Name.Compare(o) }); ok && hasValue(vbs[k].Value) {
			out = append(out, engineValue{engine: id, inc: nv.inc[id], v: vbs[k].Value})
		}
	}
	return out
}

// native returns the view of the engines' own objects.
func (m *Manager) native(ctx context.Context) (*nativeView, error) {
	snaps := make([]*fanout.Snapshot, len(nativeRoots))
	for i, root := range nativeRoots {
		s, err := m.farm.Snapshot(ctx, nil, root)
		if err != nil {
			if noEngines(err) {
				return &nativeView{vbs: map[fanout.NodeID][]smi.VarBind{}}, nil
			}
			return nil, err // logged by the caller, at most once a minute
		}
		if err := fenced(s.Result); err != nil {
			return nil, err
		}
		snaps[i] = s
	}
	m.nativeMu.Lock()
	defer m.nativeMu.Unlock()
	if m.nativeLast != nil && slices.Equal(m.nativeLast.snaps, snaps) {
		return m.nativeLast, nil
	}
	nv := &nativeView{snaps: snaps, vbs: make(map[fanout.NodeID][]smi.VarBind), inc: make(map[fanout.NodeID]uint64)}
	seen := make(map[string]bool)
	for i, s := range snaps {
		w := window{start: s.Taken, done: s.Taken}
		if s.Result != nil {
			w.done = s.Taken.Add(s.Result.Elapsed)
		}
		// The earliest start and latest end: a reading is taken for as
		// old as it may be, so it is ignored rather than taken for a
		// restart.
		if i == 0 || w.start.Before(nv.window.start) {
			nv.window.start = w.start
		}
		if w.done.After(nv.window.done) {
			nv.window.done = w.done
		}
		if s.Result == nil {
			continue
		}
		for _, r := range s.Result.Replies {
			vbs := s.VarBinds(r.Engine)
			if vbs == nil {
				continue
			}
			if _, ok := nv.vbs[r.Engine]; !ok {
				nv.engines = append(nv.engines, r.Engine)
			}
			nv.inc[r.Engine] = max(nv.inc[r.Engine], r.Incarnation)
			nv.vbs[r.Engine] = append(nv.vbs[r.Engine], vbs...)
			for _, vb := range vbs {
				if vb.Value.Type.IsNumeric() {
					if k := oidKey(vb.Name); !seen[k] {
						seen[k] = true
						nv.numeric = append(nv.numeric, vb.Name)
					}
				}
			}
		}
	}
	slices.Sort(nv.engines)
	for id, vbs := range nv.vbs {
		// The roots are in OID order, but keep each engine's list sorted
		// whatever order they are given in.
		slices.SortFunc(vbs, func(a, b smi.VarBind) int { return a.Name.Compare(b.Name) })
		nv.vbs[id] = vbs
	}
	slices.SortFunc(nv.numeric, smi.OID.Compare)
	m.nativeLast = nv
	return nv, nil
}
