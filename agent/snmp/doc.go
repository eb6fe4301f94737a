// Package snmp owns smsnmpd's built-in SNMP agent on UDP (command
// responder and notification originator: SNMPv1, SNMPv2c and SNMPv3 with
// USM), for the demo and for hosts without net-snmp's snmpd. It serves the agent.Tree of each SNMP
// context: GET, GETNEXT, GETBULK (truncated to the message size, RFC 3416
// §4.2.3) and SET through the Tree's test/commit/undo/cleanup phases;
// SNMPv1 requests are answered per RFC 3584 (noSuchName, Counter64
// skipped by GETNEXT, SET errors mapped per §4.4). It counts what RFC
// 3418's snmp group counts and can register that group on a Tree
// (RegisterSNMPGroup); the system group belongs to package mib.
//
// Layers, one file each (RFC 3411's architecture, cut to what an agent
// needs):
//   - message.go, the message layer: reads a datagram's version and hands
//     it to the security model of that version;
//   - a file per security model, which decodes and authenticates a
//     message into a request (tree, access, the largest response it can
//     carry) and wraps the response: community.go, the community-based
//     model of SNMPv1 and SNMPv2c (RFC 3584 §5.2), and usm.go, SNMPv3's
//     message processing with the User-based Security Model (RFC 3412,
//     RFC 3414: discovery, the 150 s time window, every usmStats report;
//     its cryptography is package usm's, keys localized once in New). A
//     new model is a new file and one case in message.go;
//   - view.go, the access rules the models hand the dispatcher: read and
//     write subtrees per user and for the communities (a small VACM),
//     with the contexts and source networks each may use;
//   - dispatch.go, the PDU dispatcher: runs a request on its Tree and
//     returns the Response PDU, knowing no message format, community or
//     user;
//   - agent.go and wait.go: the socket, the workers and the requests
//     waiting on the farm (below); notify.go and inform.go, traps and
//     informs (SNMPv2c and SNMPv3; an SNMPv3 inform discovers its
//     receiver's engine); engine.go, snmpEngineID and snmpEngineBoots
//     kept in node.state_dir.
//
// Wire format: every message is decoded and encoded by internal/ber, once
// (bytes to smi varbinds and back, no intermediate representation); it
// knows the exact size of every varbind, which a GETBULK response needs to
// be truncated, and keeps every field at the 32 bits of the wire
// (non-repeaters, error-index). gosnmp is used by the tests only, as an
// independent client and decoder.
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
// most). A retransmission (same source address and port, same bytes) of
// a request still waiting joins it: dropped, since the one
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
// community-indexed contexts), when the context exists (and
// Config.CommunityContexts allows it); an SNMPv3 request names its context
// in its scoped PDU, among those its user may use.
//
// Secrets (communities, passphrases) are config.Secret: never logged nor
// put into errors.
//
// What it does not own: the full VACM tables (the views are
// configuration, not SNMP-writable), DES and Reeder's AES key extension,
// the system group, and the objects themselves.
package snmp
