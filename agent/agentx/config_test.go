package agentx

import (
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/config"
)

func TestBackoffCappedAndJittered(t *testing.T) {
	limit := time.Second
	seen := map[time.Duration]bool{}
	for n := 0; n < 64; n++ {
		d := backoff(n, limit)
		if d > limit || d <= 0 {
			t.Fatalf("attempt %d: %v outside (0, %v]", n, d, limit)
		}
		if n >= 10 {
			if d < limit/2 {
				t.Fatalf("attempt %d: %v below half the cap", n, d)
			}
			seen[d] = true
		}
	}
	if len(seen) < 10 {
		t.Errorf("no jitter: %d distinct waits", len(seen))
	}
	if d := backoff(0, limit); d > reconnectMin {
		t.Errorf("first wait %v, want <= %v", d, reconnectMin)
	}
}

func TestParseSocket(t *testing.T) {
	for in, want := range map[string][2]string{
		"tcp:127.0.0.1:705":  {"tcp", "127.0.0.1:705"},
		"127.0.0.1:705":      {"tcp", "127.0.0.1:705"},
		"unix:/var/agentx/m": {"unix", "/var/agentx/m"},
		"/var/agentx/master": {"unix", "/var/agentx/master"},
	} {
		n, a, err := ParseSocket(in)
		if err != nil || n != want[0] || a != want[1] {
			t.Errorf("%q: %q %q %v", in, n, a, err)
		}
	}
	for _, bad := range []string{"", "unix:rel/path", "nonsense"} {
		if _, _, err := ParseSocket(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOpenTimeoutRounding(t *testing.T) {
	for d, want := range map[time.Duration]uint8{0: 0, 1400 * time.Millisecond: 1, 1600 * time.Millisecond: 2, time.Hour: 255} {
		if got := (Config{Timeout: d}).openTimeout(); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}

func TestFromConfig(t *testing.T) {
	d := config.Default()
	addr, err := config.ParseAddr("unix:/var/agentx/master")
	if err != nil {
		t.Fatal(err)
	}
	d.AgentX.Socket = addr
	c := FromConfig(d.AgentX)
	if c.Socket != "unix:/var/agentx/master" || c.Priority != 127 || c.ReconnectMax != time.Second || c.PingInterval != 5*time.Second {
		t.Errorf("%+v", c)
	}
	if n, a, err := ParseSocket(c.Socket); err != nil || n != "unix" || a != "/var/agentx/master" {
		t.Errorf("%q %q %v", n, a, err)
	}
}
