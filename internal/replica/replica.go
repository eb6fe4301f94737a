// Package replica carries the state the active manager keeps beyond what
// the farm tells it (the counter sums' restart offsets and last values,
// the reconciliations of SETs answered undoFailed, the journal of
// notifications) to the backup managers, so that a backup that takes over
// starts from it. The active manager sends the whole state reliably over
// rmtp to the managers' group (rmtp channel 5, rmtp.ChannelReplica) on every
// change, coalesced, and at least every Interval; a backup adopts the
// newest state of the manager it follows and ignores a state from a lower
// term (a deposed manager) or an older one of the same sender.
//
// It owns the session: when to send, what to accept. The byte layout is
// in subpackage wire; what the state means, and how a backup merges it
// with its own, is the Source's (package mib).
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Defaults.
const (
	// DefaultInterval is how often the state goes out when nothing
	// changed, and how long one send may wait for the backups.
	DefaultInterval = time.Second
	// DefaultMinSpacing is the least time between two sends: changes
	// within it go out together.
	DefaultMinSpacing = 5 * time.Millisecond
)

// Source is what is replicated: the active manager exports it, a backup
// adopts it.
type Source interface {
	// Export fills the body of st (everything but the header fields).
	Export(st *wire.State)
	// Adopt takes a state of the active manager.
	Adopt(st *wire.State)
}

// Endpoint is what the session needs of an rmtp endpoint; *rmtp.Endpoint
// is one.
type Endpoint interface {
	Node() rmtp.NodeID
	Incarnation() uint64
	Active() bool
	Term() uint64
	View() rmtp.View
	Send(ctx context.Context, ch uint8, dest rmtp.Dest, payload []byte) (rmtp.Report, error)
}

// Config configures a Replicator. Zero fields take the defaults.
type Config struct {
	Channel    uint8
	Interval   time.Duration
	MinSpacing time.Duration
	// MaxState bounds an encoded state: at most wire.MaxState, and no
	// more than the endpoint's rmtp.Config.MaxMessage. Over it, the
	// counter sums least recently used are left out (wire.FlagPartial).
	MaxState int
	// Dirty signals a change to send soon; nil = only every Interval.
	Dirty <-chan struct{}
	// Logger gets one line per episode (a new active manager followed, a
	// send failing, a bad state); nil = discard.
	Logger logrus.FieldLogger
}

// Stats are the session's counters.
type Stats struct {
	Sent, SendFailures, Partial                  uint64
	Received, Adopted, Stale, Ignored, Malformed uint64
	// The last state adopted: when (this host's clock), from whom, with
	// which term and sequence number.
	LastAdopted time.Time
	LastFrom    rmtp.NodeID
	LastTerm    uint64
	LastSeq     uint64
}

// Replicator runs the session: one goroutine sends while this manager is
// active, one receives; Close stops both.
type Replicator struct {
	ep  Endpoint
	in  rmtp.Receiver
	src Source
	cfg Config
	log logrus.FieldLogger

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu            sync.Mutex
	st            Stats
	lastInc       uint64 // incarnation of the sender of the last state adopted
	failing       bool   // sends are failing (logged once)
	badFrom       map[rmtp.NodeID]bool
	following     rmtp.NodeID
	followingTerm uint64
}

// New starts a session on ep: it reads the other managers' states from
// in and sends src's while ep is active.
func New(ep Endpoint, in rmtp.Receiver, src Source, cfg Config) (*Replicator, error) {
	if ep == nil || in == nil || src == nil {
		return nil, errors.New("replica: New needs an endpoint, a receiver and a source")
	}
	if cfg.Channel == 0 {
		cfg.Channel = rmtp.ChannelReplica
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinSpacing <= 0 {
		cfg.MinSpacing = DefaultMinSpacing
	}
	if cfg.MaxState <= 0 || cfg.MaxState > wire.MaxState {
		cfg.MaxState = wire.MaxState
	}
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replicator{ep: ep, in: in, src: src, cfg: cfg, log: log.WithField("component", "replica"), cancel: cancel,
		badFrom: map[rmtp.NodeID]bool{}}
	r.wg.Add(2)
	go r.sendLoop(ctx)
	go r.recvLoop(ctx)
	return r, nil
}

// Close stops the session and waits for its goroutines.
func (r *Replicator) Close() {
	r.cancel()
	r.wg.Wait()
}

// Stats returns the counters.
func (r *Replicator) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// hasBackups reports whether another manager is in the view: with none,
// there is nobody to encode the state for.
func (r *Replicator) hasBackups() bool {
	self := r.ep.Node()
	for _, m := range r.ep.View().Members {
		if m.Role == rmtp.Manager && m.Node != self {
			return true
		}
	}
	return false
}

func (r *Replicator) sendLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	var seq uint64
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.cfg.Dirty:
			// Changes that come within MinSpacing of the last send go
			// out together.
			if wait := r.cfg.MinSpacing - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		if !r.ep.Active() || !r.hasBackups() {
			continue
		}
		seq++
		b, partial, err := r.encode(seq)
		if err != nil {
			r.sendFailed(fmt.Errorf("encoding: %w", err))
			continue
		}
		last = time.Now()
		sctx, cancel := context.WithTimeout(ctx, r.cfg.Interval)
		_, err = r.ep.Send(sctx, r.cfg.Channel, rmtp.Up, b)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.sendFailed(err)
			continue
		}
		r.mu.Lock()
		r.st.Sent++
		if partial {
			r.st.Partial++
		}
		if r.failing {
			r.failing = false
			r.log.Info("replica: the backups have the state again")
		}
		r.mu.Unlock()
	}
}

