package node

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Snapshot is what an operator wants to see of a running node, in one
// plain value: `smsnmpd status` prints it (`-json` as it is), and the
// status page and /metrics read it. The JSON names are stable: fields
// are added, never renamed.
//
// Taking one is cheap: every section is a copy its component makes under
// its own lock in one call (the rmtp endpoint's view with its peers and
// counters, the coordinator's engine table, the directory's counters, the
// publisher's), so a section is never torn: a view's term goes with its
// members, an engine's state with its RTT. Sections are read one after
// the other, so two of them may be a few microseconds apart; Taken says
// when the first was read. Nothing is walked that grows with the
// directory (counts only).
type Snapshot struct {
	Taken   time.Time `json:"taken"`
	Version string    `json:"version,omitempty"`
	Node    uint32    `json:"node"`
	Name    string    `json:"name,omitempty"` // sysName
	// Role is smNodeRole: "engine" (an SE), "manager" (the active one of
	// its level) or "backup".
	Role  string `json:"role"`
	Level int    `json:"level"`
	// Location is where the node sits in the tree: an SE's own place, a
	// manager's unit (zero below its level).
	Location directory.Location `json:"location"`
	Started  time.Time          `json:"started"`
	// Term is smViewTerm: the term of the view this node follows or owns.
	Term uint64 `json:"term"`
	View View   `json:"view"`
	// Farm is the node's own group: what its endpoint hears of the other
	// members (an SE: its managers; a manager: the other managers and its
	// engines) and the transport's counters.
	Farm Link `json:"farm"`
	// Parent is a manager's link to its parent level (rmtp.parent).
	Parent *ParentLink `json:"parent,omitempty"`
	// Engines is a manager's smEngineTable, by id: at level 1 the SEs,
	// above it the child level's managers.
	Engines []Engine `json:"engines,omitempty"`
	// Subtree is a manager's totals of everything below it (smSubtree),
	// as last computed (every heartbeat).
	Subtree   *Subtree       `json:"subtree,omitempty"`
	Manager   *ManagerState  `json:"manager,omitempty"`
	Engine    *EngineState   `json:"engine,omitempty"`
	Directory *DirectoryInfo `json:"directory,omitempty"`
	// Publisher is an SE's side of the directory's flow control.
	Publisher *PublisherInfo `json:"publisher,omitempty"`
	Process   Process        `json:"process"`
	// Events are the node's last MaxEvents events, oldest first;
	// EventsTotal counts every event since the start (the difference fell
	// off the ring).
	Events      []Event `json:"events"`
	EventsTotal uint64  `json:"events_total"`
}

// View is the membership view the node holds (DESIGN.md §4): the active
// manager owns it and announces it; everyone else adopts it.
type View struct {
	Owner   uint32   `json:"owner"` // the active manager; 0 before any view
	Term    uint64   `json:"term"`
	Version uint64   `json:"version"`
	Members []Member `json:"members"`
}

// Member is one member of the view.
type Member struct {
	Node    uint32 `json:"node"`
	Role    string `json:"role"` // "engine" or "manager"
	Suspect bool   `json:"suspect,omitempty"`
}

// Link is one rmtp group of the node: the peers its endpoint hears and
// its counters.
type Link struct {
	Incarnation uint64    `json:"incarnation"`
	Active      bool      `json:"active"` // this endpoint owns the view
	Peers       []Peer    `json:"peers"`
	Transport   Transport `json:"transport"`
}

// Peer is what an endpoint knows of one other member.
type Peer struct {
	Node      uint32    `json:"node"`
	Role      string    `json:"role"`
	State     string    `json:"state"` // alive, suspect, down, left
	Addr      string    `json:"addr,omitempty"`
	RTTMicros int64     `json:"rtt_us"` // smoothed; 0 until measured
	LastHeard time.Time `json:"last_heard"`
	Active    bool      `json:"active,omitempty"` // owns the view this endpoint adopted
	Term      uint64    `json:"term"`             // of the view its HELLO says it holds
	Priority  uint8     `json:"priority,omitempty"`
}

