package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// Issue 14, defect 6: a varbind naming an object of the SEs that no OID
// can be (an inner OID of fewer than 2 arcs, a first arc above 2, a second
// arc of 40 or more under 0 or 1: none has a BER encoding) is an instance
// that does not exist. It must not fail the other varbinds of its PDU, nor
// log a line per request.
const (
	smAggregateSum   = ".1.3.6.1.4.1.8072.9999.9999.42.1.4.1"
	smAggregateCount = ".1.3.6.1.4.1.8072.9999.9999.42.1.4.5"
	smEngineProxy    = ".1.3.6.1.4.1.8072.9999.9999.42.1.5"
	smAllEngines     = ".1.3.6.1.4.1.8072.9999.9999.42.1.6"
)

// badInner are inner OIDs (after smAggregateSum., smEngineProxy.1.) with
// no BER encoding.
var badInner = []string{".1", ".5.1", ".1.40", ".7"}

// checkBadOIDGet asks the agent behind g for good and bad varbinds in one
// GET: the bad ones are noSuchInstance, the good ones answered.
func checkBadOIDGet(t *testing.T, what string, g *gosnmp.GoSNMP, engines int) {
	t.Helper()
	oids := []string{smAggregateCount + "." + smSeWeight}
	for _, b := range badInner {
		oids = append(oids, smAggregateSum+b, smEngineProxy+".1"+b)
	}
	oids = append(oids, smEngineProxy+".1."+smSeWeight)
	r, err := g.Get(oids)
	if err != nil {
		t.Fatalf("%s: GET with unencodable inner OIDs: %v", what, err)
	}
	if r.Error != gosnmp.NoError || len(r.Variables) != len(oids) {
		t.Fatalf("%s: GET answered error-status %v index %d, %d varbinds for %d; want each varbind answered",
			what, r.Error, r.ErrorIndex, len(r.Variables), len(oids))
	}
	if v := r.Variables[0]; v.Type != gosnmp.Gauge32 || v.Value != uint(engines) {
		t.Errorf("%s: smAggregateCount = %v %v, want Gauge32 %d", what, v.Type, v.Value, engines)
	}
	for i, v := range r.Variables[1 : len(oids)-1] {
		if v.Type != gosnmp.NoSuchInstance {
			t.Errorf("%s: %s = %v %v, want noSuchInstance", what, oids[i+1], v.Type, v.Value)
		}
	}
	if v := r.Variables[len(oids)-1]; v.Type != gosnmp.Gauge32 {
		t.Errorf("%s: smEngineProxy.1 of smSeWeight = %v %v, want a Gauge32", what, v.Type, v.Value)
	}
}

func TestUnencodableInnerOIDs(t *testing.T) {
	sd := snmpdtest.Start(t, snmpdtest.Options{})
	f := newFarm(t, 0)
	f.agentx = sd.AgentX
	f.startManager()
	const n = 3
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)
	f.manager.waitOutput(t, "registered", 10*time.Second)

	builtin := client(t, "", f.snmp, 3*time.Second)
	t.Cleanup(func() { builtin.Conn.Close() })
	checkBadOIDGet(t, "built-in agent", builtin, n)
	checkBadOIDGet(t, "through snmpd", sd.Client(t, "public"), n)

	// SET: the bad varbind is the one refused, with noCreation, and no
	// engine changes.
	for _, c := range []struct {
		what string
		g    *gosnmp.GoSNMP
	}{{"built-in agent", builtin}, {"through snmpd", sd.Client(t, "private")}} {
		c.g.Community = "private"
		for _, bad := range []string{smAllEngines + ".5.1", smEngineProxy + ".1.5.1", smEngineProxy + ".1.1"} {
			r, err := c.g.Set([]gosnmp.SnmpPDU{
				{Name: smAllEngines + "." + smSeWeight, Type: gosnmp.Gauge32, Value: uint(9)},
				{Name: bad, Type: gosnmp.Gauge32, Value: uint(9)},
			})
			if err != nil {
				t.Fatalf("%s: SET of %s: %v", c.what, bad, err)
			}
			if r.Error != gosnmp.NoCreation || r.ErrorIndex != 2 {
				t.Errorf("%s: SET of %s: error-status %v index %d, want noCreation at 2", c.what, bad, r.Error, r.ErrorIndex)
			}
		}
		c.g.Community = "public"
	}
	if got := f.getInt("smAggregateSum." + smSeWeight); got == 9*n {
		t.Errorf("a refused SET changed the engines")
	}

	// Bad input arriving per request: the log must not grow per request.
	before := len(f.manager.out.String())
	for range 2000 {
		r, err := builtin.Get([]string{smAggregateSum + ".1", smEngineProxy + ".1.5.1"})
		if err != nil || r.Error != gosnmp.NoError {
			t.Fatalf("bad GET: %v %v", err, r)
		}
	}
	grown := len(f.manager.out.String()) - before
	t.Logf("2000 GETs of unencodable OIDs grew the manager's log by %d bytes", grown)
	if grown > 2000 {
		t.Errorf("the manager's log grew by %d bytes over 2000 bad requests:\n%s", grown,
			strings.Join(strings.SplitN(f.manager.out.String()[before:], "\n", 6)[:5], "\n"))
	}
}
