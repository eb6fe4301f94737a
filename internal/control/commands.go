package control

import (
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
)

// The commands a node answers on its control socket. The node executes
// them (package node); the CLI (cmd/smsnmpd) sends them. Their arguments
// and results below are the protocol between the two: a field added is
// read as its zero value by an older peer, so fields are only added.
const (
	CmdPublish   = "publish"
	CmdUnpublish = "unpublish"
	// CmdPublishStatus: how much of what publish queued every manager
	// accepted (publish -wait polls it).
	CmdPublishStatus = "publish-status"
	CmdLookup        = "lookup"
	CmdDigest        = "digest"
	// CmdStatus answers the node's node.Snapshot: role, term, view,
	// engines, links, directory, flow control, recent events (StatusArgs).
	CmdStatus = "status"
	// CmdStats answers figures of the node's process that nothing else
	// exposes (pid, goroutines, live heap: node.Process), for leak checks
	// (test/chaos polls it). Read-only; no arguments.
	CmdStats = "stats"
)

// MaxPublishBatch bounds the entries of one publish command; the CLI sends
// larger lists in batches of this size.
const MaxPublishBatch = 256

// LookupTimeout bounds a lookup across levels by default: each level asked
// gets the budget left, so four levels fit.
const LookupTimeout = 3 * time.Second

// PublishArgs are the arguments of publish and unpublish.
type PublishArgs struct {
	Engine  uint32         `json:"engine,omitempty"` // which SE of this process; 0 = the only one
	Entries []PublishEntry `json:"entries,omitempty"`
	Keys    []string       `json:"keys,omitempty"` // unpublish
}

// PublishEntry is one entry to publish.
type PublishEntry struct {
	Key  string        `json:"key"`
	Size uint64        `json:"size,omitempty"`
	TTL  time.Duration `json:"ttl,omitempty"` // 0 = never expires
}

// PublishResult says what one publish or unpublish command queued at the
// SE: the operations go to the managers from there, at their rate. From
// and To bound the sequence numbers of this command's operations (others'
// may interleave) for publish-status. Full: the SE's queue was full and
// only the first Queued of the entries were taken; send the rest again.
type PublishResult struct {
	Queued int    `json:"queued"`
	From   uint64 `json:"from,omitempty"`
	To     uint64 `json:"to,omitempty"`
	Full   bool   `json:"full,omitempty"`
}

// PublishStatusArgs asks about the operations of sequence numbers
// [From, To] (0, 0: none, only the totals).
type PublishStatusArgs struct {
	Engine uint32 `json:"engine,omitempty"`
	From   uint64 `json:"from,omitempty"`
	To     uint64 `json:"to,omitempty"`
}

// PublishStatus is the SE's side of flow control: Outstanding operations
// of the range are not yet accepted by every manager; the totals are the
// publisher's (directory.PublisherStats).
type PublishStatus struct {
	Outstanding int      `json:"outstanding"`
	Pending     int      `json:"pending"`  // all operations not yet accepted
	Refused     uint64   `json:"refused"`  // refused over a manager's rate limit, sent again
	Rejected    uint64   `json:"rejected"` // refused for good
	Resent      uint64   `json:"resent"`
	Timeouts    uint64   `json:"verdict_timeouts"`
	Rate        float64  `json:"rate"` // the limit followed (negative: none)
	Burst       float64  `json:"burst"`
	Managers    []uint32 `json:"managers"` // accepted the last update
}

// LookupArgs are the arguments of lookup.
type LookupArgs struct {
	Key string `json:"key"`
	// Local answers from this node's own store: no climbing, no summary
	// resolved downward (what this level holds).
	Local bool `json:"local,omitempty"`
	// TimeoutMs bounds a lookup across levels (0: LookupTimeout).
	TimeoutMs int `json:"timeout_ms,omitempty"`
}

// LookupResult is what `smsnmpd lookup --json` prints: the concrete hits
// nearest first, summaries no level resolved, and the path: every node
// asked, in order (self, parents climbed to, children resolving a
// summary), with what each held.
type LookupResult = directory.Resolution

// DigestArgs are the arguments of digest.
type DigestArgs struct {
	Engine uint32 `json:"engine,omitempty"` // which SE of this process; 0 = the node itself
	// Unit restricts a manager's digest to records inside it (zero: all).
	Unit directory.Location `json:"unit,omitzero"`
}

// DigestResult is what `smsnmpd digest` prints (-json) and compares.
type DigestResult struct {
	Digest  string `json:"digest"` // A and B in hex, "/", the entry count
	Entries uint64 `json:"entries"`
}

// StatusArgs are the arguments of status; its result is a node.Snapshot.
type StatusArgs struct {
	// Engine picks another node of a multi-node process (the demo's SEs)
	// by node id; 0 = the node the socket belongs to.
	Engine uint32 `json:"engine,omitempty"`
}
