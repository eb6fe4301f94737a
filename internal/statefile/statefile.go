// Package statefile writes a node's state files (node.state_dir) so that a
// crash leaves the old content or the new, never a torn file: a temporary
// file in the same directory, mode 0600, synced, renamed over the old one,
// and the directory synced. It is the shared writer issue 16 asks for;
// the SNMP engine's state uses it first.
package statefile

import (
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with data atomically and durably.
func Write(path string, data []byte) error {
	return WriteFunc(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc is Write with the content written by write, so a large file
// need not be held in memory first.
func WriteFunc(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
