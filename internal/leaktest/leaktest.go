// Package leaktest checks, in tests, that the goroutines a test started
// are gone when it ends: every component of smsnmpd that starts goroutines
// must stop them in Close.
package leaktest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the number of goroutines now and, when the test ends,
// waits (at most 5 s) for it to come back down; otherwise it fails the test
// and prints the stacks that mention ours (a substring of the stack, such
// as "smsnmpd/rmtp").
func Check(t testing.TB, ours string) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				var stacks []string
				for _, g := range strings.Split(string(buf), "\n\n") {
					if strings.Contains(g, ours) {
						stacks = append(stacks, g)
					}
				}
				t.Errorf("goroutine leak: %d before, %d after:\n%s", before, n, strings.Join(stacks, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
