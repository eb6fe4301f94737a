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
// Dispatch: one goroutine reads the socket and queues datagrams for
// Config.Workers workers (GOMAXPROCS by default), which decode each
// request and run it on the Tree. A request about to call a handler that
// may block (one that is not agent.Local: the farm's aggregates,
// smEngineProxy, an SE's context) leaves the pool through the Tree's wait
// hook (agent.WithWait): it is admitted among at most Config.MaxInFlight
// waiting requests, a new worker takes its place, and it goes on alone on
// its goroutine, sending its answer when the fan-out round ends. So the
// workers only ever run what answers from memory: local objects answer in
// microseconds whatever the SEs do, every aggregate answers by its own
// deadline instead of queueing for a worker behind others, and throughput
// under loss is bounded by the CPU, not by the worker count. Beyond
// MaxInFlight a new waiting request is dropped before it reaches the farm
// and counted (BusyDrops and snmpSilentDrops; one log line a minute at
// most). A retransmission (same source address and port, request-id and
// bytes) of a request still waiting joins it: dropped, since the one
// answer to come carries its request-id, instead of a second farm
// transaction. The map of waiting requests holds at most MaxInFlight.
//
// Why a goroutine per waiting request and not a callback-based handler
// API: the Tree's GetNext rounds, GETBULK repetitions, SET phases and
// concurrent batches, and the fan-out Coordinator below them, are plain
// sequential code; with callbacks each would become a hand-written state
// machine. The goroutine is idiomatic and cheap here: measured over
// loopback with a gosnmp client (BenchmarkServeGet), leaving the pool
// costs a request about 1 µs of its 17 µs round trip (an aggregate at 16
// SEs takes 400-550 µs), the local path is unchanged (16-17 µs p50 before
// and after), and MaxInFlight bounds the goroutines and their stacks
// (about 8 KiB each: 8 MiB at the default 1,024). The e2e tests
// (test/e2e/dispatch_test.go) measure the rest against real processes.
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
