package mib

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/smsnmpd/smsnmpd/internal/statefile"
)

// ErrStore is returned when persisted values cannot be read or written.
var ErrStore = errors.New("mib: state store")

// Store keeps the values of writable objects across restarts, keyed by
// MIB descriptor ("sysContact"). Several groups may share one Store, so
// Save writes one key and keeps the others.
type Store interface {
	// Load returns every persisted value; none persisted is an empty map
	// and no error.
	Load() (map[string]string, error)
	// Save persists one value durably before returning: a SET is
	// answered only after its value would survive a crash.
	Save(key, value string) error
}

// MaxStateFile caps the size of a state file read by FileStore: it holds a
// handful of short strings, so anything larger is not ours.
const MaxStateFile = 1 << 20

// FileStore is a Store in one JSON file (an object of strings). Writes go
// through internal/statefile (a temporary file synced and renamed over the
// old one, the directory synced), so a crash leaves the old or the new
// file, never a torn one. It is safe for
// concurrent use within one process; two processes must not share a path.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore returns a store at path; the file is created on the first
// Save (its directory must exist).
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Path returns the file's path.
func (f *FileStore) Path() string { return f.path }

// Load implements Store.
func (f *FileStore) Load() (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load()
}

func (f *FileStore) load() (map[string]string, error) {
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStore, f.path, err)
	}
	if len(b) > MaxStateFile {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrStore, f.path, MaxStateFile)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStore, f.path, err)
	}
	return m, nil
}

// Save implements Store.
func (f *FileStore) Save(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return err
	}
	m[key] = value
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	if err := statefile.Write(f.path, append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}
