// Package waitfor is the tests' one way to wait for a condition: poll it,
// less often as time passes, and fail the test if it does not hold in
// time. The limit only guards against a hang; it is never a performance
// assertion (the machines that run the tests are shared and noisy).
package waitfor

import (
	"testing"
	"time"
)

// maxPause bounds the pause between two polls: a condition that holds
// is seen at most this late, however long the wait.
const maxPause = 25 * time.Millisecond

// True polls cond until it holds. Past within, it fails t (Fatal),
// naming what was waited for.
func True(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPause)
	}
}
