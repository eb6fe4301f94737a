package rmtp

import "testing"

func TestReplayWindow(t *testing.T) {
	var w replayWin
	steps := []struct {
		seq  uint64
		want bool
	}{
		{0, false},            // never valid
		{1, true}, {1, false}, // exact replay
		{3, true}, {2, true}, {2, false}, // late but inside the window, once
		{1000, true}, {500, true}, {500, false},
		{1000 + replayWindow, true},
		{1000, false}, // slid out of the window
		{1001, true},  // still inside
		{5000 + 3*replayWindow, true},
		{5000 + 2*replayWindow, false}, // far behind after a big jump
	}
	for i, s := range steps {
		if got := w.accept(s.seq); got != s.want {
			t.Errorf("step %d: accept(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
}
