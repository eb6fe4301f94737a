package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrKeyFilePerm is returned by CheckKeyFile for a key file that group or
// others may read or write.
var ErrKeyFilePerm = errors.New("config: key file is accessible by group or others")

// CheckKeyFile checks, without reading it, that path is a regular file that
// only its owner can access (DESIGN.md §4: refuse to start otherwise). Load
// does not call it: check-config must pass on a machine that is not the
// target host. The caller runs it before opening any socket. Errors name the
// path, never the contents.
func CheckKeyFile(path string) error { return checkPrivateFile(path, "rmtp key file") }

func checkPrivateFile(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config: %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("config: %s %s: not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, want 0600 or stricter (chmod 600 %s)", ErrKeyFilePerm, path, perm, path)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("config: %s %s: empty", what, path)
	}
	return nil
}

// ErrPassphrase is returned by ReadPassphrase for a file that cannot be
// used: missing, accessible by group or others, or too short.
var ErrPassphrase = errors.New("config: snmp.v3 passphrase file")

// MinPassphrase is the shortest SNMPv3 passphrase accepted (RFC 3414
// §11.2 recommends at least 8 characters).
const MinPassphrase = 8

// ReadPassphrase reads an SNMPv3 passphrase file under the key file's
// rules (a regular file only its owner can access). One trailing newline
// is not part of the passphrase. Errors name the file, never the
// contents.
func ReadPassphrase(path string) (Secret, error) {
	if err := checkPrivateFile(path, "snmp.v3 passphrase file"); err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrPassphrase, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrPassphrase, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if len(s) < MinPassphrase {
		return Secret{}, fmt.Errorf("%w: %s: shorter than %d characters", ErrPassphrase, path, MinPassphrase)
	}
	return NewSecret(s), nil
}
