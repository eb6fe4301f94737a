package hoststat

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// MaxFile caps how much of a /proc file Reader reads; a larger one fails
// the parser with ErrTooLarge or ErrFormat rather than filling memory.
const MaxFile = 4 << 20

// DefaultRoot is where Linux mounts procfs.
const DefaultRoot = "/proc"

// Reader reads the host's statistics from a procfs root. The zero value
// reads DefaultRoot. It is safe for concurrent use: every call opens the
// file again, so values are always current.
type Reader struct {
	// Root is the procfs directory; "" = DefaultRoot.
	Root string
}

func (r *Reader) open(name string, parse func(io.Reader) error) error {
	root := r.Root
	if root == "" {
		root = DefaultRoot
	}
	f, err := os.Open(filepath.Join(root, name))
	if err != nil {
		return fmt.Errorf("hoststat: %w", err)
	}
	defer f.Close()
	if err := parse(io.LimitReader(f, MaxFile)); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return nil
}

// Load reads loadavg.
func (r *Reader) Load() (Load, error) {
	var l Load
	err := r.open("loadavg", func(rd io.Reader) (err error) { l, err = ParseLoadAvg(rd); return })
	return l, err
}

// Memory reads meminfo.
func (r *Reader) Memory() (Memory, error) {
	var m Memory
	err := r.open("meminfo", func(rd io.Reader) (err error) { m, err = ParseMemInfo(rd); return })
	return m, err
}

// Net reads net/dev and sums every interface but loopback.
func (r *Reader) Net() (Net, error) {
	var ifs []Interface
	err := r.open(filepath.Join("net", "dev"), func(rd io.Reader) (err error) { ifs, err = ParseNetDev(rd); return })
	return Totals(ifs), err
}

// Uptime reads uptime: the time since the host booted.
func (r *Reader) Uptime() (time.Duration, error) {
	var d time.Duration
	err := r.open("uptime", func(rd io.Reader) (err error) { d, err = ParseUptime(rd); return })
	return d, err
}