// Transport is rmtp's counters (smTransport): they only grow.
type Transport struct {
	Sent              uint64 `json:"sent"`
	Received          uint64 `json:"received"`
	DatagramsSent     uint64 `json:"datagrams_sent"`
	DatagramsReceived uint64 `json:"datagrams_received"`
	SendErrors        uint64 `json:"send_errors"`
	Retransmits       uint64 `json:"retransmits"`
	RepairsThrottled  uint64 `json:"repairs_throttled"`
	NaksSent          uint64 `json:"naks_sent"`
	NaksReceived      uint64 `json:"naks_received"`
	NaksSuppressed    uint64 `json:"naks_suppressed"`
	AcksSent          uint64 `json:"acks_sent"`
	AcksReceived      uint64 `json:"acks_received"`
	Duplicates        uint64 `json:"duplicates"`
	AuthFailures      uint64 `json:"auth_failures"`
	Replays           uint64 `json:"replays"`
	Stale             uint64 `json:"stale"`
	Unsynced          uint64 `json:"unsynced"`
	Malformed         uint64 `json:"malformed"`
	ForeignSelf       uint64 `json:"foreign_self"`
	Dropped           uint64 `json:"dropped"`
	TooLarge          uint64 `json:"too_large"`
	Skipped           uint64 `json:"skipped"`
	Aborts            uint64 `json:"aborts"`
	AbortsReceived    uint64 `json:"aborts_received"`
	LateReplies       uint64 `json:"late_replies"`
	EventsDropped     uint64 `json:"events_dropped"`
}

// ParentLink is a manager's membership in its parent level's group: the
// parent's managers as this link hears them, what waits to go up, and the
// lookups exchanged.
type ParentLink struct {
	Mode string `json:"mode"` // multicast or unicast
	// Policy is directory.forward: full, summary or none.
	Policy    string    `json:"policy"`
	Link      Link      `json:"link"`
	Forwarder Forwarder `json:"forwarder"`
	Lookups   Lookups   `json:"lookups"`
}

// Forwarder is the upward directory forwarder (directory.ForwarderStats).
type Forwarder struct {
	Active    bool   `json:"active"`  // forwards: this manager is the active one
	Pending   int    `json:"pending"` // operations queued to go up
	Ops       uint64 `json:"ops"`     // acknowledged by the parent's managers
	Batches   uint64 `json:"batches"`
	Bytes     uint64 `json:"bytes"`
	Retries   uint64 `json:"retries"`
	Coalesced uint64 `json:"coalesced"`
	Overflows uint64 `json:"overflows"` // each costs a re-announcement
	Resyncs   uint64 `json:"resyncs"`
}

// Lookups are the lookups over one link between levels
// (directory.LinkStats).
type Lookups struct {
	Asked     uint64 `json:"asked"`
	AskFailed uint64 `json:"ask_failed"`
	Served    uint64 `json:"served"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
}

// Engine is one row of a manager's smEngineTable.
type Engine struct {
	ID           uint32    `json:"id"`
	Name         string    `json:"name,omitempty"` // its sysName, from its heartbeats (smEngineName)
	Incarnation  uint64    `json:"incarnation"`
	Addr         string    `json:"addr,omitempty"`
	State        string    `json:"state"` // up, suspect, down
	RTTMicros    int64     `json:"rtt_us"`
	LastSeen     time.Time `json:"last_seen"`
	LastStatus   string    `json:"last_status,omitempty"` // of the last transaction it was asked in
	Replies      uint64    `json:"replies"`
	NoAnswers    uint64    `json:"no_answers"`
	Restarts     uint64    `json:"restarts"`
	Load         float64   `json:"load"` // load average, from its heartbeats
	Requests     uint64    `json:"requests"`
	BytesOut     uint64    `json:"bytes_out"`
	ContentCount uint64    `json:"content_count"`
}

// Subtree is smSubtree: the engines below a manager, however many levels
// down, and their numbers.
type Subtree struct {
	Requests     uint64  `json:"requests"`
	BytesOut     uint64  `json:"bytes_out"`
	ContentCount uint64  `json:"content_count"`
	Load         float64 `json:"load"` // average over the engines up or suspect
	Up           uint32  `json:"up"`
	Suspect      uint32  `json:"suspect"`
	Down         uint32  `json:"down"`
}

// ManagerState is a manager's election, fan-out and farm state.
type ManagerState struct {
	// Election: "electing", "backup" or "active", the cause of the last
	// change, the term and the active manager followed, since when.
	Election string    `json:"election"`
	Cause    string    `json:"cause,omitempty"`
	Owner    uint32    `json:"owner,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// StaleTerm is the highest term the SEs refused this manager's
	// requests for (staleTerm replies): above Term, it is fenced.
	StaleTerm uint64 `json:"stale_term,omitempty"`
	// ReconcilesPending counts the SEs an interrupted SET left behind
	// that the active manager has yet to write back (smReconcileTable).
	ReconcilesPending int         `json:"reconciles_pending"`
	Fanout            Fanout      `json:"fanout"`
	Replica           ReplicaInfo `json:"replica"`
}

