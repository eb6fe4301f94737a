package logging

import (
	"sync"
	"testing"
	"time"
)

// One event through at once, then none until Every has passed, which
// brings the count of those held back.
func TestLimit(t *testing.T) {
	l := &Limit{Every: time.Minute}
	t0 := time.Unix(1000, 0)
	if ok, held := l.AllowAt(t0); !ok || held != 0 {
		t.Fatalf("first event: %v %d", ok, held)
	}
	for i := range 2000 {
		if ok, _ := l.AllowAt(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatalf("event %d let through within the minute", i)
		}
	}
	if ok, held := l.AllowAt(t0.Add(time.Minute)); !ok || held != 2000 {
		t.Fatalf("after a minute: %v, held %d, want 2000", ok, held)
	}
	if ok, held := l.AllowAt(t0.Add(3 * time.Minute)); !ok || held != 0 {
		t.Fatalf("a quiet minute later: %v, held %d", ok, held)
	}
}

func TestLimitZeroValueAndConcurrency(t *testing.T) {
	var l Limit
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow(); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if passed != 1 {
		t.Errorf("%d of 800 events passed within DefaultLimitEvery, want 1", passed)
	}
}
