package rmtp_test

import (
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// engineTerm is the term engine id's latest HELLO told ep.
func engineTerm(ep *rmtp.Endpoint, id rmtp.NodeID) (uint64, bool) {
	for _, p := range ep.Stats().Peers {
		if p.Node == id && p.Role == rmtp.Engine {
			return p.Term, true
		}
	}
	return 0, false
}

// An engine's HELLO carries the term of the view it obeys while that
// view's owner is alive, and 0 once the owner is down or gone, although
// the engine keeps the term for fencing. A manager that cannot hear the
// owner (a partition between managers only) learns from the first that
// another manager is active above its own term, and from the second that
// this one is gone as well (internal/election relies on both).
func TestEngineHelloTermFollowsLiveOwner(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave bool // a goodbye, or silence until the engine declares it down
	}{{"owner goes silent", false}, {"owner leaves", true}} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeak(t)
			net := memnet.New(1472)
			var nodes []*memnet.Node
			mk := func(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
				nd := net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id))
				nodes = append(nodes, nd)
				e, err := rmtp.New(nd, fastConfig(id, role))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				return e
			}
			owner := mk(1, rmtp.Manager)
			watcher := mk(2, rmtp.Manager) // a backup: it hears the engines' HELLOs
			eng := mk(101, rmtp.Engine)
			if err := owner.Activate(7); err != nil {
				t.Fatal(err)
			}
			waitfor.True(t, 5*time.Second, "the engine says it obeys term 7", func() bool {
				term, ok := engineTerm(watcher, 101)
				return ok && term == 7
			})
			if term, _ := engineTerm(owner, 101); term != 7 {
				t.Errorf("the owner hears term %d from the engine, want 7", term)
			}
			if tc.leave {
				owner.Close()
			} else {
				nodes[0].Close() // no goodbye: the engine must declare it down
			}
			waitfor.True(t, 5*time.Second, "the engine says 0 once its view's owner is gone", func() bool {
				term, ok := engineTerm(watcher, 101)
				return ok && term == 0
			})
			// Fencing is unchanged: the engine still holds term 7.
			if got := eng.Term(); got != 7 {
				t.Errorf("the engine's view term is %d after its owner went, want 7 (fencing)", got)
			}
			// The backup's own HELLO still carries the term it adopted.
			if term := watcher.View().Term; term != 7 {
				t.Errorf("the backup's view term %d, want 7", term)
			}
		})
	}
}
