package mib

import (
	"fmt"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// TransportCounters are the objects of smTransport: the totals of the
// node's rmtp endpoint since it started (rmtp.Counters has them, and more).
type TransportCounters struct {
	Sent, Received                         uint64 // messages
	Retransmits                            uint64 // segments re-sent
	NaksSent, NaksReceived, NaksSuppressed uint64
	Duplicates                             uint64 // segments received again
	AuthFailures                           uint64
	Aborts, AbortsReceived                 uint64
	LateReplies                            uint64 // responses after their request finished
	DatagramsSent, DatagramsReceived       uint64
	Replays                                uint64 // control datagrams refused as replays
	Dropped                                uint64 // segments refused by the reassembly cap or window
	Malformed                              uint64
}

// transportObjects maps smTransport's objects onto the counters, in OID
// order.
var transportObjects = []struct {
	id  ID
	get func(*TransportCounters) uint64
}{
	{SmTransportSent, func(c *TransportCounters) uint64 { return c.Sent }},
	{SmTransportReceived, func(c *TransportCounters) uint64 { return c.Received }},
	{SmTransportRetransmits, func(c *TransportCounters) uint64 { return c.Retransmits }},
	{SmTransportNaksSent, func(c *TransportCounters) uint64 { return c.NaksSent }},
	{SmTransportNaksReceived, func(c *TransportCounters) uint64 { return c.NaksReceived }},
	{SmTransportNaksSuppressed, func(c *TransportCounters) uint64 { return c.NaksSuppressed }},
	{SmTransportDuplicates, func(c *TransportCounters) uint64 { return c.Duplicates }},
	{SmTransportAuthFailures, func(c *TransportCounters) uint64 { return c.AuthFailures }},
	{SmTransportAborts, func(c *TransportCounters) uint64 { return c.Aborts }},
	{SmTransportLateReplies, func(c *TransportCounters) uint64 { return c.LateReplies }},
	{SmTransportDatagramsSent, func(c *TransportCounters) uint64 { return c.DatagramsSent }},
	{SmTransportDatagramsReceived, func(c *TransportCounters) uint64 { return c.DatagramsReceived }},
	{SmTransportAbortsReceived, func(c *TransportCounters) uint64 { return c.AbortsReceived }},
	{SmTransportReplays, func(c *TransportCounters) uint64 { return c.Replays }},
	{SmTransportDropped, func(c *TransportCounters) uint64 { return c.Dropped }},
	{SmTransportMalformed, func(c *TransportCounters) uint64 { return c.Malformed }},
}

// RegisterTransport puts the smTransport counters on tree, read from
// counters once per request. Per-peer RTT and state are smEngineTable's.
func RegisterTransport(tree *agent.Tree, counters func() TransportCounters) error {
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
