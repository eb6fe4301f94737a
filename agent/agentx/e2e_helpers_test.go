package agentx_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/internal/snmpdtest"
)

// rig is a real snmpd with our subagent registered on it.
type rig struct {
	snmpd *snmpdtest.Snmpd
	tree  *agenttest.Tree
	ctxs  treeSet
	sa    *agentx.Subagent
	log   *logBuffer
	stop  func()
}

type logBuffer struct {
	strings.Builder
	mu chanMutex
}

type chanMutex chan struct{}

func (m chanMutex) Lock()   { m <- struct{}{} }
func (m chanMutex) Unlock() { <-m }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Builder.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Builder.String()
}

func testLogger(t testing.TB) (logrus.FieldLogger, *logBuffer) {
	buf := &logBuffer{mu: make(chanMutex, 1)}
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	var w io.Writer = buf
	l.SetOutput(w)
	return l, buf
}

type rigOptions struct {
	snmpd    snmpdtest.Options
	tree     agenttest.Options
	cfg      agentx.Config
	contexts map[string]*agent.Tree // extra contexts
	// serve, when set, wraps the agenttest tree into the default context's
	// tree (benchmarks add objects beside it).
	serve func(*agent.Tree) *agent.Tree
}

func startRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{snmpd: snmpdtest.Start(t, o.snmpd), tree: agenttest.New(o.tree)}
	def := r.tree.Tree
	if o.serve != nil {
		def = o.serve(def)
	}
	r.ctxs = contextsWith(def, o.contexts)
	cfg := o.cfg
	cfg.Socket = r.snmpd.AgentX
	log, buf := testLogger(t)
	r.log = buf
	r.sa = agentx.New(cfg, r.ctxs, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.sa.Run(ctx) }()
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after cancel")
		}
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("subagent log:\n%s", r.log.String())
			t.Logf("snmpd log:\n%s", tail(r.snmpd.Log(), 4000))
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := r.sa.WaitOpen(wctx); err != nil {
		t.Fatalf("subagent never opened a session: %v\n%s", err, r.log.String())
	}
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (r *rig) client(t testing.TB, community string) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{
		Target: "127.0.0.1", Port: uint16(r.snmpd.Port), Community: community,
		Version: gosnmp.Version2c, Timeout: 5 * time.Second, Retries: 0, MaxOids: 1000,
	}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}
