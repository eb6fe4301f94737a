package snmp

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/snmp/usm"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Defaults, in one place.
const (
	DefaultRequestTimeout = 5 * time.Second // snmp_exporter's timeout; Zabbix waits 3 s
	DefaultQueueLen       = 1024
	DefaultMaxInFlight    = config.DefaultMaxInFlight
	DefaultTrapTimeout    = time.Second
)

// Sizes.
const (
	// MaxDatagram is the largest UDP payload over IPv4 (65535 - 20 - 8),
	// the largest request accepted and the largest response ever sent.
	MaxDatagram = 65507
	// MinMessageSize is the smallest message size every SNMP entity must
	// accept (RFC 3417 §3.2); a smaller configured maximum is refused.
	MinMessageSize = 484
)

// ErrConfig is returned by New for an invalid Config.
var ErrConfig = errors.New("snmp: invalid config")

// Config configures an Agent. The zero value of every optional field means
// its default.
type Config struct {
	// ROCommunity grants GET, GETNEXT and GETBULK; RWCommunity grants SET as
	// well. At least one must be set.
	ROCommunity config.Secret
	RWCommunity config.Secret
	// TrapSinks receive notifications ("host:port", UDP).
	TrapSinks []string
	// TrapCommunity is sent with notifications; required with TrapSinks.
	TrapCommunity config.Secret
	// AuthenticationTraps is the initial snmpEnableAuthenTraps: send an
	// authenticationFailure notification (at most one a second) for a
	// message with an unknown community.
	AuthenticationTraps bool
	// MaxMessageSize caps a response (MinMessageSize..MaxDatagram; 0 means
	// MaxDatagram). A GETBULK response that would be larger is truncated,
	// other requests are answered tooBig.
	MaxMessageSize int
	// Workers serve requests in parallel; 0 means GOMAXPROCS. A request
	// waiting on the farm leaves the pool (see MaxInFlight), so the
	// workers only ever run what answers from memory.
	Workers int
	// QueueLen bounds the datagrams waiting for a worker; more are dropped
	// and counted.
	QueueLen int
	// MaxInFlight bounds the requests waiting on the farm (on handlers
	// that are not agent.Local) at once: they hold no worker, only
	// memory. Beyond it new ones are dropped and counted (BusyDrops and
	// snmpSilentDrops). 0 means DefaultMaxInFlight.
	MaxInFlight int
	// RequestTimeout bounds the work for one request: an answer after the
	// manager's timeout helps nobody.
	RequestTimeout time.Duration
	// Sinks receive notifications: SNMPv2c or SNMPv3, traps or informs.
	Sinks []Sink
	// InformTimeout and InformRetries: an inform is re-sent every
	// InformTimeout until acknowledged, InformRetries times at most.
	InformTimeout time.Duration
	InformRetries int
	// Users are the SNMPv3 (USM) users; none answers SNMPv3 messages as
	// a version this agent does not serve.
	Users []User
	// Engine is the SNMPv3 engine (StartEngine); required with Users.
	Engine Engine
	// CommunitySources, when set, are the only addresses SNMPv1/v2c
	// requests are accepted from.
	CommunitySources []netip.Prefix
	// CommunityContexts, when set, are the only contexts the communities
	// name ("" the default one, "se3" with "public@se3"); nil allows
	// every context that exists.
	CommunityContexts []string
	// CommunityRead and CommunityWrite, when set, are the only subtrees
	// the communities read and (the read-write one) write.
	CommunityRead, CommunityWrite []smi.OID
	// Now is the clock of snmpEngineTime; nil means time.Now.
	Now func() time.Time
	// SysUpTime returns sysUpTime.0 in hundredths of a second for
	// notifications; nil means the time since New.
	SysUpTime func() uint32
}

// FromConfig builds a Config from the [snmp] section of the process config.
func FromConfig(s config.SNMP) Config {
	c := Config{
		ROCommunity:    s.ROCommunity,
		RWCommunity:    s.RWCommunity,
		TrapCommunity:  s.TrapCommunity,
		MaxMessageSize: s.MaxMessageSize,
		Workers:        s.Workers,
		MaxInFlight:    s.MaxInFlight,
	}
	for _, a := range s.TrapSinks {
		c.TrapSinks = append(c.TrapSinks, a.Address())
	}
	for _, k := range s.Sinks {
		c.Sinks = append(c.Sinks, Sink{Address: k.Address.Address(), Community: k.Community, User: k.User, Inform: k.Inform})
	}
	c.InformTimeout, c.InformRetries = s.InformTimeout.Duration, s.InformRetries
	for _, p := range s.CommunitySources {
		if n, err := netip.ParsePrefix(p); err == nil { // config.Validate checked them
			c.CommunitySources = append(c.CommunitySources, n)
		}
	}
	c.CommunityContexts = s.CommunityContexts
	c.CommunityRead, c.CommunityWrite = oids(s.CommunityReadSubtrees), oids(s.CommunityWriteSubtrees)
	return c
}

