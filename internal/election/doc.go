// Package election decides which manager of a farm is the active SM and
// which are backups (BSM), DESIGN.md §7 "Backup managers".
//
// It owns the election rule and its timing: a non-preemptive choice at
// start (after one observation window, if no manager is active, the live
// manager with the highest priority, then the lowest node id, activates
// with a term above every term heard and above the caller's floor), the
// takeover when the active manager's heartbeats stop (TakeoverAfter,
// default 700 ms, so a takeover completes within 1 s with 200 ms
// heartbeats), and the report of every role change (a callback and one log
// line with a system-wide monotonic timestamp, so takeover times can be
// measured across processes).
//
// It does not own the membership protocol, the view or its terms on the
// wire, or the step-down on hearing a VIEW with a higher term: rmtp does
// those, and the Elector sees them only through the small Membership
// interface (FromEndpoint adapts an *rmtp.Endpoint; tests use a fake). It
// does own the step-down of a fenced manager (below). It does not own what
// a role means (serving SETs, AgentX registration priority,
// smManagerTakeover): the caller does that from OnChange. It does not
// persist terms: the caller gives a floor and a SaveTerm hook.
//
// # Observation: polling, not events
//
// The Elector polls Membership.Observe every Poll (default 50 ms, a quarter
// heartbeat) instead of reading rmtp's Events channel. Events is
// single-reader (the MIB's notifications may need it), drops events when
// nobody reads fast enough, and is edge-triggered, while the election needs
// level-triggered facts: who is alive now and when each manager was last
// heard, against a threshold (700 ms) shorter than rmtp's own "down" (5
// heartbeats). A lost edge would be a missed takeover; a poll cannot lose
// one. Polling costs one rmtp.Stats snapshot per Poll.
//
// # Safety
//
// Every manager applies the same deterministic rule to the same
// observations, so only the best live backup activates. A backup whose own
// loop stalled (a long GC pause, a starved CPU) would see every manager as
// silent; after a stall it waits one heartbeat so that the heartbeats queued
// meanwhile are read before anyone is declared dead. If two managers
// activate anyway (a partition), the higher term wins when they hear each
// other (rmtp steps the other down; equal terms: the lower node id wins) and
// the loser's Elector reports the step-down and becomes a backup. A revived
// old SM hears the active manager's view within its observation window and
// stays a backup. A better candidate that stays alive but never activates
// (its activation keeps failing) is passed over after StallAfter.
//
// # Fenced managers
//
// A partition between the managers only (each still reaches the SEs) lets
// the backup take over with a higher term while the old SM hears no VIEW
// of it, so rmtp never steps it down, and the SEs refuse its requests
// (staleTerm). Every term a member reports reaches the Elector instead:
// the engines' HELLOs (the term of the view each obeys while that view's
// owner is alive for it, else 0), the managers' HELLOs, and the staleTerm
// replies to this manager's requests (Config.ReportedTerm). An active
// manager that sees one above its own steps down on that poll
// (Membership.Deactivate, Change{Backup, CauseFenced}), so smNodeRole and
// whatever follows OnChange (a failover address, AgentX priority) stop
// claiming the farm. A manager that is not active does not activate while
// live SEs obey a term above every view it knows (CauseUnseenActive): the
// two managers would otherwise take the farm from each other on every
// heartbeat. A higher term heard once (a staleTerm reply, or the term that
// fenced it) counts the same for two heartbeats, since the first refusal
// usually comes before the SEs' next HELLO says which term they obey. Once
// the SEs lose that owner too, their HELLOs say 0 and the election runs as
// usual, above every term heard.
package election
