package agentx

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// handlerCtx is the context handlers get: it ends with the session, or
// at its deadline when the session's watchdog cancels it (within one
// inlineBudget tick) with cause context.DeadlineExceeded. It replaces a
// context.WithTimeout per request, whose runtime timer woke a second
// thread on most requests (see session.watchdog). Err reports
// DeadlineExceeded as a timer context would; contexts derived from it see
// Canceled from Err and DeadlineExceeded from context.Cause.
type handlerCtx struct {
	context.Context // a cancelCtx child of the session's context
	deadline        time.Time
}

func (c *handlerCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *handlerCtx) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}

func (s *session) tree(p *pdu.Packet) *agent.Tree {
	name := ""
	if p.Flags&pdu.FlagNonDefaultContext != 0 {
		name = string(p.Context)
	}
	if t := s.a.contexts.Tree(name); t != nil {
		return t
	}
	return s.a.empty
}

func ranges(rs []pdu.SearchRange) []smi.Range {
	out := make([]smi.Range, len(rs))
	for i, r := range rs {
		out[i] = smi.Range{Start: r.Start, Include: r.Include, End: r.End}
	}
	return out
}

// serve executes one request and returns the encoded response, or nil for
// CleanupSet, which has none.
func (s *session) serve(ctx context.Context, p *pdu.Packet) []byte {
	tree := s.tree(p)
	tx := smi.TxID{Session: p.SessionID, Transaction: p.TransactionID}
	var (
		vbs []smi.VarBind
		err error
		n   int // varbinds in the request, echoed on a failed read
	)
	var names func() []smi.OID
	switch body := p.PDU.(type) {
	case *pdu.Get:
		n = len(body.Ranges)
		ns := make([]smi.OID, n)
		for i, r := range body.Ranges {
			ns[i] = r.Start
		}
		names = func() []smi.OID { return ns }
		vbs, err = tree.Get(ctx, ns)
	case *pdu.GetNext:
		n = len(body.Ranges)
		names = func() []smi.OID { return starts(body.Ranges) }
		vbs, err = tree.GetNext(ctx, ranges(body.Ranges))
	case *pdu.GetBulk:
		n = len(body.Ranges)
		names = func() []smi.OID { return starts(body.Ranges) }
		vbs, err = tree.GetBulk(ctx, int(body.NonRepeaters), int(body.MaxRepetitions), ranges(body.Ranges), maxBulkVarBinds)
	case *pdu.TestSet:
		s.reqMu.Lock()
		s.sets[tx] = tree
		s.reqMu.Unlock()
		err = tree.TestSet(ctx, tx, body.VarBinds)
	case *pdu.CommitSet:
		err = tree.CommitSet(ctx, tx)
	case *pdu.UndoSet:
		err = tree.UndoSet(context.WithoutCancel(ctx), tx)
	case *pdu.CleanupSet:
		tree.CleanupSet(context.WithoutCancel(ctx), tx)
		s.reqMu.Lock()
		delete(s.sets, tx)
		s.reqMu.Unlock()
		return nil
	}
	resp := &pdu.Response{VarBinds: vbs}
	if errors.Is(err, agent.ErrBusy) {
		s.a.st.busy.Add(1)
		if ok, held := s.a.busyLog.Allow(); ok {
			s.log.WithFields(logrus.Fields{"max_inflight": s.a.cfg.MaxInFlight, "refused_since_last_report": held}).
				Warn("agentx: requests waiting on the farm at snmp.max_inflight: new ones answered with an error")
		}
	}
	if err != nil {
		st, idx := smi.StatusOf(err)
		resp.Error, resp.Index, resp.VarBinds = pdu.ResponseError(st), uint16(idx+1), nil
		if names != nil {
			// The master matches varbinds to its request even on error.
			resp.VarBinds = make([]smi.VarBind, n)
			for i, name := range names() {
				resp.VarBinds[i] = smi.VarBind{Name: name, Value: smi.Null()}
			}
		}
		// Per request, so Debug: a failing handler must not flood the log.
		// Stats.Failed counts them.
		s.a.st.failed.Add(1)
		s.log.WithError(err).WithField("pdu", p.Type.String()).Debug("agentx request failed")
	}
	b, err := pdu.Append(make([]byte, 0, responseSizeHint(resp.VarBinds)), &pdu.Packet{Header: responseHeader(p.Header), PDU: resp})
	if err != nil {
		// A handler produced a value its type cannot carry (an INTEGER
		// beyond 32 bits): answer genErr rather than nothing.
		s.a.st.failed.Add(1)
		s.log.WithError(err).WithField("pdu", p.Type.String()).Debug("agentx response not encodable")
		b, _ = pdu.Encode(&pdu.Packet{Header: responseHeader(p.Header), PDU: &pdu.Response{Error: pdu.ResponseError(smi.GenErr), Index: 1}})
	}
	return b
}

func starts(rs []pdu.SearchRange) []smi.OID {
	out := make([]smi.OID, len(rs))
	for i, r := range rs {
		out[i] = r.Start
	}
	return out
}

// responseSizeHint is about the encoded size of a Response carrying vbs
// (a little more, never much less), so that encoding it allocates once.
func responseSizeHint(vbs []smi.VarBind) int {
	n := pdu.HeaderLength + 8
	for _, vb := range vbs {
		n += 16 + 4*len(vb.Name) + len(vb.Value.Bytes) + 4*len(vb.Value.OID)
	}
	return n
}
