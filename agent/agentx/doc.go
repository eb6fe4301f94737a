// Package agentx is smsnmpd's AgentX subagent (RFC 2741): it connects to
// a master agent (net-snmp's snmpd) over TCP or a unix socket, opens a
// session, registers every root of every context's handler tree
// (agent.Contexts), and serves the master's Get, GetNext, GetBulk and SET
// phases from those trees. It sends notifications through the master and
// keeps the session alive with Ping, reconnecting with capped, jittered
// backoff and re-registering everything when the master goes away.
//
// It owns the session state machine only. The wire format is the pure codec
// in the pdu sub-package; what the objects mean is the handler tree's
// business (package agent). It does not configure snmpd (see
// etc/snmpd-agentx.conf) and never listens: the master is always dialled.
//
// Why our own: the design card named posteo/go-agentx, which was measured
// unfit against net-snmp 5.9.3 (DESIGN.md §8): it answers a multi-varbind
// Get with one varbind (snmpd then wedges), crashes on TestSet, loses bytes
// under concurrency and races on reconnect.
//
// Concurrency: exactly one goroutine at a time holds the read role and
// reads the socket (io.ReadFull of the header, then of exactly the payload,
// on one persistent bufio.Reader per connection). It serves the request it
// read itself; if that takes longer than 2-4 ms (a per-session watchdog
// ticks every 2 ms while requests arrive) it hands the read role to a new
// goroutine, so a slow handler delays nothing else, while the common fast
// request costs no goroutine hand-off (measured at 10-20 µs of latency and
// CPU per GET through snmpd). The same watchdog ends each handler context
// at Config.HandlerTimeout, and the write deadline moves only every
// MasterTimeout/2, so the fast path also arms no runtime timer: each armed
// timer woke a second thread (together 10-15 µs per Get in-process, see
// session.watchdog). Reads and writes use raw syscalls on the non-blocking
// socket (sysio.go), which spares a wake-up of the runtime's monitor
// thread per GET. A request about to call a handler that may block (one
// that is not agent.Local: the farm's) hands the read role on at once,
// through the Tree's wait hook (agent.WithWait), and waits on its own
// goroutine: the master's next PDUs, its answers to our Pings included,
// are read meanwhile. At most Config.MaxInFlight (snmp.max_inflight)
// requests wait so; a further one is answered at once with genErr
// (resourceUnavailable for a TestSet) and counted in Stats.Busy, because
// a PDU left unanswered makes snmpd re-send it every agentXTimeout and
// then close the session. Requests slow on the CPU are handed off by the
// watchdog up to MaxInFlight of them; past that the master's PDUs wait in
// the socket. Local requests are never refused. Writes
// are serialized by one mutex held per PDU.
//
// Latency: a GET through snmpd to any subagent costs snmpd a second hop
// (its AgentX send, two more process wake-ups, its receive). On the 2-core
// test machine a responder with no logic at all answers at 1.45-2.1 times
// snmpd's native sysUpTime.0 (BenchmarkGetLatency, "floor"); this package
// adds 3-15 µs of p50 to that floor.
//
// A PDU the master re-sends (same transaction and packet id and the same
// bytes, after its agentXTimeout) is never executed twice: while the first
// execution runs (waiting on the farm, say) the copy joins it and is
// answered by its one response, and after it the cached response is sent
// again. A
// response finished after the master closed the session is dropped and
// counted (Stats.LateDropped).
package agentx
