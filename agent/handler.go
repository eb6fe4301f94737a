package agent

import (
	"context"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

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
	// or with the status of a *smi.Error.
	Get(ctx context.Context, names []smi.OID) ([]smi.Value, error)
	// GetNext returns, per range, the first instance of this handler's
	// subtree inside the range, or a VarBind whose value is
	// smi.EndOfMibView() when the handler holds none there. The Tree checks
	// the answer and moves on to the next handler on endOfMibView.
	GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error)
}

// Setter is implemented by handlers with writable objects. The Tree calls the
// phases in AgentX order, each with the varbinds of the request that fall in
// this handler's subtree (in request order):
// TestSet, then either CommitSet or (on any failure) nothing, then UndoSet if
// any CommitSet failed, and always CleanupSet last. A failing phase returns
// the index (into vbs) of the offending varbind and an error, a *smi.Error
// to choose the error status. Reservations made in TestSet must be released
// by CleanupSet.
type Setter interface {
	TestSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error)
	CommitSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error)
	UndoSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind) (int, error)
	CleanupSet(ctx context.Context, tx smi.TxID, vbs []smi.VarBind)
}

// Local is implemented by handlers that answer from memory and never block
// on I/O (Scalar, Table, and handlers that declare it). The Tree calls them
// on the request's goroutine instead of concurrently with the other
// handlers of the same request, and a request that reaches only Local
// handlers never calls its context's wait hook (WithWait): it is never
// counted among the requests waiting on the farm, nor refused with them.
// Any other handler may block (the farm's aggregates, one SE's objects).
type Local interface{ AnswersFromMemory() }