// Fanout is the coordinator's totals (fanout.CoordinatorCounters).
type Fanout struct {
	Transactions   uint64 `json:"transactions"`
	Rounds         uint64 `json:"rounds"`
	ReRequests     uint64 `json:"re_requests"`
	Complete       uint64 `json:"complete"`
	Partial        uint64 `json:"partial"`
	LateReplies    uint64 `json:"late_replies"`
	BadReplies     uint64 `json:"bad_replies"`
	SnapshotHits   uint64 `json:"snapshot_hits"`
	SnapshotMisses uint64 `json:"snapshot_misses"`
	SetsRefused    uint64 `json:"sets_refused"`
	// SETs that failed at TEST (nothing changed), whose COMMIT or UNDO an
	// engine did not confirm, or that expired without a cleanup.
	TestFailed   uint64 `json:"test_failed"`
	CommitFailed uint64 `json:"commit_failed"`
	UndoFailed   uint64 `json:"undo_failed"`
	SetsExpired  uint64 `json:"sets_expired"`
}

// ReplicaInfo is the state replication between a level's managers
// (internal/replica).
type ReplicaInfo struct {
	Sent         uint64    `json:"sent"`
	SendFailures uint64    `json:"send_failures"`
	Received     uint64    `json:"received"`
	Adopted      uint64    `json:"adopted"`
	LastAdopted  time.Time `json:"last_adopted,omitzero"`
	LastFrom     uint32    `json:"last_from,omitempty"`
	LastTerm     uint64    `json:"last_term,omitempty"`
}

// EngineState is an SE's side: the term it obeys and what its responder
// did (fanout.ResponderCounters).
type EngineState struct {
	// ObeyedTerm: requests with an older term are refused (staleTerm).
	ObeyedTerm  uint64 `json:"obeyed_term"`
	Requests    uint64 `json:"requests"`
	Executed    uint64 `json:"executed"`
	CacheHits   uint64 `json:"cache_hits"`
	StaleTerm   uint64 `json:"stale_term"`
	BadRequests uint64 `json:"bad_requests"`
	Busy        uint64 `json:"busy"`
	ReplyErrors uint64 `json:"reply_errors"`
	Proxied     uint64 `json:"proxied"`
	ProxyErrors uint64 `json:"proxy_errors"`
	SetsTested  uint64 `json:"sets_tested"`
	Committed   uint64 `json:"sets_committed"`
	Undone      uint64 `json:"sets_undone"`
}

// DirectoryInfo is a manager's directory of its level: how many entries,
// what the store did, and its flow control (what it refused of the
// engines' updates: directory.publish_rate at the farm).
type DirectoryInfo struct {
	Entries    int    `json:"entries"`
	MaxEntries int    `json:"max_entries"`
	Updates    uint64 `json:"updates"`
	Ops        uint64 `json:"ops"`
	Stale      uint64 `json:"stale"`
	Full       uint64 `json:"full"`
	Expired    uint64 `json:"expired"`
	CatchUps   uint64 `json:"catch_ups"`
	Flow       Flow   `json:"flow"`
	// ChildLookups are the lookups between this level and its children
	// (a manager above level 1).
	ChildLookups *Lookups `json:"child_lookups,omitempty"`
}

// Flow is what a farm's manager refused of its SEs' updates.
type Flow struct {
	RefusedOps      uint64 `json:"refused_ops"`  // over the rate limit: the SE sends them again
	RejectedOps     uint64 `json:"rejected_ops"` // for good (bad key, full, wrong origin)
	RefusalEpisodes uint64 `json:"refusal_episodes"`
	VerdictsSent    uint64 `json:"verdicts_sent"`
	VerdictsDropped uint64 `json:"verdicts_dropped"`
}

// PublisherInfo is an SE's publisher (directory.PublisherStats).
type PublisherInfo struct {
	Held            int      `json:"held"`    // entries published
	Pending         int      `json:"pending"` // operations not yet accepted by every manager
	Ops             uint64   `json:"ops"`     // accepted by every manager
	Refused         uint64   `json:"refused"`
	Rejected        uint64   `json:"rejected"`
	Resent          uint64   `json:"resent"`
	VerdictTimeouts uint64   `json:"verdict_timeouts"`
	Rate            float64  `json:"rate"`  // per second (negative: no limit)
	Burst           float64  `json:"burst"` // 0: no limit
	Managers        []uint32 `json:"managers"`
}

// Process is the process the node runs in.
type Process struct {
	PID        int    `json:"pid"`
	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"` // live and unswept heap objects
}

