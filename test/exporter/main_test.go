package exporter

import (
	"testing"

	"github.com/smsnmpd/smsnmpd/test/farmtest"
)

var (
	binary   string // smsnmpd built for this run
	repoRoot string
)

func TestMain(m *testing.M) {
	farmtest.Main(m, func(bin, root string) { binary, repoRoot = bin, root })
}
