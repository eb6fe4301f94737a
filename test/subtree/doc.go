// Package subtree tests smSubtree's counters across a takeover with real
// processes (issue 19): a manager, three engines as separate smsnmpd
// processes, one engine restarted, then a backup manager started, which
// never saw that engine's count before the restart; the backup follows
// the active manager's totals from its heartbeats, and after the active
// manager is killed, the new active manager's counters are no lower than
// the old one's were. It owns no product code.
//
// Run: go test -count=1 -v ./test/subtree/
package subtree
