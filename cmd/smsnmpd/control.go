package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/control"
)

// The control socket's commands (internal/control carries them).
const (
	cmdPublish   = "publish"
	cmdUnpublish = "unpublish"
	cmdLookup    = "lookup"
	cmdDigest    = "digest"
	// cmdPublishStatus: how much of what publish queued every manager
	// accepted (publish -wait polls it).
	cmdPublishStatus = "publish-status"
)

// maxPublishBatch bounds the entries of one publish command; the CLI sends
// larger lists in batches of this size.
const maxPublishBatch = 256

// publishArgs are the arguments of publish and unpublish.
type publishArgs struct {
	Engine  uint32         `json:"engine,omitempty"` // which SE of this process; 0 = the only one
	Entries []publishEntry `json:"entries,omitempty"`
	Keys    []string       `json:"keys,omitempty"` // unpublish
}

type publishEntry struct {
	Key  string        `json:"key"`
	Size uint64        `json:"size,omitempty"`
	TTL  time.Duration `json:"ttl,omitempty"` // 0 = never expires
}

// publishResult says what one publish or unpublish command queued at the
// SE: the operations go to the managers from there, at their rate. From
// and To bound the sequence numbers of this command's operations (others'
// may interleave) for publish-status. Full: the SE's queue was full and
// only the first Queued of the entries were taken; send the rest again.
type publishResult struct {
	Queued int    `json:"queued"`
	From   uint64 `json:"from,omitempty"`
	To     uint64 `json:"to,omitempty"`
	Full   bool   `json:"full,omitempty"`
}

// queueWait bounds how long one publish command waits for room in a full
// queue, well inside the control socket's IOTimeout.
const queueWait = 5 * time.Second

// publishStatusArgs asks about the operations of sequence numbers
// [From, To] (0, 0: none, only the totals).
type publishStatusArgs struct {
	Engine uint32 `json:"engine,omitempty"`
	From   uint64 `json:"from,omitempty"`
	To     uint64 `json:"to,omitempty"`
}

