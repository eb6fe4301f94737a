package hierarchy

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// SERVICE-MANAGER-MIB OIDs the totals check reads (numeric: the tools run
// inside namespaces, without our MIB on their path).
const (
	oidSubtree       = ".1.3.6.1.4.1.8072.9999.9999.42.1.11" // smSubtree: .1 requests ... .7 down
	oidEngineProxy   = ".1.3.6.1.4.1.8072.9999.9999.42.1.5"  // smEngineProxy.<id>.<OID on that SE>
	oidSeRequests    = ".1.3.6.1.4.1.8072.9999.9999.42.1.3.4.0"
	oidSeBytesOut    = ".1.3.6.1.4.1.8072.9999.9999.42.1.3.5.0"
	oidSeContentCnt  = ".1.3.6.1.4.1.8072.9999.9999.42.1.3.6.0"
	totalsFollowTime = 10 * time.Second // "within a few heartbeats", with the machine's load to spare
)

// totals is smSubtree as one manager answers it.
type totals struct {
	requests, bytes, content, load, up, suspect, down uint64
}

func (x totals) String() string {
	return fmt.Sprintf("requests %d, bytes %d, content %d, load %d, engines up/suspect/down %d/%d/%d",
		x.requests, x.bytes, x.content, x.load, x.up, x.suspect, x.down)
}

// own is what the SEs below a manager count themselves, summed.
type own struct{ requests, bytes, content uint64 }

// snmpGetAll reads several OIDs from a manager in one request and returns
// their values as snmpget prints them after "TYPE: ".
func (tr *tree) snmpGetAll(n *node, oids ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", n.ns, "snmpget", "-v2c", "-c", "public", "-On", "-Oe", "-t", "2", "-r", "2",
		fmt.Sprintf("%s:%d", n.ip, snmpPort)}, oids...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("snmpget on %s: %w: %s", n.name(), err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(oids) {
		return nil, fmt.Errorf("snmpget on %s: %d lines for %d OIDs:\n%s", n.name(), len(lines), len(oids), out)
	}
	vals := make([]string, len(lines))
	for i, l := range lines {
		_, v, ok := strings.Cut(l, ": ")
		if !ok {
			return nil, fmt.Errorf("snmpget on %s: %q has no value", n.name(), l)
		}
		vals[i] = strings.Fields(v)[0]
	}
	return vals, nil
}

func (tr *tree) subtree(n *node) totals {
	tr.t.Helper()
	var oids []string
	for i := 1; i <= 7; i++ {
		oids = append(oids, fmt.Sprintf("%s.%d.0", oidSubtree, i))
	}
	vals, err := tr.snmpGetAll(n, oids...)
	if err != nil {
		tr.t.Fatal(err)
	}
	var x totals
	for i, p := range []*uint64{&x.requests, &x.bytes, &x.content, &x.load, &x.up, &x.suspect, &x.down} {
		v, err := strconv.ParseUint(vals[i], 10, 64)
		if err != nil {
			tr.t.Fatalf("smSubtree.%d.0 on %s = %q: %v", i+1, n.name(), vals[i], err)
		}
		*p = v
	}
	return x
}

// seOwn reads the SEs' own counters (smSe, through their level-1
// managers' smEngineProxy: one transaction per farm) and sums those of
// the SEs in cdn c (0: all) and data center d (0: all).
func (tr *tree) seOwn(c, d int) own {
	tr.t.Helper()
	var sum own
	for cc := 1; cc <= cdns; cc++ {
		for dd := 1; dd <= dcsPerCDN; dd++ {
			if (c != 0 && cc != c) || (d != 0 && dd != d) {
				continue
			}
			l1 := tr.node(l1ID(cc, dd))
			var oids []string
			for e := 1; e <= sesPerFarm; e++ {
				id := seID(cc, dd, e)
				for _, o := range []string{oidSeRequests, oidSeBytesOut, oidSeContentCnt} {
					oids = append(oids, fmt.Sprintf("%s.%d%s", oidEngineProxy, id, o))
				}
			}
			vals, err := tr.snmpGetAll(l1, oids...)
			if err != nil {
				tr.t.Fatal(err)
			}
			for i, v := range vals {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					tr.t.Fatalf("%s on %s = %q (an SE not answering?)", oids[i], l1.name(), v)
				}
				switch i % 3 {
				case 0:
					sum.requests += n
				case 1:
					sum.bytes += n
				default:
					sum.content += n
				}
			}
		}
	}
	return sum
}

