package rmtp

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Response is one member's answer to a request.
type Response struct {
	From    NodeID
	Payload []byte
}

// Report says what became of a message: the delivery report.
type Report struct {
	Channel   uint8
	Dest      Dest
	ID        uint64
	Members   []NodeID   // the destination when it was sent
	Acked     []NodeID   // members that received it (ACK or response)
	Responses []Response // requests: the answers, by member id
	Missing   []NodeID   // members not done by the deadline, including Down ones
	Down      []NodeID   // members declared down or gone during the transfer
	Aborted   bool
}

// Complete reports whether every member is done.
func (r *Report) Complete() bool { return len(r.Missing) == 0 && !r.Aborted }

// Transfer is one message in flight.
type Transfer struct {
	e *Endpoint
	m *outMsg
}

// ID is the message id on its stream.
func (t *Transfer) ID() uint64 { return t.m.id }

// Done is closed when the transfer finished: every member done, the
// deadline passed, aborted, or the endpoint closed.
func (t *Transfer) Done() <-chan struct{} { return t.m.done }

// Answered is closed when every target of a request has answered or is
// down (and at the latest with Done); for other messages it is Done. A
// requester that only needs the answers takes Progress then, while the
// transfer goes on repairing to the members that only acknowledge (a
// backup manager, untargeted engines) until they have it or its context
// ends: keep the context alive for that.
func (t *Transfer) Answered() <-chan struct{} {
	if t.m.answered != nil {
		return t.m.answered
	}
	return t.m.done
}

// Progress returns the delivery report so far without waiting: who has
// acknowledged or answered, and in Missing who has not yet (members
// declared down are in Missing and Down). After Done it is the final
// report. The coordinator uses it to re-request silent members while the
// first round stays open.
func (t *Transfer) Progress() Report {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	return t.e.report(t.m)
}

// Wait blocks until the transfer finishes and returns its report. The error
// wraps ErrIncomplete when members are missing.
func (t *Transfer) Wait() (Report, error) {
	if ctx := t.m.ctx; ctx != nil {
		select {
		case <-t.m.done:
		case <-ctx.Done():
			t.e.expire(t.m)
			<-t.m.done
		}
	}
	<-t.m.done
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	r := t.e.report(t.m)
	if !r.Complete() {
		return r, fmt.Errorf("%w: message %d on channel %d %s: %d of %d missing %v",
			ErrIncomplete, r.ID, r.Channel, r.Dest, len(r.Missing), len(r.Members), r.Missing)
	}
	return r, nil
}

func (e *Endpoint) report(m *outMsg) Report {
	r := Report{Channel: m.key.ch, Dest: m.key.dest(), ID: m.id, Aborted: m.aborted,
		Members: make([]NodeID, 0, len(m.members)), Acked: make([]NodeID, 0, len(m.members))}
	if m.kind == wire.TypeRequest {
		r.Responses = make([]Response, 0, len(m.members))
	}
	for _, mb := range m.members {
		r.Members = append(r.Members, mb.id)
		if mb.acked || mb.responded {
			r.Acked = append(r.Acked, mb.id)
		}
		if mb.responded {
			r.Responses = append(r.Responses, Response{From: mb.id, Payload: mb.resp})
		}
		if !m.memberDone(mb) || mb.down {
			r.Missing = append(r.Missing, mb.id)
		}
		if mb.down {
			r.Down = append(r.Down, mb.id)
		}
	}
	slices.Sort(r.Members)
	slices.Sort(r.Acked)
	slices.Sort(r.Missing)
	slices.Sort(r.Down)
	slices.SortFunc(r.Responses, func(a, b Response) int { return int(a.From) - int(b.From) })
	return r
}

// Send sends payload reliably on channel ch to dest and waits until every
// member of the destination has it or ctx is done. Give ctx a deadline.
func (e *Endpoint) Send(ctx context.Context, ch uint8, dest Dest, payload []byte) (Report, error) {
	t, err := e.Start(ctx, ch, dest, payload)
	if err != nil {
		return Report{}, err
	}
	return t.Wait()
}

