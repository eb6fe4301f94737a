package snmp

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file is the PDU dispatcher: it runs a request that a security
// model decoded and authorized on its Tree and returns the Response PDU.
// It knows no message format, no community and no user: what a model
// tells it is in request.

// minVarBindLen is the smallest encoded varbind (SEQUENCE, a one-octet
// OID, a NULL-sized value): it bounds how many varbinds a response can
// hold, so a GETBULK never computes more than could be sent.
const minVarBindLen = 2 + 3 + 2

// access is what a community or user grants.
type access int

const (
	accessNone access = iota
	accessRead
	accessWrite
)

// emptyVarBinds is an encoded empty VarBindList.
var emptyVarBinds = []byte{0x30, 0}

// request is one decoded and authorized request on its way through the
// dispatcher.
type request struct {
	pdu  ber.PDU
	v1   bool // SNMPv1: RFC 3584's rules for errors and types
	tree *agent.Tree
	acc  access
	view *view // nil: the whole tree
	// maxPDU is the largest Response PDU the model can send back.
	maxPDU int
	// out encodes the response in the request's model.
	out outgoing
	// denied counts a SET refused for want of write access: the model's
	// own counter.
	denied *atomic.Uint64
	resp   ber.PDU // the response, allocated with the request
}

// outgoing is a security model's half of a request: it wraps the
// Response PDU into a message for the request's sender.
type outgoing interface {
	// maxPDU is the size of the largest PDU encoding that fits in a
	// message of at most limit octets (negative if none does).
	maxPDU(limit int) int
	// encode returns the message carrying resp, which the dispatcher
	// checked fits in maxPDU and is encodable.
	encode(resp *ber.PDU) ([]byte, error)
}

// dispatch runs r and returns its Response PDU, or nil to answer nothing.
func (a *Agent) dispatch(ctx context.Context, r *request) *ber.PDU {
	switch r.pdu.Type {
	case ber.PDUGet:
		return a.get(ctx, r)
	case ber.PDUGetNext:
		return a.getNext(ctx, r)
	case ber.PDUGetBulk:
		return a.getBulk(ctx, r)
	case ber.PDUSet:
		return a.set(ctx, r)
	}
	return nil // the models pass only the four
}

// reply starts the Response to r.
func (r *request) reply() *ber.PDU {
	r.resp = ber.PDU{Type: ber.PDUResponse, RequestID: r.pdu.RequestID}
	return &r.resp
}

// fail answers r with an error-status naming varbind idx (0-based), echoing
// the request's varbinds (RFC 3416 §4.2.1, §4.2.5; RFC 1157 §4.1.2).
func (a *Agent) fail(r *request, st smi.ErrorStatus, idx int) *ber.PDU {
	if r.v1 {
		st = v1Status(st)
	}
	m := r.reply()
	m.ErrorStatus = int32(st)
	m.ErrorIndex = int32(idx + 1)
	m.RawVarBinds = r.pdu.RawVarBinds
	if st == smi.TooBig {
		m.ErrorIndex = 0
		if !r.v1 {
			// RFC 3416 §4.2.1: tooBig carries an empty list. SNMPv1 echoes
			// the request (RFC 1157 §4.1.2).
			m.RawVarBinds = emptyVarBinds
		}
		a.c.outTooBig.Add(1)
	} else {
		a.c.requestErrors.Add(1)
	}
	if n, err := m.Len(); err != nil || n > r.maxPDU {
		a.c.silentDrops.Add(1)
		return nil
	}
	return m
}

// answer returns a successful response, tooBig when it does not fit, or
// genErr naming a varbind that has no encoding (a handler's bug).
func (a *Agent) answer(r *request, vbs []smi.VarBind) *ber.PDU {
	m := r.reply()
	m.VarBinds = vbs
	n, err := m.Len()
	if err != nil {
		return a.unencodable(r, err)
	}
	if n > r.maxPDU {
		return a.fail(r, smi.TooBig, 0)
	}
	return m
}

