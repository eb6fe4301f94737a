// Package directory owns smsnmpd's content location directory (seed Fig 7,
// DESIGN.md §7): the entry model (key, location, size, version, expiry,
// and the levels, unit ids and forwarding policies of the 4-level tree),
// the SE's Publisher, the manager's Store and Manager (apply, lookup,
// digest, state transfer), and an optional content-root Scanner. The
// pure codec is the subpackage wire.
//
// It does not own the transport (rmtp), the election of the active
// manager or takeover (the caller), the CLI and control socket
// (cmd/smsnmpd), the SNMP table (package mib reads Store.Entries and
// Store.Count), or forwarding to the parent level (issue 8 adds it on this
// model: Policy, Level.Unit, Summarize, UPDATE groups per origin with the
// sender's level, and the StoreConfig.OnChange feed of record changes).
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
// Channel 2 (ChannelUpdates): an SE's Publisher sends UPDATE up (to SM and
// BSMs) and retries until every manager acknowledged; a manager without a
// donor sends RESYNC down and every SE re-announces. Channel 3
// (ChannelTransfer): a manager catching up sends SNAPSHOT_REQUEST down,
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
// is dropped whole and counted per origin (RateLimited). A refusal never
// touches another origin's entries. A dropped group is lost to that manager
// (rmtp acknowledged it), so SM and BSM may differ for a flooding SE until
// it re-announces; a Publisher never exceeds the managers' limit with the
// defaults (DefaultPublishRate is half of DefaultRate). Counters: Store.Counters,
// Store.Sources, Manager.Counters, Publisher.Stats.
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
