package mib

import (
	"context"
	"slices"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// groupHandler serves scalars that come from one snapshot (the transport
// counters, the forwarding statistics): a request reads it once, however
// many of them it asks for, so the values of one request are consistent
// with each other. A read error fails the request (genErr): the snapshot
// held a value the MIB cannot express.
type groupHandler struct {
	insts []smi.OID // instance OIDs (object.0), sorted
	read  func() ([]smi.Value, error)
}

func newGroupHandler(objs []ID, read func() ([]smi.Value, error)) *groupHandler {
	h := &groupHandler{read: read}
	for _, id := range objs {
		h.insts = append(h.insts, id.OID().Append(0))
	}
	if !slices.IsSortedFunc(h.insts, smi.OID.Compare) {
		panic("mib: group objects out of OID order") // a programming error in this package
	}
	return h
}

func (h *groupHandler) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, len(names))
	var vals []smi.Value
	for i, n := range names {
		k, ok := slices.BinarySearchFunc(h.insts, n, smi.OID.Compare)
		if !ok {
			out[i] = smi.NoSuchObject()
			for _, in := range h.insts {
				if n.HasPrefix(in[:len(in)-1]) {
					out[i] = smi.NoSuchInstance() // the object exists, not this instance
				}
			}
			continue
		}
		if vals == nil {
			var err error
			if vals, err = h.read(); err != nil {
				return nil, err
			}
		}
		out[i] = vals[k]
	}
	return out, nil
}

func (h *groupHandler) GetNext(_ context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	var vals []smi.Value
	for i, r := range ranges {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
		k := searchAfter(h.insts, r.Start, r.Include)
		if k >= len(h.insts) || !r.Contains(h.insts[k]) {
			continue
		}
		if vals == nil {
			var err error
			if vals, err = h.read(); err != nil {
				return nil, err
			}
		}
		out[i] = smi.VarBind{Name: h.insts[k], Value: vals[k]}
	}
	return out, nil
}
