package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadText(t *testing.T, text string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smsnmpd.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

const v3Base = `[node]
role = "manager"
id = 1
[rmtp]
insecure = true
[snmp]
listen = "udp:127.0.0.1:1161"
ro_community = "public"
`

func TestSNMPv3Users(t *testing.T) {
	c, err := loadText(t, v3Base+`community_sources = ["127.0.0.1/32"]
[[snmp.v3.user]]
name = "ops"
auth_passphrase_file = "ops.auth"
priv_passphrase_file = "ops.priv"
write = true
contexts = ["", "se1"]
sources = ["10.0.0.0/8"]
[[snmp.v3.user]]
name = "old"
auth = "SHA"
legacy = true
priv = "none"
auth_passphrase_file = "/etc/old.auth"
[[snmp.v3.user]]
name = "open"
auth = "none"
priv = "none"
`)
	if err != nil {
		t.Fatal(err)
	}
	u := c.SNMP.V3.Users
	if len(u) != 3 || u[0].Name != "ops" || !u[0].Write || len(u[0].Contexts) != 2 || u[0].Level() != "authPriv" ||
		u[1].Level() != "authNoPriv" || u[2].Level() != "noAuthNoPriv" || c.SNMP.CommunitySources[0] != "127.0.0.1/32" {
		t.Errorf("users %+v", u)
	}
	if !filepath.IsAbs(u[0].AuthPassphraseFile) || filepath.Base(u[0].PrivPassphraseFile) != "ops.priv" {
		t.Errorf("passphrase files not resolved beside the config: %q", u[0].AuthPassphraseFile)
	}
	for _, c := range []struct{ text, key, detail string }{
		{"[[snmp.v3.user]]\nname = \"a\"\nauth = \"SHA\"\nauth_passphrase_file = \"x\"\npriv_passphrase_file = \"y\"\n", "snmp.v3.user.auth", "legacy = true"},
		{"[[snmp.v3.user]]\nname = \"a\"\nauth = \"SHA-999\"\nauth_passphrase_file = \"x\"\npriv_passphrase_file = \"y\"\n", "snmp.v3.user.auth", "SHA-256"},
		{"[[snmp.v3.user]]\nname = \"a\"\npriv = \"DES\"\nauth_passphrase_file = \"x\"\npriv_passphrase_file = \"y\"\n", "snmp.v3.user.priv", "AES"},
		{"[[snmp.v3.user]]\nname = \"a\"\n", "snmp.v3.user.auth_passphrase_file", "required"},
		{"[[snmp.v3.user]]\nname = \"a\"\nauth = \"none\"\n", "snmp.v3.user.priv", "privacy needs authentication"},
		{"[[snmp.v3.user]]\nname = \"a\"\nauth = \"none\"\npriv = \"none\"\n[[snmp.v3.user]]\nname = \"a\"\nauth = \"none\"\npriv = \"none\"\n", "snmp.v3.user.name", "twice"},
		{"[[snmp.v3.user]]\nname = \"a\"\nauth = \"none\"\npriv = \"none\"\nsources = [\"10.0.0.0/33\"]\n", "snmp.v3.user.sources", "CIDR"},
		{"[[snmp.v3.user]]\nname = \"a\"\nauth = \"none\"\npriv = \"none\"\npassphrase = \"x\"\n", "snmp.v3.user.passphrase", ""},
	} {
		_, err := loadText(t, v3Base+c.text)
		if err == nil || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%q: %v, want %s: ...%s", c.text, err, c.key, c.detail)
		}
	}
}

func TestReadPassphrase(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, err := ReadPassphrase(write("good", "correct horse\n", 0o600))
	if err != nil || s.Reveal() != "correct horse" {
		t.Errorf("good: %q %v", s.Reveal(), err)
	}
	for name, p := range map[string]string{
		"readable by others": write("open", "correct horse\n", 0o644),
		"short":              write("short", "1234567\n", 0o600),
		"missing":            filepath.Join(dir, "none"),
	} {
		if _, err := ReadPassphrase(p); !errors.Is(err, ErrPassphrase) || strings.Contains(err.Error(), "horse") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
