package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// checkTerm fences: a request carrying a term older than the newest one
// seen in an announced view comes from a deposed manager.
func (r *Responder) checkTerm(req *wire.Request) bool {
	vt := r.ep.Term()
	r.mu.Lock()
	defer r.mu.Unlock()
	if vt > r.newest {
		r.newest = vt
	}
	if req.Term < r.newest && req.Op != wire.OpSetCleanup {
		r.cnt.StaleTerm++
		return false
	}
	return true
}

// execute runs one request exactly once.
func (r *Responder) execute(ctx context.Context, m *rmtp.Message, req *wire.Request) *wire.Reply {
	rep := &wire.Reply{Op: req.Op, Tx: req.Tx}
	if !r.checkTerm(req) {
		rep.Status = wire.StatusStaleTerm
		return rep
	}
	r.mu.Lock()
	r.cnt.Executed++
	r.mu.Unlock()
	var err error
	switch req.Op {
	case wire.OpGet:
		rep.VarBinds, err = r.get(ctx, req.VarBinds)
	case wire.OpGetNext:
		rep.VarBinds, err = r.getNext(ctx, req.VarBinds)
	case wire.OpWalk:
		var trunc bool
		rep.VarBinds, trunc, err = r.walk(ctx, req.VarBinds, int(req.WalkCap))
		if trunc {
			rep.Flags |= wire.FlagTruncated
		}
	default:
		k := setKey{mgr: m.From, inc: m.Incarnation, tx: req.Tx}
		rep.VarBinds, err = r.setPhase(ctx, k, req)
	}
	if err != nil {
		var bad *badRequestError
		var se *smi.Error
		switch {
		case errors.As(err, &bad):
			rep.Status = wire.StatusBadRequest
			r.mu.Lock()
			r.cnt.BadRequests++
			r.mu.Unlock()
		case !errors.As(err, &se) && errors.Is(err, smi.ErrUnknownTx):
			// This SE holds no reservation for it (one the tree lost
			// is an SNMP error, commitFailed or undoFailed).
			rep.Status = wire.StatusUnknownTx
		default:
			st, idx := smi.StatusOf(err)
			rep.Status, rep.ErrStatus, rep.ErrIndex = wire.StatusSNMPError, st, uint16(min(idx, 0xffff))
		}
		rep.VarBinds = nil
		r.log.WithError(err).WithFields(logrus.Fields{"op": req.Op.String(), "tx": req.Tx, "from": m.From}).Debug("fanout: request failed")
	}
	return rep
}

type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return "fanout: bad request: " + e.msg }

// owned reports whether the tree holds o's subtree.
func owned(roots []smi.OID, o smi.OID) bool {
	i, found := slices.BinarySearchFunc(roots, o, func(r, o smi.OID) int { return r.Compare(o) })
	if found {
		return true
	}
	return i > 0 && o.HasPrefix(roots[i-1])
}

// ownerOf returns the tree root holding o, or nil.
func ownerOf(roots []smi.OID, o smi.OID) smi.OID {
	i, found := slices.BinarySearchFunc(roots, o, func(r, o smi.OID) int { return r.Compare(o) })
	if found {
		return roots[i]
	}
	if i > 0 && o.HasPrefix(roots[i-1]) {
		return roots[i-1]
	}
	return nil
}

func (r *Responder) countProxy(err error) {
	r.mu.Lock()
	r.cnt.Proxied++
	if err != nil {
		r.cnt.ProxyErrors++
	}
	r.mu.Unlock()
	if err != nil {
		r.log.WithError(err).Debug("fanout: local agent")
	}
}

