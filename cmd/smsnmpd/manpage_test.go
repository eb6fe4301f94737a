package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The man page lists every command of usage() and every option each one
// takes, as the command's own -h prints them.
func TestManpageListsEveryCommandAndFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{cmdManpage, "-date", "2026-12-04"}, &out, &errOut); code != exitOK {
		t.Fatalf("manpage: exit %d: %s", code, errOut.String())
	}
	page := out.String()
	cmds := commands()
	if len(cmds) < 8 {
		t.Fatalf("parsed %d commands from usage(), want every one of them:\n%+v", len(cmds), cmds)
	}
	flags := 0
	for _, c := range cmds {
		if c.command != "" && !strings.Contains(page, `\fB`+roff(c.command)+`\fR`) {
			t.Errorf("command %q missing from the man page", c.command)
		}
		for _, f := range c.flags {
			flags++
			if !strings.Contains(page, `\fB\-`+roff(f.name)+`\fR`) {
				t.Errorf("%s -%s missing from the man page", c.synopsis, f.name)
			}
		}
	}
	// Flags the commands are known to take: a parser that lost them would
	// still pass the loop above.
	for _, want := range []struct{ command, flag string }{{"", "config"}, {"demo", "engines"}, {"publish", "ttl"}, {"lookup", "json"}} {
		found := false
		for _, c := range cmds {
			for _, f := range c.flags {
				found = found || (c.command == want.command && f.name == want.flag)
			}
		}
		if !found {
			t.Errorf("flag -%s of command %q not parsed from its -h", want.flag, want.command)
		}
	}
	codes := parseExitCodes()
	if len(codes) < 5 {
		t.Errorf("parsed %d exit codes from usage(): %v", len(codes), codes)
	}
	for _, c := range codes {
		if !strings.Contains(page, ".B "+c[0]+"\n") {
			t.Errorf("exit code %s missing from the man page", c[0])
		}
	}
	if !strings.Contains(page, ".TH SMSNMPD 8 \"2026-12-04\"") {
		t.Errorf("no .TH line with the given date:\n%s", page[:min(len(page), 300)])
	}
	t.Logf("%d commands, %d options, %d bytes of roff", len(cmds), flags, len(page))

	// What lintian runs on a shipped man page; any output is a warning.
	man, err := exec.LookPath("man")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("man not installed (test/deps/install.sh installs man-db)")
		}
		t.Skip("man not installed: the roff is not checked for warnings")
	}
	path := filepath.Join(t.TempDir(), "smsnmpd.8")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80")
	var warn bytes.Buffer
	cmd.Stderr = &warn
	if err := cmd.Run(); err != nil {
		t.Fatalf("man %s: %v: %s", path, err, warn.String())
	}
	if warn.Len() > 0 {
		t.Errorf("man --warnings:\n%s", warn.String())
	}
}

// The bash completion offers every command and every option, and bash
// parses it.
func TestCompletionListsEveryCommandAndFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{cmdManpage, "-completion"}, &out, &errOut); code != exitOK {
		t.Fatalf("manpage -completion: exit %d: %s", code, errOut.String())
	}
	script := out.String()
	for _, c := range commands() {
		if c.command != "" && !strings.Contains(script, c.command) {
			t.Errorf("command %q missing from the completion", c.command)
		}
		for _, f := range c.flags {
			if !strings.Contains(script, "-"+f.name) {
				t.Errorf("%s -%s missing from the completion", c.synopsis, f.name)
			}
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to parse the script")
	}
	cmd := exec.Command(bash, "-n")
	cmd.Stdin = strings.NewReader(script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, b)
	}
}

func TestParseFlagHelp(t *testing.T) {
	got := parseFlagHelp("Usage of x:\n  -a file\n    \tread from file (default \"f\")\n  -v\traise the level\n  -long\n    \tfirst line\n    \tsecond line\n")
	want := []flagHelp{{"a", "file", `read from file (default "f")`}, {"v", "", "raise the level"}, {"long", "", "first line second line"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("flag %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if parseFlagHelp("smsnmpd 1.0 (commit x)\n") != nil {
		t.Error("output that is not a flag set's usage parsed as flags")
	}
}
