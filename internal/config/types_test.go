package config

import (
	"testing"
	"time"
)

func TestParseAddr(t *testing.T) {
	cases := []struct {
		in, network, address string
		ok                   bool
	}{
		{"", "", "", true},
		{"udp:127.0.0.1:1161", "udp", "127.0.0.1:1161", true},
		{"udp:[::1]:162", "udp", "[::1]:162", true},
		{"udp:traps.example.net:162", "udp", "traps.example.net:162", true},
		{"tcp:127.0.0.1:705", "tcp", "127.0.0.1:705", true},
		{"unix:/var/agentx/master", "unix", "/var/agentx/master", true},
		{"unix:/var/agentx/../agentx/master", "unix", "/var/agentx/master", true},
		{"udp:0.0.0.0:161", "udp", "0.0.0.0:161", true},
		{"127.0.0.1:161", "", "", false},       // no network
		{"udp:127.0.0.1", "", "", false},       // no port
		{"udp::161", "", "", false},            // empty host
		{"udp:127.0.0.1:0", "", "", false},     // port 0
		{"udp:127.0.0.1:65536", "", "", false}, // port range
		{"udp:127.0.0.1:snmp", "", "", false},  // named port
		{"udp:239.1.1.1:161", "", "", false},   // multicast host
		{"udp:bad_host:161", "", "", false},    // underscore
		{"udp:-x.example:161", "", "", false},  // label starts with '-'
		{"unix:relative/sock", "", "", false},  // not absolute
		{"sctp:127.0.0.1:1", "", "", false},    // network
		{"UDP:127.0.0.1:161", "", "", false},   // case matters
		{"unix:/" + string(make([]byte, 200)), "", "", false},
	}
	for _, c := range cases {
		a, err := ParseAddr(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseAddr(%q) err = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if a.Network() != c.network || a.Address() != c.address {
			t.Errorf("ParseAddr(%q) = %q %q, want %q %q", c.in, a.Network(), a.Address(), c.network, c.address)
		}
		if a.IsZero() != (c.in == "") {
			t.Errorf("ParseAddr(%q).IsZero() = %v", c.in, a.IsZero())
		}
		// String is the config form and parses back to the same Addr.
		if b, err := ParseAddr(a.String()); err != nil || b != a {
			t.Errorf("round trip of %q: %v %v", c.in, b, err)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"800ms": 800 * time.Millisecond, "0s": 0, "1m30s": 90 * time.Second} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.Duration != want {
			t.Errorf("%q = %v, %v", in, d.Duration, err)
		}
	}
	for _, in := range []string{"", "800", "0", "1.5", "-1s", "fast"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %v", in, d.Duration)
		}
	}
}

func TestEnums(t *testing.T) {
	var r Role
	var f LogFormat
	var l LogLevel
	var p ForwardPolicy
	var m ParentMode
	for _, c := range []struct {
		u  interface{ UnmarshalText([]byte) error }
		in string
		ok bool
	}{
		{&r, "se", true}, {&r, "manager", true}, {&r, "SE", false}, {&r, "sm", false},
		{&f, "json", true}, {&f, "auto", true}, {&f, "JSON", false},
		{&l, "Debug", true}, {&l, "warning", true}, {&l, "fatal", false},
		{&p, "summary", true}, {&p, "partial", false},
		{&m, "unicast", true}, {&m, "broadcast", false},
	} {
		if err := c.u.UnmarshalText([]byte(c.in)); (err == nil) != c.ok {
			t.Errorf("%T %q: err = %v", c.u, c.in, err)
		}
	}
	if l != "warn" {
		t.Errorf("\"warning\" stored as %q", l)
	}
}
