package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/control"
)

// fakeNode is a control socket answering lookup and publish as a node
// would, from canned answers.
func fakeNode(t *testing.T, dir string, lookup func(key string) (control.LookupResult, error)) string {
	t.Helper()
	path := filepath.Join(dir, "control.sock")
	srv, err := control.Listen(path, func(_ context.Context, cmd string, raw json.RawMessage) (any, error) {
		switch cmd {
		case control.CmdLookup:
			var a control.LookupArgs
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			return lookup(a.Key)
		case control.CmdPublish:
			var a control.PublishArgs
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			return control.PublishResult{Queued: len(a.Entries), From: 1, To: uint64(len(a.Entries))}, nil
		case control.CmdPublishStatus: // everything accepted at once
			return control.PublishStatus{Managers: []uint32{1, 2}}, nil
		}
		return nil, control.ErrUnknownCommand
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return path
}

func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "smx") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func writeFile(t *testing.T, path, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// seConfig is a valid SE configuration using the key file key.
func seConfig(t *testing.T, dir, key string) string {
	t.Helper()
	return writeFile(t, filepath.Join(dir, "se.toml"), fmt.Sprintf(`[node]
role = "se"
id = 1

[rmtp]
interface = "lo"
key_file = %q

[control]
socket = ""
`, key), 0o600)
}

const goodKey = "1 0123456789abcdef0123456789abcdef\n"

// Every class of failure has its own exit code, the same for every
// command (README "Exit codes", smsnmpd -h), and each is reachable.
func TestExitCodes(t *testing.T) {
	dir := shortDir(t)
	hit := directory.Hit{Location: directory.Location{CDN: 1, DataCenter: 1, Farm: 1, Engine: 2}, Size: 7, Hops: 2}
	node := fakeNode(t, dir, func(key string) (control.LookupResult, error) {
		switch key {
		case "here":
			return control.LookupResult{Key: key, Hits: []directory.Hit{hit}, Path: []directory.Step{{Via: "self", Level: 1, Hits: 1}}}, nil
		case "partial":
			return control.LookupResult{Key: key, Path: []directory.Step{{Via: "self", Level: 1}, {Via: "parent", Level: 2, Error: "no answer"}}}, nil
		case "broken":
			return control.LookupResult{}, errors.New("the directory is closed")
		}
		return control.LookupResult{Key: key, Path: []directory.Step{{Via: "self", Level: 1}}}, nil
	})
	sock := "unix:" + node
	badCfg := writeFile(t, filepath.Join(dir, "bad.toml"), "[node]\nrole = \"se\"\nid = 1\nmisspelt = 2\n", 0o600)
	noSocket := writeFile(t, filepath.Join(dir, "nosock.toml"), "[node]\nrole = \"se\"\nid = 1\n\n[rmtp]\ninsecure = true\n\n[control]\nsocket = \"\"\n", 0o600)
	openKey := writeFile(t, filepath.Join(dir, "open.key"), goodKey, 0o644)
	junkKey := writeFile(t, filepath.Join(dir, "junk.key"), "not a key\n", 0o600)
	keyDir := filepath.Join(dir, "k1")
	keyDir2 := filepath.Join(dir, "k2")
	for _, d := range []string{keyDir, keyDir2} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	openCfg := seConfig(t, keyDir, openKey)
	junkCfg := seConfig(t, keyDir2, junkKey)
	// An SNMP port already taken: the configuration is fine, starting fails.
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busyCfg := writeFile(t, filepath.Join(dir, "busy.toml"), fmt.Sprintf(`[node]
role = "manager"
id = 7

[snmp]
listen = "udp:%s"
ro_community = "public"

[rmtp]
interface = "lo"
insecure = true

[control]
socket = ""
`, taken.LocalAddr()), 0o600)

	for _, tc := range []struct {
		name string
		args []string
		want int
		out  string // in stdout+stderr
	}{
		{"ok: version", []string{"version"}, exitOK, "smsnmpd"},
		{"ok: -h lists the exit codes", []string{"-h"}, exitOK, "5  the control socket"},
		{"ok: a lookup that finds", []string{"lookup", "-socket", sock, "here"}, exitOK, "1 location(s)"},
		{"ok: publish", []string{"publish", "-socket", sock, "-ttl", "1h", "k"}, exitOK, "published 1 entries"},
		{"fail: a lookup that finds nothing", []string{"lookup", "-socket", sock, "nowhere"}, exitFail, "not found"},
		{"fail: the node refuses the command", []string{"lookup", "-socket", sock, "broken"}, exitFail, "the directory is closed"},
		{"fail: nothing listens", []string{"lookup", "-socket", "unix:" + filepath.Join(dir, "none.sock"), "k"}, exitFail, "no smsnmpd is listening"},
		{"fail: the node cannot start (SNMP port taken)", []string{"-config", busyCfg}, exitFail, "cannot start"},
		{"usage: unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"usage: unknown flag", []string{"lookup", "-nope", "k"}, exitUsage, "flag provided but not defined"},
		{"usage: -socket not a unix socket", []string{"lookup", "-socket", "tcp:127.0.0.1:1", "k"}, exitUsage, "want unix:/path"},
		{"usage: negative -ttl", []string{"publish", "-socket", sock, "-ttl", "-1s", "k"}, exitUsage, "-ttl -1s is negative"},
		{"config: unknown key", []string{"-config", badCfg}, exitConfig, "misspelt"},
		{"config: check-config of the same", []string{"check-config", badCfg}, exitConfig, "misspelt"},
		{"config: key file readable by others", []string{"-config", openCfg}, exitConfig, "chmod 600"},
		{"config: key file that does not parse", []string{"-config", junkCfg}, exitConfig, "want KEYID HEXKEY"},
		{"config: no control socket configured", []string{"lookup", "-config", noSocket, "k"}, exitConfig, "control.socket is empty"},
		{"partial: a level did not answer", []string{"lookup", "-socket", sock, "partial"}, exitPartial, "error: no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if got := run(tc.args, &out, &out); got != tc.want || !strings.Contains(out.String(), tc.out) {
				t.Errorf("smsnmpd %s: exit %d, want %d; output lacks %q?\n%s", strings.Join(tc.args, " "), got, tc.want, tc.out, out.String())
			}
		})
	}
}

// A control socket someone else put where the CLI looks (the old demo's
// fixed /tmp path) is refused with its own exit code, and nothing reaches
// it. Needs root to give the socket to another user.
func TestExitUntrustedSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (chown) and CI=true forbids skipping")
		}
		t.Skip("needs root: chown")
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp") // like /tmp: anyone may create a name
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	asked := 0
	path := fakeNode(t, tmp, func(key string) (control.LookupResult, error) {
		asked++
		return control.LookupResult{Key: key, Hits: []directory.Hit{{Location: directory.Location{CDN: 6, Engine: 6}}}}, nil
	})
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if got := run([]string{"lookup", "-socket", "unix:" + path, "k"}, &out, &out); got != exitUntrusted || !strings.Contains(out.String(), "not to root or to you") {
		t.Errorf("lookup on another user's socket: exit %d, want %d:\n%s", got, exitUntrusted, out.String())
	}
	if asked != 0 {
		t.Errorf("the squatter was asked %d times", asked)
	}
}