// unencodable answers genErr for the varbind err names.
func (a *Agent) unencodable(r *request, err error) *ber.PDU {
	idx := 0
	var ee *ber.EncodeError
	if errors.As(err, &ee) && ee.Index < len(r.pdu.VarBinds) {
		idx = ee.Index
	}
	a.log.WithError(err).WithField("pdu", r.pdu.Type.String()).Debug("a handler returned a value that has no encoding")
	return a.fail(r, smi.GenErr, idx)
}

// treeError answers a request the Tree failed. A request refused because
// MaxInFlight requests already wait on the farm is dropped: the manager
// retries, as after any loss, and an answer would cost what the limit is
// there to save.
func (a *Agent) treeError(r *request, err error) *ber.PDU {
	if errors.Is(err, agent.ErrBusy) {
		a.c.busyDrops.Add(1)
		a.c.silentDrops.Add(1)
		if ok, held := a.busyLog.Allow(); ok {
			a.log.WithFields(logrus.Fields{"max_inflight": a.cfg.MaxInFlight, "dropped_since_last_report": held}).
				Warn("requests waiting on the farm at snmp.max_inflight: new ones dropped (counted in snmpSilentDrops)")
		}
		return nil
	}
	st, idx := smi.StatusOf(err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		st = smi.GenErr
	}
	if idx < 0 || idx >= len(r.pdu.VarBinds) {
		idx = 0
	}
	a.log.WithError(err).WithField("pdu", r.pdu.Type.String()).Debug("request failed")
	return a.fail(r, st, idx)
}

func (r *request) names() []smi.OID {
	out := make([]smi.OID, len(r.pdu.VarBinds))
	for i, vb := range r.pdu.VarBinds {
		out[i] = vb.Name
	}
	return out
}

// viewGet is the Tree's Get of the request's names, those outside its
// read view answered noSuchObject without asking their handlers.
func (r *request) viewGet(ctx context.Context) ([]smi.VarBind, error) {
	names := r.names()
	if r.view == nil || r.view.read == nil {
		return r.tree.Get(ctx, names)
	}
	var ask []smi.OID
	for _, n := range names {
		if r.view.canRead(n) {
			ask = append(ask, n)
		}
	}
	got, err := r.tree.Get(ctx, ask)
	if err != nil {
		return nil, err
	}
	out := make([]smi.VarBind, len(names))
	for i, j := 0, 0; i < len(names); i++ {
		if r.view.canRead(names[i]) {
			out[i] = got[j]
			j++
			continue
		}
		out[i] = smi.VarBind{Name: names[i], Value: smi.NoSuchObject()}
	}
	return out, nil
}

func (r *request) ranges() []smi.Range {
	out := make([]smi.Range, len(r.pdu.VarBinds))
	for i, vb := range r.pdu.VarBinds {
		out[i] = smi.Range{Start: vb.Name}
	}
	return out
}

func (a *Agent) get(ctx context.Context, r *request) *ber.PDU {
	vbs, err := r.viewGet(ctx)
	if err != nil {
		return a.treeError(r, err)
	}
	if r.v1 {
		// RFC 3584 §4.2.1: no exceptions and no Counter64 in SNMPv1.
		for i, vb := range vbs {
			if vb.Value.Type.IsException() || vb.Value.Type == smi.TypeCounter64 {
				return a.fail(r, smi.NoSuchName, i)
			}
		}
	}
	return a.answer(r, vbs)
}

func (a *Agent) getNext(ctx context.Context, r *request) *ber.PDU {
	vbs, err := r.view.getNext(ctx, r.tree, r.ranges())
	if err != nil {
		return a.treeError(r, err)
	}
	if r.v1 {
		if vbs, err = a.skipCounter64(ctx, r, vbs); err != nil {
			return a.treeError(r, err)
		}
		for i, vb := range vbs {
			if vb.Value.Type == smi.TypeEndOfMibView {
				return a.fail(r, smi.NoSuchName, i)
			}
		}
	}
	return a.answer(r, vbs)
}

