package exporter

import (
	"fmt"
	"os"
	"testing"

	"github.com/smsnmpd/smsnmpd/test/deps"
	"github.com/smsnmpd/smsnmpd/test/farmtest"
)

var (
	binary   string // smsnmpd built for this run
	repoRoot string
)

func TestMain(m *testing.M) {
	var err error
	if repoRoot, err = deps.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "smsnmpd-exporter-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if binary, err = farmtest.Build(repoRoot, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