// checkTotals: smSubtree at levels 2, 3 and 4 is the sum of what the SEs
// below count themselves (read before and after it: the counters move,
// not least by these reads), the level-2 BSM agrees with its SM, and an
// SE's death and restart show within a few heartbeats at every level
// with counters that never go back.
func checkTotals(tr *tree) {
	t := tr.t
	type scope struct {
		n    *node
		c, d int // the SEs below: cdn c, data center d (0: all)
		ses  int
	}
	var scopes []scope
	for c := 1; c <= cdns; c++ {
		for d := 1; d <= dcsPerCDN; d++ {
			scopes = append(scopes, scope{tr.node(l2ID(c, d)), c, d, sesPerFarm})
		}
		scopes = append(scopes, scope{tr.node(l3ID(c)), c, 0, dcsPerCDN * sesPerFarm})
	}
	scopes = append(scopes, scope{tr.node(l2BID(failoverCDN, failoverDC)), failoverCDN, failoverDC, sesPerFarm})
	scopes = append(scopes, scope{tr.node(l4ID), 0, 0, cdns * dcsPerCDN * sesPerFarm})
	for _, s := range scopes {
		before := tr.seOwn(s.c, s.d)
		var x totals
		deadline := time.Now().Add(totalsFollowTime)
		for {
			x = tr.subtree(s.n)
			if x.requests >= before.requests && x.bytes >= before.bytes && x.content == before.content && x.up == uint64(s.ses) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: smSubtree %v, the SEs below count %+v and %d are up: not reached in %v", s.n.name(), x, before, s.ses, totalsFollowTime)
			}
			time.Sleep(200 * time.Millisecond)
		}
		after := tr.seOwn(s.c, s.d)
		if x.requests > after.requests || x.bytes > after.bytes {
			t.Errorf("%s: smSubtree requests %d bytes %d, above what the SEs below count after it was read (%d, %d): counted twice?",
				s.n.name(), x.requests, x.bytes, after.requests, after.bytes)
		}
		if x.suspect != 0 || x.down != 0 || x.load == 0 {
			t.Errorf("%s: smSubtree %v: want every engine up and a load", s.n.name(), x)
		}
		t.Logf("totals %s: %v (the SEs below: requests %d..%d, bytes %d..%d, content %d)", s.n.name(), x,
			before.requests, after.requests, before.bytes, after.bytes, before.content)
	}

	// An SE dies: every level above it counts it down within a few
	// heartbeats, and no counter goes back; it restarts: up again.
	se := tr.node(seID(3, 1, 2))
	chain := []*node{tr.node(l1ID(3, 1)), tr.node(l2ID(3, 1)), tr.node(l3ID(3)), tr.node(l4ID)}
	last := map[*node]totals{}
	for _, n := range chain {
		last[n] = tr.subtree(n)
	}
	tr.kill(se)
	killed := time.Now()
	for _, n := range chain {
		x := tr.waitSubtree(n, killed, "the dead SE counted down", func(x totals) bool { return x.down == 1 && x.suspect == 0 })
		if x.requests < last[n].requests || x.bytes < last[n].bytes {
			t.Errorf("%s: counters went back after an SE died: %v, before %v", n.name(), x, last[n])
		}
		last[n] = x
	}
	tr.start(se)
	restarted := time.Now()
	for _, n := range chain {
		x := tr.waitSubtree(n, restarted, "the restarted SE up again", func(x totals) bool { return x.down == 0 && x.suspect == 0 })
		if x.requests < last[n].requests || x.bytes < last[n].bytes {
			t.Errorf("%s: counters went back after an SE restarted: %v, before %v", n.name(), x, last[n])
		}
	}
}

// waitSubtree polls n's smSubtree until ok, and logs how long after since
// it took.
func (tr *tree) waitSubtree(n *node, since time.Time, what string, ok func(totals) bool) totals {
	tr.t.Helper()
	for {
		x := tr.subtree(n)
		if ok(x) {
			tr.t.Logf("totals %s: %s %v after (%v)", n.name(), what, time.Since(since).Round(10*time.Millisecond), x)
			return x
		}
		if time.Since(since) > totalsFollowTime {
			tr.t.Fatalf("%s: %s: not after %v: smSubtree %v", n.name(), what, totalsFollowTime, x)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