// oids parses subtrees config.Validate checked.
func oids(ss []string) []smi.OID {
	var out []smi.OID
	for _, s := range ss {
		if o, err := smi.ParseOID(s); err == nil {
			out = append(out, o)
		}
	}
	return out
}

// UsersFromConfig reads [[snmp.v3.user]]: the protocols, and the
// passphrases from their files (config.ReadPassphrase's rules; its
// errors wrap config.ErrPassphrase).
func UsersFromConfig(v3 config.SNMPv3) ([]User, error) {
	var out []User
	for _, cu := range v3.Users {
		u := User{Name: cu.Name, Write: cu.Write, Contexts: cu.Contexts,
			Read: oids(cu.ReadSubtrees), WriteSubtrees: oids(cu.WriteSubtrees)}
		if len(u.Contexts) == 0 {
			u.Contexts = nil // the default context only
		}
		for _, p := range cu.Sources {
			n, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("%w: user %q: source %q: %w", ErrConfig, cu.Name, p, err)
			}
			u.Sources = append(u.Sources, n)
		}
		auth, priv := cu.Auth, cu.Priv
		if auth == "" {
			auth = "SHA-256"
		}
		if priv == "" {
			priv = "AES"
		}
		var err error
		if !strings.EqualFold(auth, "none") {
			if u.Auth, err = usm.ParseAuth(auth); err != nil {
				return nil, fmt.Errorf("%w: user %q: %w", ErrConfig, cu.Name, err)
			}
			if u.AuthPass, err = config.ReadPassphrase(cu.AuthPassphraseFile); err != nil {
				return nil, err
			}
		}
		if !strings.EqualFold(priv, "none") {
			if u.Priv, err = usm.ParsePriv(priv); err != nil {
				return nil, fmt.Errorf("%w: user %q: %w", ErrConfig, cu.Name, err)
			}
			if u.PrivPass, err = config.ReadPassphrase(cu.PrivPassphraseFile); err != nil {
				return nil, err
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func (c *Config) setDefaults() {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = MaxDatagram
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.InformTimeout == 0 {
		c.InformTimeout = DefaultInformTimeout
	}
	if c.InformRetries == 0 {
		c.InformRetries = DefaultInformRetries
	}
}

func (c *Config) validate() error {
	switch {
	case !c.ROCommunity.IsSet() && !c.RWCommunity.IsSet() && len(c.Users) == 0:
		return fmt.Errorf("%w: no community and no SNMPv3 user configured", ErrConfig)
	case c.MaxMessageSize < MinMessageSize || c.MaxMessageSize > MaxDatagram:
		return fmt.Errorf("%w: max message size %d outside %d..%d", ErrConfig, c.MaxMessageSize, MinMessageSize, MaxDatagram)
	case c.Workers < 0 || c.QueueLen < 0 || c.MaxInFlight < 0 || c.RequestTimeout < 0:
		return fmt.Errorf("%w: negative workers, queue length, max in flight or timeout", ErrConfig)
	case len(c.TrapSinks) > 0 && !c.TrapCommunity.IsSet():
		return fmt.Errorf("%w: trap sinks without a trap community", ErrConfig)
	case c.InformTimeout < 0 || c.InformRetries < 0:
		return fmt.Errorf("%w: negative inform timeout or retries", ErrConfig)
	}
	for _, s := range c.Sinks {
		if s.User == "" && !s.Community.IsSet() {
			return fmt.Errorf("%w: sink %s: neither a community nor an SNMPv3 user", ErrConfig, s.Address)
		}
		if s.User != "" && !slices.ContainsFunc(c.Users, func(u User) bool { return u.Name == s.User }) {
			return fmt.Errorf("%w: sink %s: no SNMPv3 user %q", ErrConfig, s.Address, s.User)
		}
	}
	return nil
}