// publishStatus is the SE's side of flow control: Outstanding operations
// of the range are not yet accepted by every manager; the totals are the
// publisher's (directory.PublisherStats).
type publishStatus struct {
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

type lookupArgs struct {
	Key string `json:"key"`
	// Local answers from this node's own store: no climbing, no summary
	// resolved downward (what this level holds).
	Local bool `json:"local,omitempty"`
	// TimeoutMs bounds a lookup across levels (0: lookupTimeout).
	TimeoutMs int `json:"timeout_ms,omitempty"`
}

// lookupResult is what `smsnmpd lookup --json` prints: the concrete hits
// nearest first, summaries no level resolved, and the path: every node
// asked, in order (self, parents climbed to, children resolving a
// summary), with what each held.
type lookupResult = directory.Resolution

// lookupTimeout bounds a lookup across levels by default: each level asked
// gets the budget left, so four levels fit.
const lookupTimeout = 3 * time.Second

// digestArgs are the arguments of digest.
type digestArgs struct {
	Engine uint32 `json:"engine,omitempty"` // which SE of this process; 0 = the node itself
	// Unit restricts a manager's digest to records inside it (zero: all).
	Unit directory.Location `json:"unit,omitzero"`
}

// controlHandler executes control commands against what this process
// runs: the SEs' publishers (by node id) and the manager's directory.
type controlHandler struct {
	engines  map[uint32]*contentSide
	dir      *directory.Manager
	resolver *directory.Resolver // nil: answer from dir only
	node     uint32
	at       directory.Location // where this node sits: hops count from here
}

func (h *controlHandler) handle(ctx context.Context, cmd string, raw json.RawMessage) (any, error) {
	switch cmd {
	case cmdPublish, cmdUnpublish:
		var a publishArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("malformed arguments: %w", err)
		}
		// Before anything is added: a bad entry loses nothing.
		for _, e := range a.Entries {
			if e.TTL < 0 {
				return publishResult{}, fmt.Errorf("%q: ttl %v is negative: give how long the entry lives, or 0 for never", e.Key, e.TTL)
			}
		}
		c, err := h.engine(a.Engine)
		if err != nil {
			return nil, err
		}
		if len(a.Entries)+len(a.Keys) > maxPublishBatch {
			return nil, fmt.Errorf("more than %d entries in one command", maxPublishBatch)
		}
		wctx, cancel := context.WithTimeout(ctx, queueWait)
		defer cancel()
		res := publishResult{From: c.pub.Seq() + 1}
		// queue runs op, waiting for room while the SE's queue is full (the
		// managers accept more slowly than this client publishes: the
		// client is paced at their rate); when the wait runs out the
		// client gets what was taken and sends the rest again.
		queue := func(key string, op func() error) (bool, error) {
			for {
				err := op()
				if !errors.Is(err, directory.ErrQueueFull) {
					if err != nil {
						return false, fmt.Errorf("%q: %w", key, err)
					}
					res.Queued++
					return true, nil
				}
				if werr := c.pub.WaitQueue(wctx); werr != nil {
					if wctx.Err() != nil && ctx.Err() == nil {
						res.Full = true
						return false, nil
					}
					return false, werr
				}
			}
		}
		for _, e := range a.Entries {
			ent := directory.Entry{Key: e.Key, Size: e.Size}
			if e.TTL > 0 {
				ent.Expiry = time.Now().Add(e.TTL)
			}
			if ok, err := queue(e.Key, func() error { return c.Add(ent) }); !ok {
				res.To = c.pub.Seq()
				return res, err
			}
		}
		for _, k := range a.Keys {
			if ok, err := queue(k, func() error { return c.Remove(k) }); !ok {
				res.To = c.pub.Seq()
				return res, err
			}
		}
		res.To = c.pub.Seq()
		return res, nil
	case cmdPublishStatus:
		var a publishStatusArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("malformed arguments: %w", err)
			}
		}
		c, err := h.engine(a.Engine)
		if err != nil {
			return nil, err
		}
		st := c.pub.Stats()
		out := publishStatus{Pending: st.Pending, Refused: st.Refused, Rejected: st.Rejected, Resent: st.Resent,
			Timeouts: st.VerdictTimeouts, Rate: st.Rate, Burst: st.Burst, Managers: []uint32{}}
		if math.IsInf(out.Burst, 0) { // no limit: JSON has no infinity
			out.Burst = 0
		}
		if a.From > 0 && a.To >= a.From {
			out.Outstanding = c.pub.Outstanding(a.From, a.To)
		}
		for _, m := range st.Managers {
			out.Managers = append(out.Managers, uint32(m))
		}
		return out, nil
	case cmdLookup:
		var a lookupArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("malformed arguments: %w", err)
		}
		if h.dir == nil {
			return nil, fmt.Errorf("this node keeps no directory: ask a manager (node.role = \"manager\")")
		}
		if err := directory.CheckKey(a.Key, h.dir.Store().Config().MaxKey); err != nil {
			return nil, err
		}
		if a.Local || h.resolver == nil {
			hits := h.dir.Lookup(a.Key, h.at)
			if hits == nil {
				hits = []directory.Hit{}
			}
			cfg := h.dir.Store().Config()
			step := directory.Step{Node: h.node, Level: cfg.Level, Unit: cfg.Unit, Via: "self"}
			for _, hit := range hits {
				if hit.Location.Engine == 0 {
					step.Summaries++
				} else {
					step.Hits++
				}
			}
			return lookupResult{Key: a.Key, Hits: hits, Path: []directory.Step{step}}, nil
		}
		timeout := lookupTimeout
		if a.TimeoutMs > 0 {
			timeout = min(time.Duration(a.TimeoutMs)*time.Millisecond, time.Minute)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// A partial answer (a level that did not answer) still names what
		// was found and where it failed: the path says which step.
		return h.resolver.Lookup(ctx, a.Key, h.at)
	case cmdDigest:
		// The order-independent digest of the live entries this node holds
		// (an SE: what it published; a manager: its directory). The SEs'
		// digests add up to their manager's when the farm has converged.
		var a digestArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("malformed arguments: %w", err)
			}
		}
		if h.dir != nil && a.Engine == 0 {
			return digestResult(h.dir.Store().DigestIn(a.Unit, time.Now())), nil
		}
		c, err := h.engine(a.Engine)
		if err != nil {
			return nil, err
		}
		return digestResult(c.pub.Digest(time.Now())), nil
	}
	return nil, fmt.Errorf("%w %q", control.ErrUnknownCommand, cmd)
}

// digestOut is what `smsnmpd digest` prints (-json) and compares.
type digestOut struct {
	Digest  string `json:"digest"` // A and B in hex, "/", the entry count
	Entries uint64 `json:"entries"`
}

func digestResult(d directory.Digest) digestOut {
	return digestOut{Digest: d.String(), Entries: d.Count}
}

func (h *controlHandler) engine(id uint32) (*contentSide, error) {
	if len(h.engines) == 0 {
		return nil, fmt.Errorf("no service engine runs in this process: publish on an SE (node.role = \"se\")")
	}
	if id == 0 {
		if len(h.engines) == 1 {
			for _, c := range h.engines {
				return c, nil
			}
		}
		return nil, fmt.Errorf("%d engines run here: say which with --engine", len(h.engines))
	}
	c := h.engines[id]
	if c == nil {
		return nil, fmt.Errorf("no engine %d runs here", id)
	}
	return c, nil
}
