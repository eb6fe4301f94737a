package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Limits checked by Validate, named so that code using the values can rely
// on them.
const (
	MinSNMPMessage = 484   // RFC 3417 §3: every agent must accept 484 bytes
	MaxSNMPMessage = 65507 // largest UDP payload over IPv4
	MaxInFlight    = 65536 // snmp.max_inflight: each waiting request holds its datagram and a goroutine
	MaxTrapSinks   = 32
	MaxUnicastPeer = 64
	// MaxGroupPeers caps rmtp.peers: a unicast group sends every
	// datagram to each member, so its size is what one send costs.
	MaxGroupPeers  = 256
	MaxWeightLimit = 1000 // smSeWeight is Unsigned32 (0..1000)
	MaxRMTPMessage = 64 << 20
	MaxDisplayLen  = 255 // DisplayString SIZE (0..255)
	maxIfName      = 15  // IFNAMSIZ - 1
)

// Validate checks every value and every rule that ties keys together. It
// returns Errors (keys set, lines unknown) or nil. Load calls it and adds
// file and line; a config built in code (the demo) calls it directly.
func (c *Config) Validate() error {
	v := &validator{}
	c.validateNode(v)
	c.validateLog(v)
	c.validateSystem(v)
	c.validateSNMP(v)
	c.validateSNMPv3(v)
	c.validateAgentX(v)
	c.validateRMTP(v)
	c.validateSE(v)
	c.validateManager(v)
	c.validateFanout(v)
	c.validateDirectory(v)
	if !c.Control.Socket.IsZero() && c.Control.Socket.Network() != NetUnix {
		v.add("control.socket", "must be a unix socket (\"unix:/path\"), got %q", c.Control.Socket)
	}
	return v.errs.orNil()
}

type validator struct {
	errs Errors
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{Key: key, Kind: KindInvalid, Detail: fmt.Sprintf(format, args...)})
}

func (v *validator) intRange(key string, got, lo, hi int) {
	if got < lo || got > hi {
		v.add(key, "must be %d..%d, got %d", lo, hi, got)
	}
}

func (v *validator) durRange(key string, got Duration, lo, hi time.Duration) {
	if got.Duration < lo || got.Duration > hi {
		v.add(key, "must be %v..%v, got %v", lo, hi, got.Duration)
	}
}

func (v *validator) network(key string, a Addr, allowed ...string) {
	if a.IsZero() {
		return
	}
	for _, n := range allowed {
		if a.Network() == n {
			return
		}
	}
	v.add(key, "network %q not allowed here (want %s), got %q", a.Network(), strings.Join(allowed, " or "), a.String())
}

func (v *validator) multicastGroup(key, group string) {
	ip := net.ParseIP(group).To4()
	switch {
	case group == "":
		v.add(key, "required: an IPv4 multicast address such as \"239.255.77.1\"")
	case ip == nil:
		v.add(key, "must be an IPv4 address, got %q", group)
	case !ip.IsMulticast():
		v.add(key, "must be an IPv4 multicast address (224.0.0.0/4; 239.0.0.0/8 advised), got %q", group)
	case ip.IsLinkLocalMulticast():
		v.add(key, "%q is in 224.0.0.0/24, reserved for routing protocols", group)
	}
}

func (v *validator) ifName(key, name string) {
	if name == "" || len(name) > maxIfName || strings.ContainsAny(name, "/ \t") {
		v.add(key, "must be an interface name (1..%d characters, e.g. \"lo\" or \"eth1\"), got %q", maxIfName, name)
	}
}

func (c *Config) validateNode(v *validator) {
	n := c.Node
	switch n.Role {
	case RoleSE, RoleManager:
	case "":
		v.add("node.role", "required: %q or %q", RoleSE, RoleManager)
	default:
		v.add("node.role", "unknown role %q (want %q or %q)", string(n.Role), RoleSE, RoleManager)
	}
	if n.ID == 0 {
		v.add("node.id", "required: a node id 1..%d, unique in the group and stable across restarts", MaxNodeID)
	} else if n.ID > MaxNodeID {
		v.add("node.id", "must be 1..%d, got %d", MaxNodeID, n.ID)
	}
	v.intRange("node.level", n.Level, 1, 4)
	if n.Role == RoleSE && n.Level != 1 {
		v.add("node.level", "an SE is always level 1, got %d", n.Level)
	}
	v.intRange("node.priority", n.Priority, 0, 255)
	for _, f := range []struct {
		key string
		val uint32
	}{{"node.cdn", n.CDN}, {"node.datacenter", n.DataCenter}, {"node.farm", n.Farm}} {
		if f.val == 0 || f.val > MaxNodeID {
			v.add(f.key, "must be 1..%d, got %d", MaxNodeID, f.val)
		}
	}
	if strings.ContainsRune(n.StateDir, 0) {
		v.add("node.state_dir", "contains a NUL byte")
	}
}