// Snapshot returns the node's state now; see Snapshot (the type) for what
// it holds and how consistent it is. It is safe to call at any time, also
// concurrently and after Shutdown.
func (n *Node) Snapshot() Snapshot {
	cfg := n.cfg
	s := Snapshot{Taken: time.Now(), Version: n.version, Node: cfg.Node.ID, Name: n.system.Name(), Role: n.Role().String(),
		Level: cfg.Node.Level, Location: nodeLocation(cfg), Started: n.started, Process: processStats()}
	if cfg.Node.Role == config.RoleSE {
		s.Level = 1
	}
	s.Events, s.EventsTotal = n.events.list()
	f := n.farm
	if f == nil || f.ep == nil {
		return s
	}
	st := f.ep.Stats()
	s.Term, s.View, s.Farm = st.View.Term, viewOf(st.View), linkOf(st)
	if f.coord != nil {
		for _, e := range f.coord.Engines() {
			s.Engines = append(s.Engines, engineOf(e))
		}
		s.Manager = n.managerState(f)
	}
	if f.subtree != nil {
		if r := f.subtree.Report(); r.Level != 0 { // computed at least once
			st := &Subtree{Requests: r.Requests, BytesOut: r.BytesOut, ContentCount: r.ContentCount, Up: r.Up, Suspect: r.Suspect, Down: r.Down}
			if r.LoadEngines > 0 {
				st.Load = float64(r.LoadSum) / float64(r.LoadEngines) / 100
			}
			s.Subtree = st
		}
	}
	if f.resp != nil {
		c := f.resp.Counters()
		s.Engine = &EngineState{ObeyedTerm: f.resp.Term(), Requests: c.Requests, Executed: c.Executed, CacheHits: c.CacheHits,
			StaleTerm: c.StaleTerm, BadRequests: c.BadRequests, Busy: c.Busy, ReplyErrors: c.ReplyErrors,
			Proxied: c.Proxied, ProxyErrors: c.ProxyErrors, SetsTested: c.SetsTested, Committed: c.SetsCommitted, Undone: c.SetsUndone}
	}
	if f.content != nil {
		s.Publisher = publisherOf(f.content.pub.Stats())
	}
	n.mgrMu.Lock()
	p, lk := n.parent, n.lookups
	n.mgrMu.Unlock()
	if f.dir != nil {
		s.Directory = directoryOf(f.dir)
		if lk != nil && lk.down != nil {
			l := lookupsOf(lk.down.Stats())
			s.Directory.ChildLookups = &l
		}
	}
	if p != nil {
		fs := p.fw.Stats()
		s.Parent = &ParentLink{Mode: string(p.mode), Policy: p.policy.String(), Link: linkOf(p.ep.Stats()),
			Forwarder: Forwarder{Active: fs.Active, Pending: fs.Pending, Ops: fs.Ops, Batches: fs.Batches, Bytes: fs.Bytes,
				Retries: fs.Retries, Coalesced: fs.Coalesced, Overflows: fs.Overflows, Resyncs: fs.Resyncs},
			Lookups: lookupsOf(p.up.Stats())}
	}
	return s
}

func (n *Node) managerState(f *southbound) *ManagerState {
	c := f.coord.Counters()
	m := &ManagerState{StaleTerm: f.coord.StaleTerm(),
		Fanout: Fanout{Transactions: c.Transactions, Rounds: c.Rounds, ReRequests: c.ReRequests, Complete: c.Complete,
			Partial: c.Partial, LateReplies: c.LateReplies, BadReplies: c.BadReplies, SnapshotHits: c.SnapshotHits,
			SnapshotMisses: c.SnapshotMisses, SetsRefused: c.SetsRefused, TestFailed: c.TestFailed,
			CommitFailed: c.CommitFailed, UndoFailed: c.UndoFailed, SetsExpired: c.SetsExpired}}
	if f.elector != nil {
		ch := f.elector.Status()
		m.Election, m.Owner, m.Since = ch.Role.String(), uint32(ch.Owner), ch.At
		if ch.Cause != 0 {
			m.Cause = ch.Cause.String()
		}
	}
	if f.state != nil {
		m.ReconcilesPending = f.state.Pending()
	}
	if f.replica != nil {
		r := f.replica.Stats()
		m.Replica = ReplicaInfo{Sent: r.Sent, SendFailures: r.SendFailures, Received: r.Received, Adopted: r.Adopted,
			LastAdopted: r.LastAdopted, LastFrom: uint32(r.LastFrom), LastTerm: r.LastTerm}
	}
	return m
}

