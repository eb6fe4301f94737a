package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/test/netns"
)

// requireRoot skips outside CI when not root; in CI it must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (network namespaces, nftables) and CI runs as root")
		}
		t.Skip("needs root: network namespaces and nftables")
	}
	requireTool(t, "ip")
	requireTool(t, "nft")
}

// newNetns creates a network namespace with lo up, deleted at cleanup.
func newNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("smsnmpd-e2e-%d", rand.IntN(1_000_000))
	netns.Add(t, name)
	return name
}

// dropPercent makes the namespace drop pct % of the UDP datagrams to port
// on input, at random (the kernel here has no netem): silent loss below
// the protocol. It returns a function reading the drop counter.
func dropPercent(t *testing.T, ns string, port, pct int) func() int {
	t.Helper()
	rules := fmt.Sprintf(`table inet smsnmpdloss {
  chain in {
    type filter hook input priority 0; policy accept;
    udp dport %d numgen random mod 100 < %d counter drop
  }
}
`, port, pct)
	netns.Nft(t, ns, rules)
	return func() int {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "smsnmpdloss").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v: %s", err, out)
		}
		var n int
		if i := strings.Index(string(out), "packets "); i >= 0 {
			fmt.Sscanf(string(out[i:]), "packets %d", &n)
		}
		return n
	}
}

// With 5 % of rmtp's datagrams dropped, every aggregate GET still counts
// every engine: the transport repairs within the deadline.
func TestFarmAggregatesUnderFivePercentLoss(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	f := newFarm(t, 0)
	f.ns = ns
	f.startManager()
	const n = 5
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)
	dropped := dropPercent(t, ns, f.port, 5)

	const gets = 200
	short := 0
	for i := 0; i < gets; i++ {
		v := f.get("smAggregateCount." + smSeWeight)
		if strings.TrimSpace(v[0]) != fmt.Sprint(n) {
			short++
			t.Errorf("GET %d: smAggregateCount = %s, want %d", i, v[0], n)
			if short > 5 {
				t.FailNow()
			}
		}
	}
	d := dropped()
	t.Logf("%d aggregate GETs, %d rmtp datagrams dropped by nftables", gets, d)
	if d == 0 {
		t.Errorf("nftables dropped nothing: the loss test tested no loss")
	}
}
