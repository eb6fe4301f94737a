package rmtp

import (
	"sync/atomic"
	"time"
)

// DefaultHandlerBudget is how long a Handler's Func may hold the receive
// goroutine before another takes over.
const DefaultHandlerBudget = 5 * time.Millisecond

// Handler takes the messages of one channel on the endpoint's receive
// goroutine, as they are delivered, instead of an inbox: a responder that
// answers from memory saves a goroutine hand-off per message (measured
// with fanout's BenchmarkAggregateGet: see fanout's package doc and the
// project README).
//
// While Func runs the endpoint reads nothing, so Func must be quick or hand
// its work to a goroutine. A call still running after Budget is left to
// finish while a new receive goroutine takes over (Slow, if set, is called
// then, on a goroutine of its own): one slow message never stalls the
// endpoint. Messages come in order per (sender, destination), except that
// after a takeover the rest of the slow call's batch runs alongside what the
// new goroutine receives. Each takeover leaves a goroutine finishing its
// slow call: a Func that may block must bound how many it lets block
// (fanout's Responder sheds requests beyond its workers).
type Handler struct {
	Func   func(*Message)
	Budget time.Duration // 0: DefaultHandlerBudget
	Slow   func()
}

// handled is a message waiting for its handler.
type handled struct {
	m *Message
	h *Handler
}

// Handle sends channel ch's messages to h from now on; those an inbox of
// the channel (Channel) holds go to h too, before any later one. A Handler
// without Func sends them back to the inbox (or Receive). Close waits for
// calls in progress.
func (e *Endpoint) Handle(ch uint8, h Handler) {
	if h.Budget <= 0 {
		h.Budget = DefaultHandlerBudget
	}
	e.mu.Lock()
	if h.Func == nil {
		delete(e.handlers, ch)
		e.mu.Unlock()
		return
	}
	if e.handlers == nil {
		e.handlers = make(map[uint8]*Handler)
	}
	e.handlers[ch] = &h
	if q := e.chanQ[ch]; q != nil {
	drain:
		for {
			select {
			case m := <-q:
				e.handled = append(e.handled, handled{m, &h})
			default:
				break drain
			}
		}
	}
	e.unlockAndFlush() // runs what was drained, on a goroutine of its own
}

// Handle is Endpoint.Handle for this inbox's channel: its messages go to h
// instead of Receive.
func (in *Inbox) Handle(h Handler) { in.e.Handle(in.ch, h) }

// Messages for handlers queue in e.handled in delivery order, and one
// goroutine at a time drains the queue (e.handling): the receive goroutine
// after the batch that delivered them, or, for messages delivered anywhere
// else (a Receive that made room, the timer loop, Handle's drain), a
// goroutine started for them. Whoever drains keeps going while the queue
// refills. A call that outlasts its budget hands the queue on: the drainer
// finishes only the messages it holds, and the queue goes to the next
// receive goroutine's batch (or a new drainer).

// drainer is the state of one goroutine that may drain the queue: the
// watchdog of the call it is making.
type drainer struct {
	e     *Endpoint
	recv  bool                    // a receive goroutine: a takeover starts another
	cur   atomic.Pointer[Handler] // the handler being called
	watch *time.Timer             // fires when cur's call outlasts its budget
	fired chan struct{}           // the watchdog's function has ended
}

func (e *Endpoint) newDrainer(recv bool) *drainer {
	d := &drainer{e: e, recv: recv, fired: make(chan struct{}, 1)}
	d.watch = time.AfterFunc(time.Hour, d.takeover)
	d.watch.Stop()
	return d
}

// takeover gives up the queue while a handler call goes on, and starts a
// new receive goroutine if this was one. The calling goroutine is still
// counted in wg, so the Adds cannot race with Close's Wait reaching zero.
func (d *drainer) takeover() {
	e := d.e
	e.mu.Lock()
	e.handling = false
	e.spawnDrainer()
	e.mu.Unlock()
	if d.recv {
		e.wg.Add(1)
		go e.recvLoop()
	}
	if h := d.cur.Load(); h != nil && h.Slow != nil {
		h.Slow()
	}
	d.fired <- struct{}{}
}

// spawnDrainer starts a goroutine for queued messages if nobody drains
// them. Caller holds mu. A closed endpoint drops them (Close may be
// waiting on wg already).
func (e *Endpoint) spawnDrainer() {
	if len(e.handled) == 0 || e.handling {
		return
	}
	if e.closed {
		e.handled = nil
		return
	}
	e.handling = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.newDrainer(false).drain(nil)
	}()
}

// drain calls the handlers of hs (taken from the queue by this drainer)
// and of whatever queued meanwhile, in order, until the queue is empty.
// False: a call outlasted its budget; this goroutine finished hs but no
// longer drains, and a receive goroutine must end (another took over).
func (d *drainer) drain(hs []handled) bool {
	e := d.e
	for {
		for i, x := range hs {
			d.cur.Store(x.h)
			d.watch.Reset(x.h.Budget)
			x.h.Func(x.m)
			if !d.watch.Stop() {
				<-d.fired // the queue is handed on
				for _, y := range hs[i+1:] {
					y.h.Func(y.m)
				}
				return false
			}
		}
		e.mu.Lock()
		if len(e.handled) == 0 {
			e.handling = false
			e.mu.Unlock()
			return true
		}
		hs, e.handled = e.handled, nil
		e.mu.Unlock()
	}
}
