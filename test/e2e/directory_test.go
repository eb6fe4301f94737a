package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
)

// cli runs `smsnmpd ARGS...` and returns its output and exit code.
func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), exitCodeOf(err)
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

type lookupJSON struct {
	Key  string `json:"key"`
	Hits []struct {
		Location struct {
			Engine uint32 `json:"engine"`
		} `json:"location"`
		Size    uint64 `json:"size"`
		Down    bool   `json:"down"`
		Version struct {
			Incarnation uint64 `json:"incarnation"`
		} `json:"version"`
	} `json:"hits"`
}

// Content published on SEs with the CLI reaches the farm's manager:
// lookup, smDirectoryTable, removals, and a restarted SE re-announces what
// it published (kept in its state directory).
func TestDirectoryPublishLookupAndRestart(t *testing.T) {
	f := newFarm(t, 0)
	f.startManager()
	const n = 3
	for i := 1; i <= n; i++ {
		f.startSE(i, 1000)
	}
	f.waitUp(n)

	// Each SE publishes 300 keys from a file, key "se<i>/obj<j>".
	for i := 1; i <= n; i++ {
		var b strings.Builder
		for j := 0; j < 300; j++ {
			fmt.Fprintf(&b, "se%d/obj%d\n", i, j)
		}
		list := filepath.Join(f.dir, fmt.Sprintf("keys%d", i))
		if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, code := cli(t, "publish", "-socket", "unix:"+f.socket(fmt.Sprintf("se%d", i)), "-size", "4096", "-from", list); code != 0 {
			t.Fatalf("publish on se%d: exit %d: %s", i, code, out)
		}
	}
	// The same object on two SEs: both locations come back.
	for _, i := range []int{1, 3} {
		if out, code := cli(t, "publish", "-socket", "unix:"+f.socket(fmt.Sprintf("se%d", i)), "shared/movie.mp4"); code != 0 {
			t.Fatalf("publish shared on se%d: %s", i, out)
		}
	}
	mgr := "unix:" + f.socket("manager")
	waitfor.True(t, 10*time.Second, "smDirectoryCount reaches 902", func() bool {
		return strings.TrimSpace(f.get("smDirectoryCount.0")[0]) == "902"
	})
	out, code := cli(t, "lookup", "-json", "-socket", mgr, "shared/movie.mp4")
	if code != 0 {
		t.Fatalf("lookup: exit %d: %s", code, out)
	}
	var res lookupJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("lookup --json is not JSON: %v\n%s", err, out)
	}
	if len(res.Hits) != 2 || res.Hits[0].Location.Engine+res.Hits[1].Location.Engine != 4 {
		t.Errorf("shared/movie.mp4 hits %+v, want SEs 1 and 3", res.Hits)
	}
	if out, code := cli(t, "lookup", "-socket", mgr, "se2/obj7"); code != 0 || !strings.Contains(out, "se 2") {
		t.Errorf("lookup se2/obj7: exit %d: %s", code, out)
	}
	if out, code := cli(t, "lookup", "-socket", mgr, "no/such/key"); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("lookup of a missing key: exit %d: %s", code, out)
	}
	// Publishing where no SE runs is a clear error.
	if out, code := cli(t, "publish", "-socket", "unix:"+filepath.Join(f.dir, "nobody.sock"), "x"); code == 0 || !strings.Contains(out, "no smsnmpd is listening") {
		t.Errorf("publish with no SE: exit %d: %s", code, out)
	}
	// A key over the cap is refused with the reason.
	if out, code := cli(t, "publish", "-socket", "unix:"+f.socket("se1"), strings.Repeat("k", 2000)); code == 0 || !strings.Contains(out, "long") {
		t.Errorf("over-long key: exit %d: %s", code, out)
	}

	// Removal reaches the manager.
	if out, code := cli(t, "unpublish", "-socket", "unix:"+f.socket("se3"), "shared/movie.mp4"); code != 0 {
		t.Fatalf("unpublish: %s", out)
	}
	waitfor.True(t, 10*time.Second, "the removal reaches the manager", func() bool {
		out, _ := cli(t, "lookup", "-json", "-socket", mgr, "shared/movie.mp4")
		var r lookupJSON
		return json.Unmarshal([]byte(out), &r) == nil && len(r.Hits) == 1 && r.Hits[0].Location.Engine == 1
	})

	// SE 2 killed and restarted: it re-announces its 300 entries from its
	// state directory under its new incarnation (without the saved list
	// the manager would drop them once the re-announcement ends).
	look := func(key string) lookupJSON {
		out, _ := cli(t, "lookup", "-json", "-socket", mgr, key)
		var r lookupJSON
		_ = json.Unmarshal([]byte(out), &r)
		return r
	}
	before := look("se2/obj299")
	if len(before.Hits) != 1 {
		t.Fatalf("se2/obj299 before the restart: %+v", before)
	}
	victim := f.ses[2]
	time.Sleep(time.Second) // the SE saves its list at most twice a second
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	f.startSE(2, 1000)
	f.waitUp(n)
	waitfor.True(t, 15*time.Second, "SE 2's entries re-announced by its new incarnation", func() bool {
		r := look("se2/obj0")
		s := look("se2/obj299")
		return len(r.Hits) == 1 && len(s.Hits) == 1 && !s.Hits[0].Down &&
			r.Hits[0].Version.Incarnation != before.Hits[0].Version.Incarnation &&
			s.Hits[0].Version.Incarnation != before.Hits[0].Version.Incarnation
	})
	if got := strings.TrimSpace(f.get("smDirectoryCount.0")[0]); got != "901" {
		t.Errorf("smDirectoryCount after SE 2 restarted = %s, want 901", got)
	}
}

// `publish -from -` publishes keys as they arrive on its standard input
// (a pipe from a content pipeline), not only at end of input: the first
// key is at the manager while the pipe is still open.
func TestPublishFromStdinStreams(t *testing.T) {
	f := newFarm(t, 0)
	f.startManager()
	f.startSE(1, 1000)
	f.waitUp(1)
	cmd := exec.Command(binary, "publish", "-socket", "unix:"+f.socket("se1"), "-from", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	mgr := "unix:" + f.socket("manager")
	if _, err := io.WriteString(stdin, "stream/first\n# a comment\n\n"); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, 10*time.Second, "the first key at the manager while the pipe is open", func() bool {
		_, code := cli(t, "lookup", "-socket", mgr, "stream/first")
		return code == 0
	})
	if _, err := io.WriteString(stdin, "stream/second\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("publish -from -: %v: %s", err, out.String())
	}
	if !strings.Contains(out.String(), "published 2 entries") {
		t.Errorf("publish -from - printed %q, want 2 entries", out.String())
	}
	if _, code := cli(t, "lookup", "-socket", mgr, "stream/second"); code != 0 {
		waitfor.True(t, 10*time.Second, "the second key at the manager", func() bool {
			_, code := cli(t, "lookup", "-socket", mgr, "stream/second")
			return code == 0
		})
	}
}
