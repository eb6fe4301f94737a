package election

import "time"

// Clock is the Elector's time source. Now must be the clock the
// Membership's LastHeard values come from (time.Now for rmtp).
type Clock interface {
	Now() time.Time
	// Mono is a monotonic reading shared by every process of the host
	// (CLOCK_MONOTONIC on Linux), logged with each role change so that a
	// takeover can be measured from the logs of separate processes.
	Mono() time.Duration
}

type systemClock struct{}

func (systemClock) Now() time.Time      { return time.Now() }
func (systemClock) Mono() time.Duration { return monotonic() }
