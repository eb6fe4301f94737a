package agentx_test

import (
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/agentx/pdu"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// startRawFloorResponder is startFloorResponder as a C subagent does it:
// a blocking socket, read and written with plain syscalls by one goroutine
// locked to its thread, so no network poller and no scheduler stand
// between the kernel's wake-up and the answer. It is the floor of a
// subagent in any language.
func startRawFloorResponder(b *testing.B, socket string, oid smi.OID) bool {
	network, address, err := agentx.ParseSocket(socket)
	if err != nil {
		b.Fatal(err)
	}
	var fd int
	var sa syscall.Sockaddr
	if network == "unix" {
		fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		sa = &syscall.SockaddrUnix{Name: address}
	} else {
		ap, perr := netip.ParseAddrPort(address)
		if perr != nil {
			b.Fatal(perr)
		}
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if err != nil {
		b.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "floor") // owns fd from here
	if err := syscall.Connect(fd, sa); err != nil {
		f.Close()
		b.Fatal(err)
	}
	if network != "unix" {
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	tv := syscall.Timeval{Sec: 5}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	canned := floorSession(b, rawFD(fd), oid)
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{})
	done := make(chan struct{})
	b.Cleanup(func() {
		syscall.Shutdown(fd, syscall.SHUT_RDWR) // wakes the blocked read
		<-done
		f.Close()
	})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		buf := make([]byte, 64<<10)
		have := 0
		for {
			for have < pdu.HeaderLength || have < pdu.HeaderLength+int(binary.BigEndian.Uint32(buf[16:])) {
				if have == len(buf) {
					return
				}
				n, err := syscall.Read(fd, buf[have:])
				if err == syscall.EINTR {
					continue
				}
				if err != nil || n == 0 {
					return
				}
				have += n
			}
			n := pdu.HeaderLength + int(binary.BigEndian.Uint32(buf[16:]))
			copy(canned[8:16], buf[8:16])
			if _, err := syscall.Write(fd, canned); err != nil {
				return
			}
			have = copy(buf, buf[n:have])
		}
	}()
	return true
}

// rawFD is a blocking descriptor as an io.ReadWriter.
type rawFD int

func (fd rawFD) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (fd rawFD) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := syscall.Write(int(fd), p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}