func (c *Config) validateLog(v *validator) {
	var l LogLevel
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		v.add("log.level", "%v", err)
	}
	var f LogFormat
	if err := f.UnmarshalText([]byte(c.Log.Format)); err != nil {
		v.add("log.format", "%v", err)
	}
}

func (c *Config) validateSystem(v *validator) {
	for _, f := range []struct{ key, val string }{
		{"system.contact", c.System.Contact}, {"system.name", c.System.Name}, {"system.location", c.System.Location},
	} {
		if len(f.val) > MaxDisplayLen {
			v.add(f.key, "longer than %d bytes (SNMP DisplayString)", MaxDisplayLen)
		}
	}
}

func (c *Config) validateSNMP(v *validator) {
	s := c.SNMP
	v.network("snmp.listen", s.Listen, NetUDP)
	if !s.Listen.IsZero() && !s.ROCommunity.IsSet() {
		v.add("snmp.ro_community", "required when snmp.listen is set")
	}
	if s.ROCommunity.IsSet() && s.RWCommunity.IsSet() && s.ROCommunity.Reveal() == s.RWCommunity.Reveal() {
		v.add("snmp.rw_community", "must differ from snmp.ro_community (values not shown)")
	}
	if len(s.TrapSinks) > MaxTrapSinks {
		v.add("snmp.trap_sinks", "at most %d sinks, got %d", MaxTrapSinks, len(s.TrapSinks))
	}
	for i, a := range s.TrapSinks {
		if a.IsZero() {
			v.add("snmp.trap_sinks", "entry %d is empty", i+1)
			continue
		}
		v.network("snmp.trap_sinks", a, NetUDP)
	}
	if len(s.TrapSinks) > 0 && !s.TrapCommunity.IsSet() {
		v.add("snmp.trap_community", "required when snmp.trap_sinks is set")
	}
	v.intRange("snmp.max_message_size", s.MaxMessageSize, MinSNMPMessage, MaxSNMPMessage)
	v.intRange("snmp.workers", s.Workers, 0, 1024)
	v.intRange("snmp.max_inflight", s.MaxInFlight, 1, MaxInFlight)
}

// SNMPv3 protocol names, as net-snmp's -a and -x take them.
var (
	v3Auth       = []string{"SHA-224", "SHA-256", "SHA-384", "SHA-512"}
	v3AuthLegacy = []string{"SHA", "MD5"}
	v3Priv       = []string{"AES", "AES-192", "AES-256"}
)

