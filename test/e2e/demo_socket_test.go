package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// The demo's control socket lives in a directory of its own, mode 0700
// with an unpredictable name (a fixed /tmp path could be taken first by
// any local user, whose answers root's lookup would print), and the
// directory goes when the demo stops.
func TestDemoControlSocketIsPrivate(t *testing.T) {
	p := start(t, "demo", "--snmp", fmt.Sprintf("udp:127.0.0.1:%d", freeUDPPort(t)), "--rmtp-port", fmt.Sprint(freeUDPPort(t)), "--engines", "1")
	p.waitOutput(t, " lookup -socket unix:", 15*time.Second)
	m := regexp.MustCompile(` lookup -socket unix:(\S+) `).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no lookup command printed:\n%s", p.out.String())
	}
	sock := m[1]
	dir := filepath.Dir(sock)
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 || dir == os.TempDir() || dir == "/tmp" {
		t.Errorf("the demo's control socket %s is in %s (mode %s), want a private directory of mode 0700", sock, dir, st.Mode())
	}
	if out, code := cli(t, "lookup", "-socket", "unix:"+sock, "nothing/here"); code != 1 {
		t.Errorf("lookup through the demo's socket: exit %d, want 1 (a miss):\n%s", code, out)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 0)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind (%v)", dir, err)
	}
}
