// Package mib owns SERVICE-MANAGER-MIB: the module text
// (SERVICE-MANAGER-MIB.txt beside this file), the one Go table of every OID
// it defines (objects.go), and the code that puts its objects, and the
// SNMPv2-MIB system group every NMS polls first, on an agent.Tree.
//
// The table is the only place Go code takes these OIDs from: ID constants
// name its rows (SmNodeRole.OID()), and a test parses the MIB with net-snmp
// and fails when the two disagree in either direction, so the module text
// and the served tree cannot drift apart. Another test runs smilint -l 6 on
// the text and requires it to print nothing.
//
// What each role registers:
//
//   - every node: RegisterNode (smNode, smViewTerm), RegisterTransport
//     (smTransport, from rmtp's counters), RegisterDirectory (from a
//     DirectorySource), and RegisterSystem where no snmpd serves the system
//     group;
//   - a service engine: RegisterSE (smSe: the writable smSeAdminState and
//     smSeWeight, kept by a Store, and its own numbers and its host's, read
//     live from /proc through package internal/hoststat); SE.EngineInfo
//     feeds its heartbeats;
//   - a manager: RegisterManager over a Farm (*fanout.Coordinator):
//     smEngineCount and smEngineTable from the farm's engine rows, and the
//     farm operations smAggregate, smEngineProxy and smAllEngines, each
//     northbound request one fan-out transaction;
//     Manager.RegisterEngineContext for the per-engine contexts "se<N>";
//     smReconcile (the engines a SET answered undoFailed left behind);
//     a FarmState shared by the node's frontends holds the counter sums
//     and those engines, puts the engines back while the manager is
//     active (FarmState.Run), and is what the active manager replicates to
//     its backups (Export, Adopt; package internal/replica carries it);
//   - a manager's notifications: EngineNotification and friends build
//     them, a Notifier sends them while the manager is active only, with
//     the sender's smNodeId.0 and smViewTerm.0, journals them for the
//     backups, and on becoming active sends what the previous active
//     manager may not have sent;
//   - a manager or backup of any level: RegisterForwarding
//     (smDirectoryHierarchy: the directory's forwarding to the level above
//     and the lookups answered for other levels, from the caller's
//     snapshot of directory.Forwarder and the lookup links; noParent(4)
//     where there is no level above), and RegisterSubtree (smSubtree:
//     totals of everything below it, which a Subtree keeps from the
//     heartbeats of its engines, or of the child levels' managers, and
//     of the other managers of its level, and reports in its own);
//   - every node: RegisterActivePeer (smNodeActivePeer, the active
//     manager the node hears, from its rmtp view).
//
// Decisions the MIB documents and this package implements:
//
//   - A sum of counters is a Counter64 kept monotonic by the manager: the
//     last value of every engine, restart offsets (a value that goes back
//     is a restart, or a wrap for a Counter32 falling by more than 2^31),
//     departed engines kept at their last value, and engines that join an
//     existing sum counted from their first reading, so a rate never sees
//     a burst that was not traffic. Readings of overlapping fan-outs
//     answered out of order are told from restarts by when the fan-outs
//     were in flight, and by the engines' incarnations where the replies
//     carry them. The sums kept are capped (LRU); dropping one, or becoming
//     active without a recent whole state of a previous active manager,
//     are the only discontinuities, reported by
//     smAggregateDiscontinuityTime.
//   - A SET answered undoFailed leaves a row in smReconcileTable per SE
//     that did not confirm its UNDO, with the values it reported at TEST;
//     the active manager writes them back once the SE is up (a later
//     successful SET of the same objects supersedes the row), so the farm
//     ends as the NMS was told.
//   - smSubtree's counters, unlike those sums, count an engine or a child
//     level that appears with its whole count (so at level 1 they are the
//     sum of the smEngineRequests and smEngineBytesOut rows, above it the
//     sum of the children's own), because the levels above must add up to
//     what the engines counted; they never go back while the manager runs,
//     and the managers of a level keep theirs no lower than each other's.
//     smEngineName is the name the engine's heartbeats carry (its
//     sysName), in every row, empty without one, so a walk of the column
//     finds every engine.
//   - Sums of Integer32 saturate at its bounds, sums of Gauge32 latch at
//     2^32-1; min, max and avg keep the input type (avg rounds half away
//     from zero); counters have no min, max or avg, TimeTicks no sum;
//     engines disagreeing on the type give noSuchInstance; count(5) is the
//     responder count.
//   - An smAggregate read that any SE refused with staleTerm (it obeys a
//     manager elected above this one) fails with genErr (ErrFenced), GET
//     and GETNEXT alike: a count of the SEs that still took this
//     manager's term, or of none, would pass a part of the farm off as
//     the whole.
//   - GETNEXT under smAggregate and smEngineProxy lists the engines' own
//     objects only (system and smSe), read from the Coordinator's walk
//     snapshots; smAllEngines is written, and read only by GET.
//   - smEngineAddress is an InetAddressType/InetAddress pair, so the module
//     imports INET-ADDRESS-MIB (RFC 4001) besides SNMPv2-SMI/TC/CONF and
//     NET-SNMP-MIB.
//
// The module sits under net-snmp's playpen arc, netSnmpPlaypen.42
// (1.3.6.1.4.1.8072.9999.9999.42), until the project has an enterprise
// number. The package runs no protocol and opens no socket; its only
// goroutine is FarmState.Run, which the caller starts. Tools and tests load the module with
// `-M +mib -m SERVICE-MANAGER-MIB` plus the standard IETF modules that
// test/deps/install.sh unpacks.
package mib
