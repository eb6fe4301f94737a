// Package hierarchy is the end-to-end test of the 4-level tree (issue 8,
// DESIGN.md §1, §4, §7): 3 CDNs x 2 data centers x 1 farm x 2 SEs run as
// separate smsnmpd processes, each in a network namespace of its own, with
// one bridge per LAN (the bridges live in a "switch" namespace) and a
// router namespace between the LANs that forwards unicast only, so
// multicast stays inside each LAN as it does between real data centers.
//
// It checks what each level stores under the typical forwarding policy
// (Fig 1, Fig 2a), lookups that climb the tree and resolve summaries
// downward, the subtree totals (smSubtree) at levels 2, 3 and 4 against
// what the SEs below count themselves, an SE's death and restart in them,
// a data center cut off and healed, and the level-2 SM killed during a
// stream of updates; all of it twice, with level 3 forwarding summary
// (TestHierarchy) and digest (TestHierarchyDigest, issue 22: level 4
// holds only Bloom filters and resolves every lookup through them). It
// owns no product code. It needs root, ip
// and nft; it skips without them, except with CI=true, where it fails.
//
// Run: go test -count=1 -v ./test/hierarchy/
package hierarchy
