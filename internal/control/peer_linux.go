package control

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// checkPeer refuses a connection whose listening process runs as anyone
// but root, the caller or owner (the socket's owner CheckSocket accepted):
// the socket file may have been replaced between the check and the dial.
func checkPeer(c net.Conn, owner uint32) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("control: peer credentials: %w", cerr)
	}
	if cred.Uid == 0 || cred.Uid == uint32(os.Geteuid()) || cred.Uid == owner {
		return nil
	}
	return fmt.Errorf("%w: the process listening on it runs as %s (pid %d), not as root, you or the socket's owner",
		ErrUntrusted, userName(cred.Uid), cred.Pid)
}
