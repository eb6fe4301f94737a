package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/smsnmpd/smsnmpd"

// pkg is what go list says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// list runs go list -deps over patterns in the module's root and returns
// every package named, and every package they depend on, by import path.
func list(t *testing.T, patterns ...string) map[string]pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go tool to list the imports: %v", err)
		}
		t.Skipf("no go tool on PATH to list the imports: %v", err)
	}
	root, err := exec.Command(gobin, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command(gobin, append([]string{"list", "-deps", "-json=ImportPath,Imports,Standard"}, patterns...)...)
	cmd.Dir = strings.TrimSpace(string(root))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v: %s", patterns, err, stderr.Bytes())
	}
	pkgs := map[string]pkg{}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// under reports whether p is the module's package dir or below it.
func under(p, dir string) bool {
	d := module + "/" + dir
	return p == d || strings.HasPrefix(p, d+"/")
}

// TestNoDependency: the packages of each layer depend (directly or not) on
// none of the packages it must not know.
func TestNoDependency(t *testing.T) {
	for _, r := range []struct {
		layer     string
		forbidden []string
	}{
		{"fanout", []string{"agent"}},
		{"rmtp", []string{"fanout", "directory", "internal/replica", "internal/election", "agent", "mib"}},
	} {
		for p := range list(t, "./"+r.layer+"/...") {
			for _, f := range r.forbidden {
				if under(p, f) {
					t.Errorf("%s/... depends on %s", r.layer, strings.TrimPrefix(p, module+"/"))
				}
			}
		}
	}
}

// TestNoImport: the packages of each layer import none of the packages it
// must not use itself (it may still depend on them through another).
func TestNoImport(t *testing.T) {
	for _, r := range []struct {
		layer     string
		forbidden []string
	}{
		{"mib", []string{"rmtp"}}, // the farm through fanout, the counters as mib's own
	} {
		for p, pk := range list(t, "./"+r.layer+"/...") {
			if !under(p, r.layer) {
				continue
			}
			for _, imp := range pk.Imports {
				for _, f := range r.forbidden {
					if under(imp, f) {
						t.Errorf("%s imports %s", strings.TrimPrefix(p, module+"/"), strings.TrimPrefix(imp, module+"/"))
					}
				}
			}
		}
	}
}

// TestCodecsArePure: every codec, and every module package a codec
// imports, imports no net (net/netip aside), os, logger or clock.
func TestCodecsArePure(t *testing.T) {
	all := list(t, "./...")
	isCodec := func(p string) bool {
		base := path.Base(p)
		return strings.HasPrefix(p, module+"/") && !under(p, "test") &&
			(base == "wire" || base == "pdu" || p == module+"/internal/ber" || p == module+"/internal/smi")
	}
	var codecs []string
	for p := range all {
		if isCodec(p) {
			codecs = append(codecs, p)
		}
	}
	slices.Sort(codecs)
	if len(codecs) < 6 {
		t.Fatalf("found %d codecs (%v): the rule would hold for nothing", len(codecs), codecs)
	}
	for _, c := range codecs {
		// The codec and the module packages it depends on.
		seen := map[string]bool{}
		var walk func(p string)
		walk = func(p string) {
			if seen[p] || !strings.HasPrefix(p, module+"/") {
				return
			}
			seen[p] = true
			for _, imp := range all[p].Imports {
				if bad(imp) {
					t.Errorf("codec %s: %s imports %s", strings.TrimPrefix(c, module+"/"), strings.TrimPrefix(p, module+"/"), imp)
				}
				walk(imp)
			}
		}
		walk(c)
	}
}

// bad reports whether a codec may not import imp.
func bad(imp string) bool {
	switch {
	case imp == "net/netip":
		return false
	case imp == "net", strings.HasPrefix(imp, "net/"), imp == "os", strings.HasPrefix(imp, "os/"),
		imp == "time", imp == "syscall", strings.HasPrefix(imp, "golang.org/x/sys/"), strings.HasPrefix(imp, "golang.org/x/net/"):
		return true
	case imp == "log", strings.HasPrefix(imp, "log/"), strings.HasPrefix(imp, "github.com/sirupsen/logrus"):
		return true
	}
	return false
}
