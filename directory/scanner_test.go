package directory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

type recTarget struct{ ops []string }

func (r *recTarget) Add(e Entry) error     { r.ops = append(r.ops, "add "+e.Key); return nil }
func (r *recTarget) Remove(k string) error { r.ops = append(r.ops, "remove "+k); return nil }

func write(t *testing.T, path, body string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestScanner(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "a.bin"), "aaaa", t0)
	write(t, filepath.Join(root, "d", "b.bin"), "bb", t0)
	write(t, filepath.Join(root, ".partial"), "x", t0)
	write(t, filepath.Join(root, ".tmp", "c.bin"), "x", t0)
	if err := os.Symlink(filepath.Join(root, "a.bin"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(ScannerConfig{Root: root, KeyPrefix: "http://x/"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Scan(nil)
	if err != nil || res.Added != 2 {
		t.Fatalf("first scan %+v %v", res, err)
	}
	if e := s.Entries(); len(e) != 2 || e[0].Key != "http://x/a.bin" || e[0].Size != 4 || e[1].Key != "http://x/d/b.bin" {
		t.Fatalf("entries %+v", e)
	}
	// Nothing changed: nothing sent.
	var tg recTarget
	if res, _ := s.Scan(&tg); len(tg.ops) != 0 || res.Files != 2 {
		t.Fatalf("idle scan sent %v", tg.ops)
	}
	// Change (same size, new mtime), appear, disappear.
	write(t, filepath.Join(root, "a.bin"), "AAAA", t0.Add(time.Second))
	write(t, filepath.Join(root, "new.bin"), "n", t0)
	os.Remove(filepath.Join(root, "d", "b.bin"))
	res, err = s.Scan(&tg)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tg.ops)
	want := []string{"add http://x/a.bin", "add http://x/new.bin", "remove http://x/d/b.bin"}
	if !slices.Equal(tg.ops, want) || res.Changed != 1 || res.Added != 1 || res.Removed != 1 {
		t.Fatalf("ops %v result %+v", tg.ops, res)
	}
}

func TestScannerLimit(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"1", "2", "3"} {
		write(t, filepath.Join(root, n), n, t0)
	}
	s, err := NewScanner(ScannerConfig{Root: root, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(nil); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "4"), "4", t0)
	var tg recTarget
	_, err = s.Scan(&tg)
	if !errors.Is(err, ErrScanLimit) {
		t.Fatalf("over the limit: %v", err)
	}
	for _, op := range tg.ops {
		if op[:6] == "remove" {
			t.Fatalf("a partial scan removed %s", op)
		}
	}
	if _, err := NewScanner(ScannerConfig{Root: filepath.Join(root, "1")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("file as root: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, &tg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
}
