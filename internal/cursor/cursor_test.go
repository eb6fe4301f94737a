package cursor

import (
	"errors"
	"testing"
)

var errShort = errors.New("test: truncated")

func TestReads(t *testing.T) {
	r := Reader{B: []byte{1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 9}, Short: errShort}
	if a, b, c, d := r.U8(), r.U16(), r.U32(), r.U64(); a != 1 || b != 2 || c != 3 || d != 4 || r.Err != nil {
		t.Fatalf("read %d %d %d %d, %v", a, b, c, d, r.Err)
	}
	if len(r.B) != 1 {
		t.Fatalf("%d bytes left, want 1", len(r.B))
	}
	// A short read sticks: it and everything after it read zero.
	if v := r.U16(); v != 0 || !errors.Is(r.Err, errShort) || r.B != nil {
		t.Fatalf("short read %d, err %v, left %v", v, r.Err, r.B)
	}
	first := r.Err
	if v := r.U8(); v != 0 || r.Err != first || r.Take(0) != nil {
		t.Fatalf("read after the error: %d, err %v", v, r.Err)
	}
}

// Every cut of a layout fails with the Short error, never a panic.
func TestTruncated(t *testing.T) {
	b := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	for n := range len(b) {
		r := Reader{B: b[:n], Short: errShort}
		r.U8()
		r.U16()
		r.U32()
		r.U64()
		if !errors.Is(r.Err, errShort) {
			t.Errorf("%d of %d bytes: err %v", n, len(b), r.Err)
		}
	}
}
