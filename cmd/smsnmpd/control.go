package main

import (
	"context"
	"encoding/json"
	"fmt"
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

type publishResult struct {
	Accepted int `json:"accepted"`
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
		n := 0
		for _, e := range a.Entries {
			ent := directory.Entry{Key: e.Key, Size: e.Size}
			if e.TTL > 0 {
				ent.Expiry = time.Now().Add(e.TTL)
			}
			if err := c.Add(ent); err != nil {
				return publishResult{Accepted: n}, fmt.Errorf("%q: %w", e.Key, err)
			}
			n++
		}
		for _, k := range a.Keys {
			if err := c.Remove(k); err != nil {
				return publishResult{Accepted: n}, fmt.Errorf("%q: %w", k, err)
			}
			n++
		}
		return publishResult{Accepted: n}, nil
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
