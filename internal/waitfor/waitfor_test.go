package waitfor

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a Fatalf instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	if len(args) > 0 {
		f.failed = args[0].(string)
	}
}

func TestTrue(t *testing.T) {
	var n atomic.Int32
	True(t, 5*time.Second, "the third poll", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Errorf("polled %d times, want 3", n.Load())
	}
	f := &fakeT{TB: t}
	calls := 0
	True(f, 30*time.Millisecond, "never", func() bool {
		calls++
		return f.failed != "" // Fatalf only records: end the loop once it is called
	})
	if !strings.Contains(f.failed, "never") || calls < 2 {
		t.Errorf("a condition that never holds: failed %q after %d polls", f.failed, calls)
	}
}
