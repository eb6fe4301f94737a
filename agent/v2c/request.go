package v2c

import (
	"bytes"
	"context"
	"errors"

	"github.com/gosnmp/gosnmp"
	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// minVarBindLen is the smallest encoded varbind (SEQUENCE, a one-octet
// OID, a NULL-sized value): it bounds how many varbinds a response can
// hold, so a GETBULK never computes more than could be sent.
const minVarBindLen = 2 + 3 + 2

// access is what a community grants.
type access int

const (
	accessNone access = iota
	accessRead
	accessWrite
)

// request is one decoded request on its way through the agent.
type request struct {
	h    header
	tree *agent.Tree
	acc  access
	vbs  []smi.VarBind
	bad  []smi.ErrorStatus // per varbind: why its value cannot be SET (noError if it can)
}

// handle answers one datagram: it returns the response to send, or nil to
// send nothing. It does no I/O.
func (a *Agent) handle(ctx context.Context, pkt []byte, dec *gosnmp.GoSNMP) []byte {
	if len(pkt) > MaxDatagram {
		a.c.oversized.Add(1)
		return nil
	}
	h, err := parseHeader(pkt)
	switch {
	case errors.Is(err, ErrVersion):
		a.c.inBadVersions.Add(1)
		return nil
	case err != nil:
		a.c.inASNParseErrs.Add(1)
		return nil
	}
	switch h.pdu {
	case PDUGet, PDUGetNext, PDUSet:
	case PDUGetBulk:
		if h.version == versionV1 {
			// RFC 3584 §4.1.1: not an SNMPv1 PDU, so the message does not parse.
			a.c.inASNParseErrs.Add(1)
			return nil
		}
	case PDUResponse, PDUTrapV1, PDUInform, PDUTrapV2, PDUReport:
		a.c.unsupportedPDUs.Add(1)
		return nil
	default:
		a.c.inASNParseErrs.Add(1)
		return nil
	}
	tree, acc := a.authorize(h.community)
	if acc == accessNone {
		a.c.inBadCommunityNames.Add(1)
		a.authenticationFailure(ctx)
		return nil
	}
	p, err := dec.SnmpDecodePacket(pkt)
	if err != nil || p == nil {
		a.c.inASNParseErrs.Add(1)
		return nil
	}
	r := &request{h: h, tree: tree, acc: acc, vbs: make([]smi.VarBind, len(p.Variables))}
	for i, v := range p.Variables {
		if h.version == versionV1 && !v1Type(v.Type) {
			// Counter64 and the exceptions do not exist in SNMPv1's
			// grammar (RFC 3584 §4.1.1): the message does not parse.
			a.c.inASNParseErrs.Add(1)
			return nil
		}
		var st smi.ErrorStatus
		r.vbs[i], st, err = fromPDU(v)
		if err != nil {
			a.c.inASNParseErrs.Add(1)
			return nil
		}
		if st != smi.NoError {
			if r.bad == nil {
				r.bad = make([]smi.ErrorStatus, len(p.Variables))
			}
			r.bad[i] = st
		}
	}
	switch h.pdu {
	case PDUGet:
		return a.get(ctx, r)
	case PDUGetNext:
		return a.getNext(ctx, r)
	case PDUGetBulk:
		return a.getBulk(ctx, r)
	default:
		return a.set(ctx, r)
	}
}

// authorize maps a community to a tree and an access level. "c@ctx"
// selects context ctx when c is a configured community and ctx exists.
// Comparisons take constant time in the configured value.
func (a *Agent) authorize(community []byte) (*agent.Tree, access) {
	if acc := a.match(community); acc != accessNone {
		return a.contexts.Default(), acc
	}
	at := bytes.LastIndexByte(community, '@')
	if at < 0 {
		return nil, accessNone
	}
	acc := a.match(community[:at])
	if acc == accessNone {
		return nil, accessNone
	}
	t := a.contexts.Tree(string(community[at+1:]))
	if t == nil {
		return nil, accessNone
	}
	return t, acc
}

func (a *Agent) match(c []byte) access {
	// Both are compared every time, in constant time, so timing tells
	// nothing about which community (or how much of one) matched.
	rw := a.cfg.RWCommunity.Equal(c)
	ro := a.cfg.ROCommunity.Equal(c)
	switch {
	case rw:
		return accessWrite
	case ro:
		return accessRead
	}
	return accessNone
}

// reply starts a Response to r.
func (r *request) reply() *message {
	return &message{version: r.h.version, community: r.h.community, pdu: PDUResponse, requestID: r.h.requestID}
}

// fail answers r with an error-status naming varbind idx (0-based), echoing
// the request's varbinds (RFC 3416 §4.2.1, §4.2.5; RFC 1157 §4.1.2).
func (a *Agent) fail(r *request, st smi.ErrorStatus, idx int) []byte {
	if r.h.version == versionV1 {
		st = v1Status(st)
	}
	m := r.reply()
	m.field2 = int32(st)
	m.field3 = int32(idx + 1)
	m.rawVBL = r.h.vbl
	if st == smi.TooBig {
		m.field3 = 0
		if r.h.version != versionV1 {
			// RFC 3416 §4.2.1: tooBig carries an empty list. SNMPv1 echoes
			// the request (RFC 1157 §4.1.2).
			m.rawVBL = []byte{tagSequence, 0}
		}
		a.c.outTooBig.Add(1)
	} else {
		a.c.requestErrors.Add(1)
	}
	if m.Len() > a.cfg.MaxMessageSize {
		a.c.silentDrops.Add(1)
		return nil
	}
	return m.encode()
}

// answer encodes a successful response, or tooBig when it does not fit.
func (a *Agent) answer(r *request, vbs []smi.VarBind) []byte {
	m := r.reply()
	m.vbs = vbs
	if err := m.check(); err != nil {
		return a.fail(r, smi.GenErr, 0)
	}
	if m.Len() > a.cfg.MaxMessageSize {
		return a.fail(r, smi.TooBig, 0)
	}
	return m.encode()
}

// treeError answers a request the Tree failed. A request refused because
// MaxInFlight requests already wait on the farm is dropped: the manager
// retries, as after any loss, and an answer would cost what the limit is
// there to save.
func (a *Agent) treeError(r *request, err error) []byte {
	if errors.Is(err, agent.ErrBusy) {
		a.c.busyDrops.Add(1)
		a.c.silentDrops.Add(1)
		if ok, held := a.busyLog.Allow(); ok {
			a.log.WithFields(logrus.Fields{"max_inflight": a.cfg.MaxInFlight, "dropped_since_last_report": held}).
				Warn("requests waiting on the farm at snmp.max_inflight: new ones dropped (counted in snmpSilentDrops)")
		}
		return nil
	}
	st, idx := agent.StatusOf(err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		st = smi.GenErr
	}
	if idx < 0 || idx >= len(r.vbs) {
		idx = 0
	}
	a.log.WithError(err).WithField("pdu", r.h.pdu.String()).Debug("request failed")
	return a.fail(r, st, idx)
}

func (r *request) names() []smi.OID {
	out := make([]smi.OID, len(r.vbs))
	for i, vb := range r.vbs {
		out[i] = vb.Name
	}
	return out
}

func (a *Agent) get(ctx context.Context, r *request) []byte {
	vbs, err := r.tree.Get(ctx, r.names())
	if err != nil {
		return a.treeError(r, err)
	}
	if r.h.version == versionV1 {
		// RFC 3584 §4.2.1: no exceptions and no Counter64 in SNMPv1.
		for i, vb := range vbs {
			if vb.Value.Type.IsException() || vb.Value.Type == smi.TypeCounter64 {
				return a.fail(r, smi.NoSuchName, i)
			}
		}
	}
	return a.answer(r, vbs)
}

func (a *Agent) getNext(ctx context.Context, r *request) []byte {
	ranges := make([]agent.Range, len(r.vbs))
	for i, vb := range r.vbs {
		ranges[i] = agent.Range{Start: vb.Name}
	}
	vbs, err := r.tree.GetNext(ctx, ranges)
	if err != nil {
		return a.treeError(r, err)
	}
	if r.h.version == versionV1 {
		if vbs, err = a.skipCounter64(ctx, r.tree, vbs); err != nil {
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
func (a *Agent) skipCounter64(ctx context.Context, t *agent.Tree, vbs []smi.VarBind) ([]smi.VarBind, error) {
	for {
		var idx []int
		var ranges []agent.Range
		for i, vb := range vbs {
			if vb.Value.Type == smi.TypeCounter64 {
				idx = append(idx, i)
				ranges = append(ranges, agent.Range{Start: vb.Name})
			}
		}
		if len(idx) == 0 {
			return vbs, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next, err := t.GetNext(ctx, ranges)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			vbs[i] = next[j]
		}
	}
}

func (a *Agent) getBulk(ctx context.Context, r *request) []byte {
	// RFC 3416 §4.2.3: N = max(min(non-repeaters, L), 0), M = max(max-repetitions, 0).
	n := min(max(int(r.h.field2), 0), len(r.vbs))
	m := max(int(r.h.field3), 0)
	ranges := make([]agent.Range, len(r.vbs))
	for i, vb := range r.vbs {
		ranges[i] = agent.Range{Start: vb.Name}
	}
	// No more varbinds than the requested total, nor than could fit in the
	// message: the rest would be computed only to be dropped.
	limit := a.cfg.MaxMessageSize/minVarBindLen + 1
	want := n
	if reps := len(r.vbs) - n; reps > 0 && m > 0 {
		want = n + min(m, limit)*reps
	}
	vbs, err := r.tree.GetBulk(ctx, n, m, ranges, max(min(want, limit), 1))
	if err != nil {
		return a.treeError(r, err)
	}
	msg := r.reply()
	msg.vbs = vbs
	if err := msg.check(); err != nil {
		return a.fail(r, smi.GenErr, 0)
	}
	if k := msg.fit(a.cfg.MaxMessageSize); k < len(vbs) {
		msg.vbs = vbs[:k]
		a.c.bulkTruncated.Add(1)
	}
	return msg.encode()
}

func (a *Agent) set(ctx context.Context, r *request) []byte {
	if r.acc != accessWrite {
		// RFC 3584 §4.4 / net-snmp: noAccess (noSuchName in SNMPv1).
		a.c.inBadCommunityUses.Add(1)
		return a.fail(r, smi.NoAccess, 0)
	}
	for i, st := range r.bad {
		if st != smi.NoError {
			return a.fail(r, st, i)
		}
	}
	tx := agent.TxID{Session: udpSession, Transaction: a.txSeq.Add(1)}
	if err := r.tree.Set(ctx, tx, r.vbs); err != nil {
		return a.treeError(r, err)
	}
	// The response to a SET carries the request's varbinds.
	m := r.reply()
	m.rawVBL = r.h.vbl
	if m.Len() > a.cfg.MaxMessageSize {
		return a.fail(r, smi.TooBig, 0)
	}
	return m.encode()
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

// v1Type reports whether t may appear in an SNMPv1 message.
func v1Type(t gosnmp.Asn1BER) bool {
	switch t {
	case gosnmp.Counter64, gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
		return false
	}
	return true
}
