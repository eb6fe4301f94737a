package snmp

import (
	"context"
	"slices"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file is the access rules' views: a small VACM (RFC 3415) of
// included subtrees, per user and for the communities. A read view
// hides what lies outside it from GET (noSuchObject), GETNEXT and
// GETBULK (skipped, as if absent); a write view refuses a SET outside it
// (noAccess).

// view holds the subtrees a request may read and write; nil reads and
// writes (with write access) everything.
type view struct {
	read  []smi.OID // sorted, none inside another; nil: everything
	write []smi.OID // likewise; nil: whatever read allows
}

// newView returns the view of the two lists, nil when both are empty.
func newView(read, write []smi.OID) *view {
	if len(read) == 0 && len(write) == 0 {
		return nil
	}
	return &view{read: normalize(read), write: normalize(write)}
}

// normalize sorts subtrees and drops those inside another.
func normalize(subs []smi.OID) []smi.OID {
	if len(subs) == 0 {
		return nil
	}
	s := slices.Clone(subs)
	slices.SortFunc(s, smi.OID.Compare)
	out := s[:1]
	for _, o := range s[1:] {
		if !o.HasPrefix(out[len(out)-1]) {
			out = append(out, o)
		}
	}
	return out
}

func inAny(subs []smi.OID, o smi.OID) bool {
	for _, s := range subs {
		if o.HasPrefix(s) {
			return true
		}
	}
	return false
}

func (v *view) canRead(o smi.OID) bool { return v == nil || v.read == nil || inAny(v.read, o) }

func (v *view) canWrite(o smi.OID) bool {
	if v == nil {
		return true
	}
	if v.write != nil {
		return inAny(v.write, o)
	}
	return v.canRead(o)
}

// clamp narrows r to the first readable subtree it reaches; ok is false
// when no readable subtree lies after r's start.
func (v *view) clamp(r smi.Range) (smi.Range, bool) {
	for _, sub := range v.read {
		end := sub.SubtreeEnd()
		if end != nil && r.Start.Compare(end) >= 0 {
			continue // past this subtree
		}
		if r.Start.Compare(sub) < 0 {
			return smi.Range{Start: sub, Include: true, End: end}, true
		}
		return smi.Range{Start: r.Start, Include: r.Include, End: end}, true
	}
	return smi.Range{}, false
}

// getNext is the Tree's GetNext seen through v: each answer is the next
// readable instance, or endOfMibView after the last readable subtree.
func (v *view) getNext(ctx context.Context, t *agent.Tree, ranges []smi.Range) ([]smi.VarBind, error) {
	if v == nil || v.read == nil {
		return t.GetNext(ctx, ranges)
	}
	out := make([]smi.VarBind, len(ranges))
	cur := slices.Clone(ranges)
	todo := make([]int, len(ranges))
	for i := range todo {
		todo[i] = i
	}
	// Each round either answers a varbind or moves it past one readable
	// subtree: at most len(v.read)+1 rounds.
	for round := 0; len(todo) > 0 && round <= len(v.read); round++ {
		var ask []smi.Range
		var idx []int
		for _, i := range todo {
			c, ok := v.clamp(cur[i])
			if !ok {
				out[i] = smi.VarBind{Name: ranges[i].Start, Value: smi.EndOfMibView()}
				continue
			}
			ask = append(ask, c)
			idx = append(idx, i)
		}
		if len(ask) == 0 {
			break
		}
		res, err := t.GetNext(ctx, ask)
		if err != nil {
			return nil, err
		}
		todo = todo[:0]
		for j, i := range idx {
			if res[j].Value.Type == smi.TypeEndOfMibView {
				if ask[j].End == nil {
					out[i] = smi.VarBind{Name: ranges[i].Start, Value: smi.EndOfMibView()}
					continue
				}
				cur[i] = smi.Range{Start: ask[j].End, Include: true}
				todo = append(todo, i)
				continue
			}
			out[i] = res[j]
		}
	}
	for _, i := range todo {
		out[i] = smi.VarBind{Name: ranges[i].Start, Value: smi.EndOfMibView()}
	}
	return out, nil
}

// getBulk is the Tree's GetBulk (RFC 3416 §4.2.3) seen through v.
func (v *view) getBulk(ctx context.Context, t *agent.Tree, n, m int, ranges []smi.Range, maxVarBinds int) ([]smi.VarBind, error) {
	if v == nil || v.read == nil {
		return t.GetBulk(ctx, n, m, ranges, maxVarBinds)
	}
	out, err := v.getNext(ctx, t, ranges[:n])
	if err != nil {
		return nil, err
	}
	reps := slices.Clone(ranges[n:])
	done := make([]bool, len(reps))
	for round := 0; round < m && len(reps) > 0 && slices.Contains(done, false); round++ {
		row, err := v.getNext(ctx, t, reps)
		if err != nil {
			return nil, err
		}
		for i := range reps {
			if done[i] {
				row[i] = smi.VarBind{Name: reps[i].Start, Value: smi.EndOfMibView()}
				continue
			}
			if row[i].Value.Type == smi.TypeEndOfMibView {
				done[i] = true
				continue
			}
			reps[i] = smi.Range{Start: row[i].Name}
		}
		for _, vb := range row {
			if maxVarBinds > 0 && len(out) >= maxVarBinds {
				return out, nil
			}
			out = append(out, vb)
		}
	}
	return out, nil
}
