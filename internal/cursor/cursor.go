// Package cursor is the bounds-checked big-endian reader of the wire codecs
// (rmtp/wire, directory/wire). Each read takes bytes off the front of what
// is left; the first read that finds too few sets the error, and every read
// after an error returns zero values, so a decoder reads a whole layout and
// checks the error once. It is pure: bytes in, numbers out.
package cursor

import (
	"encoding/binary"
	"fmt"
)

// Reader reads B. A codec embeds it and adds the reads of its own types.
type Reader struct {
	B   []byte // what is left
	Err error  // the first error; a decoder sets its own only when Err is nil
	// Short is what a short read's error wraps (the codec's ErrTruncated).
	Short error
}

// Take returns the next n bytes, a view of B, or nil once Err is set.
func (r *Reader) Take(n int) []byte {
	if r.Err != nil {
		return nil
	}
	if len(r.B) < n {
		r.Err = fmt.Errorf("%w: need %d bytes, have %d", r.Short, n, len(r.B))
		r.B = nil
		return nil
	}
	v := r.B[:n]
	r.B = r.B[n:]
	return v
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	if v := r.Take(1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 {
	if v := r.Take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	if v := r.Take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	if v := r.Take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}