func (r *Replicator) sendFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.SendFailures++
	if !r.failing {
		r.failing = true
		r.log.WithError(err).Warn("replica: the backups did not all confirm the state; sending it again within a second")
	}
}

// encode builds the state with sequence number seq. Over MaxState, it
// leaves out the counter sums least recently used (they are exported most
// recent first) until it fits.
func (r *Replicator) encode(seq uint64) ([]byte, bool, error) {
	st := &wire.State{}
	r.src.Export(st)
	st.Node, st.Incarnation, st.Term, st.Seq = uint32(r.ep.Node()), r.ep.Incarnation(), r.ep.Term(), seq
	n, err := wire.Len(st)
	if err != nil {
		return nil, false, err
	}
	partial := false
	for n > r.cfg.MaxState && len(st.Sums) > 0 {
		last := len(st.Sums) - 1
		n -= wire.SumLen(&st.Sums[last])
		st.Sums = st.Sums[:last]
		partial = true
	}
	if partial {
		st.Flags |= wire.FlagPartial
	}
	if n > r.cfg.MaxState {
		return nil, partial, fmt.Errorf("%w: %d bytes without any sum, at most %d", wire.ErrTooMany, n, r.cfg.MaxState)
	}
	b, err := wire.Append(make([]byte, 0, n), st)
	return b, partial, err
}

func (r *Replicator) recvLoop(ctx context.Context) {
	defer r.wg.Done()
	for {
		m, err := r.in.Receive(ctx)
		if err != nil {
			return // closed, or ctx done
		}
		if m.From == r.ep.Node() {
			continue
		}
		r.receive(m)
	}
}

// receive checks one state and adopts it when it is the newest of the
// manager this one follows.
func (r *Replicator) receive(m *rmtp.Message) {
	st, err := wire.Parse(m.Payload)
	if err == nil && rmtp.NodeID(st.Node) != m.From {
		err = fmt.Errorf("%w: state of node %d sent by node %d", wire.ErrMalformed, st.Node, m.From)
	}
	r.mu.Lock()
	r.st.Received++
	if err != nil {
		r.st.Malformed++
		if !r.badFrom[m.From] && len(r.badFrom) < 64 {
			r.badFrom[m.From] = true
			r.log.WithError(err).WithField("from", m.From).Warn("replica: state dropped")
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()

	// Checked outside r.mu: the endpoint has a lock of its own.
	active, term, owner := r.ep.Active(), r.ep.Term(), r.ep.View().Owner
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case active:
		// This manager owns the view: its own state is the one that
		// counts; a sender with a higher term will depose it, and its
		// next state is then taken.
		r.st.Ignored++
		return
	case st.Term < term, owner != 0 && rmtp.NodeID(st.Node) != owner:
		r.st.Stale++ // a deposed manager, or one this manager does not follow
		return
	case r.st.LastTerm > st.Term:
		r.st.Stale++
		return
	case r.st.LastTerm == st.Term && r.st.LastFrom == rmtp.NodeID(st.Node) &&
		(st.Incarnation < r.lastInc || (st.Incarnation == r.lastInc && st.Seq <= r.st.LastSeq)):
		r.st.Stale++
		return
	}
	r.src.Adopt(st)
	r.st.Adopted++
	r.st.LastAdopted, r.st.LastFrom, r.st.LastTerm, r.st.LastSeq = time.Now(), rmtp.NodeID(st.Node), st.Term, st.Seq
	r.lastInc = st.Incarnation
	if r.following != rmtp.NodeID(st.Node) || r.followingTerm != st.Term {
		r.following, r.followingTerm = rmtp.NodeID(st.Node), st.Term
		r.log.WithFields(logrus.Fields{"from": st.Node, "term": st.Term, "sums": len(st.Sums),
			"reconciles": len(st.Reconciles), "journal": len(st.Journal)}).Info("replica: following the active manager's state")
	}
}
