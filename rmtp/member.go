package rmtp

import (
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Member is one entry of a view.
type Member struct {
	Node        NodeID
	Incarnation uint64
	Role        Role
	Suspect     bool
}

// View is the membership the active manager announces: "every member"
// means every member of the current view.
type View struct {
	Term    uint64
	Version uint64
	Owner   NodeID // the active manager; 0 if no view was heard yet
	Members []Member
}

type viewState struct {
	term, version uint64
	owner         NodeID
	members       []wire.Member
	managers      []NodeID // the members whose role is Manager (setMembers)
}

// setMembers installs a view's member list and the managers in it: an
// engine addresses every answer to them, and must not walk the whole farm
// to find them each time.
func (v *viewState) setMembers(ms []wire.Member) {
	v.members = ms
	v.managers = v.managers[:0:0]
	for _, m := range ms {
		if m.Role == Manager {
			v.managers = append(v.managers, NodeID(m.Node))
		}
	}
}

// View returns the current view.
func (e *Endpoint) View() View {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := View{Term: e.view.term, Version: e.view.version, Owner: e.view.owner,
		Members: make([]Member, 0, len(e.view.members))}
	for _, m := range e.view.members {
		v.Members = append(v.Members, Member{Node: NodeID(m.Node), Incarnation: m.Incarnation, Role: m.Role, Suspect: m.State == wire.StateSuspect})
	}
	return v
}

// Term returns the current view's term (0 before any view) without
// copying the member list: responders check it on every request
// (fencing, DESIGN.md §5).
func (e *Endpoint) Term() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.view.term
}

// Activate makes this manager the active one under term: it owns the view
// and announces it on the farm group every heartbeat and on every change.
// Election (who calls Activate with which term) belongs to the caller; a
// manager that hears a view with a higher term steps down by itself.
func (e *Endpoint) Activate(term uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.Role != Manager {
		return fmt.Errorf("%w: only a manager can own the view", ErrConfig)
	}
	if term <= e.view.term && e.view.owner != e.self {
		return fmt.Errorf("%w: term %d not above the current %d", ErrConfig, term, e.view.term)
	}
	e.active = true
	e.view = viewState{term: term, owner: e.self}
	e.viewAt = time.Time{}
	e.log.WithField("term", term).Info("rmtp: active manager")
	e.poke()
	return nil
}

// Deactivate stops announcing the view (this manager becomes a backup).
func (e *Endpoint) Deactivate() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.active {
		e.active = false
		e.log.WithField("term", e.view.term).Info("rmtp: stepping down")
		e.emit(SteppedDown, nil, time.Now())
	}
}

// Active reports whether this endpoint owns the view.
func (e *Endpoint) Active() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active
}