// skipCounter64 continues every GETNEXT answer that is a Counter64 past it
// (RFC 3584 §4.2.2.1), in batched rounds, until none is left or the
// request's deadline passes. A column of Counter64 is thus skipped whole.
func (a *Agent) skipCounter64(ctx context.Context, r *request, vbs []smi.VarBind) ([]smi.VarBind, error) {
	for {
		var idx []int
		var ranges []smi.Range
		for i, vb := range vbs {
			if vb.Value.Type == smi.TypeCounter64 {
				idx = append(idx, i)
				ranges = append(ranges, smi.Range{Start: vb.Name})
			}
		}
		if len(idx) == 0 {
			return vbs, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next, err := r.view.getNext(ctx, r.tree, ranges)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			vbs[i] = next[j]
		}
	}
}

func (a *Agent) getBulk(ctx context.Context, r *request) *ber.PDU {
	// RFC 3416 §4.2.3: N = max(min(non-repeaters, L), 0), M = max(max-repetitions, 0).
	n := min(max(int(r.pdu.NonRepeaters()), 0), len(r.pdu.VarBinds))
	m := max(int(r.pdu.MaxRepetitions()), 0)
	// No more varbinds than the requested total, nor than could fit in the
	// message: the rest would be computed only to be dropped.
	limit := r.maxPDU/minVarBindLen + 1
	want := n
	if reps := len(r.pdu.VarBinds) - n; reps > 0 && m > 0 {
		want = n + min(m, limit)*reps
	}
	vbs, err := r.view.getBulk(ctx, r.tree, n, m, r.ranges(), max(min(want, limit), 1))
	if err != nil {
		return a.treeError(r, err)
	}
	msg := r.reply()
	msg.VarBinds = vbs
	k, err := msg.Fit(r.maxPDU)
	if err != nil {
		return a.unencodable(r, err)
	}
	if k < len(vbs) {
		msg.VarBinds = vbs[:k]
		a.c.bulkTruncated.Add(1)
	}
	return msg
}

func (a *Agent) set(ctx context.Context, r *request) *ber.PDU {
	if r.acc != accessWrite {
		// RFC 3584 §4.4 / net-snmp: noAccess (noSuchName in SNMPv1).
		if r.denied != nil {
			r.denied.Add(1)
		}
		return a.fail(r, smi.NoAccess, 0)
	}
	for i, vb := range r.pdu.VarBinds {
		if !r.view.canWrite(vb.Name) {
			// RFC 3415 §3.2: not in the write view.
			a.c.accessRefused.Add(1)
			return a.fail(r, smi.NoAccess, i)
		}
		// A value that did not decode as its tag says, or an exception,
		// cannot be written (RFC 3416 §4.2.5).
		if i < len(r.pdu.BadValues) && r.pdu.BadValues[i] != smi.NoError {
			return a.fail(r, r.pdu.BadValues[i], i)
		}
		if vb.Value.Type.IsException() {
			return a.fail(r, smi.WrongType, i)
		}
	}
	tx := smi.TxID{Session: udpSession, Transaction: a.txSeq.Add(1)}
	if err := r.tree.Set(ctx, tx, r.pdu.VarBinds); err != nil {
		return a.treeError(r, err)
	}
	// The response to a SET carries the request's varbinds.
	m := r.reply()
	m.RawVarBinds = r.pdu.RawVarBinds
	if n, err := m.Len(); err != nil || n > r.maxPDU {
		return a.fail(r, smi.TooBig, 0)
	}
	return m
}

// v1Status maps an SNMPv2 error-status to SNMPv1 (RFC 3584 §4.4).
func v1Status(st smi.ErrorStatus) smi.ErrorStatus {
	switch st {
	case smi.NoError, smi.TooBig, smi.NoSuchName, smi.BadValue, smi.ReadOnly, smi.GenErr:
		return st
	case smi.WrongValue, smi.WrongEncoding, smi.WrongType, smi.WrongLength, smi.InconsistentValue:
		return smi.BadValue
	case smi.NoAccess, smi.NotWritable, smi.NoCreation, smi.InconsistentName, smi.AuthorizationError:
		return smi.NoSuchName
	}
	return smi.GenErr // resourceUnavailable, commitFailed, undoFailed, unknown
}
