// Package layering has no code: its test holds smsnmpd's import rules, so
// that a dependency that breaks the layering fails the build's tests
// instead of going unnoticed. The rules:
//
//   - fanout (the management protocol) imports nothing of agent: what the
//     two share is internal/smi's.
//   - rmtp (the transport) imports none of the protocols over it (fanout,
//     directory, internal/replica, internal/election) nor agent or mib.
//   - mib (the MIB's objects) imports no rmtp itself: it sees the farm
//     through fanout and the transport's counters as its own type.
//   - The codecs (every package named wire or pdu, internal/ber and
//     internal/smi) and the module packages they import are pure: no net
//     but net/netip values, no os, no logger, no clock (package time).
package layering
