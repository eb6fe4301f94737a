package rmtp_test

import (
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestPeerStatsElection: what a backup-manager election reads from HELLOs
// and the view: every manager's priority, level and announced term, which
// one is active (the VIEW's owner), and Term without a view copy.
func TestPeerStatsElection(t *testing.T) {
	nw := memnet.New(1472)
	mk := func(id rmtp.NodeID, role rmtp.Role, prio uint8) *rmtp.Endpoint {
		cfg := fastConfig(id, role)
		cfg.Priority, cfg.Level = prio, 2
		e, err := rmtp.New(nw.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	sm, bsm, se := mk(1, rmtp.Manager, 200), mk(2, rmtp.Manager, 100), mk(101, rmtp.Engine, 0)
	if se.Term() != 0 {
		t.Fatalf("term before any view: %d", se.Term())
	}
	if err := sm.Activate(7); err != nil {
		t.Fatal(err)
	}
	peer := func(e *rmtp.Endpoint, id rmtp.NodeID) rmtp.PeerStats {
		for _, p := range e.Stats().Peers {
			if p.Node == id {
				return p
			}
		}
		return rmtp.PeerStats{}
	}
	waitfor.True(t, 5*time.Second, "everyone holds term 7 and hears the others' HELLOs at term 7", func() bool {
		return se.Term() == 7 && bsm.Term() == 7 && peer(bsm, 1).Term == 7 && peer(sm, 2).Term == 7 && peer(se, 1).Term == 7
	})
	if got := sm.Term(); got != 7 {
		t.Errorf("active manager's term %d", got)
	}
	p := peer(bsm, 1)
	if !p.Active || p.Priority != 200 || p.Level != 2 || p.Role != rmtp.Manager {
		t.Errorf("SM seen by the BSM: %+v", p)
	}
	p = peer(sm, 2)
	if p.Active || p.Priority != 100 || p.Level != 2 {
		t.Errorf("BSM seen by the SM: %+v", p)
	}
	if p := peer(se, 1); !p.Active {
		t.Errorf("SM seen by an SE: %+v", p)
	}
	if p := peer(sm, 101); p.Active || p.Role != rmtp.Engine {
		t.Errorf("SE seen by the SM: %+v", p)
	}

	// Takeover: the BSM activates with a higher term; the old SM steps
	// down and everyone sees the new owner.
	if err := bsm.Activate(8); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 5*time.Second, "term 8 owned by the BSM everywhere", func() bool {
		return se.Term() == 8 && sm.Term() == 8 && peer(se, 2).Active && !peer(se, 1).Active && peer(sm, 2).Active
	})
	if sm.Active() {
		t.Error("old SM still active")
	}
}
