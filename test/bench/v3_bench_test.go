package bench

import (
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/agent/snmp/usm"
	"github.com/smsnmpd/smsnmpd/internal/config"
)

const (
	benchAuthPass = "bench-auth-pass"
	benchPrivPass = "bench-priv-pass"
)

func clientV3(tb testing.TB, port int) *gosnmp.GoSNMP {
	tb.Helper()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(port), Version: gosnmp.Version3, Timeout: 2 * time.Second, Retries: 2,
		SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "bench", AuthenticationProtocol: gosnmp.SHA256,
			AuthenticationPassphrase: benchAuthPass, PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: benchPrivPass}}
	if err := g.Connect(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Conn.Close() })
	return g
}

// BenchmarkV3GetVsSnmpd: GET sysUpTime.0 with SNMPv3 authPriv
// (SHA-256/AES-128, gosnmp client) from the built-in agent and from
// snmpd's own USM, and SNMPv2c from the built-in agent, interleaved so
// all three see the same load; reports the p50s and
// p50-ratio-v3 = ours/snmpd (target: <= 1) and p50-v3-over-v2c.
func BenchmarkV3GetVsSnmpd(b *testing.B) {
	ref := clientV3(b, startSnmpd(b,
		"createUser bench SHA-256 "+benchAuthPass+" AES "+benchPrivPass,
		"rouser bench priv"))
	port, _ := startAgent(b, snmp.User{Name: "bench", Auth: usm.SHA256, AuthPass: config.NewSecret(benchAuthPass),
		Priv: usm.AES128, PrivPass: config.NewSecret(benchPrivPass)})
	ours, ours2 := clientV3(b, port), client(b, port)
	get := func(g *gosnmp.GoSNMP) time.Duration {
		t0 := time.Now()
		p, err := g.Get([]string{sysUpTime0})
		d := time.Since(t0)
		if err != nil || len(p.Variables) != 1 || p.Variables[0].Type != gosnmp.TimeTicks {
			b.Fatalf("GET: %v %v", err, p)
		}
		return d
	}
	for range 200 {
		get(ref)
		get(ours)
		get(ours2)
	}
	var tRef, tOurs, tV2 []time.Duration
	b.ResetTimer()
	for b.Loop() {
		tRef = append(tRef, get(ref))
		tOurs = append(tOurs, get(ours))
		tV2 = append(tV2, get(ours2))
	}
	b.StopTimer()
	r, o, v2 := p50(tRef), p50(tOurs), p50(tV2)
	b.ReportMetric(us(o), "p50-us-ours-v3")
	b.ReportMetric(us(v2), "p50-us-ours-v2c")
	b.ReportMetric(us(r), "p50-us-snmpd-v3")
	b.ReportMetric(float64(o)/float64(r), "p50-ratio-v3")
	b.ReportMetric(float64(o)/float64(v2), "p50-v3-over-v2c")
}
