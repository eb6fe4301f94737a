package hierarchy

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// waitCounts polls the digests of ms until each holds as many records as
// the model says and returns how long that took; after within it fails
// with what each lagging node holds.
func (tr *tree) waitCounts(m *model, ms []*node, within time.Duration) time.Duration {
	tr.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		var lag []string
		for _, n := range ms {
			want := m.count(n)
			if got := tr.digest(n, "").Entries; got != uint64(want) {
				lag = append(lag, fmt.Sprintf("%s holds %d records, want %d", n.name(), got, want))
			}
		}
		if len(lag) == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			tr.t.Fatalf("not converged after %v:\n  %s", within, strings.Join(lag, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// countSample is a node's record count in a unit at one moment.
type countSample struct {
	at time.Time
	n  uint64
}

// sampleCount reads n's digest of unit every period until stop is closed.
// It runs off the test goroutine: a failed read is skipped, not fatal.
func (tr *tree) sampleCount(n *node, unit string, period time.Duration, stop <-chan struct{}) []countSample {
	var out []countSample
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		stdout, _, code, err := tr.cli(n, "digest", "-json", "-unit", unit)
		var d digest
		if err == nil && code == 0 && json.Unmarshal([]byte(stdout), &d) == nil {
			out = append(out, countSample{time.Now(), d.Entries})
		}
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
	}
}

// longestStall is the longest time the count stood still below want, and
// when that began.
func longestStall(s []countSample, want uint64) (time.Duration, time.Time) {
	var longest time.Duration
	var from time.Time
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1].n == s[i].n {
			j++
		}
		if s[i].n < want && j+1 < len(s) {
			if d := s[j+1].at.Sub(s[i].at); d > longest {
				longest, from = d, s[i].at
			}
		}
		i = j + 1
	}
	return longest, from
}

// logTime is the time of the first line of n's log holding every one of
// parts (logrus' time="..." field).
func logTime(n *node, parts ...string) (time.Time, bool) {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if !all {
			continue
		}
		if i := strings.Index(line, `time="`); i >= 0 {
			rest := line[i+len(`time="`):]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				if at, err := time.Parse(time.RFC3339Nano, rest[:j]); err == nil {
					return at, true
				}
			}
		}
	}
	return time.Time{}, false
}

// waitUntil polls cond (which returns what is still wrong, or "") until it
// holds, or fails with its last answer.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		e := cond()
		if e == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, within, e)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLog waits until a line of n's log contains every one of parts.
func waitLog(t *testing.T, n *node, within time.Duration, parts ...string) {
	t.Helper()
	waitUntil(t, within, fmt.Sprintf("%s logs a line with %q", n.name(), parts), func() string {
		b, err := os.ReadFile(n.log)
		if err != nil {
			return err.Error()
		}
		for _, line := range strings.Split(string(b), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return ""
			}
		}
		return "not yet"
	})
}
