package agent

import (
	"context"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Range is an AgentX search range (RFC 2741 §5.2): the object sought is the
// first one after Start (or at Start when Include) and before End. A nil or
// empty End means no upper bound. SNMP GETNEXT is the range (name, false, nil).
type Range struct {
	Start   smi.OID
	Include bool
	End     smi.OID
}

// contains reports whether o lies inside the range.
func (r Range) contains(o smi.OID) bool {
	c := o.Compare(r.Start)
	if c < 0 || (c == 0 && !r.Include) {
		return false
	}
	return len(r.End) == 0 || o.Compare(r.End) < 0
}

// Handler serves every OID under the root it is registered at. Requests are
// batched: one SNMP request touching 128 objects of a handler is one call,
// so a handler backed by a multicast to a farm sends one transaction, not 128.
//
// Handlers must be safe for concurrent use: the frontends serve requests in
// parallel.
type Handler interface {
	// Get returns one value per name, in order. A name without a value gets
	// smi.NoSuchInstance() (or smi.NoSuchObject() when the object itself
	// does not exist). A non-nil error fails the whole request with genErr,
	// or with the status of a *smi.SetError.
	Get(ctx context.Context, names []smi.OID) ([]smi.Value, error)
	// GetNext returns, per range, the first instance of this handler's
	// subtree inside the range, or a VarBind whose value is
	// smi.EndOfMibView() when the handler holds none there. The Tree checks
	// the answer and moves on to the next handler on endOfMibView.
	GetNext(ctx context.Context, ranges []Range) ([]smi.VarBind, error)
}

// TxID names one SET transaction across its phases. The AgentX session uses
// its session and transaction ids; the UDP agent numbers its own requests.
type TxID struct {
	Session     uint32
	Transaction uint32
}

// Setter is implemented by handlers with writable objects. The Tree calls the
// phases in AgentX order, each with the varbinds of the request that fall in
// this handler's subtree (in request order):
// TestSet, then either CommitSet or (on any failure) nothing, then UndoSet if
// any CommitSet failed, and always CleanupSet last. A failing phase returns
// the index (into vbs) of the offending varbind and an error, a *smi.SetError
// to choose the error status. Reservations made in TestSet must be released
// by CleanupSet.
type Setter interface {
	TestSet(ctx context.Context, tx TxID, vbs []smi.VarBind) (int, error)
	CommitSet(ctx context.Context, tx TxID, vbs []smi.VarBind) (int, error)
	UndoSet(ctx context.Context, tx TxID, vbs []smi.VarBind) (int, error)
	CleanupSet(ctx context.Context, tx TxID, vbs []smi.VarBind)
}

// Local is implemented by handlers that answer from memory and never block
// on I/O (Scalar, Table, and handlers that declare it). The Tree calls them
// on the request's goroutine instead of concurrently with the other
// handlers of the same request, and a request that reaches only Local
// handlers never calls its context's wait hook (WithWait): it is never
// counted among the requests waiting on the farm, nor refused with them.
// Any other handler may block (the farm's aggregates, one SE's objects).
type Local interface{ AnswersFromMemory() }
