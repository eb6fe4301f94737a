package snmp

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file is the community-based security model of SNMPv1 and SNMPv2c
// (RFC 3584 §5.2): a community names a context and grants read or write
// access to its whole tree, and the response goes back with the same
// community.

// communityIncoming decodes and authorizes an SNMPv1 or SNMPv2c message,
// or counts why it is dropped and returns nil.
func (a *Agent) communityIncoming(ctx context.Context, pkt []byte, from netip.AddrPort) *request {
	m, err := ber.DecodeCommunityMessage(pkt)
	switch {
	case errors.Is(err, ber.ErrUnsupportedPDU):
		a.c.unsupportedPDUs.Add(1)
		return nil
	case err != nil:
		a.c.inASNParseErrs.Add(1)
		return nil
	}
	v1 := m.Version == ber.Version1
	switch m.PDU.Type {
	case ber.PDUGet, ber.PDUGetNext, ber.PDUSet:
	case ber.PDUGetBulk:
		if v1 {
			// RFC 3584 §4.1.1: not an SNMPv1 PDU, so the message does not parse.
			a.c.inASNParseErrs.Add(1)
			return nil
		}
	default: // Response, InformRequest, SNMPv2-Trap, Report
		a.c.unsupportedPDUs.Add(1)
		return nil
	}
	if v1 {
		for _, vb := range m.PDU.VarBinds {
			if vb.Value.Type == smi.TypeCounter64 || vb.Value.Type.IsException() {
				// Counter64 and the exceptions do not exist in SNMPv1's
				// grammar (RFC 3584 §4.1.1): the message does not parse.
				a.c.inASNParseErrs.Add(1)
				return nil
			}
		}
	}
	if len(a.cfg.CommunitySources) > 0 && !allowed(a.cfg.CommunitySources, from) {
		a.c.accessRefused.Add(1)
		return nil
	}
	tree, acc := a.authorize(m.Community)
	if acc == accessNone {
		a.c.inBadCommunityNames.Add(1)
		a.authenticationFailure(ctx)
		return nil
	}
	// One allocation for the request and its way back.
	cr := &communityRequest{out: communityOut{version: m.Version, community: m.Community}}
	cr.request = request{pdu: m.PDU, v1: v1, tree: tree, acc: acc, view: a.communityView, out: &cr.out,
		maxPDU: cr.out.maxPDU(a.cfg.MaxMessageSize), denied: &a.c.inBadCommunityUses}
	return &cr.request
}

type communityRequest struct {
	request
	out communityOut
}

// authorize maps a community to a tree and an access level. "c@ctx"
// selects context ctx when c is a configured community and ctx exists.
// Comparisons take constant time in the configured value.
func (a *Agent) authorize(community []byte) (*agent.Tree, access) {
	if acc := a.match(community); acc != accessNone {
		if a.cfg.CommunityContexts != nil && !slices.Contains(a.cfg.CommunityContexts, "") {
			return nil, accessNone
		}
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
	ctx := string(community[at+1:])
	if a.cfg.CommunityContexts != nil && !slices.Contains(a.cfg.CommunityContexts, ctx) {
		return nil, accessNone
	}
	t := a.contexts.Tree(ctx)
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

// communityOut answers with the request's version and community (which
// alias the request's datagram).
type communityOut struct {
	version   ber.Version
	community []byte
}

func (c *communityOut) msg(p *ber.PDU) ber.CommunityMessage {
	return ber.CommunityMessage{Version: c.version, Community: c.community, PDU: *p}
}

func (c *communityOut) maxPDU(limit int) int {
	m := c.msg(&ber.PDU{})
	return m.MaxPDULen(limit)
}

func (c *communityOut) encode(p *ber.PDU) ([]byte, error) {
	m := c.msg(p)
	return m.Encode()
}