// Start sends like Send but returns at once; the transfer can then be
// waited for or aborted. Retransmission stops when ctx is done: at its
// deadline, or on a cancel before it at the transfer's next timer event
// (Wait returns at once either way).
func (e *Endpoint) Start(ctx context.Context, ch uint8, dest Dest, payload []byte) (*Transfer, error) {
	return e.start(ctx, ch, dest, wire.TypeData, payload, nil, nil, nil)
}

// Request sends a request down on channel ch and waits for a response from
// every targeted engine (nil: every engine of the view) or for ctx. Members
// that are not targeted (managers, untargeted engines) only acknowledge.
// The responses are in the report; they count as acknowledgements.
func (e *Endpoint) Request(ctx context.Context, ch uint8, payload []byte, targets []NodeID) (Report, error) {
	t, err := e.StartRequest(ctx, ch, payload, targets)
	if err != nil {
		return Report{}, err
	}
	return t.Wait()
}

// StartRequest is Request without waiting.
func (e *Endpoint) StartRequest(ctx context.Context, ch uint8, payload []byte, targets []NodeID) (*Transfer, error) {
	return e.start(ctx, ch, Down, wire.TypeRequest, payload, targets, nil, nil)
}

// StartRequestEach is StartRequest that also hands each response to each
// as it arrives, so the caller can decode answers while the others are
// still coming instead of all of them once the last is in. each runs on
// the endpoint's receive goroutine with no lock held and must not block;
// it may run after the transfer is answered or done (the report has
// every response regardless): a response the endpoint delivered off its
// receive path (after a full Receive queue drained) is handed over with
// the receive loop's next batch.
func (e *Endpoint) StartRequestEach(ctx context.Context, ch uint8, payload []byte, targets []NodeID, each func(Response)) (*Transfer, error) {
	return e.start(ctx, ch, Down, wire.TypeRequest, payload, targets, nil, each)
}

// Reply answers a request: the response goes up to the managers (so the
// BSM sees it too), reliably, and acknowledges the request. It waits until
// every manager has it or ctx is done.
func (e *Endpoint) Reply(ctx context.Context, req *Message, payload []byte) (Report, error) {
	t, err := e.StartReply(ctx, req, payload)
	if err != nil {
		return Report{}, err
	}
	return t.Wait()
}

// StartReply is Reply without waiting: the response is queued for sending
// before it returns, and the transport keeps repairing it until every
// manager has it or ctx is done, whether or not anyone waits. A responder
// can thus answer from memory inline and never hold a goroutine per reply;
// ctx must outlive the call (its deadline bounds the repairs).
func (e *Endpoint) StartReply(ctx context.Context, req *Message, payload []byte) (*Transfer, error) {
	if req.Kind != KindRequest {
		return nil, ErrNotRequest
	}
	ref := wire.ResponseRef{Node: uint32(req.From), Incarnation: req.Incarnation, MsgID: req.ID, Up: req.Dest == Up}
	body := append(wire.AppendResponseRef(make([]byte, 0, wire.ResponseRefLen+len(payload)), &ref), payload...)
	e.mu.Lock()
	if pr := e.peers[req.From]; pr != nil && pr.inc == req.Incarnation {
		if st := pr.streams[streamKey{req.Channel, req.Dest == Up}]; st != nil && st.next > req.ID {
			if st.acked < req.ID+1 {
				st.acked = req.ID + 1 // the response is the acknowledgement
			}
			st.replied = max(st.replied, req.ID)
		}
	}
	if e.cfg.Role == Engine && !e.ackAt.IsZero() && !e.acksPending() {
		// The ACK that waited for this answer is not needed: no timer
		// wake-up for it.
		e.ackAt, e.retime = time.Time{}, true
	}
	e.mu.Unlock()
	return e.start(ctx, req.Channel, Up, wire.TypeResponse, body, nil, &ref, nil)
}
