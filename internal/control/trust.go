package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrUntrusted refuses a control socket that someone other than root or
// the caller could have put there: a local user who creates the socket
// first (a predictable path in /tmp) would otherwise answer root's
// lookup. Nothing was sent.
var ErrUntrusted = errors.New("control: untrusted control socket")

// CheckSocket decides, before anything is sent, whether the socket at
// path (symbolic links resolved) may be trusted, and returns the path to
// dial and the socket's owner. It is trusted when
//
//   - it belongs to root or to the caller (effective uid), in a directory
//     of root or the caller that others cannot write to, or only with the
//     sticky bit (as /tmp: others can create names there, not replace
//     the caller's socket); or
//   - it belongs to the owner of its directory, that directory is
//     writable by its owner only, and the directory above is root's and
//     writable by root only: a service's runtime directory
//     (systemd's RuntimeDirectory=, /run/smsnmpd owned by User=), which
//     only root could have given to that user.
//
// A path that does not exist is returned as is (Call then says that
// nothing listens there). Call also checks, once connected, that the
// process listening runs as root, the caller or the socket's owner, so a
// socket swapped after this check is refused too.
func CheckSocket(path string) (string, uint32, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return path, 0, nil
		}
		return "", 0, fmt.Errorf("control: %w", err)
	}
	sock, err := ownerOf(real, true)
	if err != nil {
		return "", 0, err
	}
	if sock.mode&fs.ModeSocket == 0 {
		return "", 0, fmt.Errorf("%w: %s is not a socket", ErrUntrusted, real)
	}
	dirPath := filepath.Dir(real)
	dir, err := ownerOf(dirPath, false)
	if err != nil {
		return "", 0, err
	}
	self := uint32(os.Geteuid())
	trusted := func(uid uint32) bool { return uid == 0 || uid == self }
	othersWrite := dir.mode.Perm()&0o002 != 0
	if trusted(sock.uid) {
		if trusted(dir.uid) && (!othersWrite || dir.mode&fs.ModeSticky != 0) {
			return real, sock.uid, nil
		}
		return "", 0, fmt.Errorf("%w: %s is in %s, which belongs to %s (mode %s): another user could replace it",
			ErrUntrusted, real, dirPath, userName(dir.uid), dir.mode)
	}
	if sock.uid == dir.uid && dir.mode.Perm()&0o022 == 0 {
		parentPath := filepath.Dir(dirPath)
		parent, err := ownerOf(parentPath, false)
		if err != nil {
			return "", 0, err
		}
		if parent.uid == 0 && parent.mode.Perm()&0o022 == 0 {
			return real, sock.uid, nil
		}
	}
	return "", 0, fmt.Errorf("%w: %s belongs to %s, not to root or to you (%s), nor is it in a directory only root could give %s: refusing to talk to it",
		ErrUntrusted, real, userName(sock.uid), userName(self), userName(sock.uid))
}

type fileOwner struct {
	uid  uint32
	mode fs.FileMode
}

func ownerOf(path string, lstat bool) (fileOwner, error) {
	stat := os.Stat
	if lstat {
		stat = os.Lstat
	}
	fi, err := stat(path)
	if err != nil {
		return fileOwner{}, fmt.Errorf("control: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileOwner{}, fmt.Errorf("%w: cannot tell who owns %s on this system", ErrUntrusted, path)
	}
	return fileOwner{uid: st.Uid, mode: fi.Mode()}, nil
}

// userName is "name (uid N)", or "uid N" when the name is unknown.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}
