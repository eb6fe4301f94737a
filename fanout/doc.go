// Package fanout is the management protocol of the farm (DESIGN.md §5, the
// seed's Fig 8): one northbound SNMP operation becomes one SNMP_MULTICAST_OP
// transaction, multicast once to every service engine (SE) over rmtp, and
// the SEs' replies come back as one answer.
//
// It owns two roles:
//
//   - the Coordinator (manager side): turns a GET, GETNEXT, bounded subtree
//     walk or a SET phase into one rmtp request carrying every varbind,
//     collects the replies, re-requests only the SEs that answered nothing
//     by an internal point, answers at the deadline with what it has and
//     marks the rest; caches walk snapshots so that a walk through snmpd
//     (one AgentX GetNext per varbind) costs one multicast; runs SET as two
//     phases (TEST, COMMIT, UNDO, CLEANUP) across the SEs with per-phase
//     deadlines; keeps per-SE state (smEngineTable) and counters.
//   - the Responder (SE side): answers those requests from the SE's own
//     objects (its agent.Tree, seen through the small Tree interface) and, when configured, by proxying to the host's SNMP agent
//     with gosnmp; caches replies per (manager, incarnation, transaction)
//     so that a repeated request is answered again, never executed again;
//     refuses operations carrying a term older than the newest one seen;
//     lets SET reservations expire.
//
// It does not own the transport (package rmtp: segments, ACK/NAK, the
// membership view and the delivery report), the SE's own objects (package
// mib registers them on the tree the Responder is given), aggregate
// functions or the northbound frontends (packages mib and agent), and
// imports neither: what it shares with them (OIDs, search ranges, SET
// transaction ids, the SNMP error-status error) is package internal/smi's.
//
// # Using it (manager side, e.g. package mib)
//
//	c, _ := fanout.NewCoordinator(ep, fanout.CoordinatorConfig{OnEngineEvent: notify})
//	res, _ := c.Get(ctx, nil, names)          // nil targets: every engine of the view
//	for _, r := range res.Replies { ... }      // per-SE varbinds, Status, Incarnation
//	res.Missing, res.Responders()              // who is marked, the responder count
//	snap, _ := c.Snapshot(ctx, targets, root)  // cached walk; snap.Next(engine, smi.Range)
//	_, err := c.TestSet(ctx, tx, targets, vbs) // agent.Setter phases keyed by smi.TxID;
//	c.CommitSet(ctx, tx); c.UndoSet(ctx, tx)   // errors are *smi.Error (status, index)
//	c.CleanupSet(ctx, tx)                      // wrapping *PhaseError (per-engine detail)
//	c.Engines(); c.Counters()                  // smEngineTable rows, smTransport-style totals
//
// SE side: fanout.NewResponder(ep, fanout.ResponderConfig{Tree: tree,
// LocalAgent: &fanout.LocalAgent{...}}). Both read the management channel
// only (rmtp.ChannelManagement; the coordinator its inbox, the responder
// through a handler), so other protocols share the endpoint on their own
// channels.
//
// # Decisions
//
//   - A transaction's first round lasts until RetryAfter (default 40 % of
//     the deadline); then only the silent SEs are asked again with the same
//     transaction id, so an SE that had the request answers from its reply
//     cache. Replies to an ended round still count when they arrive.
//   - The SE's budget is nine tenths of the time left, so an SE that gives
//     up (a slow local agent) says so before the coordinator's deadline.
//   - COMMIT is withheld from every SE when one that passed TEST has left
//     the view since: commitFailed, nothing changed anywhere, and UNDO has
//     nothing to do. An SE silent at COMMIT or UNDO makes it commitFailed
//     or undoFailed: the coordinator cannot know what it did.
//   - A proxied (local agent) object is written at COMMIT with one SNMP SET
//     (SNMP has no remote TEST); its old value is read at TEST so that UNDO
//     can write it back.
//   - An SE that passes TEST answers with its values of the SET's objects
//     before the SET (nothing when they would take over 32 KiB). When an
//     UNDO is not confirmed by every SE, the undoFailed error's
//     *PhaseError lists in Diverged the SEs that may still hold the SET's
//     values, each with those values, so the manager can put it back later
//     (package mib, smReconcileTable). The coordinator itself keeps nothing
//     of a SET once it is cleaned up.
//   - Reads and SETs carrying a term older than the newest view the SE has
//     heard are refused (staleTerm); CLEANUP is not, so a deposed manager
//     can still release what it reserved. The coordinator keeps the
//     highest term such replies name (Coordinator.StaleTerm: the election
//     steps a manager down on it) and logs the refusal at warning once
//     per episode, not per request.
//   - Reads the SE's own tree can answer (GET, GETNEXT, WALK without a
//     local agent; a GET of names the tree owns) run on the reader itself,
//     with no goroutine per request: at 256 SEs in one process the hand-off
//     to a worker was a visible share of the SE's cost. The reader is
//     rmtp's receive goroutine (rmtp.Endpoint.Handle): one hand-off less
//     per request, 5-8 % off the p50 of an aggregate GET at 16 and 64 SEs.
//     A read still running after 5 ms (a slow object) hands receiving to a
//     new goroutine (rmtp's takeover), so it never holds up the requests
//     behind it. The local agent and SET phases run
//     on workers, under exactly the request's budget.
//   - Workers bounds the requests executing at once, inline or not; an SE
//     short of them sheds a request without answering, and the
//     coordinator's re-request retries it (nothing was executed or cached).
//   - Nothing waits for a reply's acknowledgement: the reply is handed to
//     rmtp (StartReply), which repairs it until the managers acknowledge it
//     or the request's budget plus the trip back (100 ms) has passed, rounded
//     up to 50 ms so that replies share one deadline context instead of a
//     timer each. Later, the coordinator has stopped listening or asks
//     again, and is answered from the cache.
//
// # Payloads
//
// The byte layout lives in package fanout/wire (pure codec). Both payloads
// travel as one rmtp message on the management channel (default 1): the
// request down to the farm group, the reply up to the managers' group,
// where it is also the request's acknowledgement. All integers are big
// endian.
//
// Request (version 1):
//
//	offset size field
//	0      1    version (1)
//	1      1    op: 1 GET, 2 GETNEXT, 3 WALK, 4 SET_TEST, 5 SET_COMMIT,
//	            6 SET_UNDO, 7 SET_CLEANUP (append-only)
//	2      2    flags (none defined; must be 0)
//	4      8    transaction id (per manager incarnation; SET phases share it)
//	12     8    term of the sender's view (fencing)
//	20     4    budget: microseconds the SE may spend before its answer is useless
//	24     4    walk cap: most varbinds per root in a WALK reply (0 otherwise)
//	28     2    target count T (0 = every engine), at most wire.MaxTargets
//	30     4×T  target node ids
//	30+4T  …    VarBindList (SNMP BER), filling the rest exactly
//
// GET carries the names (values NULL), GETNEXT the start names, WALK the
// subtree roots with either a NULL value (from the root) or an OBJECT
// IDENTIFIER value (continue after that OID, which must lie inside the
// root), SET_TEST the varbinds to set; COMMIT, UNDO and CLEANUP carry none.
//
// Reply (version 1):
//
//	offset size field
//	0      1    version (1)
//	1      1    op (echo of the request)
//	2      1    status: 0 ok, 1 snmpError, 2 staleTerm, 3 badRequest,
//	            4 busy, 5 unknownTx (append-only)
//	3      1    flags: bit 0 truncated (a WALK root hit the walk cap)
//	4      8    transaction id (echo)
//	12     4    SE node id
//	16     8    SE incarnation (rmtp's; a restart shows in the answer itself)
//	24     8    newest term the SE has seen (tells a fenced manager why)
//	32     2    SNMP error-status (status snmpError)
//	34     2    error-index, 0-based varbind of the request at fault
//	36     …    VarBindList (SNMP BER), filling the rest exactly
//
// A GET or GETNEXT reply holds one varbind per request varbind, in order;
// a WALK reply holds each root's instances in OID order, root after root,
// at most the walk cap per root. A SET_TEST reply with status ok holds the
// SE's values of the request's names before the SET, in order, or none;
// the other SET phases' replies hold none.
//
// # Engine numbers in HELLO
//
// An SE may carry its own numbers for smEngineTable in rmtp's HELLO app
// bytes (rmtp.Config.HelloApp = wire.AppendEngineInfo): version 1, then
// load (4), requests (8), bytes out (8), content count (8), then optional
// fields of type (1), length (1) and value: 1 the sender's sysName
// (smEngineName, at most 255 bytes), 2 a manager's subtree totals (70
// bytes: flags with bit 0 "active manager of its level", level, CDN, data
// center, farm, term, requests, bytes out, content count, load sum, load
// engines, engines up, suspect, down). An unknown field, and bytes a known
// one has beyond its own, are skipped; at most wire.MaxEngineInfoLen (358)
// bytes in all, within rmtp's 1,024 bytes of HELLO app data.
package fanout
