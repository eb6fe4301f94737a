// Package directory owns smsnmpd's content location directory (seed Fig 7,
// DESIGN.md §7): the entry model (key, location, size, version, expiry,
// and the levels, unit ids and forwarding policies of the 4-level tree),
// the SE's Publisher, the manager's Store and Manager (apply, lookup,
// digest, state transfer), and an optional content-root Scanner. The
// pure codec is the subpackage wire.
//
// It also owns the hierarchy above the farm (issue 8): the Forwarder that
// sends a level's directory up to its parent by the level's Policy, the
// parent's handling of it (UPDATE groups per origin, SYNC markers), and
// the Resolver that looks keys up across levels.
//
// It does not own the transport (rmtp), the election of the active
// manager or takeover (the caller calls Forwarder.SetActive), the CLI and
// control socket (cmd/smsnmpd), how a Resolver reaches another node (a
// Peer is an interface; cmd provides the client), or the SNMP table
// (package mib reads Store.Entries and Store.Count).
//
// # Entries and versions
//
// A record is one (key, origin) pair: the same key held by two SEs is two
// records, and a lookup returns both. The origin is a Location: an SE at
// the farm level; a unit (zeros below it) for a summary at higher levels.
// Each origin versions its operations by (incarnation, sequence): the
// incarnation is the SE's rmtp incarnation (higher on every restart), the
// sequence grows with every operation. A record changes only for a newer
// version, so applying an update twice, or an old one late, changes
// nothing, and managers that saw the same operations in any order hold the
// same records (the Digest proves it).
//
// Removals are tombstones: the record stays with its version for
// TombstoneTTL (default 10 min), so a late duplicate of the add it removed
// loses. An entry past its expiry is a tombstone too (same version), for
// the same reason. A duplicate arriving after TombstoneTTL could bring an
// entry back; rmtp delivers each message exactly once, so such a copy can
// only come from a snapshot of a manager that still holds the entry, and
// that manager applies the same rules.
//
// An SE declared down (rmtp peer state down or left) keeps its entries:
// they are marked Down and sorted after live ones in lookups.
//
// # Restart rule
//
// An SE that starts sends everything it holds as adds under its new
// incarnation; the first group carries SYNC_BEGIN, the last SYNC_END.
// When a manager applies SYNC_END for incarnation N, it drops every
// record of that SE whose incarnation is below N (re-announced ones were
// already replaced) and refuses operations of older incarnations from
// then on. If SYNC_END never comes (the SE died again while
// re-announcing), the same sweep runs ReannounceGrace (default 30 s) after
// incarnation N was first seen.
//
// # Protocol (over rmtp)
//
// Channel 2 (rmtp.ChannelDirectory): an SE's Publisher sends UPDATE up (to SM and
// BSMs); every farm manager answers each UPDATE, once it applied it, with
// a VERDICT sent down (coalesced over DefaultVerdictDelay, every SE's
// answers in one message): accepted (with the operations refused for good
// counted), rate-limited (with how long to wait), wrong origin or level.
// The Publisher counts an update done only when every manager of the view
// accepted it; a refused one, or one whose verdicts did not come within
// VerdictTimeout (a manager that hung, died or restarted), it sends again.
// A manager without a donor sends RESYNC down and every SE re-announces.
// Channel 3 (rmtp.ChannelTransfer): a manager catching up sends SNAPSHOT_REQUEST down,
// naming the donor; the donor answers SNAPSHOT_CHUNK (at most ChunkBytes,
// default 512 KiB, inside rmtp's 1 MiB cap) by rmtp Reply; the requester
// asks again from the chunk's cursor until LAST. Chunks are read from the
// live store; that is enough because the requester, already in the
// managers' group, receives every update the donor applies after the
// request, and versions decide.
//
// # Caps and counters
//
// Keys: 1..MaxKey bytes (default 1024), UTF-8, no control characters
// (ErrBadKey, ErrKeyTooLong). Live entries: MaxEntries (ErrFull).
// Operations per origin: a token bucket (Rate, Burst); a group beyond it
// is refused whole and counted per origin (RateLimited). A refusal never
// touches another origin's entries.
//
// # Flow control (issue 14)
//
// A refused group is never lost: its VERDICT tells the SE, which backs off
// (until the manager's bucket holds the group again, plus half a burst)
// and sends it again; the SM and the BSM judge independently, and the SE
// waits for each. Both sides take the same numbers (directory.publish_rate
// and publish_burst): the publisher sends at Rate in bursts of at most
// Burst/2, so the managers' other half-burst absorbs the network's jitter
// and they refuse nothing in normal operation; every verdict also carries
// the manager's limit, and a publisher configured faster follows the
// lowest one announced (a group larger than a manager's burst is split). A
// re-announcement goes the same way, so it completes, and its SYNC_END
// waits until every earlier group was accepted everywhere: nothing
// re-announced is swept. Each side logs a refusal episode once when it
// starts and once when it ends (RefusalQuiet without a refusal). Memory is
// bounded on both sides: the publisher's queue (MaxPending, ErrQueueFull,
// WaitQueue), its entries (MaxHeld), the batches on their way
// (MaxAwaiting; a batch waiting for verdicts holds no rmtp send slot, so
// visibility does not wait for them) and the verdicts that came early;
// the manager's verdict queue, and its VERDICTs in flight, each given up
// on after 500 ms so that one member that stops acknowledging (a wedged
// process) does not hold back the others' verdicts.
// Verdicts exist at the farm level only: above it the stores' limit is off
// (below) and a forwarder's delivery is rmtp's acknowledgement. Upgrades:
// managers first. An older SE ignores verdicts; an SE of this version
// under an older manager, which sends none, never counts its updates
// accepted and sends them again every VerdictTimeout (logged once). Counters:
// Store.Counters, Store.Sources, Manager.Counters, Publisher.Stats.
//
// # Forwarding up the tree (levels 1-3)
//
// Each level-N manager (N = 1..3) is, in the parent's SM farm, a member
// like an SE: it has a second rmtp endpoint there (multicast inside a
// data center, unicast between data centers and CDNs) and sends UPDATEs
// of level N+1 up on rmtp.ChannelDirectory. The parent's Store accepts origins
// inside its unit. Only the active manager's Forwarder sends; the
// backup's follows the same store and waits.
//
//   - full: every record with its own origin and version. The parent
//     applies them like an SE's operations: idempotent, any order,
//     tombstones for removals; an origin's SYNC_END (its restart swept
//     older incarnations) is forwarded as an empty group with SYNC_END,
//     so the parent sweeps the same records.
//   - summary: one record (key, this unit) per key with at least one live
//     record below, of origin "this unit", versioned by the forwarder
//     (incarnation = the re-announcement's generation, sequence per
//     operation): added with the first live record of the key, removed
//     with the last (removal, expiry, sweep).
//   - digest (issue 22): a Bloom filter of the keys with at least one
//     live record below, in DIGEST messages: whole (pieces between BEGIN
//     and END of a generation) after each re-announcement trigger below
//     and after a rebuild, then the positions whose bit flipped. The
//     child keeps a counting filter (4-bit saturating counters: a counter
//     that reached 15 stays, so no key's bit is ever cleared while the
//     key is in), sized for its key count at ForwarderConfig.FPRate
//     (default 1 %: 9.6 bits and 7 hashes per key) and rebuilt with a new
//     seed when the keys reach twice that (filled off the store's lock;
//     the old filter serves meanwhile). The algorithm, k, m and the
//     seed travel with every DIGEST. The parent keeps the last complete
//     generation per child unit (Store.ApplyDigest) and answers from it
//     while the next one arrives. A level that receives digests forwards
//     only its records: digest belongs on the link to the top level.
//   - none: nothing.
//
// The Forwarder follows the store's change feed, which runs under the
// store's lock: it coalesces per record into a bounded queue
// (MaxQueue); on overflow it drops the queue and re-announces the store.
// It also re-announces when it becomes active (a takeover: whatever the
// old manager had not sent), when the parent asks (RESYNC), when a parent
// manager appears in its delivery reports, and when the parent is
// reached again after an attempt that reached none of its managers (a
// partition). A re-announcement under summary takes a new incarnation of
// the summary origin and ends with SYNC_END, as an SE does on restart.
// Under full it sends every record (live and tombstones) and every
// origin's synced incarnation between SYNC BEGIN and END of a new
// generation; at END the parent drops what it holds inside the unit that
// no operation named since BEGIN (Store.ApplySync, ChangeResynced): that
// is how a removal whose tombstone the child already forgot (a partition
// longer than TombstoneTTL, a lost queue) still reaches the parent. A
// parent that drops records this way re-announces its own unit to its
// parent in turn. Generations come from ForwarderConfig.Epoch, which must
// grow across a level's managers at a takeover (the level's rmtp term).
// Above the farm the stores' per-origin rate limit is off by default: the
// SEs' limit applies at the farm, and a re-announcement sends an SE's
// entries at once.
//
// # Lookups across levels
//
// A Resolver answers from its own store; summary hits, and child units
// whose digest matches the key (Store.DigestMatches: "maybe there"), are
// resolved downward by the child unit's Peer (never climbing from there;
// a unit that answers nothing for a digest match is a false hit, counted
// in ResolverStats, and a miss; the asker's own unit is not asked again);
// if no concrete hit remains, the query climbs to the Parent. The first level
// with a concrete hit answers, since every SE inside the asker's unit is
// nearer than any outside it. Hits are sorted as Store.Lookup sorts them;
// summary hits no child resolved are returned as Unresolved; Path lists
// every node asked (node, level, unit, self/parent/child, hits), for
// `smsnmpd lookup --json`.
//
// # Memory layout (issue 22)
//
// A Store holds no Go object per record: records are 40-byte values in
// pages of 4,096 addressed by a 32-bit index (records.go), each distinct
// key is stored once in an append-only arena of 1 MiB chunks and shared
// by the records of every origin holding it, a key reaches its records
// through an open-addressing table of record indices with an 8-bit hash
// tag per slot, (origin, incarnation) pairs are interned, ids are sorted
// index buckets, and the timer queues name records by index, id and
// version. About 50 bytes per record beyond the key's own bytes at 10^6
// and 10^7 records (BenchmarkStoreHeap); the collector scans none of it.
//
// # Ids and lookups
//
// Entry ids (smDirectoryTable's index) are a hash of (key, location),
// probing upward on collision, and a manager catching up keeps the donor's
// ids where free: the SM and the BSM thus number rows the same, and a
// row's index survives a failover. An id stays with its record while the
// record (or its tombstone) is held. Lookups sort by: SE up before down,
// then fewest tree Hops from the asking location (within a farm every SE
// is 2 hops), then the lowest location.
package directory
