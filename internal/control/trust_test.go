package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nobody is the uid/gid tests give files and processes that belong to
// another user.
const nobody = 65534

// needRoot skips a test that changes file owners (outside CI only).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (chown, a process as another user) and CI=true forbids skipping")
	}
	t.Skip("needs root: chown, a process as another user")
}

// dirAt makes dir with mode (umask aside) and owner uid.
func dirAt(t *testing.T, dir string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// countingServer listens at path and counts the commands it executes.
func countingServer(t *testing.T, path string) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	s, err := Listen(path, func(ctx context.Context, cmd string, args json.RawMessage) (any, error) {
		n.Add(1)
		return echo(ctx, cmd, args)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &n
}

func base(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ctl") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return dirAt(t, d, 0o755, 0)
}

// Who may have made the socket decides whether the CLI talks to it: a
// socket another user put at the path (the squat of a predictable /tmp
// name) is refused before anything is sent, with a clear error; a
// service's runtime directory that root gave it is trusted; a directory
// another user could replace things in is not.
func TestCheckSocketOwners(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name    string
		dirMode os.FileMode // the socket's directory
		dirUID  int
		upMode  os.FileMode // the directory above it
		sockUID int
		trusted bool
		want    string // in the error
	}{
		{"root's socket in root's directory", 0o750, 0, 0o755, 0, true, ""},
		{"root's socket in a sticky world-writable directory (/tmp)", os.ModeSticky | 0o777, 0, 0o755, 0, true, ""},
		{"another user's socket in a sticky world-writable directory (the squat)", os.ModeSticky | 0o777, 0, 0o755, nobody, false, "belongs to nobody (uid 65534), not to root or to you"},
		{"root's socket in a directory anyone may write to, not sticky", 0o777, 0, 0o755, 0, false, "another user could replace it"},
		{"root's socket in another user's directory", 0o755, nobody, 0o755, 0, false, "another user could replace it"},
		{"a service's socket in the runtime directory root gave it", 0o750, nobody, 0o755, nobody, true, ""},
		{"a service's socket in a directory it made in /tmp", 0o750, nobody, os.ModeSticky | 0o777, nobody, false, "not to root or to you"},
		{"a service's socket in its group-writable directory", 0o770, nobody, 0o755, nobody, false, "not to root or to you"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := dirAt(t, filepath.Join(base(t), "up"), tc.upMode, 0)
			dir := dirAt(t, filepath.Join(up, "d"), 0o750, 0)
			path := filepath.Join(dir, "s.sock")
			served := countingServer(t, path)
			if err := os.Chown(path, tc.sockUID, tc.sockUID); err != nil {
				t.Fatal(err)
			}
			dirAt(t, dir, tc.dirMode, tc.dirUID)
			err := Call(context.Background(), path, "echo", map[string]any{"k": "v"}, nil)
			if tc.trusted {
				if err != nil || served.Load() != 1 {
					t.Fatalf("trusted socket: %v (%d commands served)", err, served.Load())
				}
				return
			}
			if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want ErrUntrusted naming %s and %q", err, path, tc.want)
			}
			if n := served.Load(); n != 0 {
				t.Errorf("%d commands reached an untrusted socket", n)
			}
		})
	}
}

// Not a socket, or reached through a symbolic link: the link is followed
// and the socket it names is what is checked.
func TestCheckSocketFileAndLink(t *testing.T) {
	b := base(t)
	file := filepath.Join(b, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Call(context.Background(), file, "echo", nil, nil); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file: %v", err)
	}
	path := filepath.Join(b, "real", "s.sock")
	served := countingServer(t, path)
	link := filepath.Join(b, "link.sock")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if err := Call(context.Background(), link, "echo", map[string]any{}, nil); err != nil || served.Load() != 1 {
		t.Errorf("through a link to a trusted socket: %v (%d served)", err, served.Load())
	}
}

// TestHelperListen is not a test: TestCheckPeer runs the test binary as
// another user to listen on a control socket until its stdin closes.
func TestHelperListen(t *testing.T) {
	path := os.Getenv("CONTROL_HELPER_SOCKET")
	if path == "" {
		t.Skip("helper process for TestCheckPeer")
	}
	s, err := Listen(path, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The socket file exists from bind on, before listen: the parent waits
	// for this line, not for the file, or its dial may be refused.
	fmt.Println("listening")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// A socket whose file looks right (root's, in root's directory) but whose
// listener runs as another user, as after the file was swapped between
// the check and the dial, is refused once connected, before the command
// is sent.
func TestCheckPeer(t *testing.T) {
	needRoot(t)
	b := base(t)
	exe := filepath.Join(b, "control.test")
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := dirAt(t, filepath.Join(b, "d"), 0o777, 0) // the helper creates its socket here
	path := filepath.Join(dir, "s.sock")
	cmd := exec.Command(exe, "-test.run=^TestHelperListen$")
	cmd.Env = append(os.Environ(), "CONTROL_HELPER_SOCKET="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr // the helper's failures show in this test's output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var seen strings.Builder
		for sc.Scan() {
			if sc.Text() == "listening" {
				ready <- ""
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
			seen.WriteString(sc.Text() + "\n")
		}
		ready <- seen.String()
	}()
	select {
	case got := <-ready:
		if got != "" {
			t.Fatalf("the helper did not listen:\n%s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the helper did not listen within 10 s")
	}
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	dirAt(t, dir, 0o755, 0)
	err = Call(context.Background(), path, "echo", map[string]any{}, nil)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "the process listening on it runs as nobody (uid 65534)") {
		t.Fatalf("a listener running as another user: %v", err)
	}
}
