package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped example farm (etc/manager.toml, etc/se1.toml, etc/se2.toml)
// runs as three processes. Only what would collide with other runs on this
// machine is rewritten: the SNMP port, the multicast port and /tmp paths.
func TestShippedExampleFarmRuns(t *testing.T) {
	requireTool(t, "snmpwalk")
	dir := t.TempDir()
	snmpPort := freeUDPPort(t)
	rmtpPort := 20000 + rand.IntN(20000)
	rewrite := strings.NewReplacer(
		"127.0.0.1:1161", fmt.Sprintf("127.0.0.1:%d", snmpPort),
		"port = 7730", fmt.Sprintf("port = %d", rmtpPort),
		"/tmp/smsnmpd-", filepath.Join(dir, "smsnmpd-"),
	)
	var procs []*proc
	for _, name := range []string{"manager", "se1", "se2"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "etc", name+".toml"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(rewrite.Replace(string(b))), 0o600); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, start(t, "-config", path))
	}
	procs[0].waitOutput(t, "engine=2", 10*time.Second)
	f := &farm{t: t, snmp: fmt.Sprintf("127.0.0.1:%d", snmpPort)}
	f.waitUp(2)
	if got := f.get("smEngineCount.0")[0]; strings.TrimSpace(got) != "2" {
		t.Errorf("smEngineCount.0 = %s, want 2", got)
	}
}
