package deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/test/deps"
)

// lintianWarnings are the warnings the package keeps, each named in the
// README with its reason. A new warning fails the test until it is fixed
// or explained there.
var lintianWarnings = []string{
	"non-standard-file-perm",             // the conffile holds community strings: 0640
	"shared-library-lacks-prerequisites", // a Go PIE links no C library
}

// smEngineTable's OID, as snmptranslate must print it from the MIB text.
const smEngineTableOID = ".1.3.6.1.4.1.8072.9999.9999.42.1.2.2"

// debFile is a built package and what it was built from.
type debFile struct {
	path, version, arch string
	root                string // repository
}

// TestPackage builds the package with make deb and checks what any
// machine can check without installing it.
func TestPackage(t *testing.T) {
	d := build(t)
	checkControl(t, d)
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", d.path, x)
	checkContents(t, d, x)
	checkLintian(t, d)
	if !deps.CI() {
		t.Log("install steps skipped: they run only with CI=true, on a machine the test may change")
		return
	}
	t.Run("install", func(t *testing.T) { checkInstall(t, d) })
}

// build runs make deb into a temporary directory.
func build(t *testing.T) debFile {
	t.Helper()
	for _, tool := range []string{"make", "dpkg-deb", "dpkg", "lintian", "snmptranslate", "gzip"} {
		deps.NeedTool(t, tool)
	}
	deps.NeedStdMIBs(t)
	root, err := deps.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	d := debFile{root: root}
	d.version = strings.TrimSpace(run(t, "sh", filepath.Join(root, "etc/packaging/version.sh")))
	d.arch = strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	out := t.TempDir()
	started := time.Now()
	log := run(t, "make", "-C", root, "deb", "DEB_OUT="+out)
	t.Logf("make deb: %v", time.Since(started).Round(time.Millisecond))
	matches, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	want := filepath.Join(out, fmt.Sprintf("smsnmpd_%s_%s.deb", d.version, d.arch))
	if len(matches) != 1 || matches[0] != want {
		t.Fatalf("make deb made %v, want %s\n%s", matches, want, log)
	}
	d.path = want
	return d
}

