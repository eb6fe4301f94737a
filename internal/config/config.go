package config

import (
	"runtime"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Config is the whole configuration of one smsnmpd process. The TOML key of
// every field is its toml tag; etc/smsnmpd.toml shows and explains every key
// with its default. Default() is the only place this package writes
// defaults, and it takes those a library has too from the library.
//
// omitempty only affects WriteTOML, which leaves out the sections of the
// other role.
type Config struct {
	Node      Node      `toml:"node"`
	Log       Log       `toml:"log"`
	System    System    `toml:"system"`
	SNMP      SNMP      `toml:"snmp"`
	AgentX    AgentX    `toml:"agentx"`
	RMTP      RMTP      `toml:"rmtp"`
	SE        SE        `toml:"se,omitempty"`
	Manager   Manager   `toml:"manager,omitempty"`
	Fanout    Fanout    `toml:"fanout"`
	Directory Directory `toml:"directory"`
	Control   Control   `toml:"control"`
}

// MaxNodeID is the largest node id: it becomes smEngineIndex, an Integer32
// index that must be positive (DESIGN.md §6).
const MaxNodeID = 2147483647

// Node says which node of the tree this process is and where it sits.
type Node struct {
	// Role is "se" or "manager". Required: there is no safe default.
	Role Role `toml:"role"`
	// Level is 1..4 for a manager (1 farm, 2 data center, 3 CDN, 4 CDN
	// peering). An SE is always level 1.
	Level int `toml:"level"`
	// ID is the node id, 1..2147483647, unique in its group and stable across
	// restarts: an SE's id is its smEngineIndex row. Required.
	ID uint32 `toml:"id"`
	// Priority (0..255) decides the manager election: highest priority wins,
	// then lowest id. Ignored by an SE.
	Priority int `toml:"priority"`
	// CDN, DataCenter and Farm locate this node in the tree (content
	// locations carry them). Which ones matter depends on the level.
	CDN        uint32 `toml:"cdn"`
	DataCenter uint32 `toml:"datacenter"`
	Farm       uint32 `toml:"farm"`
	// StateDir keeps what must survive a restart (writable system group
	// objects, smSeAdminState, smSeWeight, the highest term seen). Empty means
	// nothing is persisted (the demo). A relative path is taken relative to
	// the config file's directory.
	StateDir string `toml:"state_dir"`
}

// Log configures logging; see package logging.
type Log struct {
	// Level: error, warn, info, debug or trace. Each -v raises it one step.
	Level LogLevel `toml:"level"`
	// Format: "text" (default), "json", or "auto" (text on a terminal, JSON
	// otherwise). Text is the default because journald and a human reading
	// journalctl both want text, and logrus' text format off a terminal is
	// already key=value; choose json (or auto) for a log shipper.
	Format LogFormat `toml:"format"`
}

// System seeds the SNMPv2-MIB system group. sysContact, sysName and
// sysLocation are writable; a value written over SNMP is kept in StateDir
// and wins over these on restart.
type System struct {
	Contact  string `toml:"contact"`
	Name     string `toml:"name"` // empty: the host name
	Location string `toml:"location"`
}

// SNMP configures the built-in SNMP agent on UDP (v1, v2c and, with
// users, v3).
type SNMP struct {
	// Listen is "udp:host:port"; empty turns the built-in agent off.
	Listen Addr `toml:"listen"`
	// ROCommunity grants read access; required when Listen is set.
	ROCommunity Secret `toml:"ro_community"`
	// RWCommunity grants read and write access; empty refuses every SET.
	RWCommunity Secret `toml:"rw_community"`
	// TrapSinks receive SNMPv2c notifications ("udp:host:port").
	TrapSinks []Addr `toml:"trap_sinks"`
	// TrapCommunity is sent with notifications; required with TrapSinks.
	TrapCommunity Secret `toml:"trap_community"`
	// MaxMessageSize caps a response (484..65507 bytes). A GETBULK response
	// that would be larger is truncated (RFC 3416 §4.2.3); other requests get tooBig.
	MaxMessageSize int `toml:"max_message_size"`
	// Workers is how many requests are served in parallel; 0 means GOMAXPROCS.
	// A request waiting on the farm holds none (see MaxInFlight).
	Workers int `toml:"workers"`
	// MaxInFlight bounds the requests waiting on the farm at once
	// (1..65536), in the built-in agent and in the AgentX subagent each: a
	// waiting request holds no worker, only memory. Beyond it the built-in
	// agent drops new ones (counted in snmpSilentDrops) and the subagent
	// answers them genErr (snmpd would otherwise retry, then close the
	// session).
	MaxInFlight int `toml:"max_inflight"`
	// Sinks receive notifications as SNMPv2c (community) or SNMPv3 (user)
	// traps or informs: [[snmp.sink]].
	Sinks []Sink `toml:"sink"`
	// InformTimeout is how long an inform waits for its acknowledgement
	// before it is re-sent (100ms..30s).
	InformTimeout Duration `toml:"inform_timeout"`
	// InformRetries is how many times an inform is re-sent at most
	// (1..10); then it is counted as failed and logged.
	InformRetries int `toml:"inform_retries"`
	// CommunitySources, when set, are the only networks (CIDRs) SNMPv1/v2c
	// requests are accepted from; others are dropped and counted.
	CommunitySources []string `toml:"community_sources"`
	// CommunityContexts, when set, are the only SNMP contexts the
	// communities may name ("" is the default, "se3" is "public@se3");
	// empty allows every context that exists.
	CommunityContexts []string `toml:"community_contexts"`
	// CommunityReadSubtrees and CommunityWriteSubtrees, when set, are the
	// only subtrees (dotted OIDs) the communities read and (rw_community)
	// write; outside them GET answers noSuchObject, walks skip, SET
	// answers noAccess.
	CommunityReadSubtrees  []string `toml:"community_read_subtrees"`
	CommunityWriteSubtrees []string `toml:"community_write_subtrees"`
	// V3 configures SNMPv3 (USM): [snmp.v3] and its [[snmp.v3.user]].
	V3 SNMPv3 `toml:"v3"`
}

// Sink is one [[snmp.sink]].
type Sink struct {
	// Address is "udp:host:port".
	Address Addr `toml:"address"`
	// Community sends SNMPv2c; User (an [[snmp.v3.user]]) sends SNMPv3 at
	// that user's level. Exactly one.
	Community Secret `toml:"community"`
	User      string `toml:"user"`
	// Inform asks for an acknowledgement (re-sent until it comes, at most
	// inform_retries times); false sends a trap.
	Inform bool `toml:"inform"`
}

// SNMPv3 configures the built-in agent's SNMPv3 (the User-based Security
// Model, RFC 3414). The engine ID and boots are kept in node.state_dir.
type SNMPv3 struct {
	// Users are the USM users; none turns SNMPv3 off.
	Users []V3User `toml:"user"`
}

// V3User is one [[snmp.v3.user]].
type V3User struct {
	// Name is the user name (1..32 octets).
	Name string `toml:"name"`
	// Auth is SHA-256 (the default), SHA-224, SHA-384 or SHA-512; SHA
	// (SHA-1) and MD5 only with Legacy; "none" for noAuthNoPriv, which the
	// user then uses (and Priv must be "none").
	Auth string `toml:"auth"`
	// AuthPassphraseFile holds the authentication passphrase (at least 8
	// characters; a trailing newline is not part of it). Like the rmtp key
	// file, it must not be readable by group or others.
	AuthPassphraseFile string `toml:"auth_passphrase_file"`
	// Priv is AES (AES-128, the default), AES-192 or AES-256 (Blumenthal
	// key extension, as net-snmp's AES-256 and gosnmp's AES256); "none"
	// for authNoPriv.
	Priv string `toml:"priv"`
	// PrivPassphraseFile holds the privacy passphrase, as AuthPassphraseFile.
	PrivPassphraseFile string `toml:"priv_passphrase_file"`
	// Legacy allows Auth = SHA or MD5 (RFC 3414's HMAC-96).
	Legacy bool `toml:"legacy"`
	// Write grants SET; without it the user reads only.
	Write bool `toml:"write"`
	// Contexts the user may name ("" is the default context, "se3" an SE's);
	// empty allows the default context only.
	Contexts []string `toml:"contexts"`
	// Sources, when set, are the only networks (CIDRs) the user's requests
	// are accepted from.
	Sources []string `toml:"sources"`
	// ReadSubtrees and WriteSubtrees, when set, are the only subtrees
	// (dotted OIDs) the user reads and (with Write) writes.
	ReadSubtrees  []string `toml:"read_subtrees"`
	WriteSubtrees []string `toml:"write_subtrees"`
}

// Level is the security level the user's configuration gives it.
func (u V3User) Level() string {
	switch {
	case strings.EqualFold(u.Auth, "none"):
		return "noAuthNoPriv"
	case strings.EqualFold(u.Priv, "none"):
		return "authNoPriv"
	}
	return "authPriv"
}

// DefaultMaxInFlight is the default of snmp.max_inflight.
const DefaultMaxInFlight = 1024

// WorkerCount resolves Workers = 0 to GOMAXPROCS.
func (s SNMP) WorkerCount() int {
	if s.Workers > 0 {
		return s.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// AgentX configures the AgentX subagent (RFC 2741) of net-snmp's snmpd.
type AgentX struct {
	// Socket is "tcp:host:port" or "unix:/path" of snmpd's master socket;
	// empty turns the subagent off.
	Socket Addr `toml:"socket"`
	// Timeout is the session timeout sent in the Open PDU, whole seconds
	// 0..255; 0 leaves snmpd's agentXTimeout (1 s by default) in force.
	Timeout Duration `toml:"timeout"`
	// Priority is the registration priority (1..255, lower wins in snmpd).
	// The active manager registers with it, a backup with Priority+1, so a
	// shared snmpd routes to the active one (DESIGN.md §7).
	Priority int `toml:"priority"`
	// ReconnectMax caps the backoff between reconnects after snmpd goes away.
	ReconnectMax Duration `toml:"reconnect_max"`
	// PingInterval is the keepalive period; 0 disables pings.
	PingInterval Duration `toml:"ping_interval"`
}

// EffectiveTimeout is how long snmpd waits for an answer: Timeout, or
// net-snmp's default agentXTimeout when Timeout is 0.
func (a AgentX) EffectiveTimeout() time.Duration {
	if a.Timeout.Duration > 0 {
		return a.Timeout.Duration
	}
	return time.Second
}

// RMTP configures the reliable multicast transport of the group this node
// is in: an SE's farm, or the group a manager manages.
type RMTP struct {
	// Mode is how this node's own group is reached: "multicast" on a LAN
	// (a farm, or the SM farm of the managers inside a data center, Fig 4)
	// or "unicast" (a level-3 or level-4 manager whose child managers sit
	// in other data centers or CDNs: every datagram goes to each of Peers,
	// with the same header, ACK/NAK, abort and authentication).
	Mode ParentMode `toml:"mode"`
	// Listen and Peers (unicast mode): this node's own "udp:host:port" and
	// every other member's (the other managers of this level and the
	// child managers' rmtp.parent.listen addresses).
	Listen Addr   `toml:"listen"`
	Peers  []Addr `toml:"peers"`
	// Interface is joined and used for sending; "lo" keeps everything on
	// the host (DESIGN.md §4). Use the farm LAN's interface in production.
	Interface string `toml:"interface"`
	// Group receives traffic "down" to every member; ManagerGroup traffic
	// "up" to the managers only. Both IPv4 multicast, 239.0.0.0/8 advised.
	Group        string `toml:"group"`
	ManagerGroup string `toml:"manager_group"`
	// Port is the UDP port of both groups.
	Port int `toml:"port"`
	// TTL of multicast datagrams; 1 keeps them on the LAN.
	TTL int `toml:"ttl"`
	// KeyFile holds the group key(s) for HMAC-SHA256. The file must not be
	// readable by group or others. Its contents are never logged; its path may
	// be. A relative path is taken relative to the config file's directory.
	KeyFile string `toml:"key_file"`
	// Insecure allows running without a key (demo, tests). Never in production.
	Insecure bool `toml:"insecure"`
	// Heartbeat is the HELLO period; a member missing SuspectAfter of them is
	// suspect, missing DownAfter is down.
	Heartbeat    Duration `toml:"heartbeat"`
	SuspectAfter int      `toml:"suspect_after"`
	DownAfter    int      `toml:"down_after"`
	// AckInterval is the period of a manager's cumulative ACK vector.
	AckInterval Duration `toml:"ack_interval"`
	// MaxMessage caps one message (bytes, before segmentation).
	MaxMessage int `toml:"max_message"`
	// MaxSegment caps one datagram's payload; 0 derives it from the
	// interface MTU so that no datagram is fragmented.
	MaxSegment int `toml:"max_segment"`
	// ReassemblyPerPeer caps the memory held for one peer's partial messages.
	ReassemblyPerPeer int `toml:"reassembly_per_peer"`
	// RecvBuffer is the socket receive buffer asked for (the kernel may grant
	// less: see net.core.rmem_max).
	RecvBuffer int `toml:"recv_buffer"`
	// Parent is a manager's link to the managers of the level above.
	Parent Parent `toml:"parent,omitempty"`
}

// Parent is how a manager of level 1..3 reaches its parent level's managers:
// the same multicast SM farm inside one LAN (Fig 4), or unicast across
// tunnels and WANs, where multicast does not pass.
type Parent struct {
	Mode ParentMode `toml:"mode"`
	// Multicast mode.
	Interface    string `toml:"interface"`
	Group        string `toml:"group"`
	ManagerGroup string `toml:"manager_group"`
	Port         int    `toml:"port"`
	// Unicast mode: this node's own "udp:host:port" and the parent
	// managers' addresses.
	Listen Addr   `toml:"listen"`
	Peers  []Addr `toml:"peers"`
}

// SE configures the service engine role.
type SE struct {
	// MaxWeight caps smSeWeight (0..1000); a SET above it is refused.
	MaxWeight int `toml:"max_weight"`
	// LocalAgent is the host's own SNMP agent, asked for any OID the SE
	// does not serve itself. Address empty = no proxying.
	LocalAgent LocalAgent `toml:"local_agent"`
	// ContentRoot is scanned for content to publish; empty = no scanning.
	ContentRoot string `toml:"content_root"`
	// ScanInterval is the period of the content root scan.
	ScanInterval Duration `toml:"scan_interval"`
}

// LocalAgent is an SNMPv2c agent the SE proxies to.
type LocalAgent struct {
	Address   Addr     `toml:"address"`
	Community Secret   `toml:"community"`
	Timeout   Duration `toml:"timeout"`
	Retries   int      `toml:"retries"`
}

// Manager configures the manager role (SM or BSM).
type Manager struct {
	// MaxEngines caps the members of the view; more are refused and counted.
	MaxEngines int `toml:"max_engines"`
	// TakeoverAfter is how long a backup waits without the active manager's
	// heartbeats before taking over (DESIGN.md §7: within 1 s).
	TakeoverAfter Duration `toml:"takeover_after"`
	// EngineContexts registers each SE under the SNMP context "se<N>" in
	// AgentX mode.
	EngineContexts bool `toml:"engine_contexts"`
}

// Fanout configures the management protocol (DESIGN.md §5).
type Fanout struct {
	// ReadDeadline bounds a GET/GETNEXT/walk transaction; it must stay under
	// snmpd's agentXTimeout so that the answer beats the master's retry.
	ReadDeadline Duration `toml:"read_deadline"`
	// SetPhaseDeadline bounds each SET phase (snmpd is frozen meanwhile).
	SetPhaseDeadline Duration `toml:"set_phase_deadline"`
	// WalkCacheTTL is how long one walk snapshot serves following GetNexts;
	// WalkCacheMax caps its varbinds.
	WalkCacheTTL Duration `toml:"walk_cache_ttl"`
	WalkCacheMax int      `toml:"walk_cache_max"`
	// ReservationTTL expires an SE's TEST reservation without COMMIT/CLEANUP.
	ReservationTTL Duration `toml:"reservation_ttl"`
	// ReplyCacheTTL and ReplyCacheSize keep an SE's recent replies so a
	// repeated request is answered, never executed twice.
	ReplyCacheTTL  Duration `toml:"reply_cache_ttl"`
	ReplyCacheSize int      `toml:"reply_cache_size"`
	// MaxVarbinds caps the varbinds of one transaction.
	MaxVarbinds int `toml:"max_varbinds"`
}

// Directory configures content location entries (DESIGN.md §7).
type Directory struct {
	// Forward is what this level forwards to its parent: full, summary,
	// digest, none.
	Forward ForwardPolicy `toml:"forward,omitempty"`
	// DigestFPRate is the false-positive rate of the Bloom filter sent
	// under forward = "digest" (about 9.6 bits and 7 hashes per key at
	// 0.01).
	DigestFPRate float64 `toml:"digest_fp_rate,omitempty"`
	// MaxEntries caps the entries this node stores.
	MaxEntries int `toml:"max_entries"`
	// MaxKeyLen caps a content key (bytes).
	MaxKeyLen int `toml:"max_key_len"`
	// SNMPMaxRows caps smDirectoryTable rows (bulk export is lookup --json).
	SNMPMaxRows int `toml:"snmp_max_rows"`
	// PublishRate (updates/s) and PublishBurst limit one SE's updates: the
	// SE sends at most that, the farm's managers admit that and refuse
	// more (the SE then slows down and sends again). Give SEs and
	// managers the same values.
	PublishRate  int `toml:"publish_rate"`
	PublishBurst int `toml:"publish_burst"`
	// TombstoneTTL keeps removals long enough to beat late duplicates.
	TombstoneTTL Duration `toml:"tombstone_ttl"`
}

// Control is the local control socket used by publish, unpublish and lookup.
type Control struct {
	// Socket is "unix:/path"; empty turns it off. It is created mode 0660.
	Socket Addr `toml:"socket"`
}

// Default returns the defaults of every key. It is not valid on its own:
// node.role and node.id have no safe default and must be configured.
//
// What a library also defaults (rmtp's timers and caps, the coordinator's
// deadlines, the responder's caches, the directory's key and tombstone
// limits) is taken from the library's own Default...Config or constant,
// so each is written once; defaults_test.go ties the libraries this package
// cannot import (they import it) and the ones that differ on purpose.
func Default() *Config {
	ep := rmtp.DefaultConfig()
	coord := fanout.DefaultCoordinatorConfig()
	resp := fanout.DefaultResponderConfig()
	return &Config{
		Node: Node{
			Level:      1,
			Priority:   100,
			CDN:        1,
			DataCenter: 1,
			Farm:       1,
			StateDir:   "/var/lib/smsnmpd",
		},
		Log: Log{Level: "info", Format: FormatText},
		SNMP: SNMP{
			MaxMessageSize: 65507,
			MaxInFlight:    DefaultMaxInFlight,
			InformTimeout:  Duration{time.Second},
			InformRetries:  3,
		},
		AgentX: AgentX{
			Priority:     127,
			ReconnectMax: D(time.Second),
			PingInterval: D(5 * time.Second),
		},
		RMTP: RMTP{
			Mode:              ParentMulticast,
			Interface:         rmtp.DefaultInterface,
			Group:             "239.255.77.1",
			ManagerGroup:      "239.255.77.2",
			Port:              7730,
			TTL:               rmtp.DefaultMulticastTTL,
			Heartbeat:         D(ep.HelloInterval),
			SuspectAfter:      ep.SuspectAfter,
			DownAfter:         ep.DownAfter,
			AckInterval:       D(ep.AckDelay),
			MaxMessage:        ep.MaxMessage,
			ReassemblyPerPeer: ep.PeerMemory,
			RecvBuffer:        rmtp.DefaultReadBuffer,
			Parent: Parent{
				Mode:         ParentNone,
				Interface:    rmtp.DefaultInterface,
				Group:        "239.255.78.1",
				ManagerGroup: "239.255.78.2",
				Port:         7731,
			},
		},
		SE: SE{
			MaxWeight:    1000,
			ScanInterval: D(10 * time.Second),
			LocalAgent: LocalAgent{
				Timeout: D(fanout.DefaultLocalAgentTimeout),
			},
		},
		Manager: Manager{
			MaxEngines:     4096,
			TakeoverAfter:  D(700 * time.Millisecond),
			EngineContexts: true,
		},
		Fanout: Fanout{
			ReadDeadline:     D(coord.Deadline),
			SetPhaseDeadline: D(coord.PhaseDeadline),
			WalkCacheTTL:     D(coord.SnapshotTTL),
			WalkCacheMax:     coord.SnapshotMemory,
			ReservationTTL:   D(resp.ReservationTTL),
			ReplyCacheTTL:    D(resp.ReplyCacheTTL),
			ReplyCacheSize:   resp.ReplyCacheSize,
			MaxVarbinds:      coord.MaxVarBinds,
		},
		Directory: Directory{
			Forward:      ForwardFull,
			DigestFPRate: 0.01,
			MaxEntries:   1000000,
			MaxKeyLen:    directory.DefaultMaxKey,
			SNMPMaxRows:  10000,
			PublishRate:  1000,
			PublishBurst: 10000,
			TombstoneTTL: D(directory.DefaultTombstoneTTL),
		},
		Control: Control{
			Socket: MustAddr("unix:/run/smsnmpd/control.sock"),
		},
	}
}

// Demo returns the preset of `smsnmpd demo`: a level-1 manager on loopback,
// the built-in agent on udp:127.0.0.1:1161 with communities public/private,
// rmtp without a key (the demo process makes a random one per run where
// the transport supports it), no persistence, no control socket. The caller
// derives each demo node (SE ids 1..N) from it.
func Demo() *Config {
	c := Default()
	c.Node.Role = RoleManager
	c.Node.ID = 1
	c.Node.StateDir = ""
	c.System = System{Contact: "smsnmpd demo", Name: "smsnmpd-demo", Location: "loopback"}
	c.SNMP.Listen = MustAddr("udp:127.0.0.1:1161")
	c.SNMP.ROCommunity = NewSecret("public")
	c.SNMP.RWCommunity = NewSecret("private")
	c.RMTP.Interface = "lo"
	c.RMTP.Insecure = true
	c.Control.Socket = Addr{}
	return c
}
