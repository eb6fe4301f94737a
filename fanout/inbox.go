package fanout

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Inbox is where a Coordinator or Responder takes its delivered messages
// from: the endpoint itself (when nothing else shares it), or a Demux
// channel when the directory protocol shares the endpoint.
type Inbox = rmtp.Receiver

// demuxQueue is the depth of each channel's queue.
const demuxQueue = 1024

// Demux splits an endpoint's deliveries by rmtp channel, so the management
// and directory protocols can share one endpoint. Over an *rmtp.Endpoint
// each channel is the endpoint's own per-channel inbox (rmtp.Channel): no
// goroutine in between, and a reader that falls behind holds up only its
// channel's streams (rmtp delivers, and so acknowledges, only what a
// queue took). Over any other Inbox (tests) it reads the single queue
// and hands each message to its channel's queue (demuxQueue messages),
// blocking when one is full. Messages of channels nobody asked for are
// dropped and counted.
type Demux struct {
	src     Inbox
	ep      *rmtp.Endpoint // native per-channel inboxes when set
	mu      sync.Mutex
	chans   map[uint8]*demuxChan
	dropped atomic.Uint64
	cancel  context.CancelFunc
	done    chan struct{}
}

type demuxChan struct {
	q    chan *rmtp.Message
	done <-chan struct{}
}

// NewDemux starts reading src; stop it with Close.
func NewDemux(src Inbox) *Demux {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Demux{src: src, chans: make(map[uint8]*demuxChan), cancel: cancel, done: make(chan struct{})}
	d.ep, _ = src.(*rmtp.Endpoint)
	go d.run(ctx)
	return d
}

// Channel returns the inbox of one rmtp channel (created on first use).
func (d *Demux) Channel(ch uint8) Inbox {
	if d.ep != nil {
		return d.ep.Channel(ch)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.chans[ch]
	if c == nil {
		c = &demuxChan{q: make(chan *rmtp.Message, demuxQueue), done: d.done}
		d.chans[ch] = c
	}
	return c
}

// Dropped counts messages of channels nobody asked for.
func (d *Demux) Dropped() uint64 { return d.dropped.Load() }

// Close stops the reader of the endpoint's other channels (and, over a
// plain Inbox, the channels' queues). It does not close the endpoint.
func (d *Demux) Close() {
	d.cancel()
	<-d.done
}

func (d *Demux) run(ctx context.Context) {
	defer close(d.done)
	for {
		m, err := d.src.Receive(ctx)
		if err != nil {
			return
		}
		d.mu.Lock()
		c := d.chans[m.Channel]
		d.mu.Unlock()
		if c == nil {
			d.dropped.Add(1)
			continue
		}
		select {
		case c.q <- m:
		case <-ctx.Done():
			return
		}
	}
}

// Receive implements Inbox.
func (c *demuxChan) Receive(ctx context.Context) (*rmtp.Message, error) {
	select {
	case m := <-c.q:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, rmtp.ErrClosed
	}
}
