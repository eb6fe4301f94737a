package config

import (
	"errors"
	"fmt"
	"os"
)

// ErrKeyFilePerm is returned by CheckKeyFile for a key file that group or
// others may read or write.
var ErrKeyFilePerm = errors.New("config: key file is accessible by group or others")

// CheckKeyFile checks, without reading it, that path is a regular file that
// only its owner can access (DESIGN.md §4: refuse to start otherwise). Load
// does not call it: check-config must pass on a machine that is not the
// target host. The caller runs it before opening any socket. Errors name the
// path, never the contents.
func CheckKeyFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config: rmtp key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("config: rmtp key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, want 0600 or stricter (chmod 600 %s)", ErrKeyFilePerm, path, perm, path)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("config: rmtp key file %s: empty", path)
	}
	return nil
}
