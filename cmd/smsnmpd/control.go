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
}

// lookupResult is what `smsnmpd lookup --json` prints. Path lists the
// nodes asked, in order (one at the farm level).
type lookupResult struct {
	Key  string          `json:"key"`
	Path []lookupStep    `json:"path"`
	Hits []directory.Hit `json:"hits"`
}

type lookupStep struct {
	Node  uint32 `json:"node"`
	Level int    `json:"level"`
	Hits  int    `json:"hits"`
}

// controlHandler executes control commands against what this process
// runs: the SEs' publishers (by node id) and the manager's directory.
type controlHandler struct {
	engines map[uint32]*contentSide
	dir     *directory.Manager
	node    uint32
	level   int
	at      directory.Location // where this node sits: hops count from here
}

func (h *controlHandler) handle(_ context.Context, cmd string, raw json.RawMessage) (any, error) {
	switch cmd {
	case cmdPublish, cmdUnpublish:
		var a publishArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("malformed arguments: %w", err)
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
		hits := h.dir.Lookup(a.Key, h.at)
		if hits == nil {
			hits = []directory.Hit{}
		}
		return lookupResult{Key: a.Key, Path: []lookupStep{{Node: h.node, Level: h.level, Hits: len(hits)}}, Hits: hits}, nil
	case cmdDigest:
		// The order-independent digest of the live entries this node holds
		// (an SE: what it published; a manager: its directory). The SEs'
		// digests add up to their manager's when the farm has converged.
		var a publishArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("malformed arguments: %w", err)
			}
		}
		if h.dir != nil && a.Engine == 0 {
			return digestResult(h.dir.Store().Digest(time.Now())), nil
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
