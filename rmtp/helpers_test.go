package rmtp_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/internal/leaktest"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// fastConfig shortens the membership timers so tests about joining and
// dying take tens of milliseconds, not seconds. DownAfter is generous: the
// test machine is shared and a busy scheduler must not look like a death.
func fastConfig(id rmtp.NodeID, role rmtp.Role) rmtp.Config {
	return rmtp.Config{Node: id, Role: role, Insecure: true, HelloInterval: 20 * time.Millisecond, DownAfter: 15}
}

// lenientDown keeps loaded test machines from declaring live members down
// in tests that are about delivery, not membership.
const lenientDown = 50

// cluster is one manager (node 1) and n engines (nodes 101..) on a memnet.
type cluster struct {
	t       testing.TB
	net     *memnet.Network
	mgr     *rmtp.Endpoint
	engines []*rmtp.Endpoint
	nodes   []*memnet.Node
}

func newCluster(t testing.TB, n int, f memnet.Faults, mutate func(*rmtp.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: memnet.New(1472)}
	mk := func(id rmtp.NodeID, role rmtp.Role, faults memnet.Faults) *rmtp.Endpoint {
		cfg := fastConfig(id, role)
		if mutate != nil {
			mutate(&cfg)
		}
		nd := c.net.Attach(role == rmtp.Manager, faults, uint64(id))
		c.nodes = append(c.nodes, nd)
		e, err := rmtp.New(nd, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	c.mgr = mk(1, rmtp.Manager, memnet.Faults{})
	for i := range n {
		c.engines = append(c.engines, mk(rmtp.NodeID(101+i), rmtp.Engine, f))
	}
	waitfor.True(t, 5*time.Second, "manager sees every engine", func() bool { return livePeers(c.mgr) == n })
	return c
}

func livePeers(e *rmtp.Endpoint) int {
	n := 0
	for _, p := range e.Stats().Peers {
		if p.State == rmtp.PeerAlive && p.Role != 0 {
			n++
		}
	}
	return n
}

func payload(rng *rand.Rand, i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(rng.Uint32())
	}
	if size >= 4 {
		copy(b, fmt.Sprintf("%04d", i%10000))
	}
	return b
}

// collect receives want messages from e and checks they are exactly the
// expected payloads in order.
func collect(ctx context.Context, e *rmtp.Endpoint, from rmtp.NodeID, want [][]byte) error {
	for i := 0; i < len(want); i++ {
		m, err := e.Receive(ctx)
		if err != nil {
			return fmt.Errorf("node %d: message %d of %d: %w", e.Node(), i, len(want), err)
		}
		if m.From != from || m.Kind != rmtp.KindData {
			i--
			continue
		}
		if m.ID != uint64(i+1) {
			return fmt.Errorf("node %d: got id %d at position %d", e.Node(), m.ID, i)
		}
		if !bytes.Equal(m.Payload, want[i]) {
			return fmt.Errorf("node %d: message %d differs (%d bytes, want %d)", e.Node(), i, len(m.Payload), len(want[i]))
		}
		// Its buffer carries a later message: a reused buffer not
		// filled completely, or released too early, fails the check.
		m.Release()
	}
	return nil
}

// checkNoLeak fails if goroutines started by the test outlive it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	leaktest.Check(t, "smsnmpd/rmtp")
}

// needRoot skips (or, under CI=true, fails) a test that needs root.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root (%s) and CI=true forbids skipping", why)
	}
	t.Skipf("needs root: %s", why)
}

// testLogger sends warnings and state changes to the test log.
func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(tlogWriter{t})
	l.SetLevel(logrus.InfoLevel)
	return l
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// answerRequests has e answer every request with answer (StartReply,
// inline) until the test ends.
func answerRequests(t *testing.T, e *rmtp.Endpoint, answer []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := e.Receive(ctx)
			if err != nil {
				return
			}
			if m.Kind == rmtp.KindRequest {
				_, _ = e.StartReply(ctx, m, answer)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}
