package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

const leak = "Xq7Zk9Wv2Lp4Rt8Mn"

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret(leak)
	c := Demo()
	c.SNMP.ROCommunity = s
	c.SNMP.RWCommunity = NewSecret(leak + "-rw")
	c.SNMP.TrapCommunity = s
	c.SE.LocalAgent.Community = s

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c), fmt.Sprintf(verb, c.SNMP))
	}
	outs = append(outs, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(c))
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var b strings.Builder
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	outs = append(outs, b.String())
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))

	for _, format := range []logrus.Formatter{&logrus.JSONFormatter{}, &logrus.TextFormatter{DisableColors: true}} {
		var buf bytes.Buffer
		l := logrus.New()
		l.SetOutput(&buf)
		l.SetFormatter(format)
		l.WithField("community", s).WithField("snmp", c.SNMP).WithField("cfg", c).Info("config loaded")
		outs = append(outs, buf.String())
	}

	for i, o := range outs {
		if strings.Contains(o, leak) || strings.Contains(o, fmt.Sprintf("%x", leak)) {
			t.Errorf("output %d reveals the secret: %s", i, o)
		}
	}
	if !strings.Contains(b.String(), redacted) {
		t.Error("WriteTOML does not show that a secret is set")
	}
	if NewSecret("").String() != "" || (Secret{}).IsSet() {
		t.Error("an unset secret should print empty")
	}
	if s.Reveal() != leak || !s.Equal([]byte(leak)) || s.Equal([]byte(leak[:5])) || (Secret{}).Equal(nil) {
		t.Error("Reveal/Equal wrong")
	}
}

// TestSecretNotInErrors: whatever is wrong in a file that holds a secret,
// the error never contains the secret (or a run of it long enough to matter).
func TestSecretNotInErrors(t *testing.T) {
	head := "[node]\nrole = \"manager\"\nid = 1\n[rmtp]\ninsecure = true\n"
	cases := map[string]string{
		"bad escape":        "[snmp]\nrw_community = \"" + leak + `\q` + "\"\n",
		"bad hex escape":    "[snmp]\nrw_community = \"" + leak + `\xZZ` + leak + "\"\n",
		"bad unicode":       "[snmp]\nro_community = \"\\u" + leak + "\"\n",
		"unquoted":          "[snmp]\nro_community = " + leak + "\n",
		"unterminated":      "[snmp]\nro_community = \"" + leak + "\n",
		"trailing garbage":  "[snmp]\nro_community = \"ok\" " + leak + "\n",
		"multi-line escape": "[snmp]\nrw_community = \"\"\"\n" + leak + "\n" + `\q` + leak + "\n\"\"\"\n",
		"literal newline":   "[snmp]\nrw_community = '" + leak + "\n'\n",
		"inline table":      "[se]\nlocal_agent = { community = \"" + leak + `\q" }` + "\n",
		"number-ish":        "[snmp]\nro_community = 12" + leak + "\n",
		"as array":          "[snmp]\nro_community = [\"" + leak + "\"]\n",
		"as table":          "[snmp.ro_community]\nx = \"" + leak + "\"\n",
		"equal communities": "[snmp]\nlisten = \"udp:127.0.0.1:1161\"\nro_community = \"" + leak + "\"\nrw_community = \"" + leak + "\"\n",
		"too long":          "[snmp]\nro_community = \"" + strings.Repeat(leak, 20) + "\"\n",
		"typo next to it":   "[snmp]\nro_community = \"" + leak + "\"\nro_comunity = \"" + leak + "\"\n",
		"wrong section":     "[se.local_agent]\naddress = \"udp:127.0.0.1:161\"\ncommunity = \"" + leak + "\"\n",
		"syntax after":      "[snmp]\nro_community = \"" + leak + "\"\nworkers = [1,\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			for _, src := range []string{head + body, body} {
				_, err := Parse("secret.toml", []byte(src))
				if err == nil {
					t.Fatalf("no error for\n%s", src)
				}
				msg := err.Error()
				var all strings.Builder
				all.WriteString(msg)
				for e := error(err); e != nil; e = errors.Unwrap(e) {
					all.WriteString(fmt.Sprintf("%v %+v", e, e))
				}
				var es Errors
				if errors.As(err, &es) {
					for _, e := range es {
						all.WriteString(fmt.Sprintf("%v %+v %#v", e, e, e))
						if e.Unwrap() != nil {
							all.WriteString(e.Unwrap().Error())
						}
					}
				}
				if s := all.String(); containsRun(s, leak, 6) {
					t.Errorf("error reveals the secret:\n%s", s)
				}
			}
		})
	}
}

// containsRun reports whether s contains any n-byte substring of secret.
func containsRun(s, secret string, n int) bool {
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+n]) {
			return true
		}
	}
	return false
}
