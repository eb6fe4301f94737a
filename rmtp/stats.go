package rmtp

import (
	"net/netip"
	"slices"
	"time"
)

// Counters are the endpoint's totals since start (smTransport in the MIB).
// They only grow.
type Counters struct {
	Sent              uint64 // messages sent (first transmission)
	Received          uint64 // messages delivered
	DatagramsSent     uint64
	DatagramsReceived uint64
	SendErrors        uint64 // datagrams the transport refused (no route, buffer full)
	Retransmits       uint64 // segments re-sent (NAK repairs and timer)
	RepairsThrottled  uint64 // repairs held back by the repair rate limit
	NaksSent          uint64
	NaksReceived      uint64 // NAKs for our own streams
	NaksSuppressed    uint64 // own NAKs deferred because another member's covered them
	AcksSent          uint64
	AcksReceived      uint64
	Duplicates        uint64 // segments received again
	AuthFailures      uint64 // wrong key, unknown key id, bad tag
	Replays           uint64 // control datagrams refused by the replay window or as stale HELLOs
	Stale             uint64 // datagrams of an old incarnation
	Unsynced          uint64 // segments dropped before the sender's first fresh HELLO
	Malformed         uint64
	ForeignSelf       uint64 // datagrams from another process using our node id
	Dropped           uint64 // segments refused by the reassembly memory cap or window
	TooLarge          uint64 // messages over MaxMessage dropped
	Skipped           uint64 // messages the sender gave up before we got them
	Aborts            uint64 // transfers this endpoint aborted
	AbortsReceived    uint64
	LateReplies       uint64 // responses after their request finished
	Unclaimed         uint64 // messages of a channel nobody reads, dropped (Config.DropUnclaimed)
	EventsDropped     uint64 // membership events nobody read in time
}

// counters is the endpoint's private copy.
type counters = Counters

// PeerStats is what this endpoint knows of one peer.
type PeerStats struct {
	Node        NodeID
	Incarnation uint64
	Role        Role
	State       PeerState
	Addr        netip.AddrPort // advertised unicast address
	From        netip.AddrPort // source of its last datagram
	RTT         time.Duration  // smoothed; 0 until measured
	LastHeard   time.Time
	Memory      int // reassembly bytes held
	App         []byte

	// From the peer's latest HELLO (zero until one is heard), for the
	// manager election: the configured priority and level, and the term
	// of the view the peer holds (the one it owns if it is active, else
	// the one it last adopted; an engine says 0 while the owner of its
	// view is down or gone).
	Priority uint8
	Level    uint8
	Term     uint64
	// Active: the peer owns the current view, i.e. it announced the VIEW
	// this endpoint adopted (View.Owner). HELLO does not say whether its
	// sender is active; the VIEW's owner is the active manager. A manager
	// that was active and went silent stays Owner until another manager's
	// VIEW with a higher term replaces it: combine with State.
	Active bool
}

// Stats is a consistent snapshot for the MIB layer.
type Stats struct {
	Counters
	Node        NodeID
	Incarnation uint64
	Active      bool
	View        View
	Peers       []PeerStats // by node id
}

// Stats returns a snapshot of the counters and peers.
func (e *Endpoint) Stats() Stats {
	v := e.View()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Counters: e.stats, Node: e.self, Incarnation: e.inc, Active: e.active, View: v}
	for _, pr := range e.peers {
		s.Peers = append(s.Peers, PeerStats{Node: pr.id, Incarnation: pr.inc, Role: pr.role, State: pr.state,
			Addr: pr.addr, From: pr.from, RTT: pr.srtt, LastHeard: pr.lastHeard, Memory: pr.mem,
			App: slices.Clone(pr.app), Priority: pr.priority, Level: pr.level, Term: pr.term,
			Active: pr.id == e.view.owner && e.view.owner != 0})
	}
	slices.SortFunc(s.Peers, func(a, b PeerStats) int { return int(int64(a.Node) - int64(b.Node)) })
	return s
}
