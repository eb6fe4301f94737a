package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// MaxFileSize caps a config file; anything larger is not a config.
const MaxFileSize = 1 << 20

// Load reads, decodes and validates the config file at path. On failure it
// returns Errors: every problem found, each naming the file, the line where
// known and the key. Nothing is opened but the file itself, so a caller can
// exit before any socket exists.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Kind: KindRead, Detail: describeIOError(err), cause: err}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, Errors{{File: path, Kind: KindRead, Detail: describeIOError(err), cause: err}}
	}
	if len(data) > MaxFileSize {
		return nil, Errors{{File: path, Kind: KindRead, Detail: fmt.Sprintf("larger than %d bytes", MaxFileSize)}}
	}
	return Parse(path, data)
}

// Check is Load for `smsnmpd check-config`: nil when the file is valid.
func Check(path string) error {
	_, err := Load(path)
	return err
}

func describeIOError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates data as if read from the file name; name
// appears in errors and anchors relative paths (state_dir, key_file,
// content_root) to its directory.
func Parse(name string, data []byte) (*Config, error) {
	src := string(data)
	secretLine := secretLines(src)

	// Phase 1: syntax only, so a syntax error is told apart from a value
	// that does not fit its field.
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		return nil, Errors{decodeError(name, src, KindSyntax, err, secretLine)}
	}

	// Phase 2: into the struct, on top of the defaults.
	cfg := Default()
	md, err := toml.Decode(src, cfg)
	if err != nil {
		return nil, Errors{decodeError(name, src, KindType, err, secretLine)}
	}

	lines := keyLines(src)
	known := schemaKeys()
	var errs Errors

	// Unknown keys: what the decoder did not use, plus what it matched only
	// case-insensitively (it folds case; we do not, so "Listen" is a typo).
	reported := map[string]bool{}
	candidates := append(md.Undecoded(), md.Keys()...)
	for _, k := range candidates {
		ks := k.String()
		if _, ok := known[ks]; ok || reported[ks] || underReported(k, reported) {
			continue
		}
		reported[ks] = true
		detail := "not a setting of smsnmpd"
		if s := suggest(ks, known); s != "" {
			detail = fmt.Sprintf("did you mean %q?", s)
		}
		errs = append(errs, &Error{File: name, Line: lines[ks], Key: ks, Kind: KindUnknownKey, Detail: detail})
	}

	// Sections that belong to the other role are a mistake, not dead weight:
	// an operator who sets se.max_weight on a manager expects it to act.
	for _, r := range []struct {
		role Role
		key  []string
		why  string
	}{
		{RoleManager, []string{"se"}, "[se] applies to role \"se\" only"},
		{RoleSE, []string{"manager"}, "[manager] applies to role \"manager\" only"},
		{RoleSE, []string{"rmtp", "parent"}, "[rmtp.parent] applies to role \"manager\" only"},
		{RoleSE, []string{"directory", "forward"}, "an SE forwards nothing; the forwarding policy is a manager's"},
		{RoleSE, []string{"directory", "digest_fp_rate"}, "an SE forwards nothing; the digest is a manager's"},
	} {
		if cfg.Node.Role == r.role && md.IsDefined(r.key...) {
			ks := toml.Key(r.key).String()
			errs = append(errs, &Error{File: name, Line: lines[ks], Key: ks, Kind: KindInvalid, Detail: r.why})
		}
	}

	cfg.resolvePaths(filepath.Dir(name))

	if err := cfg.Validate(); err != nil {
		var verrs Errors
		errors.As(err, &verrs)
		for _, e := range verrs {
			e.File = name
			e.Line = lineOf(e.Key, lines)
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		scrubSecrets(errs, cfg)
		sort.SliceStable(errs, func(i, j int) bool {
			li, lj := errs[i].Line, errs[j].Line
			if (li == 0) != (lj == 0) {
				return li != 0 // keys with a line first, in file order
			}
			return li < lj
		})
		return nil, errs
	}
	return cfg, nil
}

func underReported(k toml.Key, reported map[string]bool) bool {
	for n := 1; n < len(k); n++ {
		if reported[k[:n].String()] {
			return true
		}
	}
	return false
}

