package config

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Secret holds a value that must never be printed: SNMP community strings.
// Every way the standard library and logrus render a value (String, Format
// for every verb, GoString, MarshalText and so JSON and TOML) yields
// "<redacted>" (or "" when unset, so "is it configured?" stays visible). The
// value is a struct field rather than a string type so that a careless
// string(s) conversion does not compile; Reveal is the one grep-able way out.
type Secret struct {
	value string
}

const redacted = "<redacted>"

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{value: s} }

// Reveal returns the secret value. Call it only where the value is used
// (building an SNMP packet), never where it could reach a log or an error.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether a non-empty value was configured.
func (s Secret) IsSet() bool { return s.value != "" }

// Equal compares in constant time, so a community check does not leak the
// configured value's prefix through timing.
func (s Secret) Equal(candidate []byte) bool {
	if s.value == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.value), candidate) == 1
}

func (s Secret) masked() string {
	if s.value == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer without the value.
func (s Secret) String() string { return s.masked() }

// GoString implements fmt.GoStringer (%#v) without the value.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.masked()) + ")" }

// Format implements fmt.Formatter so that no verb (%x, %q, %v, %+v ...) reaches the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.masked()))
}

// MarshalText implements encoding.TextMarshaler (JSON, TOML, logrus JSON
// fields) without the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Its errors never quote the input.
func (s *Secret) UnmarshalText(b []byte) error {
	if len(b) > maxSecretLen {
		return fmt.Errorf("longer than %d bytes", maxSecretLen)
	}
	s.value = string(b)
	return nil
}

// maxSecretLen bounds a community string: SNMP puts it in every datagram, and
// net-snmp truncates communities at 255 bytes (COMMUNITY_MAX_LEN 256).
const maxSecretLen = 255

// Duration is a time.Duration written in the config as a Go duration string
// ("800ms", "2s"). A bare integer is refused rather than read as nanoseconds,
// the silent surprise of decoding into time.Duration directly.
type Duration struct {
	time.Duration
}

// D wraps d.
func D(d time.Duration) Duration { return Duration{d} }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "" {
		return errors.New(`empty duration; write e.g. "800ms" or "0s"`)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return fmt.Errorf("duration %q has no unit; write e.g. %q", s, s+"ms")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (examples: \"250ms\", \"2s\", \"1m30s\")", s)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Addr is an endpoint in the config's "network:address" form:
//
//	udp:127.0.0.1:1161   udp:[::1]:162   udp:traps.example.net:162
//	tcp:127.0.0.1:705    unix:/var/agentx/master
//
// The zero Addr means "off". Network and Address return what net.Dial and
// net.Listen take. Which networks a key accepts is checked by Validate.
type Addr struct {
	network string
	address string
}

// Networks an Addr may name.
const (
	NetUDP  = "udp"
	NetTCP  = "tcp"
	NetUnix = "unix"
)

// ParseAddr parses "udp:host:port", "tcp:host:port" or "unix:/absolute/path".
// An empty string is the zero (off) Addr. Host names are allowed (trap sinks
// often have one); ports must be 1..65535. The error names what is wrong
// with the address but never the key: callers add that.
func ParseAddr(s string) (Addr, error) {
	if s == "" {
		return Addr{}, nil
	}
	netw, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Addr{}, fmt.Errorf("address %q: want network:address, e.g. \"udp:127.0.0.1:1161\" or \"unix:/path\"", s)
	}
	switch netw {
	case NetUDP, NetTCP:
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("address %q: want %s:host:port (IPv6 as [::1]:port)", s, netw)
		}
		if host == "" {
			return Addr{}, fmt.Errorf("address %q: empty host; write 0.0.0.0 to mean every interface", s)
		}
		if err := checkHost(host); err != nil {
			return Addr{}, fmt.Errorf("address %q: %v", s, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return Addr{}, fmt.Errorf("address %q: port must be 1..65535", s)
		}
		return Addr{network: netw, address: net.JoinHostPort(host, port)}, nil
	case NetUnix:
		if !filepath.IsAbs(rest) {
			return Addr{}, fmt.Errorf("address %q: a unix socket path must be absolute", s)
		}
		if len(rest) > maxUnixPath {
			return Addr{}, fmt.Errorf("address %q: unix socket path longer than %d bytes (sun_path)", s, maxUnixPath)
		}
		return Addr{network: netw, address: filepath.Clean(rest)}, nil
	default:
		return Addr{}, fmt.Errorf("address %q: unknown network %q (want udp, tcp or unix)", s, netw)
	}
}

