package ber

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestCodecsArePure: the SNMP codec and USM's cryptography import no
// network, clock, file system or logger (net/netip values are allowed),
// so that rule cannot be broken unnoticed.
func TestCodecsArePure(t *testing.T) {
	forbidden := []string{"net", "time", "os", "log", "log/slog", "github.com/sirupsen/logrus", "syscall"}
	for _, dir := range []string{".", "../../agent/snmp/usm", "../smi"} {
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			if slices.Contains(forbidden, imp) || strings.HasPrefix(imp, "net/") && imp != "net/netip" {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}
