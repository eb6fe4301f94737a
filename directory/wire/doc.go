// Package wire is the pure codec of smsnmpd's directory protocol (seed
// Fig 7, DESIGN.md §7): the payloads that travel inside rmtp messages on
// the directory channels. It owns the byte layout and its bounds; it does
// no I/O, keeps no clock and never logs. What the messages mean (versions,
// tombstones, catch-up) belongs to package directory.
//
// # Layout, version 1
//
// Integers are big-endian. Every message starts with a 4-byte prefix:
//
//	offset size field
//	     0    1 version   1; anything else is ErrVersion
//	     1    1 type      1 UPDATE, 2 SNAPSHOT_REQUEST, 3 SNAPSHOT_CHUNK,
//	                      4 RESYNC, 5 SYNC, 6 LOOKUP, 7 LOOKUP_ANSWER,
//	                      8 VERDICT, 9 DIGEST (append-only)
//	     2    1 level     UPDATE, SYNC, DIGEST: level of the directory the
//	                      sender feeds (1 = farm); VERDICT: level of the
//	                      directory that judged; 0 otherwise
//	     3    1 flags     type-specific; undefined bits are an error
//
// A Location is 16 bytes: CDN 4, data center 4, farm 4, engine 4. A zero
// field means "above this unit": {1, 2, 0, 0} is the summary "somewhere in
// data center 2 of CDN 1" (issue 8's summary forwarding).
//
// UPDATE (flags 0) carries groups of operations, one group per origin, so
// an SE sends one group and a manager forwarding upward (issue 8) sends one
// per origin it forwards:
//
//	groups 2 (≤ MaxGroups)
//	group: origin Location 16, incarnation 8,
//	       flags 1 (0x01 SYNC_BEGIN, 0x02 SYNC_END), ops 2 (≤ MaxOps)
//	op:    kind 1 (1 ADD, 2 REMOVE), seq 8, key length 2 (1..MaxKey), key,
//	       ADD only: size 8, expiry 8 (Unix milliseconds, 0 = never)
//
// SNAPSHOT_REQUEST (flags 0): donor node 4 (only that manager answers),
// after 4 (entry id cursor: records with a larger id), max bytes 4 (the
// answer's budget, the donor caps it further).
//
// SNAPSHOT_CHUNK (flags 0x01 LAST): next 4 (the cursor for the following
// request), sources 2 (≤ MaxSources) × {origin 16, incarnation 8, synced
// incarnation 8}, origins 2 (≤ MaxOrigins) × {origin 16, incarnation 8},
// records 4 (≤ MaxRecords) × {id 4, origin index 2, seq 8, flags 1 (0x01
// REMOVED), key length 2, key, live records only: size 8, expiry 8}. The
// origin table keeps a record at about 25 bytes plus its key instead of 49.
//
// RESYNC (flags 0, no body): a manager that found no donor to catch up
// from asks every SE to re-announce what it holds.
//
// SYNC (flags 0x01 BEGIN or 0x02 END, exactly one): unit Location 16,
// generation 8. A manager forwarding its unit upward under the full
// policy brackets a re-announcement of everything it holds with BEGIN and
// END of one generation (higher than any before, across the unit's
// managers); at END the parent drops what it holds inside the unit and
// did not hear about since BEGIN (gone below while the parent was not
// listening: a partition, a lost queue, a takeover).
//
// LOOKUP (flags 0x01 DOWN: resolve inside the answerer's unit, never
// climb): id 8 (the asker's, echoed), asker node 4, budget 4 (milliseconds
// the asker waits), steps 1 (path steps already taken), from Location 16
// (hops are counted from it), key length 2 (1..MaxKey), key. A child
// manager sends it up to its parent's managers; a parent sends it as an
// rmtp request to one child unit's manager.
//
// LOOKUP_ANSWER (flags 0x01 FAILED): id 8, asker 4, error length 2
// (≤ MaxErrorText, UTF-8), error, hits 2 (≤ MaxHits), unresolved 2
// (≤ MaxHits), steps 1 (≤ MaxSteps), then the hits and unresolved
// summaries × {id 4, location 16, size 8, incarnation 8, seq 8, expiry 8,
// stored 8 (Unix milliseconds), down 1 (0 or 1), hops 1}, then the steps
// × {node 4, level 1, unit 16, via 1 (1 self, 2 parent, 3 child), hits 2,
// summaries 2, error length 2, error}. A parent answers a climbing child
// down to the whole group (the asker picks its own by asker and id); a
// child answers a parent's request by rmtp reply.
//
// VERDICT (flags 0): a farm manager's answer to the UPDATEs it received,
// sent down to every member after it applied them (coalesced: one message
// answers every UPDATE of a few milliseconds, from all senders); a
// publisher counts an update done only when every manager accepted it.
// An UPDATE without operations (a SYNC_END alone) gets no verdict: the
// limit cannot refuse it.
// Entries 2 (≤ MaxVerdicts) × {engine node 4, its incarnation 8, the
// UPDATE's rmtp message id 8, result 1 (1 ACCEPTED, 2 RATE_LIMITED,
// 3 WRONG_ORIGIN, 4 WRONG_LEVEL; append-only), rejected 4 (operations of
// an accepted update refused for good), retry after 4 (milliseconds until
// a rate-limited update fits), rate 4 and burst 4 (the manager's limit for
// that sender, operations per second and at once; 0 = none)} = 37 bytes.
//
// DIGEST (flags 0x01 BEGIN, 0x02 END): a Bloom filter of the keys of the
// sender's unit (issue 22, the digest forwarding policy): unit Location
// 16, generation 8, algorithm 1 (1 = FNV-1a 64 seeded, Kirsch-Mitzenmacher
// double hashing: DigestFNVKM), hashes k 1 (1..MaxDigestHashes), seed 8,
// bits m 8 (1..MaxDigestBits), keys 8 (in the filter when sent), offset 4
// and piece length 4 (≤ MaxDigestPiece; offset + length ≤ ⌈m/8⌉), the
// piece (bit i is bit i%8, least significant first, of byte i/8), set
// positions 4 (≤ MaxDigestPositions) × 4, cleared positions 4 × 4 (each
// < m). A full send is the bitset in pieces from BEGIN to END of one
// generation (higher than any before, across the unit's managers); the
// receiver keeps answering from the previous generation until END. After
// it, DIGESTs of the same generation carry the positions whose bit changed,
// with the bit's value now, so a duplicate changes nothing.
//
// Every count is checked against its cap and against the bytes left before
// anything is allocated; trailing bytes are an error; encodings are
// canonical, so decode → encode gives back the same bytes.
package wire
