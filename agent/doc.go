// Package agent owns smsnmpd's northbound SNMP: the OID-ordered handler
// tree that every frontend serves (one Tree per SNMP context), and, in its
// sub-packages, the AgentX subagent (RFC 2741) and the built-in SNMPv2c UDP
// agent.
//
// The Tree is walk-correct by construction: handlers own disjoint subtrees
// kept in numeric OID order, GetNext takes an AgentX search range (start,
// include, end) and the Tree itself checks that every OID a handler returns
// lies inside the range and the handler's subtree, so a buggy callback can
// never make a walk go backwards or loop. Every requested varbind is
// answered, with noSuchObject, noSuchInstance or endOfMibView where there is
// no value. SET runs the AgentX phases (test, commit, undo, cleanup) keyed by
// a transaction id, so the AgentX session and the UDP agent share them.
//
// Handlers that answer from memory (Scalar, Table, any that implement
// Local) run on the request's goroutine; before the first handler that may
// block (the farm's), the Tree calls the frontend's wait hook (WithWait),
// so that a frontend can take the waiting request off its few serving
// goroutines, and bound, or refuse (ErrBusy), what waits.
//
// The package knows nothing of any wire format and does no network I/O.
package agent