func (c *Config) validateSNMPv3(v *validator) {
	s := c.SNMP
	for i, cidr := range s.CommunitySources {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			v.add("snmp.community_sources", "entry %d %q: not a CIDR (e.g. 192.0.2.0/24)", i+1, cidr)
		}
	}
	v.durRange("snmp.inform_timeout", s.InformTimeout, 100*time.Millisecond, 30*time.Second)
	v.intRange("snmp.inform_retries", s.InformRetries, 1, 10)
	subtrees := func(key, who string, list []string) {
		for j, o := range list {
			if oid, err := smi.ParseOID(o); err != nil || len(oid) < 2 {
				v.add(key, "%sentry %d %q: not a dotted OID of two arcs or more", who, j+1, o)
			}
		}
	}
	subtrees("snmp.community_read_subtrees", "", s.CommunityReadSubtrees)
	subtrees("snmp.community_write_subtrees", "", s.CommunityWriteSubtrees)
	for _, u := range s.V3.Users {
		subtrees("snmp.v3.user.read_subtrees", "user "+strconv.Quote(u.Name)+": ", u.ReadSubtrees)
		subtrees("snmp.v3.user.write_subtrees", "user "+strconv.Quote(u.Name)+": ", u.WriteSubtrees)
	}
	users := map[string]bool{}
	for _, u := range s.V3.Users {
		users[u.Name] = true
	}
	for i, k := range s.Sinks {
		v.network("snmp.sink.address", k.Address, "udp")
		switch {
		case k.Address.IsZero():
			v.add("snmp.sink.address", "sink %d: required", i+1)
		case k.User == "" && !k.Community.IsSet(), k.User != "" && k.Community.IsSet():
			v.add("snmp.sink", "sink %d (%s): set exactly one of community (SNMPv2c) and user (SNMPv3)", i+1, k.Address)
		case k.User != "" && !users[k.User]:
			v.add("snmp.sink.user", "sink %d (%s): no [[snmp.v3.user]] named %q", i+1, k.Address, k.User)
		}
	}
	seen := map[string]bool{}
	for i, u := range s.V3.Users {
		key := func(k string) string { return "snmp.v3.user." + k }
		if u.Name == "" || len(u.Name) > 32 {
			v.add(key("name"), "user %d: name of %d octets, want 1..32", i+1, len(u.Name))
		}
		if seen[u.Name] {
			v.add(key("name"), "user %q configured twice", u.Name)
		}
		seen[u.Name] = true
		auth, priv := strings.ToUpper(u.Auth), strings.ToUpper(u.Priv)
		switch {
		case auth == "" || auth == "NONE" || slices.Contains(v3Auth, auth):
		case slices.Contains(v3AuthLegacy, auth):
			if !u.Legacy {
				v.add(key("auth"), "user %q: %s is RFC 3414's legacy HMAC-96: set legacy = true to allow it, or use SHA-256", u.Name, u.Auth)
			}
		default:
			v.add(key("auth"), "user %q: %q, want one of %s (or none)", u.Name, u.Auth, strings.Join(v3Auth, ", "))
		}
		switch {
		case priv == "" || priv == "NONE" || slices.Contains(v3Priv, priv) || priv == "AES-128":
		default:
			v.add(key("priv"), "user %q: %q, want one of %s (or none)", u.Name, u.Priv, strings.Join(v3Priv, ", "))
		}
		if auth == "NONE" && priv != "NONE" {
			v.add(key("priv"), "user %q: privacy needs authentication: with auth = \"none\", set priv = \"none\"", u.Name)
		}
		if auth != "NONE" && u.AuthPassphraseFile == "" {
			v.add(key("auth_passphrase_file"), "user %q: required for auth %s", u.Name, u.Level())
		}
		if auth != "NONE" && priv != "NONE" && u.PrivPassphraseFile == "" {
			v.add(key("priv_passphrase_file"), "user %q: required for authPriv (or set priv = \"none\")", u.Name)
		}
		for j, cidr := range u.Sources {
			if _, err := netip.ParsePrefix(cidr); err != nil {
				v.add(key("sources"), "user %q: entry %d %q: not a CIDR", u.Name, j+1, cidr)
			}
		}
	}
}

func (c *Config) validateAgentX(v *validator) {
	a := c.AgentX
	v.network("agentx.socket", a.Socket, NetTCP, NetUnix)
	if t := a.Timeout.Duration; t%time.Second != 0 || t > 255*time.Second {
		v.add("agentx.timeout", "must be whole seconds 0s..255s (the Open PDU carries seconds), got %v", t)
	}
	v.intRange("agentx.priority", a.Priority, 1, 254) // a backup registers with priority+1
	v.durRange("agentx.reconnect_max", a.ReconnectMax, 10*time.Millisecond, time.Minute)
	if p := a.PingInterval.Duration; p != 0 && (p < 100*time.Millisecond || p > time.Hour) {
		v.add("agentx.ping_interval", "must be 0s (off) or 100ms..1h, got %v", p)
	}
	if c.Node.Role == RoleSE && !a.Socket.IsZero() {
		v.add("agentx.socket", "an SE does not register with snmpd; the manager does (leave it empty)")
	}
}

