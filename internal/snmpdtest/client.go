package snmpdtest

import (
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Client returns a connected SNMPv2c gosnmp client for s with a 5 s
// timeout and no retries (a test should see a lost answer, not hide it),
// closed when the test ends.
func (s *Snmpd) Client(t testing.TB, community string) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{
		Target: "127.0.0.1", Port: uint16(s.Port), Community: community,
		Version: gosnmp.Version2c, Timeout: 5 * time.Second, MaxOids: 1000, MaxRepetitions: 25,
	}
	connect(t, g)
	return g
}

// ClientV3 returns a connected SNMPv3 authPriv client (SHA, AES) for user u
// in u's context.
func (s *Snmpd) ClientV3(t testing.TB, u User) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{
		Target: "127.0.0.1", Port: uint16(s.Port), Version: gosnmp.Version3, Timeout: 5 * time.Second,
		SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv, ContextName: u.Context,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: u.Name,
			AuthenticationProtocol: gosnmp.SHA, AuthenticationPassphrase: u.AuthPass,
			PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: u.PrivPass},
		MaxOids: 1000, MaxRepetitions: 25,
	}
	connect(t, g)
	return g
}

func connect(t testing.TB, g *gosnmp.GoSNMP) {
	t.Helper()
	if err := g.Connect(); err != nil {
		t.Fatalf("snmpdtest: connect: %v", err)
	}
	t.Cleanup(func() { g.Conn.Close() })
}
