package mib

import (
	"fmt"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// transportObjects maps smTransport's objects onto rmtp's counters, in
// OID order.
var transportObjects = []struct {
	id  ID
	get func(*rmtp.Counters) uint64
}{
	{SmTransportSent, func(c *rmtp.Counters) uint64 { return c.Sent }},
	{SmTransportReceived, func(c *rmtp.Counters) uint64 { return c.Received }},
	{SmTransportRetransmits, func(c *rmtp.Counters) uint64 { return c.Retransmits }},
	{SmTransportNaksSent, func(c *rmtp.Counters) uint64 { return c.NaksSent }},
	{SmTransportNaksReceived, func(c *rmtp.Counters) uint64 { return c.NaksReceived }},
	{SmTransportNaksSuppressed, func(c *rmtp.Counters) uint64 { return c.NaksSuppressed }},
	{SmTransportDuplicates, func(c *rmtp.Counters) uint64 { return c.Duplicates }},
	{SmTransportAuthFailures, func(c *rmtp.Counters) uint64 { return c.AuthFailures }},
	{SmTransportAborts, func(c *rmtp.Counters) uint64 { return c.Aborts }},
	{SmTransportLateReplies, func(c *rmtp.Counters) uint64 { return c.LateReplies }},
	{SmTransportDatagramsSent, func(c *rmtp.Counters) uint64 { return c.DatagramsSent }},
	{SmTransportDatagramsReceived, func(c *rmtp.Counters) uint64 { return c.DatagramsReceived }},
	{SmTransportAbortsReceived, func(c *rmtp.Counters) uint64 { return c.AbortsReceived }},
	{SmTransportReplays, func(c *rmtp.Counters) uint64 { return c.Replays }},
	{SmTransportDropped, func(c *rmtp.Counters) uint64 { return c.Dropped }},
	{SmTransportMalformed, func(c *rmtp.Counters) uint64 { return c.Malformed }},
}

// RegisterTransport puts the smTransport counters on tree, read from
// counters once per request (for an endpoint:
// func() rmtp.Counters { return ep.Stats().Counters }). Per-peer RTT and
// state are smEngineTable's.
func RegisterTransport(tree *agent.Tree, counters func() rmtp.Counters) error {
	if counters == nil {
		return fmt.Errorf("%w: RegisterTransport needs a counters function", ErrInvalid)
	}
	ids := make([]ID, len(transportObjects))
	for i, o := range transportObjects {
		ids[i] = o.id
	}
	h := newGroupHandler(ids, func() ([]smi.Value, error) {
		c := counters()
		out := make([]smi.Value, len(transportObjects))
		for i, o := range transportObjects {
			out[i] = smi.Counter64(o.get(&c))
		}
		return out, nil
	})
	return tree.Register(SmTransport.OID(), h)
}
