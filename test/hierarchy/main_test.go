package hierarchy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the smsnmpd built for this run, without the race detector, as
// operators run it: 29 processes on 2 cores leave no room for -race.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smsnmpd-hierarchy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "smsnmpd")
	build := exec.Command("go", "build", "-o", binary, "-ldflags", "-X main.version=hierarchy-test", "../../cmd/smsnmpd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building smsnmpd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireRoot skips when the test cannot build namespaces, except in CI,
// where CI runs as root with the tools installed and a skip would hide a
// broken setup.
func requireRoot(t *testing.T) {
	t.Helper()
	skip := func(reason string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s", reason)
		}
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		skip("needs root: it builds network namespaces, bridges and a router")
	}
	for _, tool := range []string{"ip", "nft", "snmpget"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip(tool + " not installed (iproute2, nftables, snmp; test/deps/install.sh installs them)")
		}
	}
}
