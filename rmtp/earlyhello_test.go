package rmtp_test

import (
	"context"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestNewcomerHearsManagerAtOnce: an engine drops a manager's traffic
// until it has the manager's HELLO. With heartbeats 5 s apart, an engine
// that joins after the manager's last HELLO would wait for the next one
// before it could answer; the manager answers a newcomer's HELLO with its
// own at once, so the first request to it completes long before.
func TestNewcomerHearsManagerAtOnce(t *testing.T) {
	checkNoLeak(t)
	const hello = 5 * time.Second
	net := memnet.New(1472)
	mk := func(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
		cfg := fastConfig(id, role)
		cfg.HelloInterval, cfg.DownAfter = hello, 10
		e, err := rmtp.New(net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	mgr := mk(1, rmtp.Manager)
	if err := mgr.Activate(1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the manager's start-up HELLO is gone
	eng := mk(101, rmtp.Engine)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	answerRequests(t, eng, []byte("pong"))
	// The manager hears the newcomer's start-up HELLO at once; the
	// newcomer hears the manager only by the early HELLO (or in 5 s).
	waitfor.True(t, hello/4, "the manager sees the engine in its view", func() bool {
		for _, m := range mgr.View().Members {
			if m.Node == 101 {
				return true
			}
		}
		return false
	})
	// Well under one heartbeat interval: only the early HELLO can make it.
	rctx, rcancel := context.WithTimeout(ctx, hello/2)
	defer rcancel()
	rep, err := mgr.Request(rctx, 9, []byte("ping"), []rmtp.NodeID{101})
	if err != nil || len(rep.Responses) != 1 || string(rep.Responses[0].Payload) != "pong" {
		t.Fatalf("first request to a newcomer: %+v, %v", rep, err)
	}
}
