package election

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// deafTo drops what one manager receives from the other managers while
// cut: the managers lose each other, every member still reaches the
// engines (a partition on the managers' link only, as nftables makes it
// in test/e2e).
type deafTo struct {
	rmtp.Transport
	cut     *atomic.Bool
	mu      *sync.Mutex
	manager map[netip.AddrPort]bool // every manager's address
}

func (d *deafTo) Recv() (rmtp.Datagram, error) {
	for {
		dg, err := d.Transport.Recv()
		if err != nil || !d.cut.Load() {
			return dg, err
		}
		d.mu.Lock()
		drop := d.manager[dg.From] && dg.From != d.LocalAddr()
		d.mu.Unlock()
		if !drop {
			return dg, nil
		}
	}
}

// managersCut attaches members to one memnet whose managers can be cut
// off from each other (not from the engines) by setting cut.
func managersCut(cut *atomic.Bool) func(rmtp.NodeID, bool) rmtp.Transport {
	n := memnet.New(1472)
	var mu sync.Mutex
	managers := map[netip.AddrPort]bool{}
	return func(id rmtp.NodeID, manager bool) rmtp.Transport {
		nd := n.Attach(manager, memnet.Faults{}, uint64(id)<<8|uint64(time.Now().UnixNano()&0xff))
		if !manager {
			return nd
		}
		mu.Lock()
		managers[nd.LocalAddr()] = true
		mu.Unlock()
		return &deafTo{Transport: nd, cut: cut, mu: &mu, manager: managers}
	}
}

// The SM and the BSM lose each other but not the SEs, with real rmtp
// endpoints and production timers: the BSM takes over with the next term;
// the old SM, which no VIEW of that term reaches, stops being active
// within a second of the takeover (on main: never), reports why, and stays
// a backup while the BSM keeps the farm. When the partition heals one
// term remains.
func TestFarmFencedManagerStepsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of real heartbeats")
	}
	before := runtime.NumGoroutine()
	var cut atomic.Bool
	f := newFarm(t, managersCut(&cut), []uint8{9, 1}, 3)
	owner, term, _ := f.waitAgreed(10 * time.Second)
	if owner != 1 {
		t.Fatalf("first active %d, want 1", owner)
	}
	sm, bsm := f.mgrs[1], f.mgrs[2]
	cut.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for bsm.el.Role() != Active {
		if time.Now().After(deadline) {
			t.Fatal("the BSM did not take over")
		}
		time.Sleep(2 * time.Millisecond)
	}
	tookAt := time.Now()
	if st := bsm.el.Status(); st.Term != term+1 {
		t.Fatalf("BSM active with term %d, want %d", st.Term, term+1)
	}
	for sm.ep.Active() || sm.el.Role() == Active {
		if time.Since(tookAt) > 5*time.Second {
			t.Fatalf("the old SM still claims the farm %v after the BSM took over: transport active %v, elector %+v",
				time.Since(tookAt).Round(time.Millisecond), sm.ep.Active(), sm.el.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
	stepped := time.Since(tookAt)
	t.Logf("old SM stepped down %v after the BSM took over", stepped.Round(time.Millisecond))
	if stepped > time.Second {
		t.Errorf("old SM stepped down %v after the takeover, want within a second", stepped)
	}
	st := sm.el.Status()
	if st.Role != Backup || st.Cause.String() != "fenced" || st.Term != term+1 {
		t.Errorf("old SM's change %+v, want backup, cause fenced, term %d", st, term+1)
	}
	// Stable: nobody takes the farm from anybody while apart.
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) {
		if sm.ep.Active() || sm.el.Role() == Active || !bsm.ep.Active() || bsm.el.Role() != Active {
			t.Fatalf("roles moved while apart: SM %+v active %v, BSM %+v active %v", sm.el.Status(), sm.ep.Active(), bsm.el.Status(), bsm.ep.Active())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range f.engines {
		if v := e.View(); v.Owner != 2 || v.Term != term+1 {
			t.Errorf("engine %d follows %d term %d, want 2 term %d", e.Node(), v.Owner, v.Term, term+1)
		}
	}
	cut.Store(false)
	o, tm, _ := f.waitAgreed(10 * time.Second)
	if o != 2 || tm != term+1 {
		t.Fatalf("after healing %d term %d, want 2 term %d", o, tm, term+1)
	}
	f.close()
	f.mgrs, f.engines = nil, nil
	checkGoroutines(t, before)
}
