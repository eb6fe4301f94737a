package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

// A replace that fails at the rename (the path is a non-empty directory)
// leaves what was there and no temporary file behind.
func TestFailedWriteKeepsTheOldAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "kept"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new")); err == nil {
		t.Fatal("replaced a non-empty directory")
	}
	if b, err := os.ReadFile(filepath.Join(p, "kept")); err != nil || string(b) != "old" {
		t.Errorf("the old content: %q, %v", b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
