package rmtp_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestStartReplyAndProgress: engines answer inline with StartReply (no
// goroutine waits for the managers' ACK, yet the reply completes), and
// the coordinator watches the open request with Progress: who answered,
// who is still missing, before the request finishes.
func TestStartReplyAndProgress(t *testing.T) {
	checkNoLeak(t)
	c := newCluster(t, 3, memnet.Faults{Loss: 0.1}, func(cfg *rmtp.Config) { cfg.DownAfter = lenientDown })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := c.mgr.StartRequest(ctx, 3, []byte("get"), nil)
	if err != nil {
		t.Fatal(err)
	}
	recvReq := func(e *rmtp.Endpoint) *rmtp.Message {
		for {
			m, err := e.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind == rmtp.KindRequest {
				return m
			}
		}
	}
	var replies []*rmtp.Transfer
	for _, e := range c.engines[:2] {
		m := recvReq(e)
		if _, err := e.StartReply(ctx, &rmtp.Message{Kind: rmtp.KindData}, nil); !errors.Is(err, rmtp.ErrNotRequest) {
			t.Fatalf("StartReply to data: %v", err)
		}
		rt, err := e.StartReply(ctx, m, []byte{byte(e.Node())})
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, rt)
	}
	silent := c.engines[2].Node()
	waitfor.True(t, 10*time.Second, "two responses in the progress report", func() bool { return len(tr.Progress().Responses) == 2 })
	p := tr.Progress()
	if !slices.Equal(p.Missing, []rmtp.NodeID{silent}) || p.Complete() {
		t.Fatalf("progress: missing %v, complete %v", p.Missing, p.Complete())
	}
	select {
	case <-tr.Done():
		t.Fatal("request finished with an engine silent")
	default:
	}
	for _, rt := range replies {
		if r, err := rt.Wait(); err != nil || !r.Complete() {
			t.Fatalf("inline reply not acknowledged: %v", err)
		}
	}
	if _, err := c.engines[2].Reply(ctx, recvReq(c.engines[2]), []byte{byte(silent)}); err != nil {
		t.Fatal(err)
	}
	r, err := tr.Wait()
	if err != nil || len(r.Responses) != 3 {
		t.Fatalf("request: %v, %d responses", err, len(r.Responses))
	}
	for _, resp := range r.Responses {
		if !slices.Equal(resp.Payload, []byte{byte(resp.From)}) {
			t.Errorf("response %v from %d", resp.Payload, resp.From)
		}
	}
	if p := tr.Progress(); !p.Complete() || len(p.Responses) != 3 {
		t.Errorf("progress after done: %+v", p)
	}
}
