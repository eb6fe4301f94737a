package exporter

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

func readEtc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "etc/snmp_exporter", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The module walks what a manager answers from memory, nothing under the
// farm operations (a walk there asks every engine), in the generator's
// names and in the generated numeric OIDs alike.
func TestModuleWalksOnlyMemory(t *testing.T) {
	allowed := []mib.ID{mib.SmNode, mib.SmEngineTable, mib.SmSubtree, mib.SmTransport}
	farmOps := []smi.OID{mib.SmAggregate.OID(), mib.SmEngineProxy.OID(), mib.SmAllEngines.OID()}
	gen := readEtc(t, "generator.yml")
	_, walk, _ := strings.Cut(gen, "    walk:\n")
	var names []string
	for _, line := range strings.Split(walk, "\n") {
		if !strings.HasPrefix(line, "      - ") {
			break
		}
		names = append(names, strings.TrimPrefix(line, "      - "))
	}
	var want []string
	for _, id := range allowed {
		want = append(want, id.String())
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("generator.yml walks %v, want %v", names, want)
	}
	snmp := readEtc(t, "snmp.yml")
	_, walked, _ := strings.Cut(snmp, "  walk:\n")
	n := 0
	for _, line := range strings.Split(walked, "\n") {
		if !strings.HasPrefix(line, "  - ") {
			break
		}
		o, err := smi.ParseOID(strings.TrimPrefix(line, "  - "))
		if err != nil {
			t.Fatalf("snmp.yml walk %q: %v", line, err)
		}
		n++
		ok := false
		for _, id := range allowed {
			ok = ok || o.HasPrefix(id.OID())
		}
		for _, r := range farmOps {
			if o.HasPrefix(r) || r.HasPrefix(o) {
				t.Errorf("snmp.yml walks %s, which holds or is under the farm operation %s", o, r)
			}
		}
		if !ok {
			t.Errorf("snmp.yml walks %s, outside %v", o, want)
		}
	}
	if n != len(allowed) {
		t.Errorf("snmp.yml walks %d roots, want %d", n, len(allowed))
	}
	// Every metric of the generated module is an object of the MIB at
	// its OID.
	for _, m := range regexp.MustCompile(`(?m)^  - name: (\w+)\n    oid: ([0-9.]+)$`).FindAllStringSubmatch(snmp, -1) {
		o, ok := mib.ByName(m[1])
		if !ok || o.OID.String() != m[2] {
			t.Errorf("snmp.yml metric %s at %s: the MIB's Go table says %v (%v)", m[1], m[2], o.OID, ok)
		}
	}
}

// generator-auths.yml, for snmp_exporter 0.23 and later, is the same
// module with the credentials moved to an auths section.
func TestAuthsFormIsTheSameModule(t *testing.T) {
	module := func(s string) string {
		_, m, ok := strings.Cut(s, "\nmodules:\n")
		if !ok {
			t.Fatal("no modules section")
		}
		var keep []string
		for _, line := range strings.Split(m, "\n") {
			if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			keep = append(keep, line)
		}
		return strings.Join(keep, "\n")
	}
	old := readEtc(t, "generator.yml")
	cred := "    version: 2\n    auth:\n      community: public\n"
	if !strings.Contains(old, cred) {
		t.Fatalf("generator.yml has no 0.21 credentials %q", cred)
	}
	newer := readEtc(t, "generator-auths.yml")
	if !strings.Contains(newer, "\nauths:\n  public_v2:\n    version: 2\n    community: public\n") {
		t.Error("generator-auths.yml has no auths section public_v2 with version 2 and the community")
	}
	if a, b := module(strings.Replace(old, cred, "", 1)), module(newer); a != b {
		t.Errorf("the modules differ:\n--- generator.yml without its credentials\n%s\n--- generator-auths.yml\n%s", a, b)
	}
	prom := readEtc(t, "prometheus.yml")
	for _, want := range []string{"module: [smsnmpd]", "# auth: [public_v2]", "metrics_path: /snmp", "target_label: __param_target"} {
		if !strings.Contains(prom, want) {
			t.Errorf("prometheus.yml lacks %q", want)
		}
	}
}
