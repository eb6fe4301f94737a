package agentx

// NewSysConn exposes the session's socket I/O to the benchmarks, so the
// floor responder they compare against does its I/O as the session does.
var NewSysConn = newSysConn
