package rmtp

import "context"

// The channels of smsnmpd's protocols over rmtp: the one table of them.
// Append-only, they are on the wire. Each protocol's messages travel on
// its own channel, so they are delivered in order per channel and a large
// transfer on one never delays the others.
const (
	// ChannelManagement carries the management protocol (package
	// fanout): requests down to the farm, replies up to the managers.
	ChannelManagement uint8 = 1
	// ChannelDirectory carries directory updates (package directory):
	// UPDATE from the SEs up to the managers; VERDICT and RESYNC from a
	// manager down to the SEs.
	ChannelDirectory uint8 = 2
	// ChannelTransfer carries the directory's state transfer between
	// managers: SNAPSHOT_REQUEST down, SNAPSHOT_CHUNK up.
	ChannelTransfer uint8 = 3
	// ChannelLookup carries lookups between the levels of the
	// hierarchy (LOOKUP, LOOKUP_ANSWER) on a parent's group.
	ChannelLookup uint8 = 4
	// ChannelReplica carries the active manager's state to the backup
	// managers (package internal/replica), up to the managers only.
	ChannelReplica uint8 = 5
)

// Receiver delivers messages: an *Endpoint (the channels without an inbox
// of their own) or an *Inbox (one channel). The protocols over rmtp read
// what they are sent through it.
type Receiver interface {
	Receive(ctx context.Context) (*Message, error)
}

// Receive returns the next delivered message of the channels without an
// inbox of their own (Channel): exactly once and in order per (sender,
// channel, destination).
func (e *Endpoint) Receive(ctx context.Context) (*Message, error) {
	return e.receive(ctx, e.deliverQ)
}

func (e *Endpoint) receive(ctx context.Context, q chan *Message) (*Message, error) {
	select {
	case m := <-q:
		e.mu.Lock()
		if e.backlog {
			e.poke()
		}
		e.mu.Unlock()
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, ErrClosed
	}
}

// Inbox delivers the messages of one channel (Endpoint.Channel).
type Inbox struct {
	e  *Endpoint
	ch uint8
	q  chan *Message
}

// Receive returns the channel's next message: exactly once and in order
// per (sender, destination).
func (in *Inbox) Receive(ctx context.Context) (*Message, error) { return in.e.receive(ctx, in.q) }

// Channel gives channel ch an inbox of its own, so that protocols sharing
// an endpoint read their messages without a demultiplexing goroutine in
// between, and a reader that falls behind holds up only its own channel's
// streams. Messages delivered before the call went to Receive. Calling it
// again returns the same inbox.
func (e *Endpoint) Channel(ch uint8) *Inbox {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.chanQ == nil {
		e.chanQ = make(map[uint8]chan *Message)
	}
	q := e.chanQ[ch]
	if q == nil {
		q = make(chan *Message, e.cfg.DeliveryQueue)
		e.chanQ[ch] = q
	}
	return &Inbox{e: e, ch: ch, q: q}
}
