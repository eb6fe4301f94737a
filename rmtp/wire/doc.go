// Package wire is rmtp's pure codec: the fixed datagram header, the bodies
// of the control types (ACK, NAK, ABORT, ABORT_ACK, HELLO, VIEW), the ref
// that opens a response, and HMAC-SHA256 signing with a key ring. Bytes in,
// structs out: no I/O, no clock, no logging, no state beyond immutable keys.
// Every count and length read off the wire is checked against a named cap
// before anything is allocated. The byte layout is documented in package
// rmtp; sessions, timers and membership live there too.
package wire
