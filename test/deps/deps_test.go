package deps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "deps", "install.sh")); err != nil {
		t.Errorf("RepoRoot = %s, which has no test/deps/install.sh", root)
	}
}

func TestStdMIBDirOverride(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvStdMIBs, dir)
	if _, err := StdMIBDir(); !errors.Is(err, ErrMissing) {
		t.Errorf("StdMIBDir on an empty directory = %v, want ErrMissing", err)
	}
	for _, m := range stdModules {
		if err := os.WriteFile(filepath.Join(dir, m+".mib"), []byte(m+" DEFINITIONS ::= BEGIN END\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := StdMIBDir(); err != nil || got != dir {
		t.Errorf("StdMIBDir = %q, %v; want %q", got, err, dir)
	}
}

func TestToolMissing(t *testing.T) {
	if _, err := Tool("smsnmpd-no-such-tool"); !errors.Is(err, ErrMissing) {
		t.Errorf("Tool of a missing program = %v, want ErrMissing", err)
	}
}

func TestStdMIBDirRelative(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvStdMIBs, filepath.Join("no", "such", "dir"))
	_, err = StdMIBDir()
	if want := filepath.Join(root, "no", "such", "dir"); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) {
		t.Errorf("StdMIBDir with a relative override = %v, want ErrMissing naming %s", err, want)
	}
}
