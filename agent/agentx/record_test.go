package agentx_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// TestRecordSnmpdPDUs drives a real snmpd through every exchange the
// subagent has with it and writes the PDUs, as snmpd sent and received
// them, to pdu/testdata/snmpd/ (decoded there by ordinary unit tests):
//
//	SMSNMPD_RECORD=1 go test -run RecordSnmpdPDUs ./agent/agentx/
func TestRecordSnmpdPDUs(t *testing.T) {
	if os.Getenv("SMSNMPD_RECORD") == "" {
		t.Skip("set SMSNMPD_RECORD=1 to re-record pdu/testdata/snmpd from a real snmpd")
	}
	trapd := snmpdtest.StartTrapd(t)
	sd := snmpdtest.Start(t, snmpdtest.Options{TrapSinks: []string{trapd.Addr},
		Communities: []snmpdtest.Community{{Name: "ctxcomm", Context: "ctx1"}}})
	proxy := startProxy(t, sd.AgentX)
	tree := agenttest.New(agenttest.Options{})
	other := agent.NewTree()
	if err := other.RegisterScalar(smi.OID{1, 3, 6, 1, 4, 1, 8072, 9999, 4243, 1}, agent.Const(smi.Integer(5))); err != nil {
		t.Fatal(err)
	}
	set := &lockedTrees{m: treeSet{"": tree.Tree, "ctx1": other}}
	sa := agentx.New(agentx.Config{Socket: proxy.Addr, PingInterval: 200 * time.Millisecond}, set, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sa.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := sa.WaitOpen(wctx); err != nil {
		t.Fatal(err)
	}
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(sd.Port), Community: "private", Version: gosnmp.Version2c,
		Timeout: 5 * time.Second, MaxOids: 200}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	var many []string
	for i := uint32(1); i <= 10; i++ {
		many = append(many, "."+agenttest.CallbackRoot.Append(i, 0).String())
	}
	many = append(many, "."+agenttest.ScalarC64.Append(0).String(), "."+agenttest.ScalarIP.Append(0).String(),
		"."+agenttest.ScalarOID.Append(0).String(), "."+agenttest.ScalarString.Append(0).String())
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.Get(many))
	must(g.GetNext([]string{"." + agenttest.ScalarInt.String(), "." + agenttest.SparseTable.String()}))
	must(g.GetBulk([]string{"." + agenttest.TwoIndexTable.String()}, 0, 3))
	must(g.Set([]gosnmp.SnmpPDU{{Name: "." + agenttest.WritableInt.Append(0).String(), Type: gosnmp.Integer, Value: 5}}))
	must(g.Set([]gosnmp.SnmpPDU{{Name: "." + agenttest.CommitFails.Append(0).String(), Type: gosnmp.Integer, Value: 13}}))
	gc := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(sd.Port), Community: "ctxcomm", Version: gosnmp.Version2c,
		Timeout: 5 * time.Second}
	if err := gc.Connect(); err != nil {
		t.Fatal(err)
	}
	defer gc.Conn.Close()
	must(gc.Get([]string{".1.3.6.1.4.1.8072.9999.4243.1.0"}))
	if err := sa.Notify(ctx, agenttest.Base.Append(0, 1), []smi.VarBind{{Name: agenttest.ScalarInt.Append(0), Value: smi.Integer(42)}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // one Ping
	set.remove("ctx1")
	if err := sa.Sync(ctx); err != nil { // an Unregister
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join("pdu", "testdata", "snmpd")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	var reqType = map[uint32]pdu.Type{} // packet id -> request type, to name responses
	for _, s := range proxy.Seen() {
		dirn := "master"
		if s.ToMaster {
			dirn = "subagent"
		}
		name := dirn + "-" + s.Header.Type.String()
		if s.Header.Type == pdu.TypeResponse {
			name += "-to-" + reqType[s.Header.PacketID].String()
		} else {
			reqType[s.Header.PacketID] = s.Header.Type
		}
		if s.Header.Flags&pdu.FlagNonDefaultContext != 0 {
			name += "-context"
		}
		p, err := pdu.Decode(s.Raw)
		if err != nil {
			t.Fatalf("%s does not decode: %v", name, err)
		}
		if g, ok := p.PDU.(*pdu.Get); ok && len(g.Ranges) > 1 {
			name += fmt.Sprintf("-%dranges", len(g.Ranges))
		}
		if written[name] {
			continue
		}
		written[name] = true
		if err := os.WriteFile(filepath.Join(dir, name+".hex"), []byte(hex.EncodeToString(s.Raw)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recorded %d PDU kinds: %s", len(written), strings.Join(keys(written), " "))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