// maxUnixPath is Linux's sun_path size minus the terminating NUL.
const maxUnixPath = 107

func checkHost(h string) error {
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsMulticast() {
			return errors.New("host is a multicast address; use a unicast one")
		}
		return nil
	}
	if len(h) > 253 {
		return errors.New("host name longer than 253 bytes")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q is neither an IP address nor a valid host name", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q is neither an IP address nor a valid host name", h)
			}
		}
	}
	return nil
}

// MustAddr is ParseAddr for literals in code (presets, tests); it panics on error.
func MustAddr(s string) Addr {
	a, err := ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// IsZero reports whether the Addr is unset (the feature is off).
func (a Addr) IsZero() bool { return a.network == "" }

// Network returns "udp", "tcp", "unix" or "" when unset.
func (a Addr) Network() string { return a.network }

// Address returns "host:port" or the socket path, as net.Dial takes it.
func (a Addr) Address() string { return a.address }

// String returns the config form, "udp:127.0.0.1:1161".
func (a Addr) String() string {
	if a.IsZero() {
		return ""
	}
	return a.network + ":" + a.address
}

// MarshalText implements encoding.TextMarshaler.
func (a Addr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Addr) UnmarshalText(b []byte) error {
	v, err := ParseAddr(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Role says which node of the management tree this process plays.
type Role string

// Roles. DESIGN.md §2: a manager is SM or BSM by election, not by config.
const (
	RoleSE      Role = "se"
	RoleManager Role = "manager"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	switch v := Role(b); v {
	case RoleSE, RoleManager:
		*r = v
		return nil
	default:
		return fmt.Errorf("unknown role %q (want %q or %q)", string(b), RoleSE, RoleManager)
	}
}

// LogFormat selects the log line format.
type LogFormat string

// Log formats. FormatAuto is text on a terminal and JSON otherwise.
const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
	FormatAuto LogFormat = "auto"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LogFormat) UnmarshalText(b []byte) error {
	switch v := LogFormat(b); v {
	case FormatText, FormatJSON, FormatAuto:
		*f = v
		return nil
	default:
		return fmt.Errorf("unknown log format %q (want \"text\", \"json\" or \"auto\")", string(b))
	}
}

// LogLevel is a logrus level name.
type LogLevel string

// Log levels, least to most verbose.
var logLevels = []LogLevel{"error", "warn", "info", "debug", "trace"}

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LogLevel) UnmarshalText(b []byte) error {
	v := LogLevel(strings.ToLower(string(b)))
	if v == "warning" {
		v = "warn"
	}
	for _, known := range logLevels {
		if v == known {
			*l = v
			return nil
		}
	}
	return fmt.Errorf("unknown log level %q (want error, warn, info, debug or trace)", string(b))
}

// ForwardPolicy says what a level forwards to its parent (DESIGN.md §7).
type ForwardPolicy string

// Forwarding policies.
const (
	ForwardFull    ForwardPolicy = "full"    // every entry
	ForwardSummary ForwardPolicy = "summary" // the key and this level's unit id
	ForwardNone    ForwardPolicy = "none"    // nothing
	ForwardDigest  ForwardPolicy = "digest"  // a Bloom filter of this level's keys
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *ForwardPolicy) UnmarshalText(b []byte) error {
	switch v := ForwardPolicy(b); v {
	case ForwardFull, ForwardSummary, ForwardNone, ForwardDigest:
		*p = v
		return nil
	default:
		return fmt.Errorf("unknown forwarding policy %q (want \"full\", \"summary\", \"digest\" or \"none\")", string(b))
	}
}

// ParentMode says how a manager reaches the managers of its parent level.
type ParentMode string

// Parent link modes (DESIGN.md §4: multicast inside a LAN, unicast across).
const (
	ParentNone      ParentMode = "none"
	ParentMulticast ParentMode = "multicast"
	ParentUnicast   ParentMode = "unicast"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *ParentMode) UnmarshalText(b []byte) error {
	switch v := ParentMode(b); v {
	case ParentNone, ParentMulticast, ParentUnicast:
		*m = v
		return nil
	default:
		return fmt.Errorf("unknown parent mode %q (want \"none\", \"multicast\" or \"unicast\")", string(b))
	}
}