func viewOf(v rmtp.View) View {
	out := View{Owner: uint32(v.Owner), Term: v.Term, Version: v.Version, Members: make([]Member, 0, len(v.Members))}
	for _, m := range v.Members {
		out.Members = append(out.Members, Member{Node: uint32(m.Node), Role: m.Role.String(), Suspect: m.Suspect})
	}
	return out
}

func linkOf(st rmtp.Stats) Link {
	l := Link{Incarnation: st.Incarnation, Active: st.Active, Peers: make([]Peer, 0, len(st.Peers)), Transport: transportOf(st.Counters)}
	for _, p := range st.Peers {
		pr := Peer{Node: uint32(p.Node), Role: p.Role.String(), State: p.State.String(), RTTMicros: p.RTT.Microseconds(),
			LastHeard: p.LastHeard, Active: p.Active, Term: p.Term, Priority: p.Priority}
		if p.Addr.IsValid() {
			pr.Addr = p.Addr.String()
		}
		l.Peers = append(l.Peers, pr)
	}
	return l
}

func transportOf(c rmtp.Counters) Transport {
	return Transport{Sent: c.Sent, Received: c.Received, DatagramsSent: c.DatagramsSent, DatagramsReceived: c.DatagramsReceived,
		SendErrors: c.SendErrors, Retransmits: c.Retransmits, RepairsThrottled: c.RepairsThrottled, NaksSent: c.NaksSent,
		NaksReceived: c.NaksReceived, NaksSuppressed: c.NaksSuppressed, AcksSent: c.AcksSent, AcksReceived: c.AcksReceived,
		Duplicates: c.Duplicates, AuthFailures: c.AuthFailures, Replays: c.Replays, Stale: c.Stale, Unsynced: c.Unsynced,
		Malformed: c.Malformed, ForeignSelf: c.ForeignSelf, Dropped: c.Dropped, TooLarge: c.TooLarge, Skipped: c.Skipped,
		Aborts: c.Aborts, AbortsReceived: c.AbortsReceived, LateReplies: c.LateReplies, EventsDropped: c.EventsDropped}
}

func engineOf(e fanout.Engine) Engine {
	out := Engine{ID: uint32(e.ID), Incarnation: e.Incarnation, State: e.State.String(), RTTMicros: e.RTT.Microseconds(),
		LastSeen: e.LastSeen, Replies: e.Replies, NoAnswers: e.NoAnswers, Restarts: e.Restarts}
	if e.Addr.IsValid() {
		out.Addr = e.Addr.String()
	}
	if !e.LastReply.IsZero() {
		out.LastStatus = e.LastStatus.String()
	}
	if e.HasInfo {
		out.Name = e.Info.Name
		out.Load = float64(e.Info.Load) / 100
		out.Requests, out.BytesOut, out.ContentCount = e.Info.Requests, e.Info.BytesOut, e.Info.ContentCount
	}
	return out
}

func directoryOf(m *directory.Manager) *DirectoryInfo {
	st := m.Store()
	c, mc := st.Counters(), m.Counters()
	return &DirectoryInfo{Entries: st.Count(), MaxEntries: st.Config().MaxEntries, Updates: c.Updates, Ops: c.Ops,
		Stale: c.Stale, Full: c.Full, Expired: c.Expired, CatchUps: mc.CatchUps,
		Flow: Flow{RefusedOps: c.RateLimited, RejectedOps: c.Rejected, RefusalEpisodes: mc.RefusalEpisodes,
			VerdictsSent: mc.VerdictsSent, VerdictsDropped: mc.VerdictsDropped}}
}

func publisherOf(st directory.PublisherStats) *PublisherInfo {
	p := &PublisherInfo{Held: st.Held, Pending: st.Pending, Ops: st.Ops, Refused: st.Refused, Rejected: st.Rejected,
		Resent: st.Resent, VerdictTimeouts: st.VerdictTimeouts, Rate: st.Rate, Burst: st.Burst, Managers: []uint32{}}
	if math.IsInf(p.Burst, 0) { // no limit: JSON has no infinity
		p.Burst = 0
	}
	for _, m := range st.Managers {
		p.Managers = append(p.Managers, uint32(m))
	}
	return p
}

func lookupsOf(l directory.LinkStats) Lookups {
	return Lookups{Asked: l.Asked, AskFailed: l.AskFailed, Served: l.Served, Failed: l.Failed, Dropped: l.Dropped}
}

// processStats reads runtime/metrics, which, unlike runtime.ReadMemStats,
// does not stop the world.
func processStats() Process {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	p := Process{PID: os.Getpid(), Goroutines: runtime.NumGoroutine()}
	if s[0].Value.Kind() == metrics.KindUint64 {
		p.HeapBytes = s[0].Value.Uint64()
	}
	return p
}