func (c *Config) validateRMTP(v *validator) {
	r := c.RMTP
	switch r.Mode {
	case ParentMulticast:
		v.ifName("rmtp.interface", r.Interface)
		v.multicastGroup("rmtp.group", r.Group)
		v.multicastGroup("rmtp.manager_group", r.ManagerGroup)
		if r.Group != "" && r.Group == r.ManagerGroup {
			v.add("rmtp.manager_group", "must differ from rmtp.group: SEs must not receive upward traffic")
		}
		v.intRange("rmtp.port", r.Port, 1, 65535)
		if !r.Listen.IsZero() || len(r.Peers) > 0 {
			v.add("rmtp.listen", "only in unicast mode (rmtp.mode = \"unicast\"); a multicast group needs no peer list")
		}
	case ParentUnicast:
		if r.Listen.IsZero() {
			v.add("rmtp.listen", "required in unicast mode: this node's own \"udp:host:port\"")
		}
		v.network("rmtp.listen", r.Listen, NetUDP)
		if len(r.Peers) == 0 || len(r.Peers) > MaxGroupPeers {
			v.add("rmtp.peers", "unicast mode needs 1..%d members, got %d", MaxGroupPeers, len(r.Peers))
		}
		for _, a := range r.Peers {
			v.network("rmtp.peers", a, NetUDP)
		}
	default:
		v.add("rmtp.mode", "must be \"multicast\" or \"unicast\", got %q", r.Mode)
	}
	v.intRange("rmtp.ttl", r.TTL, 1, 255)
	switch {
	case r.KeyFile == "" && !r.Insecure:
		v.add("rmtp.key_file", "required (or set rmtp.insecure = true for a test setup)")
	case r.KeyFile != "" && r.Insecure:
		v.add("rmtp.insecure", "contradicts rmtp.key_file: set one of them")
	}
	v.durRange("rmtp.heartbeat", r.Heartbeat, 10*time.Millisecond, 10*time.Second)
	v.intRange("rmtp.suspect_after", r.SuspectAfter, 1, 100)
	if r.DownAfter <= r.SuspectAfter || r.DownAfter > 1000 {
		v.add("rmtp.down_after", "must be more than rmtp.suspect_after (%d) and at most 1000, got %d", r.SuspectAfter, r.DownAfter)
	}
	v.durRange("rmtp.ack_interval", r.AckInterval, 100*time.Microsecond, time.Second)
	if r.AckInterval.Duration >= r.Heartbeat.Duration && r.Heartbeat.Duration > 0 {
		v.add("rmtp.ack_interval", "must be shorter than rmtp.heartbeat (%v), got %v", r.Heartbeat.Duration, r.AckInterval.Duration)
	}
	v.intRange("rmtp.max_message", r.MaxMessage, 1024, MaxRMTPMessage)
	if r.MaxSegment != 0 {
		v.intRange("rmtp.max_segment", r.MaxSegment, 512, 65000)
	}
	if r.ReassemblyPerPeer < r.MaxMessage || r.ReassemblyPerPeer > 1<<30 {
		v.add("rmtp.reassembly_per_peer", "must be at least rmtp.max_message (%d) and at most 1 GiB, got %d", r.MaxMessage, r.ReassemblyPerPeer)
	}
	v.intRange("rmtp.recv_buffer", r.RecvBuffer, 64<<10, 256<<20)

	p := r.Parent
	if p.Mode == "" {
		v.add("rmtp.parent.mode", "required: \"none\", \"multicast\" or \"unicast\"")
	}
	if p.Mode == ParentNone || p.Mode == "" {
		return
	}
	switch {
	case c.Node.Role != RoleManager:
		v.add("rmtp.parent.mode", "only a manager has a parent link; an SE talks to its farm's managers over rmtp.group")
	case c.Node.Level >= 4:
		v.add("rmtp.parent.mode", "level 4 is the top of the tree and has no parent; set \"none\"")
	}
	switch p.Mode {
	case ParentMulticast:
		v.ifName("rmtp.parent.interface", p.Interface)
		v.multicastGroup("rmtp.parent.group", p.Group)
		v.multicastGroup("rmtp.parent.manager_group", p.ManagerGroup)
		v.intRange("rmtp.parent.port", p.Port, 1, 65535)
		if p.Group != "" && p.Group == p.ManagerGroup {
			v.add("rmtp.parent.manager_group", "must differ from rmtp.parent.group")
		}
		for _, g := range []string{p.Group, p.ManagerGroup} {
			if g != "" && r.Mode == ParentMulticast && (g == r.Group || g == r.ManagerGroup) && p.Port == r.Port {
				v.add("rmtp.parent.group", "the parent link must not share a group and port with this node's own group (%s:%d)", g, p.Port)
				break
			}
		}
	case ParentUnicast:
		if p.Listen.IsZero() {
			v.add("rmtp.parent.listen", "required in unicast mode: this node's own \"udp:host:port\"")
		}
		v.network("rmtp.parent.listen", p.Listen, NetUDP)
		if !p.Listen.IsZero() && r.Mode == ParentUnicast && p.Listen == r.Listen {
			v.add("rmtp.parent.listen", "must differ from rmtp.listen: the parent link is a second endpoint")
		}
		if len(p.Peers) == 0 || len(p.Peers) > MaxUnicastPeer {
			v.add("rmtp.parent.peers", "unicast mode needs 1..%d parent managers, got %d", MaxUnicastPeer, len(p.Peers))
		}
		for _, a := range p.Peers {
			v.network("rmtp.parent.peers", a, NetUDP)
		}
	}
}

