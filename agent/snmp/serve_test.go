package snmp

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
)

// served is an agent serving on a loopback port until the test ends.
type served struct {
	*harness
	addr *net.UDPAddr
	done chan error
	stop context.CancelFunc
}

func serve(t testing.TB, cfg Config) *served {
	t.Helper()
	h := newHarness(t, cfg)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{harness: h, addr: conn.LocalAddr().(*net.UDPAddr), done: make(chan error, 1), stop: cancel}
	go func() { s.done <- h.a.Serve(ctx, conn) }()
	t.Cleanup(func() {
		s.shutdown(t)
		conn.Close()
	})
	return s
}

func (s *served) shutdown(t testing.TB) {
	s.stop()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.done <- nil // later calls return at once
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return after cancel")
	}
}

func (s *served) client(t testing.TB, community string, v gosnmp.SnmpVersion) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(s.addr.Port), Community: community, Version: v,
		Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

func TestServeParallel(t *testing.T) {
	s := serve(t, testConfig())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := 0; c < 8; c++ {
		g := s.client(t, "public", gosnmp.Version2c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				idx := agenttest.SparseIndex(i)
				oid := "." + agenttest.SparseTable.Append(1, idx).String()
				p, err := g.Get([]string{oid})
				if err != nil {
					errs <- err
					return
				}
				if len(p.Variables) != 1 || p.Variables[0].Value != int(idx) {
					errs <- errors.New("wrong answer " + p.Variables[0].Name)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A worker counts a response after sending it, so the client may see
	// the last answer a moment before the counter moves.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := s.a.Counters()
		if c.InPkts == 400 && c.OutResponses == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v, want 400 in and 400 out", c)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServeBadCommunityNoAnswer(t *testing.T) {
	s := serve(t, testConfig())
	g := s.client(t, "wrong", gosnmp.Version2c)
	g.Timeout, g.Retries = 300*time.Millisecond, 0
	if _, err := g.Get([]string{"." + agenttest.ScalarInt.Append(0).String()}); err == nil {
		t.Fatal("answered a bad community")
	}
	if c := s.a.Counters(); c.InBadCommunityNames != 1 || c.OutResponses != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestServeStopsCleanly: Serve returns on cancel and leaves no goroutine.
func TestServeStopsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		h := newHarness(t, testConfig())
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.a.Serve(ctx, conn) }()
		// Make sure it serves before stopping it.
		g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(conn.LocalAddr().(*net.UDPAddr).Port), Community: "public",
			Version: gosnmp.Version2c, Timeout: 2 * time.Second, Retries: 2}
		if err := g.Connect(); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Get([]string{"." + agenttest.ScalarInt.Append(0).String()}); err != nil {
			t.Fatal(err)
		}
		g.Conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
		conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestListenAndServe covers the convenience entry point and a datagram
// above MaxDatagram (possible over IPv6 loopback; here only the counter
// path through a short one is exercised by TestDropped).
func TestListenAndServe(t *testing.T) {
	h := newHarness(t, testConfig())
	// Find a free port, then serve on it.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.a.ListenAndServe(ctx, addr) }()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(c.LocalAddr().(*net.UDPAddr).Port), Community: "public",
		Version: gosnmp.Version2c, Timeout: 500 * time.Millisecond, Retries: 10}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	// The listener starts asynchronously: until it does, the kernel
	// refuses the datagrams (ICMP), so retry a bounded number of times.
	var p *gosnmp.SnmpPacket
	for i := 0; i < 50; i++ {
		if p, err = g.Get([]string{"." + agenttest.ScalarC64.Append(0).String()}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if p.Variables[0].Type != gosnmp.Counter64 || p.Variables[0].Value != agenttest.C64Base {
		t.Errorf("got %v", p.Variables[0])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("empty config: %v", err)
	}
}
