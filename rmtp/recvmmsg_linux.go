package rmtp

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: the kernel's msghdr and the length it read.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgReader reads with recvmmsg itself rather than through x/net's
// ReadBatch, which allocates a net.UDPAddr per datagram and repacks its
// headers on every call: the headers, vectors and address slots here are
// built once and point at recvBatch's buffers for good.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
}

func newMmsgReader(c *net.UDPConn, bufs [][]byte) (*mmsgReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &mmsgReader{rc: rc, hdrs: make([]mmsghdr, len(bufs)), iovs: make([]unix.Iovec, len(bufs)),
		names: make([]unix.RawSockaddrInet4, len(bufs))}
	for i, b := range bufs {
		r.iovs[i].Base = &b[0]
		r.iovs[i].SetLen(len(b))
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
	}
	return r, nil
}

// read blocks (in the runtime's poller, not the kernel) until at least
// one datagram is waiting, then takes up to k of them in one system call
// and reports each one's length and source in lens and froms.
func (r *mmsgReader) read(k int, lens []int, froms []netip.AddrPort) (int, error) {
	for i := range k {
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		r.hdrs[i].hdr.Flags = 0
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		// The socket is O_NONBLOCK: an empty queue returns EAGAIN at once.
		got, _, e := syscall.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(k), 0, 0, 0)
		if e == unix.EAGAIN {
			return false // wait for the poller
		}
		n, errno = int(got), e
		return true
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	for i := range n {
		lens[i] = int(r.hdrs[i].n)
		froms[i] = netip.AddrPort{}
		if r.hdrs[i].hdr.Namelen >= unix.SizeofSockaddrInet4 && r.names[i].Family == unix.AF_INET {
			p := (*[2]byte)(unsafe.Pointer(&r.names[i].Port))
			froms[i] = netip.AddrPortFrom(netip.AddrFrom4(r.names[i].Addr), uint16(p[0])<<8|uint16(p[1]))
		}
	}
	return n, nil
}
