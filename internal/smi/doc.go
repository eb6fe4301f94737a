// Package smi owns the SNMP vocabulary shared by every part of smsnmpd:
// object identifiers, typed values, variable bindings, AgentX search
// ranges, SET transaction ids, SNMP error statuses and the one error type
// that carries a status (Error, read back with StatusOf). It knows no wire
// format (BER, AgentX, rmtp payloads live in their own codecs) and does no
// I/O, so the handler tree, the northbound agents and the fan-out protocol
// exchange values and errors without converting between packages' private
// types, and without importing each other.
package smi
