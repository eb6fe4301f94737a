package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

// statusJSON is what this test reads of `smsnmpd status -json`.
type statusJSON struct {
	Node uint32 `json:"node"`
	Role string `json:"role"`
	Term uint64 `json:"term"`
	View struct {
		Owner uint32 `json:"owner"`
	} `json:"view"`
	Engines []struct {
		ID    uint32 `json:"id"`
		State string `json:"state"`
	} `json:"engines"`
	Events []struct {
		Kind   string `json:"kind"`
		Engine uint32 `json:"engine"`
		Role   string `json:"role"`
	} `json:"events"`
}

func status(t *testing.T, sock string) statusJSON {
	t.Helper()
	out, code := cli(t, "status", "-json", "-socket", "unix:"+sock)
	if code != 0 {
		t.Fatalf("status: exit %d:\n%s", code, out)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status -json: %v:\n%s", err, out)
	}
	return s
}

// `smsnmpd status` on separate processes: the manager reports its role,
// its engines and what happened to them (an SE killed shows down, with its
// event), an SE whom it follows.
func TestStatusOfARunningFarm(t *testing.T) {
	f := newFarm(t, 0)
	f.startManager()
	f.startSE(1, 1000)
	victim := f.startSE(2, 1000)
	f.waitUp(2)
	se := status(t, f.socket("se1"))
	if se.Node != 1 || se.Role != "engine" || se.View.Owner != 1000 || se.Term == 0 {
		t.Errorf("SE 1's status: %+v", se)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	// The engine table says down as soon as the manager reads it; the
	// event follows from the coordinator's watcher.
	var m statusJSON
	var up, down, elected bool
	waitfor.True(t, 10*time.Second, "engine 2 down in the manager's status, with its event", func() bool {
		m = status(t, f.socket("manager"))
		up, down, elected = false, false, false
		for _, e := range m.Events {
			up = up || e.Kind == "engine-up" && e.Engine == 2
			down = down || e.Kind == "engine-down" && e.Engine == 2
			elected = elected || e.Kind == "role" && e.Role == "manager"
		}
		for _, e := range m.Engines {
			if e.ID == 2 {
				return e.State == "down" && down
			}
		}
		return false
	})
	if m.Node != 1000 || m.Role != "manager" || m.Term != se.Term || len(m.Engines) != 2 {
		t.Errorf("manager's status: %+v", m)
	}
	if !up || !down || !elected {
		t.Errorf("manager's events lack engine 2 up (%v), down (%v) or the election (%v): %+v", up, down, elected, m.Events)
	}
	out, code := cli(t, "status", "-socket", "unix:"+f.socket("manager"))
	if code != 0 || !strings.Contains(out, "node 1000") || !strings.Contains(out, ": manager, level 1") || !strings.Contains(out, "engines: 2 (1 up)") {
		t.Errorf("status (text): exit %d:\n%s", code, out)
	}
}
