// Package deps is how tests find what they need outside Go: the net-snmp
// tools, smilint, root, and the standard IETF MIB modules that install.sh
// (beside this file) unpacks into the repository's .cache/std-mibs.
//
// A test that lacks something skips with a reason that says how to get
// it, except when the environment variable CI is "true": there a missing
// dependency fails the test, so CI cannot go green by skipping.
//
// It owns no test logic and installs nothing itself.
package deps

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnvStdMIBs overrides the standard MIB directory (install.sh honours it too).
const EnvStdMIBs = "SMSNMPD_STD_MIBS"

// NetSnmpMIBDir is where Debian's libsnmp-base puts NET-SNMP-MIB and the
// other net-snmp modules.
const NetSnmpMIBDir = "/usr/share/snmp/mibs"

// stdModules are the modules whose files must be in the standard MIB
// directory; install.sh checks the same list.
var stdModules = []string{"SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMPv2-MIB", "INET-ADDRESS-MIB"}

// ErrMissing is returned when a dependency is not on this machine.
var ErrMissing = errors.New("deps: missing")

const installHint = "run test/deps/install.sh, as root to install packages"

// CI reports whether missing dependencies must fail tests (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// RepoRoot returns the directory holding go.mod, searching up from the
// working directory (a package's directory under `go test`).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // deeper than any checkout; bounds a symlink loop
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("%w: go.mod above the working directory", ErrMissing)
}

// StdMIBDir returns the directory holding the standard MIB modules
// (SNMPv2-SMI.mib ...): $SMSNMPD_STD_MIBS, or <repo>/.cache/std-mibs. A
// relative $SMSNMPD_STD_MIBS is taken from the repository root, as
// install.sh does, since tests run in their package's directory.
func StdMIBDir() (string, error) {
	dir := os.Getenv(EnvStdMIBs)
	if dir == "" || !filepath.IsAbs(dir) {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		if dir == "" {
			dir = filepath.Join(".cache", "std-mibs")
		}
		dir = filepath.Join(root, dir)
	}
	for _, m := range stdModules {
		if _, err := os.Stat(filepath.Join(dir, m+".mib")); err != nil {
			return "", fmt.Errorf("%w: standard MIB module %s in %s (%s)", ErrMissing, m, dir, installHint)
		}
	}
	return dir, nil
}

// NetSnmpMIBs returns NetSnmpMIBDir after checking NET-SNMP-MIB is there.
func NetSnmpMIBs() (string, error) {
	if _, err := os.Stat(filepath.Join(NetSnmpMIBDir, "NET-SNMP-MIB.txt")); err != nil {
		return "", fmt.Errorf("%w: NET-SNMP-MIB in %s (package libsnmp-base; %s)", ErrMissing, NetSnmpMIBDir, installHint)
	}
	return NetSnmpMIBDir, nil
}

// Tool returns the path of an executable on $PATH.
func Tool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not on PATH (%s)", ErrMissing, name, installHint)
	}
	return p, nil
}

// Need skips t with err's reason when err is non-nil, or fails it under
// CI=true.
func Need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if CI() {
		t.Fatalf("%v (CI=true: missing dependencies fail)", err)
	}
	t.Skip(err)
}

// NeedTool returns the path of an executable, or skips/fails t.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := Tool(name)
	Need(t, err)
	return p
}

// NeedStdMIBs returns the standard MIB directory, or skips/fails t.
func NeedStdMIBs(t testing.TB) string {
	t.Helper()
	dir, err := StdMIBDir()
	Need(t, err)
	return dir
}

// NeedNetSnmpMIBs returns NetSnmpMIBDir, or skips/fails t.
func NeedNetSnmpMIBs(t testing.TB) string {
	t.Helper()
	dir, err := NetSnmpMIBs()
	Need(t, err)
	return dir
}

// NeedRoot skips/fails t unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Need(t, fmt.Errorf("%w: root", ErrMissing))
	}
}
