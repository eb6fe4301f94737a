package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func echo(_ context.Context, cmd string, args json.RawMessage) (any, error) {
	switch cmd {
	case "echo":
		var v map[string]any
		if err := json.Unmarshal(args, &v); err != nil {
			return nil, err
		}
		return v, nil
	case "fail":
		return nil, errors.New("refused on purpose")
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCommand, cmd)
}

func socketPath(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ctl") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "run", "control.sock")
}

func TestCallRoundTrip(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %o, want 0660", st.Mode().Perm())
	}
	ctx := context.Background()
	var out map[string]any
	if err := Call(ctx, path, "echo", map[string]any{"key": "video/1.mp4"}, &out); err != nil {
		t.Fatal(err)
	}
	if out["key"] != "video/1.mp4" {
		t.Errorf("echo = %v", out)
	}
	var re *RemoteError
	if err := Call(ctx, path, "fail", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Message, "refused on purpose") {
		t.Errorf("failing command: %v", err)
	}
	if err := Call(ctx, path, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
}

func TestNotRunningIsAClearError(t *testing.T) {
	path := socketPath(t)
	if err := Call(context.Background(), path, "echo", nil, nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no socket: %v, want ErrNotRunning", err)
	}
	// A stale socket file (its node crashed) is also "not running", and a
	// new node replaces it.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	if err := Call(context.Background(), path, "echo", nil, nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale socket: %v, want ErrNotRunning", err)
	}
	s2, err := Listen(path, echo, nil)
	if err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	defer s2.Close()
	// But a live node's socket is never taken over.
	if _, err := Listen(path, echo, nil); err == nil {
		t.Error("a second node took over a live control socket")
	}
}

func TestBadRequestsGetAnErrorAndNothingBreaks(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, raw := range []string{"not json\n", "{\"command\":\n", strings.Repeat("x", MaxRequest+10) + "\n"} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		resp, err := readLine[Response](bufio.NewReader(c), MaxResponse)
		c.Close()
		if err != nil || resp.Error == "" {
			t.Errorf("request %.20q: response %+v, %v; want an error response", raw, resp, err)
		}
	}
	if err := Call(context.Background(), path, "echo", map[string]any{"still": "serving"}, nil); err != nil {
		t.Errorf("after bad requests: %v", err)
	}
}

func TestConcurrentCallsAndCleanClose(t *testing.T) {
	before := runtime.NumGoroutine()
	path := socketPath(t)
	s, err := Listen(path, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				var out map[string]any
				if err := Call(context.Background(), path, "echo", map[string]any{"n": float64(i*100 + j)}, &out); err != nil {
					errs <- err
					return
				}
				if out["n"] != float64(i*100+j) {
					errs <- fmt.Errorf("got %v for %d", out, i*100+j)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func FuzzServerRequest(f *testing.F) {
	for _, s := range []string{`{"command":"echo","args":{"a":1}}`, `{"command":"fail"}`, `{}`, `[]`, `{"command":"echo","args":5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readLine[Request](bufio.NewReader(strings.NewReader(string(b)+"\n")), MaxRequest)
		if err != nil {
			return
		}
		// Whatever decodes must be executable without a panic.
		_, _ = echo(context.Background(), req.Command, req.Args)
	})
}
