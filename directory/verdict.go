package directory

import (
	"context"
	"math"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Verdict defaults (the manager's side of flow control, Fig 7 with
// refusals).
const (
	// DefaultVerdictDelay is how long a verdict waits for others to share
	// its message: every SE hears every VERDICT, so they are coalesced.
	DefaultVerdictDelay = 10 * time.Millisecond
	// DefaultRefusalQuiet ends a refusal episode: an origin refused
	// nothing for this long.
	DefaultRefusalQuiet = 10 * time.Second
	// maxVerdictQueue bounds the verdicts waiting to be sent; beyond it
	// the oldest go (their SEs send again when no verdict comes).
	maxVerdictQueue = 16384
	// maxVerdictSends is how many VERDICT messages may wait for their
	// acknowledgements at once, and verdictSendTimeout how long each
	// does. The wait only serves repair (every member has the message as
	// soon as it arrives), and one member that stops acknowledging (a
	// wedged process still sending HELLOs) must not hold back the other
	// SEs' verdicts: at most verdictSendTimeout/maxVerdictSends between
	// two VERDICTs then. An SE that misses its verdict sends the update
	// again after its VerdictTimeout.
	maxVerdictSends    = 16
	verdictSendTimeout = 500 * time.Millisecond
	// maxEpisodes bounds the senders whose refusal episode is followed
	// (for the log); beyond it refusals are still counted.
	maxEpisodes = 4096
)

// episode is one sender's run of refusals, logged when it starts and when
// it ends, never per update.
type episode struct {
	start, last   time.Time
	limited       uint64 // operations refused by the rate limit (sent again)
	rejected      uint64 // operations refused for good
	groups        uint64 // updates refused whole or in part
	firstRejected string // the first reason an operation was refused for good
}

// verdict queues the answer to one UPDATE from msg and follows the
// sender's refusal episode. It runs on the receive goroutine.
func (m *Manager) verdict(msg *rmtp.Message, res wire.Result, ar *ApplyResult) {
	e := wire.VerdictEntry{Engine: uint32(msg.From), Incarnation: msg.Incarnation, Message: msg.ID, Result: res}
	if cfg := m.cfg.Store; cfg.Rate >= 0 {
		e.Rate, e.Burst = clampU32(cfg.Rate), clampU32(cfg.Burst)
	}
	if ar != nil {
		e.Rejected = uint32(min(ar.Rejected, math.MaxUint32))
		if res == wire.ResultRateLimited {
			e.RetryAfter = clampU32(math.Ceil(float64(ar.RetryAfter) / float64(time.Millisecond)))
		}
		m.noteRefusals(msg.From, ar)
	}
	m.vMu.Lock()
	if len(m.vq) >= maxVerdictQueue {
		m.vq = m.vq[1:]
		m.verdictsDropped.Add(1)
	}
	m.vq = append(m.vq, e)
	m.vMu.Unlock()
	select {
	case m.vWake <- struct{}{}:
	default:
	}
}

func clampU32(f float64) uint32 {
	switch {
	case f <= 0:
		return 0
	case f >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(f)
}

// sendVerdicts sends the queued verdicts down, coalesced, a bounded number
// of messages in flight. A VERDICT that does not reach every member is not
// sent again: an SE that misses its verdict sends the update again
// (PublisherConfig.VerdictTimeout), and re-applying it is harmless.
func (m *Manager) sendVerdicts() {
	defer m.wg.Done()
	sem := make(chan struct{}, maxVerdictSends)
	for {
		select {
		case <-m.vWake:
		case <-m.ctx.Done():
			return
		}
		if !sleepCtx(m.ctx, m.cfg.VerdictDelay) {
			return
		}
		for {
			select {
			case sem <- struct{}{}:
			case <-m.ctx.Done():
				return
			}
			m.vMu.Lock()
			n := min(len(m.vq), wire.MaxVerdicts)
			v := wire.Verdict{Level: uint8(m.cfg.Store.Level), Entries: m.vq[:n:n]}
			m.vq = m.vq[n:]
			if len(m.vq) == 0 {
				m.vq = nil // let the array go after a burst
			}
			m.vMu.Unlock()
			if n == 0 {
				<-sem
				break
			}
			b, err := wire.AppendVerdict(nil, &v)
			if err != nil { // the results are ours: a bug, not input
				<-sem
				m.log.WithError(err).Error("directory: encoding a verdict")
				continue
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(m.ctx, verdictSendTimeout)
				_, err := m.ep.Send(ctx, rmtp.ChannelDirectory, rmtp.Down, b)
				cancel()
				m.verdictsSent.Add(uint64(n))
				if err != nil && m.ctx.Err() == nil {
					m.verdictsUnacked.Add(1)
				}
			}()
		}
	}
}

// noteRefusals follows the sender's refusal episode: the first refusal
// after a quiet period is logged at warning level with the reason, the end
// of the episode (RefusalQuiet without a refusal) at info level with the
// totals; nothing in between.
func (m *Manager) noteRefusals(from rmtp.NodeID, ar *ApplyResult) {
	if ar.RateLimited == 0 && ar.Rejected == 0 {
		return
	}
	now := m.cfg.Now()
	m.epMu.Lock()
	defer m.epMu.Unlock()
	ep := m.episodes[from]
	if ep == nil {
		m.refusalEpisodes.Add(1)
		if len(m.episodes) >= maxEpisodes {
			return
		}
		ep = &episode{start: now}
		m.episodes[from] = ep
		f := logrus.Fields{"engine": from}
		switch {
		case ar.RateLimited > 0:
			cfg := m.cfg.Store
			f["rate"], f["burst"] = cfg.Rate, cfg.Burst
			m.log.WithFields(f).Warn("directory: engine over directory.publish_rate; refusing its updates until it slows down (it sends them again)")
		default:
			f["reason"] = ar.Err()
			m.log.WithFields(f).Warn("directory: refusing operations of an engine for good (they will never be stored here)")
		}
	}
	ep.last = now
	ep.groups++
	ep.limited += uint64(ar.RateLimited)
	ep.rejected += uint64(ar.Rejected)
	if ep.firstRejected == "" && ar.Rejected > 0 {
		if err := ar.Err(); err != nil {
			ep.firstRejected = err.Error()
		}
	}
}

// endEpisodes logs and forgets the episodes quiet for RefusalQuiet.
func (m *Manager) endEpisodes(now time.Time) {
	m.epMu.Lock()
	defer m.epMu.Unlock()
	for from, ep := range m.episodes {
		if now.Sub(ep.last) < m.cfg.RefusalQuiet {
			continue
		}
		delete(m.episodes, from)
		f := logrus.Fields{"engine": from, "lasted": ep.last.Sub(ep.start).Round(time.Millisecond),
			"updates": ep.groups, "rate_limited_ops": ep.limited, "rejected_ops": ep.rejected}
		if ep.firstRejected != "" {
			f["first_reason"] = ep.firstRejected
		}
		m.log.WithFields(f).Info("directory: engine's refusal episode over")
	}
}
