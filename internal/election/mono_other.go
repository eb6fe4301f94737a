//go:build !linux

package election

import "time"

var processStart = time.Now()

// monotonic falls back to time since process start where CLOCK_MONOTONIC
// is not read: comparable within one process only.
func monotonic() time.Duration { return time.Since(processStart) }