func (c *Config) validateSE(v *validator) {
	s := c.SE
	v.intRange("se.max_weight", s.MaxWeight, 0, MaxWeightLimit)
	la := s.LocalAgent
	v.network("se.local_agent.address", la.Address, NetUDP)
	if !la.Address.IsZero() {
		if !la.Community.IsSet() {
			v.add("se.local_agent.community", "required when se.local_agent.address is set")
		}
		v.intRange("se.local_agent.retries", la.Retries, 0, 5)
		// A proxied answer must arrive inside the fan-out read deadline or it is useless.
		total := la.Timeout.Duration * time.Duration(la.Retries+1)
		if la.Timeout.Duration <= 0 || total >= c.Fanout.ReadDeadline.Duration {
			v.add("se.local_agent.timeout", "timeout × (retries+1) must be above 0 and below fanout.read_deadline (%v), got %v", c.Fanout.ReadDeadline.Duration, total)
		}
	}
	if s.ContentRoot != "" {
		v.durRange("se.scan_interval", s.ScanInterval, 100*time.Millisecond, 24*time.Hour)
	}
}

func (c *Config) validateManager(v *validator) {
	m := c.Manager
	v.intRange("manager.max_engines", m.MaxEngines, 1, 65535)
	if min := 2 * c.RMTP.Heartbeat.Duration; m.TakeoverAfter.Duration < min || m.TakeoverAfter.Duration > time.Minute {
		v.add("manager.takeover_after", "must be at least 2 × rmtp.heartbeat (%v) and at most 1m, got %v", min, m.TakeoverAfter.Duration)
	}
}

func (c *Config) validateFanout(v *validator) {
	f := c.Fanout
	v.durRange("fanout.read_deadline", f.ReadDeadline, 10*time.Millisecond, time.Minute)
	v.durRange("fanout.set_phase_deadline", f.SetPhaseDeadline, time.Millisecond, 10*time.Second)
	if !c.AgentX.Socket.IsZero() {
		limit := c.AgentX.EffectiveTimeout()
		if f.ReadDeadline.Duration >= limit {
			v.add("fanout.read_deadline", "must be below the AgentX timeout (%v) or snmpd gives up first, got %v", limit, f.ReadDeadline.Duration)
		}
		if f.SetPhaseDeadline.Duration >= limit {
			v.add("fanout.set_phase_deadline", "must be below the AgentX timeout (%v), got %v", limit, f.SetPhaseDeadline.Duration)
		}
	}
	v.durRange("fanout.walk_cache_ttl", f.WalkCacheTTL, 0, time.Minute)
	v.intRange("fanout.walk_cache_max", f.WalkCacheMax, 1, 10000000)
	if f.ReservationTTL.Duration <= f.SetPhaseDeadline.Duration || f.ReservationTTL.Duration > 10*time.Minute {
		v.add("fanout.reservation_ttl", "must outlive fanout.set_phase_deadline (%v) and be at most 10m, got %v", f.SetPhaseDeadline.Duration, f.ReservationTTL.Duration)
	}
	if f.ReplyCacheTTL.Duration < f.ReadDeadline.Duration || f.ReplyCacheTTL.Duration > time.Hour {
		v.add("fanout.reply_cache_ttl", "must cover fanout.read_deadline (%v), at most 1h, got %v", f.ReadDeadline.Duration, f.ReplyCacheTTL.Duration)
	}
	v.intRange("fanout.reply_cache_size", f.ReplyCacheSize, 16, 1<<20)
	v.intRange("fanout.max_varbinds", f.MaxVarbinds, 128, 65535) // Zabbix sends 128 per GET
}

func (c *Config) validateDirectory(v *validator) {
	d := c.Directory
	var p ForwardPolicy
	if err := p.UnmarshalText([]byte(d.Forward)); err != nil {
		v.add("directory.forward", "%v", err)
	}
	if c.Node.Role != RoleSE && !(d.DigestFPRate >= 0.0001 && d.DigestFPRate <= 0.5) {
		v.add("directory.digest_fp_rate", "must be between 0.0001 and 0.5, got %v", d.DigestFPRate)
	}
	v.intRange("directory.max_entries", d.MaxEntries, 1, 100000000)
	v.intRange("directory.max_key_len", d.MaxKeyLen, 1, 65535)
	v.intRange("directory.snmp_max_rows", d.SNMPMaxRows, 0, 100000) // mib.MaxDirectoryRows
	v.intRange("directory.publish_rate", d.PublishRate, 1, 1000000)
	if d.PublishBurst < d.PublishRate || d.PublishBurst > 10000000 {
		v.add("directory.publish_burst", "must be at least directory.publish_rate (%d) and at most 10000000, got %d", d.PublishRate, d.PublishBurst)
	}
	v.durRange("directory.tombstone_ttl", d.TombstoneTTL, time.Second, 30*24*time.Hour)
}
