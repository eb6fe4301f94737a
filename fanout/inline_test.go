package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// A read from the tree is answered on the reader (no worker goroutine),
// and a repeat of it comes from the reply cache, not a second execution.
func TestReadAnsweredInlineAndCached(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 1, farmOpts{})
	s := f.ses[0]
	req := wire.Request{Op: wire.OpGet, Tx: 77, Term: f.mgr.View().Term,
		VarBinds: []smi.VarBind{{Name: agenttest.ScalarInt.Append(0), Value: smi.Null()}}}
	for i := range 3 {
		r := request(t, f, req, []rmtp.NodeID{s.id})
		if len(r) != 1 || r[0].Status != wire.StatusOK || len(r[0].VarBinds) != 1 || r[0].VarBinds[0].Value.Int != 42 {
			t.Fatalf("round %d: %+v", i, r)
		}
	}
	c := s.resp.Counters()
	if c.Executed != 1 || c.CacheHits != 2 || c.Inline != 1 || c.Takeovers != 0 {
		t.Fatalf("executed %d cache hits %d inline %d takeovers %d; want 1, 2, 1, 0", c.Executed, c.CacheHits, c.Inline, c.Takeovers)
	}
}

// A slow object in the tree holds the reader only until another reader
// takes over: a read behind it is answered while it still runs.
func TestSlowReadDoesNotHoldUpTheNext(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t, 1, farmOpts{coord: fanout.CoordinatorConfig{Deadline: 5 * time.Second}})
	s := f.ses[0]
	blocked := agenttest.Base.Append(60)
	entered, release := make(chan struct{}), make(chan struct{})
	if err := s.tree.RegisterScalar(blocked, &agent.Scalar{Value: func(ctx context.Context) (smi.Value, error) {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
			return smi.Value{}, ctx.Err()
		}
		return smi.Integer(60), nil
	}}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	slow := make(chan *fanout.Result, 1)
	go func() {
		res, _ := f.coord.Get(ctx, nil, []smi.OID{blocked.Append(0)})
		slow <- res
	}()
	<-entered
	res, err := f.coord.Get(ctx, nil, []smi.OID{agenttest.ScalarInt.Append(0)})
	if err != nil || !res.Complete() || res.Replies[0].VarBinds[0].Value.Int != 42 {
		t.Fatalf("the read behind a slow one: %v %+v", err, res)
	}
	select {
	case <-slow:
		t.Fatal("the slow read finished before it was released")
	default:
	}
	close(release)
	if res := <-slow; res == nil || !res.Complete() || res.Replies[0].VarBinds[0].Value.Int != 60 {
		t.Fatalf("the slow read: %+v", res)
	}
	// rmtp calls Slow on a goroutine of its own once it took over: the
	// count may come after both answers. (A loaded machine may take the
	// fast read over too: it is a 5 ms budget.)
	waitfor.True(t, 5*time.Second, "the takeover counted", func() bool { return s.resp.Counters().Takeovers > 0 })
	if c := s.resp.Counters(); c.Inline != 2 || c.Executed != 2 {
		t.Fatalf("inline %d executed %d; want 2, 2", c.Inline, c.Executed)
	}
}