// lineOf finds the line of key, or of its nearest table present in the file
// (a missing required key points at its section).
func lineOf(key string, lines map[string]int) int {
	for k := key; k != ""; {
		if l, ok := lines[k]; ok {
			return l
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func (c *Config) resolvePaths(dir string) {
	paths := []*string{&c.Node.StateDir, &c.RMTP.KeyFile, &c.SE.ContentRoot}
	for i := range c.SNMP.V3.Users {
		u := &c.SNMP.V3.Users[i]
		paths = append(paths, &u.AuthPassphraseFile, &u.PrivPassphraseFile)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// The decoder reports a wrong type as a plain error in this form (v1.6.0,
// MetaData.e); testdata/bad/wrong_type_*.golden pin it.
var decoderErrRe = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

func decodeError(name, src string, kind ErrorKind, err error, secretLine func(int) bool) *Error {
	e := &Error{File: name, Kind: kind, Detail: err.Error(), cause: err}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line, e.Key, e.Detail = pe.Position.Line, pe.LastKey, pe.Message
		if kind == KindType {
			// A value our types refused (role, duration, address, range).
			e.Kind = KindInvalid
		}
	} else if m := decoderErrRe.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Key, _ = strconv.Unquote(m[2])
		e.Detail = m[3]
	}
	if e.Line == 0 && e.Key != "" {
		e.Line = lineOf(e.Key, keyLines(src))
	}
	// The parser quotes input fragments in some messages; near a secret we
	// withhold them rather than risk printing part of a community.
	if e.Kind == KindSyntax && (secretLine(e.Line) || isSecretKey(e.Key)) {
		e.Detail = "malformed value on a line that holds a secret (details withheld)"
	}
	e.cause = nil // the library's error repeats the detail we may have withheld
	return e
}

var secretKeyNames = func() []string {
	var out []string
	for k, info := range schemaKeys() {
		if info.secret {
			out = append(out, k[strings.LastIndexByte(k, '.')+1:])
		}
	}
	sort.Strings(out)
	return out
}()

func isSecretKey(key string) bool {
	last := key[strings.LastIndexByte(key, '.')+1:]
	for _, n := range secretKeyNames {
		if last == n {
			return true
		}
	}
	return false
}

var assignRe = regexp.MustCompile(`^\s*[A-Za-z0-9_."'-]+\s*=`)

// secretLines reports whether a line is governed by a secret key: the line
// itself, or the nearest assignment above it (a multi-line string), names
// one. It works on raw text because it must also work when parsing failed.
func secretLines(src string) func(int) bool {
	lines := strings.Split(src, "\n")
	return func(n int) bool {
		for i := min(n, len(lines)) - 1; i >= 0 && i >= n-1-64; i-- {
			l := lines[i]
			for _, name := range secretKeyNames {
				if strings.Contains(l, name) {
					return true
				}
			}
			if assignRe.MatchString(l) || strings.HasPrefix(strings.TrimSpace(l), "[") {
				return false
			}
		}
		return false
	}
}

// minScrubLen: shorter secrets would turn every message into confetti, and
// Validate never formats a secret anyway; this is a second line of defence.
const minScrubLen = 4

func scrubSecrets(errs Errors, c *Config) {
	secrets := []Secret{c.SNMP.ROCommunity, c.SNMP.RWCommunity, c.SNMP.TrapCommunity, c.SE.LocalAgent.Community}
	for _, e := range errs {
		for _, s := range secrets {
			if v := s.Reveal(); len(v) >= minScrubLen {
				e.Detail = strings.ReplaceAll(e.Detail, v, redacted)
			}
		}
	}
}

// WriteTOML writes the effective config (defaults filled in) as TOML, with
// every Secret redacted: what `check-config -print` shows.
// Sections of the other role are left out, so the output loads again.
func (c *Config) WriteTOML(w io.Writer) error {
	v := *c
	switch v.Node.Role {
	case RoleSE:
		v.Manager = Manager{}
		v.RMTP.Parent = Parent{}
		v.Directory.Forward = ""
		v.Directory.DigestFPRate = 0
	case RoleManager:
		v.SE = SE{}
	}
	return toml.NewEncoder(w).Encode(&v)
}
