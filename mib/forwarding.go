package mib

import (
	"fmt"
	"strconv"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// ForwardPolicy is smDirectoryForwardPolicy. The numbers are the MIB's
// enumeration: append-only.
type ForwardPolicy int32

// Forwarding policies.
const (
	ForwardFull    ForwardPolicy = 1
	ForwardSummary ForwardPolicy = 2
	ForwardNone    ForwardPolicy = 3
	// ForwardNoParent: a level 4 manager, or no rmtp.parent configured.
	ForwardNoParent ForwardPolicy = 4
	ForwardDigest   ForwardPolicy = 5
)

// String returns the MIB label.
func (p ForwardPolicy) String() string {
	switch p {
	case ForwardFull:
		return "full"
	case ForwardSummary:
		return "summary"
	case ForwardNone:
		return "none"
	case ForwardNoParent:
		return "noParent"
	case ForwardDigest:
		return "digest"
	}
	return "ForwardPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Valid reports whether p is one of the MIB's policies.
func (p ForwardPolicy) Valid() bool { return p >= ForwardFull && p <= ForwardDigest }

// ForwardingStats is what smDirectoryHierarchy reports, gathered by the
// caller from the directory's Forwarder (directory.ForwarderStats) and
// lookup links (directory.LinkStats). Counters only grow while the
// process runs; a manager without a parent reports ForwardNoParent,
// Active false and zero forwarding counters.
type ForwardingStats struct {
	Policy ForwardPolicy // required: a zero Policy fails the request
	// Active: this manager sends upward now (the active manager of its
	// level, with a parent, policy full or summary).
	Active  bool
	Pending uint64 // operations queued, not yet sent (Gauge32, latched)
	Ops     uint64 // operations every parent manager acknowledged
	Bytes   uint64 // their payload octets
	Retries uint64 // attempts that did not reach every parent manager
	// Overflows are queue overflows, each costing a re-announcement;
	// Resyncs are re-announcements completed.
	Overflows, Resyncs uint64
	// Lookups other levels asked of this node (the parent's downward
	// ones and the child levels' climbing ones), answered or dropped;
	// LookupFailures is the part answered with an error or dropped (too
	// many in flight). From directory.LinkStats summed over the links:
	// Lookups = Served+Dropped, LookupFailures = Failed+Dropped.
	Lookups, LookupFailures uint64
	// Digest policy (ForwardDigest): the filter sent up (size in octets,
	// keys, share of bits set and the false-positive rate it gives, both
	// 0..1) and its octets acknowledged; DigestFalseHits, at a parent,
	// counts digest matches whose unit held no such key.
	DigestSize, DigestKeys   uint64
	DigestFill, DigestFPRate float64
	DigestBytes              uint64
	DigestFalseHits          uint64
}

// ForwardingConfig configures smDirectoryHierarchy.
type ForwardingConfig struct {
	// Stats is called once per request that reads any of the objects, so
	// it must be cheap (a Forwarder's and links' Stats are a lock and
	// some atomics) and safe for concurrent use. Required.
	Stats func() ForwardingStats
}

// hierarchyObjects are smDirectoryHierarchy's scalars in OID order, with
// how each comes out of one snapshot.
var hierarchyObjects = []struct {
	id  ID
	get func(*ForwardingStats) smi.Value
}{
	{SmDirectoryForwardPolicy, func(s *ForwardingStats) smi.Value { return smi.Integer(int32(s.Policy)) }},
	{SmDirectoryForwardActive, func(s *ForwardingStats) smi.Value { return truthValue(s.Active) }},
	{SmDirectoryForwardPending, func(s *ForwardingStats) smi.Value { return smi.Gauge32(latch32(s.Pending)) }},
	{SmDirectoryForwardOps, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.Ops) }},
	{SmDirectoryForwardBytes, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.Bytes) }},
	{SmDirectoryForwardRetries, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.Retries) }},
	{SmDirectoryForwardOverflows, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.Overflows) }},
	{SmDirectoryForwardResyncs, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.Resyncs) }},
	{SmDirectoryLookups, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.Lookups) }},
	{SmDirectoryLookupFailures, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.LookupFailures) }},
	{SmDirectoryDigestSize, func(s *ForwardingStats) smi.Value { return smi.Gauge32(latch32(s.DigestSize)) }},
	{SmDirectoryDigestKeys, func(s *ForwardingStats) smi.Value { return smi.Gauge32(latch32(s.DigestKeys)) }},
	{SmDirectoryDigestFill, func(s *ForwardingStats) smi.Value { return smi.Gauge32(ppm(s.DigestFill)) }},
	{SmDirectoryDigestFpRate, func(s *ForwardingStats) smi.Value { return smi.Gauge32(ppm(s.DigestFPRate)) }},
	{SmDirectoryDigestBytesSent, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.DigestBytes) }},
	{SmDirectoryDigestFalseHits, func(s *ForwardingStats) smi.Value { return smi.Counter64(s.DigestFalseHits) }},
}

// ppm is a share 0..1 in parts per million (out of range: clamped).
func ppm(f float64) uint32 {
	if !(f > 0) {
		return 0
	}
	return uint32(min(f, 1)*1e6 + 0.5)
}

// truthValue is SNMPv2-TC's TruthValue: true(1), false(2).
func truthValue(b bool) smi.Value {
	if b {
		return smi.Integer(1)
	}
	return smi.Integer(2)
}

// RegisterForwarding puts smDirectoryHierarchy (the directory's upward
// forwarding and the lookups across levels) on tree, as one registration
// read from cfg.Stats once per request. Register it on every manager and
// backup, with or without a parent: a level 4 manager answers the levels
// below. Nothing is registered when it fails.
func RegisterForwarding(tree *agent.Tree, cfg ForwardingConfig) error {
	if cfg.Stats == nil {
		return fmt.Errorf("%w: RegisterForwarding needs a stats function", ErrInvalid)
	}
	stats := cfg.Stats
	ids := make([]ID, len(hierarchyObjects))
	for i, o := range hierarchyObjects {
		ids[i] = o.id
	}
	h := newGroupHandler(ids, func() ([]smi.Value, error) {
		s := stats()
		if !s.Policy.Valid() {
			// As for smNodeRole: a number the MIB does not define would
			// mislead an NMS more than a genErr does.
			return nil, fmt.Errorf("%w: smDirectoryForwardPolicy %d", ErrInvalid, int32(s.Policy))
		}
		out := make([]smi.Value, len(hierarchyObjects))
		for i, o := range hierarchyObjects {
			out[i] = o.get(&s)
		}
		return out, nil
	})
	return tree.Register(SmDirectoryHierarchy.OID(), h)
}
