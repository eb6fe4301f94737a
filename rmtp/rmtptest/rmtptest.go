// Package rmtptest gives tests of rmtp and of the packages built on it
// (fanout, directory) what they need to run real multicast on loopback
// without hearing each other: a fresh pair of groups on a free port, and a
// random group key.
package rmtptest

import (
	"crypto/rand"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Groups picks a farm group and a managers' group (239.255.x.1 and .2, x
// random) on a UDP port that was free a moment ago, so concurrent test runs
// of different packages on one host do not cross-talk.
func Groups(t testing.TB) (down, up netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	x := byte(mrand.IntN(200) + 10)
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, x, 1}), port),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, x, 2}), port)
}

// Keys returns a key ring holding one random 32-byte key with id 1.
func Keys(t testing.TB) *rmtp.Keyring {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	kr, err := wire.NewKeyring(1, map[uint16][]byte{1: k})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
