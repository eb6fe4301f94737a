package agentxe2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// The shipped fragment works: loaded into a real snmpd (its socket lines
// replaced by the test's own, its source network by 127.0.0.1), its SNMPv3
// user reaches the default and an SE context, and its context-mapped v2c
// community reaches the SE context.
func TestEtcSnmpdAgentxConf(t *testing.T) {
	raw, err := os.ReadFile("../../etc/snmpd-agentx.conf")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(raw), "\n") {
		if regexp.MustCompile(`^(master|agentXSocket|agentXPerms|agentXTimeout|agentXRetries)\b`).MatchString(l) {
			continue
		}
		keep = append(keep, strings.ReplaceAll(l, "192.0.2.0/24", "127.0.0.1"))
	}
	sd := snmpdtest.Start(t, snmpdtest.Options{Extra: strings.Join(keep, "\n")})
	def, se3 := agent.NewTree(), agent.NewTree()
	defObj, seObj := smi.MustParseOID("1.3.6.1.4.1.8072.9999.4245.1"), smi.MustParseOID("1.3.6.1.4.1.8072.9999.4245.2")
	def.RegisterScalar(defObj, agent.Const(smi.String("default")))
	se3.RegisterScalar(seObj, agent.Const(smi.String("se3")))
	runSubagent(t, sd, treeSet{"": def, "se3": se3})

	v3 := func(context string) *gosnmp.GoSNMP {
		g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(sd.Port), Version: gosnmp.Version3, Timeout: 5 * time.Second,
			SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv, ContextName: context,
			SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "smadmin",
				AuthenticationProtocol: gosnmp.SHA, AuthenticationPassphrase: "change-this-auth-pass",
				PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: "change-this-priv-pass"}}
		if err := g.Connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Conn.Close() })
		return g
	}
	check := func(what string, g *gosnmp.GoSNMP, oid smi.OID, want string) {
		t.Helper()
		res, err := g.Get([]string{dotted(oid.Append(0))})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		v := res.Variables[0]
		if v.Type != gosnmp.OctetString || string(v.Value.([]byte)) != want {
			t.Errorf("%s: %v %v, want %q", what, v.Type, v.Value, want)
		}
	}
	check("v3 default context", v3(""), defObj, "default")
	check("v3 context se3", v3("se3"), seObj, "se3")
	check("v2c community", v2client(t, sd.Port, "change-this-community"), defObj, "default")
	check("v2c community mapped to se3", v2client(t, sd.Port, "change-this-community-se3"), seObj, "se3")
}
