package leaktest

import (
	"testing"
)

// fakeT records whether Check failed the test.
type fakeT struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) end() {
	for _, c := range f.cleanups {
		c()
	}
}

func TestCheckSeesALeakAndNoFalseAlarm(t *testing.T) {
	clean := &fakeT{TB: t}
	Check(clean, "leaktest")
	done := make(chan struct{})
	go func() { <-done }()
	close(done)
	clean.end()
	if clean.failed {
		t.Error("a goroutine that ended was reported as a leak")
	}

	leaky := &fakeT{TB: t}
	Check(leaky, "leaktest")
	stop := make(chan struct{})
	go func() { <-stop }()
	leaky.end() // waits up to 5 s, then reports
	close(stop)
	if !leaky.failed {
		t.Error("a goroutine still running was not reported")
	}
}
