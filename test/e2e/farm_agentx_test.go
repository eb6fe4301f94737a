package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// walkOIDs walks root with snmpbulkwalk and returns the OIDs (numeric)
// and values, failing on any OID that does not increase.
func walkOIDs(t *testing.T, tool string, args ...string) ([]smi.OID, []string) {
	t.Helper()
	out, err := snmp(t, tool, append([]string{"-On", "-Cc"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var oids []smi.OID
	var vals []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, val, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("%s: unexpected line %q", tool, line)
		}
		if strings.HasPrefix(val, "No more variables left in this MIB View") {
			break // endOfMibView: the walk ended cleanly at the end of the agent's view
		}
		o, err := smi.ParseOID(name)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if n := len(oids); n > 0 && o.Compare(oids[n-1]) <= 0 {
			t.Fatalf("%s: OID not increasing: %s after %s", tool, o, oids[n-1])
		}
		oids = append(oids, o)
		vals = append(vals, val)
	}
	return oids, vals
}

// The manager registers its MIB with a real snmpd: a walk of the whole
// SERVICE-MANAGER-MIB through snmpd is the built-in agent's walk, and each
// SE answers under its own context se<N>.
func TestFarmThroughSnmpdMatchesBuiltInAgent(t *testing.T) {
	requireTool(t, "snmpbulkwalk")
	const n = 5
	var comms []snmpdtest.Community
	for i := 1; i <= n; i++ {
		comms = append(comms, snmpdtest.Community{Name: fmt.Sprintf("se%dpub", i), Context: fmt.Sprintf("se%d", i)})
	}
	sd := snmpdtest.Start(t, snmpdtest.Options{Communities: comms})
	f := newFarm(t, 0)
	f.agentx = sd.AgentX
	f.startManager()
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)
	f.manager.waitOutput(t, "registered", 10*time.Second)

	const smMIB = "1.3.6.1.4.1.8072.9999.9999.42"
	viaSnmpd, valsSnmpd := walkOIDs(t, "snmpbulkwalk", "-v2c", "-c", "public", "-t", "3", "-r", "1", sd.Addr, smMIB)
	builtin, _ := walkOIDs(t, "snmpbulkwalk", "-v2c", "-c", "public", "-t", "3", "-r", "1", f.snmp, smMIB)
	if len(viaSnmpd) < 100 || len(viaSnmpd) > 5000 {
		t.Fatalf("walk through snmpd returned %d varbinds; want the whole MIB, bounded", len(viaSnmpd))
	}
	// The transport counters of the two frontends are read at different
	// moments, but the set of OIDs must be the same.
	if len(viaSnmpd) != len(builtin) {
		t.Fatalf("snmpd walk has %d OIDs, built-in agent %d", len(viaSnmpd), len(builtin))
	}
	for i := range viaSnmpd {
		if !viaSnmpd[i].Equal(builtin[i]) {
			t.Fatalf("OID %d differs: snmpd %s, built-in %s", i, viaSnmpd[i], builtin[i])
		}
	}
	for i, v := range valsSnmpd {
		if strings.Contains(v, "No Such") {
			t.Errorf("%s = %s in a walk", viaSnmpd[i], v)
		}
	}

	// One engine through its own context, with its usual OIDs.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := sd.Tool(ctx, "snmpget", "-v2c", "-c", "se3pub", "-Oqv", "-t", "2", "-r", "0", sd.Addr, "1.3.6.1.2.1.1.5.0")
		if err == nil && strings.TrimSpace(out) == `"se3"` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sysName.0 in context se3 = %q, %v; want \"se3\"\nsnmpd.conf:\n%s\nsnmpd log:\n%s", out, err, sd.ConfigText(), sd.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
