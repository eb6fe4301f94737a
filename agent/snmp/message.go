package snmp

import (
	"context"
	"net/netip"

	"github.com/smsnmpd/smsnmpd/internal/ber"
)

// This file is the message layer (RFC 3411's message processing
// subsystem): it reads a datagram's version and hands the message to the
// model of that version, which decodes and authenticates it into a
// request for the PDU dispatcher and encodes the response. A new model
// is a new file with an incoming function and an outgoing type, and one
// case below.

// handle answers one datagram from from: it returns the response to send,
// or nil to send nothing. It does no I/O.
func (a *Agent) handle(ctx context.Context, pkt []byte, from netip.AddrPort) []byte {
	if len(pkt) > MaxDatagram {
		a.c.oversized.Add(1)
		return nil
	}
	v, err := ber.PeekVersion(pkt)
	if err != nil {
		a.c.inASNParseErrs.Add(1)
		return nil
	}
	var r *request
	switch v {
	case ber.Version1, ber.Version2c:
		r = a.communityIncoming(ctx, pkt, from)
	case ber.Version3:
		var report []byte
		if r, report = a.usmIncoming(ctx, pkt, from); report != nil {
			a.c.outReports.Add(1)
			return report
		}
	default:
		a.c.inBadVersions.Add(1)
		return nil
	}
	if r == nil {
		return nil
	}
	resp := a.dispatch(ctx, r)
	if resp == nil {
		return nil
	}
	out, err := r.out.encode(resp)
	if err != nil {
		// Not reached: the dispatcher checked that resp encodes and fits.
		a.c.silentDrops.Add(1)
		a.log.WithError(err).Error("response not encodable; dropped")
		return nil
	}
	return out
}
