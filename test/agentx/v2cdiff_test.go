package agentxe2e

import (
	"context"
	"net"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/agent/snmp/snmptest"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// The same agenttest tree served by snmpd + our subagent and by the
// built-in v2c agent gives identical answers to identical requests: a
// GETBULK walk of the whole tree, GETNEXT walks, a 128-varbind GET and a
// multi-varbind GETNEXT inside the tree.
func TestDifferentialAgentXvsV2C(t *testing.T) {
	tree := agenttest.New(agenttest.Options{})
	sd := snmpdtest.Start(t, snmpdtest.Options{})
	runSubagent(t, sd, treeSet{"": tree.Tree})

	ctxs, err := snmptest.Contexts(agenttest.Base, tree.Tree)
	if err != nil {
		t.Fatal(err)
	}
	va, err := snmp.New(snmp.Config{ROCommunity: config.NewSecret("public")}, ctxs, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- va.Serve(ctx, conn) }()
	t.Cleanup(func() { cancel(); conn.Close(); <-served })

	viaSnmpd := v2client(t, sd.Port, "public")
	builtin := v2client(t, conn.LocalAddr().(*net.UDPAddr).Port, "public")

	walk := func(g *gosnmp.GoSNMP, bulk bool, root smi.OID) []gosnmp.SnmpPDU {
		var out []gosnmp.SnmpPDU
		f := g.Walk
		if bulk {
			f = g.BulkWalk
		}
		if err := f(dotted(root), func(v gosnmp.SnmpPDU) error { out = append(out, v); return nil }); err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
		return out
	}
	same := func(what string, a, b []gosnmp.SnmpPDU) {
		t.Helper()
		if len(a) != len(b) {
			t.Errorf("%s: snmpd+agentx %d varbinds, v2c %d", what, len(a), len(b))
		}
		for i := range min(len(a), len(b)) {
			if a[i].Name != b[i].Name || a[i].Type != b[i].Type || !equalValue(a[i].Value, b[i].Value) {
				t.Errorf("%s: varbind %d: snmpd+agentx %s %v %v, v2c %s %v %v", what, i,
					a[i].Name, a[i].Type, a[i].Value, b[i].Name, b[i].Type, b[i].Value)
				return
			}
		}
	}
	same("bulkwalk", walk(viaSnmpd, true, agenttest.Base), walk(builtin, true, agenttest.Base))
	for _, root := range []smi.OID{agenttest.Base.Append(1), agenttest.CallbackRoot, agenttest.Base.Append(6), agenttest.EmptyTable1} {
		same("walk "+root.String(), walk(viaSnmpd, false, root), walk(builtin, false, root))
	}
	var names []string
	for i := 0; len(names) < 128; i++ {
		names = append(names, dotted(agenttest.SparseTable.Append(uint32(1+i%4), uint32(i+1))))
	}
	ga, err := viaSnmpd.Get(names)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := builtin.Get(names)
	if err != nil {
		t.Fatal(err)
	}
	same("GET 128", ga.Variables, gb.Variables)
	next := []string{dotted(agenttest.ScalarInt), dotted(agenttest.EmptyTable1), dotted(agenttest.SparseTable.Append(4, 3)),
		dotted(agenttest.TwoIndexTable.Append(2)), dotted(agenttest.CallbackRoot.Append(100, 20))}
	na, err := viaSnmpd.GetNext(next)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := builtin.GetNext(next)
	if err != nil {
		t.Fatal(err)
	}
	same("GETNEXT", na.Variables, nb.Variables)
}

func equalValue(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && string(ab) == string(bb)
	}
	return a == b
}
