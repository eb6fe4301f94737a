// Package v2c owns smsnmpd's built-in SNMPv1/SNMPv2c command responder and
// notification originator on UDP, for the demo and for hosts without
// net-snmp's snmpd. It serves the agent.Tree of each SNMP context: GET,
// GETNEXT, GETBULK (truncated to the message size, RFC 3416 §4.2.3) and SET
// through the Tree's test/commit/undo/cleanup phases; SNMPv1 requests are
// answered per RFC 3584 (noSuchName, Counter64 skipped by GETNEXT, SET
// errors mapped per §4.4). It counts what RFC 3418's snmp group counts and
// can register that group on a Tree (RegisterSNMPGroup); the system group
// belongs to package mib.
//
// Wire format: requests are decoded with gosnmp's packet codec (the design
// decision of DESIGN.md §8), after a small pure pre-parse of the envelope
// (ber.go) that reads what gosnmp narrows (non-repeaters and error-index are
// uint8 there, a negative max-repetitions becomes 2^31-1) and rejects SNMPv3
// and garbage before gosnmp sees it. Responses and notifications are encoded
// by this package's own append-only encoder, checked byte for byte against
// gosnmp's MarshalMsg in tests: it has to know the exact size of every
// varbind to truncate a GETBULK response, and gosnmp cannot encode an
// error-index above 255.
//
// Contexts: a community "name" selects the default context; "name@ctx"
// selects context ctx of the agent.Contexts (net-snmp's convention for
// community-indexed contexts), when the context exists.
//
// Communities are secrets: they are never logged nor put into errors.
//
// What it does not own: SNMPv3, VACM views (a community grants the whole
// tree of its context), the system group, and the objects themselves.
package v2c
