package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/internal/config"
)

// engineID prints the node's SNMPv3 engine ID, as snmptrapd's
// createUser -e takes it.
func engineID(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("engine-id", stderr)
	path := fs.String("config", defaultConfigPath, "configuration `file`")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if cfg.Node.StateDir == "" {
		fmt.Fprintln(stderr, "smsnmpd engine-id: no node.state_dir: the engine ID is random at every start (see the node's log)")
		return exitConfig
	}
	e, err := snmp.ReadEngine(cfg.Node.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "smsnmpd engine-id: %s has no engine yet: it is made at the first start with an [[snmp.v3.user]]\n",
			filepath.Join(cfg.Node.StateDir, snmp.EngineFileName))
		return exitFail
	}
	if err != nil {
		fmt.Fprintln(stderr, "smsnmpd engine-id:", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "0x%s\n", hex.EncodeToString(e.ID))
	return exitOK
}

// demoV3 is the demo's SNMPv3 user: random passphrases, written to files
// of mode 0600 in the demo's private state directory.
type demoV3 struct{ user, authPass, privPass string }

func setupDemoV3(cfg *config.Config, dir string) (demoV3, error) {
	d := demoV3{user: "demo", authPass: randomPass(), privPass: randomPass()}
	u := config.V3User{Name: d.user, Auth: "SHA-256", Priv: "AES", Write: true,
		AuthPassphraseFile: filepath.Join(dir, "demo.auth"), PrivPassphraseFile: filepath.Join(dir, "demo.priv")}
	for p, v := range map[string]string{u.AuthPassphraseFile: d.authPass, u.PrivPassphraseFile: d.privPass} {
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			return d, err
		}
	}
	cfg.Node.StateDir = dir
	cfg.SNMP.V3.Users = []config.V3User{u}
	return d, nil
}

func randomPass() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d demoV3) print(w io.Writer, target string) {
	fmt.Fprintf(w, "  snmpget -v3 -l authPriv -u %s -a SHA-256 -A %s -x AES -X %s %s 1.3.6.1.2.1.1.5.0 1.3.6.1.6.3.10.2.1.2.0\n",
		d.user, d.authPass, d.privPass, target)
}
