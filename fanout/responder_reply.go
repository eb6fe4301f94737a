package fanout

import (
	"context"
	"errors"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

type cacheKey struct {
	mgr NodeID
	inc uint64
	tx  uint64
	op  Op
}

type cacheEntry struct {
	done    chan struct{}
	reply   []byte
	expires time.Time // zero while executing
}

// finished is a cached reply in the eviction queue.
type finished struct {
	key   cacheKey
	entry *cacheEntry
}

// replyGrace is how long a reply keeps being repaired beyond the
// request's budget (the trip back).
const replyGrace = 100 * time.Millisecond

// deadlineGrain is the rounding of the shared reply deadlines: repairs
// end about this much later than budget plus replyGrace (see
// sharedDeadlines).
const deadlineGrain = 50 * time.Millisecond

// replyEnd is the context that bounds the repairs of a reply to a request
// with this budget: later, the coordinator has stopped listening or asks
// again (answered from the cache). Caller holds r.mu.
func (r *Responder) replyEnd(budget time.Duration) context.Context {
	now := time.Now()
	return r.ends.at(now, now.Add(budget+replyGrace))
}

// sendReply hands a reply to rmtp and returns at once; rmtp repairs it
// until every manager has acknowledged it or ends is done. A dead backup
// manager therefore costs some repairs, never a worker or a goroutine.
func (r *Responder) sendReply(ends context.Context, m *rmtp.Message, b []byte) {
	if _, err := r.ep.StartReply(ends, m, b); err != nil {
		r.mu.Lock()
		r.cnt.ReplyErrors++
		r.mu.Unlock()
		if !errors.Is(err, rmtp.ErrClosed) && !errors.Is(err, context.Canceled) {
			r.log.WithError(err).WithField("to", m.From).Debug("fanout: reply not sent")
		}
	}
}

// budgetOf is the time a request allows its SE.
func budgetOf(req *wire.Request) time.Duration {
	if req.BudgetUs == 0 {
		return DefaultBudget
	}
	return min(time.Duration(req.BudgetUs)*time.Microsecond, MaxBudget)
}

// encode encodes a reply, turning one that cannot be encoded or is too
// large into an error reply.
func (r *Responder) encode(rep *wire.Reply) []byte {
	rep.Engine, rep.Incarnation = uint32(r.ep.Node()), r.ep.Incarnation()
	r.mu.Lock()
	rep.Term = r.newest
	r.mu.Unlock()
	if !rep.Op.Valid() {
		rep.Op = wire.OpGet
	}
	// Sized for the common reply (small scalars), so encoding does not
	// grow the buffer several times.
	b, err := wire.AppendReply(make([]byte, 0, wire.ReplyHeaderLen+48*len(rep.VarBinds)), rep)
	if err == nil && len(b) <= r.cfg.MaxReply {
		return b
	}
	st := smi.TooBig
	if err != nil {
		st = smi.GenErr
		r.log.WithError(err).Warn("fanout: reply not encodable")
	}
	small := wire.Reply{Op: rep.Op, Status: wire.StatusSNMPError, Tx: rep.Tx, Engine: rep.Engine, Incarnation: rep.Incarnation,
		Term: rep.Term, ErrStatus: st}
	b, _ = wire.AppendReply(nil, &small)
	return b
}

// evictLocked drops the cached replies that expired and, while the cache
// is over its size, the oldest finished ones. Replies are kept for the
// same TTL from the moment they finish, so both come off the front of
// r.done in order: the cost is the replies dropped, not the cache's size
// (scanning every entry four times a second was 3.5 % of the SEs' CPU
// with 256 SEs in the benchmark's one process). Entries still executing
// are not in r.done and stay: dropping one would let a repeat execute the
// request a second time. Caller holds r.mu.
func (r *Responder) evictLocked(now time.Time) {
	for r.doneHead < len(r.done) {
		d := r.done[r.doneHead]
		if r.cache[d.key] == d.entry { // else dropped already
			if !now.After(d.entry.expires) && len(r.cache) <= r.cfg.ReplyCacheSize {
				break
			}
			delete(r.cache, d.key)
		}
		r.done[r.doneHead] = finished{}
		r.doneHead++
	}
	if r.doneHead > len(r.done)/2 { // reuse the front once half of it is spent
		n := copy(r.done, r.done[r.doneHead:])
		clear(r.done[n:])
		r.done, r.doneHead = r.done[:n], 0
	}
}
