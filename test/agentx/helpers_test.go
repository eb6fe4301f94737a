package agentxe2e

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

type treeSet map[string]*agent.Tree

func (s treeSet) Names() []string              { return slices.Sorted(maps.Keys(s)) }
func (s treeSet) Tree(name string) *agent.Tree { return s[name] }

// runSubagent connects a subagent serving trees to snmpd and waits for its
// session.
func runSubagent(t testing.TB, sd *snmpdtest.Snmpd, trees treeSet) *agentx.Subagent {
	t.Helper()
	sa := agentx.New(agentx.Config{Socket: sd.AgentX}, trees, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sa.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("subagent did not stop")
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := sa.WaitOpen(wctx); err != nil {
		t.Fatalf("no session: %v\n%s", err, sd.Log())
	}
	return sa
}

func v2client(t testing.TB, port int, community string) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(port), Community: community,
		Version: gosnmp.Version2c, Timeout: 5 * time.Second, MaxOids: 1000, MaxRepetitions: 25}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

func dotted(o smi.OID) string { return "." + o.String() }
