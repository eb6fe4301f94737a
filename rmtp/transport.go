package rmtp

import (
	"errors"
	"net/netip"
)

// Dest is a message's destination group. Append-only: it is on the wire
// (FlagUp).
type Dest uint8

// Destinations (DESIGN.md §4).
const (
	// Down is the farm group: every member (requests, repairs, NAKs,
	// aborts, manager heartbeats, views, managers' ACK vectors).
	Down Dest = 0
	// Up is the managers' group: SM and BSMs only (SE heartbeats, SE
	// ACKs, responses, directory updates from SEs).
	Up Dest = 1
)

func (d Dest) String() string {
	switch d {
	case Down:
		return "down"
	case Up:
		return "up"
	}
	return "Dest(?)"
}

// Datagram is one received datagram. Data is owned by the receiver.
type Datagram struct {
	Data []byte
	From netip.AddrPort
}

// Transport moves datagrams. The endpoint's state machines see the network
// only through it, so they run the same over real UDP multicast, over
// unicast UDP between LANs, and over memnet's lossy in-memory network.
//
// Send may be called concurrently, and concurrently with Recv; Recv is
// called by one goroutine at a time. Close must unblock Recv. Send and
// SendTo must not keep b once they return: the endpoint reuses the
// buffers of a large message's datagrams for the next one.
type Transport interface {
	// Send sends one datagram to a group (in unicast mode: to every
	// configured peer). A lost datagram is not an error.
	Send(to Dest, b []byte) error
	// SendTo sends one datagram to a single peer.
	SendTo(to netip.AddrPort, b []byte) error
	// Recv blocks for the next datagram; after Close it returns
	// ErrClosed.
	Recv() (Datagram, error)
	// MaxDatagram is the largest datagram that travels unfragmented.
	MaxDatagram() int
	// LocalAddr is the unicast address advertised in HELLO, or zero.
	LocalAddr() netip.AddrPort
	// Close releases the transport.
	Close() error
}

// ErrClosed is returned by a closed Transport or Endpoint.
var ErrClosed = errors.New("rmtp: closed")
