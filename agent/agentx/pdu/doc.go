// Package pdu is the AgentX (RFC 2741) wire codec: the 20-byte header and
// the payloads of all 18 PDU types, in either byte order
// (NETWORK_BYTE_ORDER), with NON_DEFAULT_CONTEXT, INSTANCE_REGISTRATION,
// range_subid/upper_bound and every varbind type mapped to and from
// smi.Value.
//
// It is pure: bytes in, structs out. It does no I/O, keeps no state, reads
// no clock and never logs; the session in the parent package owns
// connections, packet ids and timing. Every length read off the wire is
// checked against a named cap (MaxPayloadLength, smi.MaxSubIDs,
// MaxOctetStringLength, MaxVarBinds) before anything is allocated for it.
//
// Decoding and encoding are not byte-identical for every input: an OID that
// arrives without the 1.3.6.1.x prefix compression is re-encoded with it,
// and padding octets are written as zero. Decoding the re-encoded bytes
// gives the same Packet, which is what the fuzz tests check.
package pdu