func checkControl(t *testing.T, d debFile) {
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Depends", "Section", "Description"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", d.path, f))
	}
	for f, want := range map[string]string{"Package": "smsnmpd", "Version": d.version, "Architecture": d.arch, "Section": "net"} {
		if fields[f] != want {
			t.Errorf("control %s = %q, want %q", f, fields[f], want)
		}
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`).MatchString(fields["Version"]) {
		t.Errorf("version %q does not start with a digit or has characters Debian refuses", fields["Version"])
	}
	if !strings.Contains(fields["Depends"], "adduser") {
		t.Errorf("Depends %q: postinst runs adduser", fields["Depends"])
	}
	if fields["Maintainer"] == "" || fields["Description"] == "" {
		t.Errorf("control lacks Maintainer or Description: %v", fields)
	}
	conffiles := run(t, "sh", "-c", fmt.Sprintf("dpkg-deb --ctrl-tarfile %q | tar -xOf - ./conffiles", d.path))
	if strings.TrimSpace(conffiles) != "/etc/smsnmpd/smsnmpd.toml" {
		t.Errorf("conffiles = %q, want /etc/smsnmpd/smsnmpd.toml only", conffiles)
	}
}

// checkContents: every file the issue names, with its mode, and the
// generated ones made right.
func checkContents(t *testing.T, d debFile, x string) {
	modes := map[string]string{}
	for _, line := range strings.Split(run(t, "dpkg-deb", "-c", d.path), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			modes[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
		}
	}
	for path, want := range map[string]string{
		"/usr/bin/smsnmpd":                                     "-rwxr-xr-x root/root",
		"/lib/systemd/system/smsnmpd.service":                  "-rw-r--r-- root/root",
		"/etc/smsnmpd/smsnmpd.toml":                            "-rw-r----- root/root",
		"/usr/share/snmp/mibs/SERVICE-MANAGER-MIB.txt":         "-rw-r--r-- root/root",
		"/usr/share/snmp/mibs/SNMPv2-SMI.mib":                  "-rw-r--r-- root/root",
		"/usr/share/snmp/mibs/SNMPv2-TC.mib":                   "-rw-r--r-- root/root",
		"/usr/share/snmp/mibs/SNMPv2-CONF.mib":                 "-rw-r--r-- root/root",
		"/usr/share/snmp/mibs/INET-ADDRESS-MIB.mib":            "-rw-r--r-- root/root",
		"/usr/share/smsnmpd/zabbix/smsnmpd_snmp.yaml":          "-rw-r--r-- root/root",
		"/usr/share/smsnmpd/snmp_exporter/generator.yml":       "-rw-r--r-- root/root",
		"/usr/share/smsnmpd/snmp_exporter/snmp.yml":            "-rw-r--r-- root/root",
		"/usr/share/smsnmpd/snmp_exporter/prometheus.yml":      "-rw-r--r-- root/root",
		"/usr/share/man/man8/smsnmpd.8.gz":                     "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/smsnmpd":       "-rw-r--r-- root/root",
		"/usr/share/doc/smsnmpd/copyright":                     "-rw-r--r-- root/root",
		"/usr/share/doc/smsnmpd/changelog.gz":                  "-rw-r--r-- root/root",
		"/usr/share/doc/smsnmpd/README.md":                     "-rw-r--r-- root/root",
		"/usr/share/doc/smsnmpd/examples/manager.toml":         "-rw-r--r-- root/root",
		"/usr/share/smsnmpd/snmp_exporter/generator-auths.yml": "-rw-r--r-- root/root",
	} {
		if got, ok := modes[path]; !ok {
			t.Errorf("package lacks %s", path)
		} else if got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	// Shipped as they are in the tree.
	for src, dst := range map[string]string{
		"mib/SERVICE-MANAGER-MIB.txt":      "usr/share/snmp/mibs/SERVICE-MANAGER-MIB.txt",
		"etc/zabbix/smsnmpd_snmp.yaml":     "usr/share/smsnmpd/zabbix/smsnmpd_snmp.yaml",
		"etc/snmp_exporter/generator.yml":  "usr/share/smsnmpd/snmp_exporter/generator.yml",
		"etc/snmp_exporter/snmp.yml":       "usr/share/smsnmpd/snmp_exporter/snmp.yml",
		"etc/smsnmpd.toml":                 "etc/smsnmpd/smsnmpd.toml",
		"etc/snmp_exporter/prometheus.yml": "usr/share/smsnmpd/snmp_exporter/prometheus.yml",
	} {
		a, err1 := os.ReadFile(filepath.Join(d.root, src))
		b, err2 := os.ReadFile(filepath.Join(x, dst))
		if err := errors.Join(err1, err2); err != nil {
			t.Error(err)
		} else if !bytes.Equal(a, b) {
			t.Errorf("/%s differs from %s", dst, src)
		}
	}
	// The unit, rendered for /usr/bin.
	unit, err := os.ReadFile(filepath.Join(x, "lib/systemd/system/smsnmpd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nExecStart=/usr/bin/smsnmpd -config /etc/smsnmpd/smsnmpd.toml\n",
		"\nExecStartPre=/usr/bin/smsnmpd check-config /etc/smsnmpd/smsnmpd.toml\n", "\nUser=smsnmpd\n", "\nProtectSystem=strict\n"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("installed unit lacks %q", strings.TrimSpace(want))
		}
	}
	if bytes.Contains(unit, []byte("/usr/local")) {
		t.Errorf("installed unit still names /usr/local:\n%s", unit)
	}
	// The binary is this version; the shipped configuration is valid.
	bin := filepath.Join(x, "usr/bin/smsnmpd")
	if v := run(t, bin, "version"); !strings.Contains(v, "smsnmpd "+d.version+" ") {
		t.Errorf("smsnmpd version = %q, want version %s", v, d.version)
	}
	run(t, bin, "check-config", filepath.Join(x, "etc/smsnmpd/smsnmpd.toml"))
	// The man page is the binary's own, and the completion bash's.
	page := gunzip(t, filepath.Join(x, "usr/share/man/man8/smsnmpd.8.gz"))
	var own bytes.Buffer
	cmd := exec.Command(bin, "manpage")
	cmd.Stdout = &own
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strings.TrimSpace(run(t, "git", "-C", d.root, "log", "-1", "--format=%ct")))
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(page, own.Bytes()) {
		t.Errorf("the packaged man page is not what `smsnmpd manpage` of the packaged binary prints")
	}
	if !bytes.HasPrefix(gunzip(t, filepath.Join(x, "usr/share/doc/smsnmpd/changelog.gz")), []byte("smsnmpd ("+d.version+") ")) {
		t.Errorf("changelog does not start with this version's entry")
	}
	// The MIB loads from the package's paths alone (and NET-SNMP-MIB,
	// which libsnmp-base ships).
	netsnmp := deps.NeedNetSnmpMIBs(t)
	out, errOut := runErr(t, "snmptranslate", "-M", filepath.Join(x, "usr/share/snmp/mibs")+":"+netsnmp, "-m", "SERVICE-MANAGER-MIB", "-On", "SERVICE-MANAGER-MIB::smEngineTable")
	if strings.TrimSpace(out) != smEngineTableOID || errOut != "" {
		t.Errorf("snmptranslate from the package's MIB directory: %q, stderr %q; want %s", out, errOut, smEngineTableOID)
	}
}

// checkLintian: no error, and no warning the README does not explain.
func checkLintian(t *testing.T, d debFile) {
	started := time.Now()
	cmd := exec.Command("lintian", "--pedantic", "--info", "--tag-display-limit", "0", d.path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("lintian: %v", err)
	}
	readme, rerr := os.ReadFile(filepath.Join(d.root, "README.md"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	tag := regexp.MustCompile(`^([EWIPXO]): smsnmpd[^:]*: (\S+)`)
	var kept []string
	for _, line := range strings.Split(out.String(), "\n") {
		m := tag.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "E":
			t.Errorf("lintian error: %s", line)
		case "W":
			known := false
			for _, w := range lintianWarnings {
				known = known || w == m[2]
			}
			if !known {
				t.Errorf("lintian warning not explained in the README: %s", line)
			}
			kept = append(kept, line)
		default:
			t.Logf("lintian: %s", line)
		}
	}
	for _, w := range lintianWarnings {
		if !bytes.Contains(readme, []byte(w)) {
			t.Errorf("README does not name the lintian warning %s kept by the package", w)
		}
	}
	t.Logf("lintian (%v): %d warning(s) kept:\n%s", time.Since(started).Round(time.Millisecond), len(kept), strings.Join(kept, "\n"))
}

// checkInstall installs, inspects, removes and purges the package, as an
// operator would. CI only: it changes the machine.
func checkInstall(t *testing.T, d debFile) {
	deps.NeedRoot(t)
	const (
		conf = "/etc/smsnmpd/smsnmpd.toml"
		key  = "/etc/smsnmpd/rmtp.key"
		want = "/etc/systemd/system/multi-user.target.wants/smsnmpd.service"
	)
	if s := status(t); s != "" {
		t.Fatalf("smsnmpd is already known to dpkg on this machine (%s): the test does not touch an existing installation", s)
	}
	if _, err := os.Stat(key); err == nil {
		t.Fatalf("%s exists before the package does: the test does not touch it", key)
	}
	t.Cleanup(func() {
		_, _ = exec.Command("dpkg", "-P", "smsnmpd").CombinedOutput()
		_ = os.Remove(key)
	})
	started := time.Now()
	_, errOut := dpkg(t, "-i", d.path)
	t.Logf("dpkg -i: %v", time.Since(started).Round(time.Millisecond))
	if s := status(t); s != "install ok installed" {
		t.Fatalf("after dpkg -i: status %q", s)
	}
	// The service user, and the configuration readable by it only.
	u, err := user.Lookup("smsnmpd")
	if err != nil {
		t.Fatalf("no service user after install: %v", err)
	}
	g, err := user.LookupGroup("smsnmpd")
	if err != nil {
		t.Fatalf("no group smsnmpd after install: %v", err)
	}
	st, err := os.Stat(conf)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 0 || strconv.Itoa(int(sys.Gid)) != g.Gid {
		t.Errorf("%s: mode %04o uid %d gid %d, want 0640 root:smsnmpd (gid %s)", conf, st.Mode().Perm(), sys.Uid, sys.Gid, g.Gid)
	}
	t.Logf("user %s uid %s home %s", u.Username, u.Uid, u.HomeDir)
	if v := run(t, "/usr/bin/smsnmpd", "version"); !strings.Contains(v, "smsnmpd "+d.version+" ") {
		t.Errorf("installed smsnmpd version = %q, want %s", v, d.version)
	}
	run(t, "/usr/bin/smsnmpd", "check-config", conf)
	if p := strings.TrimSpace(run(t, "man", "-w", "smsnmpd")); p != "/usr/share/man/man8/smsnmpd.8.gz" {
		t.Errorf("man -w smsnmpd = %q", p)
	}
	// The MIB from the installed paths: net-snmp's default directories.
	out, stderr := runErr(t, "snmptranslate", "-m", "SERVICE-MANAGER-MIB", "-On", "SERVICE-MANAGER-MIB::smEngineTable")
	if strings.TrimSpace(out) != smEngineTableOID || stderr != "" {
		t.Errorf("snmptranslate -m SERVICE-MANAGER-MIB (installed): %q, stderr %q", out, stderr)
	}
	out, stderr = runErr(t, "snmptranslate", "-m", "SERVICE-MANAGER-MIB:SNMPv2-MIB", "-IR", "-On", "sysName")
	if strings.TrimSpace(out) != ".1.3.6.1.2.1.1.5" {
		t.Errorf("snmptranslate -IR sysName with the installed SNMPv2-MIB: %q, stderr %q", out, stderr)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, stderr := runErr(t, sa, "verify", "/lib/systemd/system/smsnmpd.service")
		if strings.Contains(stderr, "smsnmpd") {
			t.Errorf("systemd-analyze verify: %s%s", out, stderr)
		} else if stderr != "" {
			t.Logf("systemd-analyze verify (about other units): %s", stderr)
		}
	} else {
		deps.Need(t, fmt.Errorf("%w: systemd-analyze (package systemd)", deps.ErrMissing))
	}
	// Without the group key the service is neither enabled nor started,
	// and dpkg's output says why.
	if _, err := os.Lstat(want); err == nil {
		t.Errorf("%s exists: the unit was enabled without %s", want, key)
	}
	if !strings.Contains(errOut, key) {
		t.Errorf("dpkg -i did not say the key is missing:\n%s", errOut)
	}

	// Removed: the binary goes, the conffile stays.
	dpkg(t, "-r", "smsnmpd")
	if _, err := os.Stat("/usr/bin/smsnmpd"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/usr/bin/smsnmpd after dpkg -r: %v", err)
	}
	if _, err := os.Stat(conf); err != nil {
		t.Errorf("%s after dpkg -r: %v (a conffile stays until purge)", conf, err)
	}
	if s := status(t); s != "deinstall ok config-files" {
		t.Errorf("after dpkg -r: status %q, want deinstall ok config-files", s)
	}
	// Purged: the conffile goes too.
	dpkg(t, "-P", "smsnmpd")
	if _, err := os.Stat(conf); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after dpkg -P: %v", conf, err)
	}
	if s := status(t); s != "" {
		t.Errorf("after dpkg -P: status %q, want unknown", s)
	}

	// With the key in place a new installation is enabled (nothing runs
	// systemd here, so nothing starts), and purging leaves the key.
	if err := os.MkdirAll(filepath.Dir(key), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("1 "+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpkg(t, "-i", d.path)
	if _, err := os.Lstat(want); err != nil {
		t.Errorf("with %s present the unit was not enabled: %v", key, err)
	}
	dpkg(t, "-P", "smsnmpd")
	if _, err := os.Lstat(want); err == nil {
		t.Errorf("%s still there after purge", want)
	}
	if _, err := os.Stat(key); err != nil {
		t.Errorf("purge removed the administrator's %s: %v", key, err)
	}
}

// status is dpkg's status of smsnmpd, "" when dpkg does not know it.
func status(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "smsnmpd").Output()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(out))
	if s == "unknown ok not-installed" {
		return ""
	}
	return s
}

func dpkg(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("dpkg %s: %v\n%s%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// run runs a command with a deadline and returns its standard output; a
// failure is fatal and shows both outputs.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut := runErr(t, name, args...)
	_ = errOut
	return out
}

// runErr is run returning standard error too.
func runErr(t *testing.T, name string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, tail(o.String()), tail(e.String()))
	}
	return o.String(), e.String()
}

func tail(s string) string {
	if len(s) > 8000 {
		return "[...]" + s[len(s)-8000:]
	}
	return s
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}
