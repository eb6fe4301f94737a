// Package smi owns the SNMP data model shared by every part of smsnmpd:
// object identifiers, typed values, variable bindings and SNMP error
// statuses. It knows no wire format (BER, AgentX, rmtp payloads live in their
// own codecs) and does no I/O, so the handler tree, the northbound agents and
// the fan-out protocol can exchange values without converting between
// packages' private types.
package smi