func (r *Responder) get(ctx context.Context, in []smi.VarBind) ([]smi.VarBind, error) {
	names := make([]smi.OID, len(in))
	for i, vb := range in {
		names[i] = vb.Name
	}
	out, err := r.tree.Get(ctx, names)
	if err != nil || r.proxy == nil {
		return out, err
	}
	var ask []smi.OID
	var idx []int
	for i, vb := range out {
		if vb.Value.Type == smi.TypeNoSuchObject {
			ask = append(ask, vb.Name)
			idx = append(idx, i)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	vals, err := r.proxy.get(ctx, ask)
	r.countProxy(err)
	if err != nil {
		return out, nil // the local agent's silence leaves noSuchObject
	}
	for j, i := range idx {
		out[i].Value = vals[j]
	}
	return out, nil
}

func (r *Responder) getNext(ctx context.Context, in []smi.VarBind) ([]smi.VarBind, error) {
	ranges := make([]smi.Range, len(in))
	for i, vb := range in {
		ranges[i] = smi.Range{Start: vb.Name}
	}
	out, err := r.tree.GetNext(ctx, ranges)
	if err != nil || r.proxy == nil {
		return out, err
	}
	roots := r.tree.Roots()
	names := make([]smi.OID, len(in))
	for i, vb := range in {
		names[i] = vb.Name
	}
	// One batched GETNEXT to the local agent; only an answer that lands
	// in a subtree the tree owns needs its own follow-up.
	first, err := r.proxy.getNext(ctx, names)
	r.countProxy(err)
	if err != nil {
		return out, nil // the tree's answers alone
	}
	for i, vb := range in {
		pv := first[i]
		if pv.Value.Type != smi.TypeEndOfMibView && ownerOf(roots, pv.Name) != nil {
			if pv, err = r.proxyNext(ctx, roots, vb.Name); err != nil {
				break
			}
		}
		if pv.Value.Type == smi.TypeEndOfMibView {
			continue
		}
		if out[i].Value.Type == smi.TypeEndOfMibView || pv.Name.Compare(out[i].Name) < 0 {
			out[i] = pv
		}
	}
	return out, nil
}

// proxyNext is the local agent's successor of name that the tree does not
// shadow: the tree owns its subtrees even where the local agent also has
// them.
func (r *Responder) proxyNext(ctx context.Context, roots []smi.OID, name smi.OID) (smi.VarBind, error) {
	cur := name
	for range maxProxySkips {
		vbs, err := r.proxy.getNext(ctx, []smi.OID{cur})
		r.countProxy(err)
		if err != nil {
			return smi.VarBind{}, err
		}
		vb := vbs[0]
		root := ownerOf(roots, vb.Name)
		if vb.Value.Type == smi.TypeEndOfMibView || root == nil {
			return vb, nil
		}
		// Continue from the last possible name inside the tree's subtree:
		// the root followed by the largest sub-identifier.
		cur = root.Append(^uint32(0))
	}
	return smi.VarBind{Name: name, Value: smi.EndOfMibView()}, nil
}

// walk answers each root with up to limit instances, merging the tree and
// the local agent.
func (r *Responder) walk(ctx context.Context, in []smi.VarBind, limit int) ([]smi.VarBind, bool, error) {
	if limit <= 0 {
		limit = DefaultWalkCap
	}
	var out []smi.VarBind
	truncated := false
	roots := r.tree.Roots()
	for _, vb := range in {
		root, start := vb.Name, vb.Name
		switch vb.Value.Type {
		case smi.TypeNull:
		case smi.TypeObjectIdentifier:
			if !vb.Value.OID.HasPrefix(root) {
				return nil, false, &badRequestError{fmt.Sprintf("walk of %s continues at %s outside it", root, vb.Value.OID)}
			}
			start = vb.Value.OID
		default:
			return nil, false, &badRequestError{fmt.Sprintf("walk root %s with a %s value", root, vb.Value.Type)}
		}
		if len(out)+limit > wire.MaxReplyVarBinds {
			return nil, false, &smi.Error{Status: smi.TooBig, Err: errors.New("walk over the reply cap")}
		}
		got, err := r.tree.GetBulk(ctx, 0, limit+1, []smi.Range{{Start: start, End: root.SubtreeEnd()}}, limit+1)
		if err != nil {
			return nil, false, err
		}
		got = slices.DeleteFunc(got, func(v smi.VarBind) bool { return v.Value.Type.IsException() })
		if r.proxy != nil {
			pv, more, err := r.proxy.walk(ctx, root, start, limit+1)
			r.countProxy(err)
			if err == nil {
				pv = slices.DeleteFunc(pv, func(v smi.VarBind) bool { return owned(roots, v.Name) })
				got = append(got, pv...)
				slices.SortFunc(got, func(a, b smi.VarBind) int { return a.Name.Compare(b.Name) })
				got = slices.CompactFunc(got, func(a, b smi.VarBind) bool { return a.Name.Equal(b.Name) })
				if more {
					truncated = true
				}
			}
		}
		if len(got) > limit {
			got, truncated = got[:limit], true
		}
		out = append(out, got...)
	}
	return out, truncated, nil
}
