package node

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

// queueWait bounds how long one publish command waits for room in a full
// queue, well inside the control socket's IOTimeout.
const queueWait = 5 * time.Second

// controlHandler executes control commands against what this process
// runs: the SEs' publishers (by node id), the manager's directory, and
// the nodes' snapshots.
type controlHandler struct {
	engines  map[uint32]*contentSide
	dir      *directory.Manager
	resolver *directory.Resolver // nil: answer from dir only
	node     uint32
	at       directory.Location // where this node sits: hops count from here
	self     *Node              // status; nil: no status
	others   map[uint32]*Node   // status -engine: the other nodes of this process
}

// controlHandler serves n and the SEs given (the demo's).
func (n *Node) controlHandler(engines []*Node) *controlHandler {
	h := &controlHandler{dir: n.farm.dir, node: n.cfg.Node.ID, at: nodeLocation(n.cfg), self: n,
		engines: map[uint32]*contentSide{}, others: map[uint32]*Node{}}
	n.mgrMu.Lock()
	if n.lookups != nil {
		h.resolver = n.lookups.res
	}
	n.mgrMu.Unlock()
	for _, e := range append([]*Node{n}, engines...) {
		if e.farm != nil && e.farm.content != nil {
			h.engines[e.cfg.Node.ID] = e.farm.content
		}
		if e != n {
			h.others[e.cfg.Node.ID] = e
		}
	}
	return h
}

func (h *controlHandler) handle(ctx context.Context, cmd string, raw json.RawMessage) (any, error) {
	switch cmd {
	case control.CmdStats:
		return processStats(), nil
	case control.CmdStatus:
		var a control.StatusArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("malformed arguments: %w", err)
			}
		}
		n := h.self
		if a.Engine != 0 && (n == nil || a.Engine != n.cfg.Node.ID) {
			n = h.others[a.Engine]
			if n == nil {
				return nil, fmt.Errorf("no engine %d runs here", a.Engine)
			}
		}
		if n == nil {
			return nil, errors.New("no node to report on")
		}
		return n.Snapshot(), nil
	case control.CmdPublish, control.CmdUnpublish:
		var a control.PublishArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("malformed arguments: %w", err)
		}
		// Before anything is added: a bad entry loses nothing.
		for _, e := range a.Entries {
			if e.TTL < 0 {
				return control.PublishResult{}, fmt.Errorf("%q: ttl %v is negative: give how long the entry lives, or 0 for never", e.Key, e.TTL)
			}
		}
		c, err := h.engine(a.Engine)
		if err != nil {
			return nil, err
		}
		if len(a.Entries)+len(a.Keys) > control.MaxPublishBatch {
			return nil, fmt.Errorf("more than %d entries in one command", control.MaxPublishBatch)
		}
		wctx, cancel := context.WithTimeout(ctx, queueWait)
		defer cancel()
		res := control.PublishResult{From: c.pub.Seq() + 1}
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
	case control.CmdPublishStatus:
		var a control.PublishStatusArgs
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
		out := control.PublishStatus{Pending: st.Pending, Refused: st.Refused, Rejected: st.Rejected, Resent: st.Resent,
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
	case control.CmdLookup:
		var a control.LookupArgs
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
			return control.LookupResult{Key: a.Key, Hits: hits, Path: []directory.Step{step}}, nil
		}
		timeout := control.LookupTimeout
		if a.TimeoutMs > 0 {
			timeout = min(time.Duration(a.TimeoutMs)*time.Millisecond, time.Minute)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// A partial answer (a level that did not answer) still names what
		// was found and where it failed: the path says which step.
		return h.resolver.Lookup(ctx, a.Key, h.at)
	case control.CmdDigest:
		// The order-independent digest of the live entries this node holds
		// (an SE: what it published; a manager: its directory). The SEs'
		// digests add up to their manager's when the farm has converged.
		var a control.DigestArgs
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

func digestResult(d directory.Digest) control.DigestResult {
	return control.DigestResult{Digest: d.String(), Entries: d.Count}
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
