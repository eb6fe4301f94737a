package subtree

import (
	"fmt"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/test/farmtest"
)

var binary string

func TestMain(m *testing.M) {
	farmtest.Main(m, func(bin, _ string) { binary = bin })
}

const (
	smMIB             = ".1.3.6.1.4.1.8072.9999.9999.42"
	smNodeRole        = smMIB + ".1.1.1.0"
	smNodeActivePeer  = smMIB + ".1.1.5.0"
	smSubtreeRequests = smMIB + ".1.11.1.0"
	smSubtreeUp       = smMIB + ".1.11.5.0"
	smSubtreeDown     = smMIB + ".1.11.7.0"
	sumOfSeLoad       = smMIB + ".1.4.1" + smMIB + ".1.3.3.0" // smAggregateSum.<smSeLoad.0>: one request to every engine
	backupID          = farmtest.ManagerID + 1
)

func getUint(t *testing.T, c *gosnmp.GoSNMP, oids ...string) []uint64 {
	t.Helper()
	r, err := c.Get(oids)
	if err != nil {
		t.Fatalf("GET %v on %s: %v", oids, c.Target, err)
	}
	out := make([]uint64, len(oids))
	for i, v := range r.Variables {
		if v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance {
			t.Fatalf("%s on %s:%d: %v", oids[i], c.Target, c.Port, v.Type)
		}
		out[i] = gosnmp.ToBigInt(v.Value).Uint64()
	}
	return out
}

// The backup knows less than the active manager (it started after an
// engine's restart), yet answers the active manager's totals, and takes
// over with counters no lower than the old manager's last answer.
func TestSubtreeAcrossTakeover(t *testing.T) {
	f := farmtest.Start(t, binary, 3)
	a := f.Client()
	// Every aggregate GET is a request each engine serves (smSeRequests).
	load := func(n int) {
		for range n {
			if _, err := a.Get([]string{sumOfSeLoad}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitRequests := func(c *gosnmp.GoSNMP, atLeast uint64) uint64 {
		var v uint64
		farmtest.WaitFor(t, 10*time.Second, 50*time.Millisecond, "smSubtreeRequests follows the engines' heartbeats", func() string {
			if v = getUint(t, c, smSubtreeRequests)[0]; v < atLeast {
				return fmt.Sprintf("%d, want at least %d", v, atLeast)
			}
			return ""
		})
		return v
	}
	load(40)
	waitRequests(a, 3*40)
	// Engine 2 restarts, and the manager sees it go down and come back:
	// it keeps the 40 requests engine 2 no longer counts.
	f.Kill(2)
	farmtest.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the manager counts engine 2 down", func() string {
		if v := getUint(t, a, smSubtreeDown)[0]; v != 1 {
			return fmt.Sprintf("%d down", v)
		}
		return ""
	})
	f.StartEngine(2)
	f.WaitEngines(3, 20*time.Second)
	load(10)
	before := waitRequests(a, 3*50)
	backup, addr := f.StartBackup("backup", backupID)
	b := f.ClientOf(addr)
	farmtest.WaitFor(t, 15*time.Second, 100*time.Millisecond, "the backup sees 3 engines up and follows the active manager", func() string {
		v := getUint(t, b, smSubtreeUp, smSubtreeRequests, smNodeActivePeer, smNodeRole)
		if v[0] != 3 || v[1] < before || v[2] != farmtest.ManagerID || v[3] != 3 {
			return fmt.Sprintf("backup: up %d, requests %d (the manager's: %d), active peer %d, role %d", v[0], v[1], before, v[2], v[3])
		}
		return ""
	})
	load(10)
	last := waitRequests(a, before+3*10)
	f.Manager().Kill(t)
	var prev uint64
	took := farmtest.WaitFor(t, 15*time.Second, 50*time.Millisecond, "the backup takes over", func() string {
		v := getUint(t, b, smNodeRole, smSubtreeRequests, smNodeActivePeer)
		if v[1] < prev {
			t.Fatalf("the backup's smSubtreeRequests went back from %d to %d during the takeover", prev, v[1])
		}
		prev = v[1]
		if v[0] != 2 || v[2] != backupID {
			return fmt.Sprintf("role %d, active peer %d", v[0], v[2])
		}
		return ""
	})
	after := getUint(t, b, smSubtreeRequests)[0]
	t.Logf("active manager's last smSubtreeRequests %d; the backup active %v after the kill with %d", last, took.Round(time.Millisecond), after)
	if after < last {
		t.Errorf("smSubtreeRequests went back across the takeover: %d on the old manager, %d on the new one", last, after)
	}
	_ = backup
}
