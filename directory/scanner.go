package directory

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Scanner defaults.
const (
	DefaultScanInterval = 5 * time.Second
	DefaultScanMaxFiles = 1 << 20
)

// ErrScanLimit reports a content root with more files than MaxFiles.
var ErrScanLimit = errors.New("directory: content root has more files than the scan limit")

// ScannerConfig configures a Scanner.
type ScannerConfig struct {
	// Root is the content root directory.
	Root string
	// KeyPrefix is prepended to a file's slash-separated path under Root
	// to make its key (for example "http://cdn.example.com/").
	KeyPrefix string
	// MaxKey caps keys (default DefaultMaxKey); longer paths are skipped
	// and counted.
	MaxKey int
	// Interval between scans (default 5 s).
	Interval time.Duration
	// MaxFiles bounds one scan (default 1,048,576): past it the scan stops,
	// reports ErrScanLimit and removes nothing, so a partial walk never
	// withdraws content.
	MaxFiles int
	Logger   logrus.FieldLogger
}

// Target receives a scanner's changes; *Publisher implements it.
type Target interface {
	Add(Entry) error
	Remove(key string) error
}

// ScanResult counts what one scan found.
type ScanResult struct {
	Files, Added, Changed, Removed, Skipped int
}

type fileState struct {
	size  int64
	mtime time.Time
}

// Scanner turns a content root into directory updates by polling: a
// regular file appearing is an add, a change of size or modification time
// is an add of the new version, a file disappearing is a removal. Hidden
// files (a name starting with ".", as partial downloads usually are) and
// symbolic links are ignored. It keeps one small record per file.
type Scanner struct {
	cfg   ScannerConfig
	log   logrus.FieldLogger
	known map[string]fileState // by key
}

// NewScanner checks the root and returns a scanner that knows nothing yet.
func NewScanner(cfg ScannerConfig) (*Scanner, error) {
	if cfg.MaxKey == 0 {
		cfg.MaxKey = DefaultMaxKey
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultScanInterval
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultScanMaxFiles
	}
	st, err := os.Stat(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("%w: content root: %w", ErrInvalid, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: content root %s is not a directory", ErrInvalid, cfg.Root)
	}
	return &Scanner{cfg: cfg, log: discard(cfg.Logger).WithField("root", cfg.Root), known: make(map[string]fileState)}, nil
}

// Scan walks the root once and applies the differences to t (nil: only
// record them, as before the Publisher exists; then Entries gives its
// Initial list).
func (s *Scanner) Scan(t Target) (ScanResult, error) {
	var res ScanResult
	seen := make(map[string]fileState, len(s.known))
	errLimit := errors.New("limit")
	err := filepath.WalkDir(s.cfg.Root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == s.cfg.Root {
				return err
			}
			res.Skipped++ // unreadable subdirectory: skip it, keep scanning
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") && path != s.cfg.Root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if res.Files >= s.cfg.MaxFiles {
			return errLimit
		}
		res.Files++
		info, err := d.Info()
		if err != nil {
			res.Skipped++ // gone since the directory was read
			return nil
		}
		rel, err := filepath.Rel(s.cfg.Root, path)
		if err != nil {
			res.Skipped++
			return nil
		}
		key := s.cfg.KeyPrefix + filepath.ToSlash(rel)
		if CheckKey(key, s.cfg.MaxKey) != nil {
			res.Skipped++
			return nil
		}
		seen[key] = fileState{size: info.Size(), mtime: info.ModTime()}
		return nil
	})
	if errors.Is(err, errLimit) {
		s.log.WithField("max_files", s.cfg.MaxFiles).Warn("directory: content root over the scan limit; nothing removed")
		err = fmt.Errorf("%w (%d)", ErrScanLimit, s.cfg.MaxFiles)
	} else if err != nil {
		return res, fmt.Errorf("directory: scanning %s: %w", s.cfg.Root, err)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		st := seen[k]
		old, ok := s.known[k]
		if ok && old == st {
			continue
		}
		if t != nil {
			if aerr := t.Add(Entry{Key: k, Size: uint64(max(st.size, 0))}); aerr != nil {
				res.Skipped++
				continue
			}
		}
		s.known[k] = st
		if ok {
			res.Changed++
		} else {
			res.Added++
		}
	}
	if err != nil {
		return res, err // partial walk: removing what it did not reach would be wrong
	}
	for k := range s.known {
		if _, ok := seen[k]; ok {
			continue
		}
		if t != nil {
			if rerr := t.Remove(k); rerr != nil && !errors.Is(rerr, ErrNotHeld) {
				continue
			}
		}
		delete(s.known, k)
		res.Removed++
	}
	return res, nil
}

// Entries is what the last scan found, by key.
func (s *Scanner) Entries() []Entry {
	out := make([]Entry, 0, len(s.known))
	for k, st := range s.known {
		out = append(out, Entry{Key: k, Size: uint64(max(st.size, 0))})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Run scans every Interval and applies the changes to t until ctx is
// done. The caller runs it on a goroutine it tracks.
func (s *Scanner) Run(ctx context.Context, t Target) error {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if res, err := s.Scan(t); err != nil {
			s.log.WithError(err).Warn("directory: content scan")
		} else if res.Added+res.Changed+res.Removed > 0 {
			s.log.WithFields(logrus.Fields{"added": res.Added, "changed": res.Changed, "removed": res.Removed}).Info("directory: content root changed")
		}
	}
}