// destMembers is who must receive a message to dest: the current view's
// members (or, before any view, the live peers whose role is known),
// without this node, minus members declared down; up means managers only.
func (e *Endpoint) destMembers(d Dest) []NodeID {
	if d == Up && e.view.owner != 0 && e.view.owner != e.self {
		ids := make([]NodeID, 0, len(e.view.managers))
		for _, id := range e.view.managers {
			if pr := e.peers[id]; id != e.self && (pr == nil || pr.live()) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	ids := make([]NodeID, 0, max(len(e.view.members), len(e.peers)))
	add := func(id NodeID, role Role) {
		if id == e.self || (d == Up && role != Manager) {
			return
		}
		if pr := e.peers[id]; pr != nil && !pr.live() {
			return
		}
		ids = append(ids, id)
	}
	if e.view.owner != 0 {
		for _, m := range e.view.members {
			add(NodeID(m.Node), m.Role)
		}
		if e.view.owner != e.self {
			return ids
		}
		ids = ids[:0] // the owner counts its own live table, which is newer
	}
	for _, pr := range e.peers {
		if pr.role != 0 && pr.live() {
			add(pr.id, pr.role)
		}
	}
	return ids
}

// queueHello queues a heartbeat: managers' go down (every member tracks
// them), engines' go up (only managers track engines).
func (e *Endpoint) queueHello(leave bool) {
	h := wire.Hello{Role: e.cfg.Role, Priority: e.cfg.Priority, Level: e.cfg.Level, Term: e.helloTerm(),
		Time: time.Now().UnixNano(), Addr: e.tr.LocalAddr()}
	for k, os := range e.out {
		if len(h.Streams) < wire.MaxHelloStreams {
			h.Streams = append(h.Streams, wire.StreamMark{Channel: k.ch, Up: k.up, Next: os.next, Low: os.low()})
		}
	}
	if e.cfg.HelloApp != nil {
		if app := e.cfg.HelloApp(); len(app) <= wire.MaxHelloApp {
			h.App = app
		}
	}
	f := wire.Flags(0)
	if leave {
		f = wire.FlagLeave
	}
	d := Up
	if e.cfg.Role == Manager {
		d = Down
	}
	e.queue(d, wire.Header{Type: wire.TypeHello, Flags: f}, wire.AppendHello(nil, &h))
}

// helloTerm is the term this member's HELLO says it holds: a manager's
// view term (the one it owns, or the one it last adopted, which an
// election must go above), an engine's only while the owner of its view
// is alive, else 0. The engines' terms are how a manager that cannot hear
// the active one (a partition between managers only) learns that it was
// fenced off, and their 0 is how it learns that the owner it cannot hear
// is gone too (internal/election). Fencing itself is unchanged: an engine
// keeps its view's term and refuses requests below it. Caller holds mu.
func (e *Endpoint) helloTerm() uint64 {
	if e.cfg.Role != Engine || e.view.owner == 0 {
		return e.view.term
	}
	if pr := e.peers[e.view.owner]; pr == nil || !pr.live() {
		return 0
	}
	return e.view.term
}

// tickMembership sends heartbeats and views and ages the peers.
func (e *Endpoint) tickMembership(now time.Time) time.Time {
	iv := e.cfg.HelloInterval
	if !now.Before(e.helloAt) {
		e.queueHello(false)
		e.helloAt = now.Add(iv)
	}
	if !now.Before(e.liveAt) {
		e.liveAt = now.Add(iv / 4) // heartbeat resolution is enough; not every tick
		e.checkLiveness(now, iv)
	}
	next := minTime(e.helloAt, e.liveAt)
	if e.active {
		if e.refreshView() || !now.Before(e.viewAt) {
			v := wire.View{Term: e.view.term, Version: e.view.version, Members: e.view.members}
			e.queue(Down, wire.Header{Type: wire.TypeView}, wire.AppendView(nil, &v))
			e.viewAt = now.Add(iv)
		}
		next = minTime(next, e.viewAt)
	}
	return next
}

// checkLiveness ages the peers: suspect, then down.
func (e *Endpoint) checkLiveness(now time.Time, iv time.Duration) {
	forget := max(100*iv, 2*e.cfg.MaxClockSkew)
	for id, pr := range e.peers {
		if !pr.live() && now.Sub(pr.lastHeard) > forget {
			delete(e.peers, id) // long gone; anything it sent is now too old to replay
			continue
		}
		if !pr.live() || (e.cfg.Role == Engine && pr.role != Manager) {
			continue // engines hear only the managers' heartbeats
		}
		silent := now.Sub(pr.lastHeard)
		switch {
		case silent >= time.Duration(e.cfg.DownAfter)*iv:
			pr.state = PeerDown
			e.log.WithFields(logrus.Fields{"peer": pr.id, "silent": silent.Round(time.Millisecond)}).Warn("rmtp: peer down")
			e.emit(PeerWentDown, pr, now)
			e.peerGone(pr, now)
		case silent >= time.Duration(e.cfg.SuspectAfter)*iv && pr.state == PeerAlive:
			pr.state = PeerSuspect
			e.log.WithField("peer", pr.id).Info("rmtp: peer suspect")
			e.emit(PeerSuspected, pr, now)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// refreshView recomputes the active manager's view from its peer table and
// reports whether it changed (the version then moves on).
func (e *Endpoint) refreshView() bool {
	ms := []wire.Member{{Node: uint32(e.self), Incarnation: e.inc, Role: e.cfg.Role, State: wire.StateAlive}}
	for _, pr := range e.peers {
		if pr.role == 0 || !pr.live() {
			continue
		}
		st := wire.StateAlive
		if pr.state == PeerSuspect {
			st = wire.StateSuspect
		}
		ms = append(ms, wire.Member{Node: uint32(pr.id), Incarnation: pr.inc, Role: pr.role, State: st})
	}
	slices.SortFunc(ms, func(a, b wire.Member) int { return int(int64(a.Node) - int64(b.Node)) })
	if len(ms) > wire.MaxViewMembers {
		ms = ms[:wire.MaxViewMembers]
	}
	if slices.Equal(ms, e.view.members) {
		return false
	}
	e.view.setMembers(ms)
	e.view.version++
	e.log.WithFields(logrus.Fields{"term": e.view.term, "version": e.view.version, "members": len(ms)}).Info("rmtp: view changed")
	e.emit(ViewChanged, nil, time.Now())
	return true
}

// peerGone handles a peer that is down, left or restarted: its partial
// messages go (the stream positions stay, so a peer that comes back with
// the same incarnation is not delivered anything twice) and no transfer
// waits for it any more.
func (e *Endpoint) peerGone(pr *peer, now time.Time) {
	pr.dropPartials()
	e.memberGone(pr.id)
	if e.active {
		e.viewAt = now
		e.poke()
	}
}

func (e *Endpoint) onHello(pr *peer, h *wire.Hello, leave bool, now time.Time) {
	if pr.role == 0 || !pr.synced {
		e.log.WithFields(logrus.Fields{"peer": pr.id, "peer_role": h.Role.String(), "incarnation": pr.inc}).Info("rmtp: peer joined")
		pr.role = h.Role
		e.emit(PeerJoined, pr, now)
		if e.active {
			e.viewAt = now
			e.poke()
		}
		// A member drops a peer's traffic until it has that peer's
		// HELLO (its incarnation and clock): answer a newcomer's at once
		// rather than up to a heartbeat later, so its first request does
		// not stall. At most a few early HELLOs per interval, however
		// many members join at once.
		if iv := e.cfg.HelloInterval; now.Sub(e.earlyHello) >= iv/4 && e.helloAt.Sub(now) > iv/8 {
			e.earlyHello = now
			e.helloAt = now
			e.poke()
		}
	}
	pr.synced = true
	pr.role, pr.priority, pr.level, pr.term = h.Role, h.Priority, h.Level, h.Term
	pr.addr = h.Addr
	pr.app = append(pr.app[:0], h.App...)
	if leave {
		if pr.state != PeerLeft {
			pr.state = PeerLeft
			e.log.WithField("peer", pr.id).Info("rmtp: peer left")
			e.emit(PeerLeaving, pr, now)
			e.peerGone(pr, now)
		}
		return
	}
	if pr.state == PeerLeft {
		return // a stray heartbeat after the goodbye
	}
	for _, mk := range h.Streams {
		k := streamKey{mk.Channel, mk.Up}
		if !e.receiverOf(k.up) || mk.Next == 0 {
			continue
		}
		st := pr.stream(k)
		e.advanceLow(pr, st, mk.Low)
		if mk.Next-1 > st.highest {
			st.highest = mk.Next - 1
		}
		if st.highest >= st.next && st.gapAt.IsZero() {
			for g := st.next; g <= st.highest; g++ {
				if st.parts[g] == nil && !st.aborted[g] {
					// A HELLO can overtake the message it announces
					// (another goroutine may still be sending it), and
					// the sender's own timer repairs tail loss first:
					// this is the fallback, not a race to NAK.
					st.gapAt = now.Add(e.cfg.HelloInterval)
					e.armNak(st.gapAt)
					break
				}
			}
		}
		e.deliverStream(pr, k, st)
	}
}

func (e *Endpoint) onView(pr *peer, v *wire.View, now time.Time) {
	if pr.role != Manager {
		return // only a manager can own the view (and its HELLO comes first)
	}
	cur := e.view
	switch {
	case v.Term < cur.term:
		return
	case v.Term == cur.term && cur.owner != 0 && pr.id != cur.owner:
		if pr.id > cur.owner {
			return // two owners in one term: the lower node id wins
		}
	case v.Term == cur.term && pr.id == cur.owner && v.Version <= cur.version:
		return
	}
	if e.active {
		e.active = false
		e.log.WithFields(logrus.Fields{"term": v.Term, "owner": pr.id}).Warn("rmtp: another manager owns the view; stepping down")
		e.emit(SteppedDown, nil, now)
	}
	if v.Term != cur.term || pr.id != cur.owner || len(v.Members) != len(cur.members) {
		e.log.WithFields(logrus.Fields{"term": v.Term, "version": v.Version, "owner": pr.id, "members": len(v.Members)}).Info("rmtp: view")
	}
	e.view = viewState{term: v.Term, version: v.Version, owner: pr.id}
	e.view.setMembers(v.Members)
	if v.Term != cur.term || pr.id != cur.owner || !slices.Equal(v.Members, cur.members) {
		e.emit(ViewChanged, nil, now)
	}
	// Members the view dropped are gone for every transfer too.
	in := make(map[NodeID]bool, len(v.Members))
	for _, m := range v.Members {
		in[NodeID(m.Node)] = true
	}
	for _, old := range cur.members {
		if id := NodeID(old.Node); !in[id] && id != e.self {
			e.memberGone(id)
		}
	}
}
