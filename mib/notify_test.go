package mib_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/fanout"
	rwire "github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// sink records what a Notifier sends.
type sink struct {
	mu   sync.Mutex
	sent []sentTrap
}

type sentTrap struct {
	oid smi.OID
	vbs []smi.VarBind
}

func (s *sink) send(_ context.Context, oid smi.OID, vbs []smi.VarBind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, sentTrap{oid, vbs})
}

// engines returns "up 3", "down 2", ... of what was sent, in order, and
// checks that each carries the sender.
func (s *sink) engines(t *testing.T, node uint32, term uint64) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, tr := range s.sent {
		what := "?"
		switch {
		case tr.oid.Equal(mib.SmEngineUp.OID()):
			what = "up"
		case tr.oid.Equal(mib.SmEngineDown.OID()):
			what = "down"
		case tr.oid.Equal(mib.SmManagerTakeover.OID()):
			what = "takeover"
		}
		var engine uint32
		var gotNode, gotTerm bool
		for _, vb := range tr.vbs {
			switch {
			case vb.Name.Equal(mib.SmNodeID.OID().Append(0)):
				gotNode = vb.Value.Equal(smi.Gauge32(node))
			case vb.Name.Equal(mib.SmViewTerm.OID().Append(0)):
				gotTerm = vb.Value.Equal(smi.Counter64(term))
			case vb.Name.HasPrefix(mib.SmEngineState.OID()):
				engine = vb.Name[len(vb.Name)-1]
			}
		}
		if !gotNode || !gotTerm {
			t.Errorf("%s sent without smNodeId.0 = %d and smViewTerm.0 = %d: %v", what, node, term, tr.vbs)
		}
		if engine != 0 {
			what = fmt.Sprintf("%s %d", what, engine)
		}
		out = append(out, what)
	}
	return out
}

func engineEvent(id fanout.NodeID, inc uint64, up bool) mib.Notification {
	ev := fanout.EngineEvent{Engine: fanout.Engine{ID: id, Incarnation: inc, State: fanout.EngineUp}, Up: up}
	if !up {
		ev.Engine.State = fanout.EngineDown
	}
	oid, vbs := mib.EngineNotification(ev)
	return mib.Notification{Key: mib.EngineNotifyKey(ev), TrapOID: oid, VarBinds: vbs}
}

func newNotifier(t *testing.T, node uint32, term uint64, s *sink, now func() time.Time) *mib.Notifier {
	t.Helper()
	n, err := mib.NewNotifier(mib.NotifierConfig{Node: node, Term: func() uint64 { return term }, Send: s.send, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func equalStrings(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestNotifierOnlyActive: a backup sends nothing; the active manager
// sends each change once, naming itself.
func TestNotifierOnlyActive(t *testing.T) {
	ctx := context.Background()
	var sm, bsm sink
	a := newNotifier(t, 1000, 4, &sm, nil)
	b := newNotifier(t, 1001, 4, &bsm, nil)
	a.Activate(ctx)
	for _, n := range []*mib.Notifier{a, b} {
		n.Notify(ctx, engineEvent(3, 30, false))
		n.Notify(ctx, engineEvent(3, 31, true))
		n.Notify(ctx, engineEvent(3, 31, true)) // the same change again
	}
	if got := sm.engines(t, 1000, 4); !equalStrings(got, []string{"down 3", "up 3"}) {
		t.Errorf("active manager sent %v", got)
	}
	if got := bsm.engines(t, 1001, 4); len(got) != 0 {
		t.Errorf("backup sent %v", got)
	}
}

// TestNotifierTakeover: the backup that takes over sends, after
// smManagerTakeover, what the previous active manager may not have sent
// (in its journal but not marked sent, or missing from it) and nothing
// it had sent.
func TestNotifierTakeover(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var sm, bsm sink
	a := newNotifier(t, 1000, 1, &sm, clock)
	a.Activate(ctx)
	b := newNotifier(t, 1001, 2, &bsm, clock)

	// Both see engines 1 and 2 go down; the active one sends them.
	for _, n := range []*mib.Notifier{a, b} {
		n.Notify(ctx, engineEvent(1, 10, false))
		n.Notify(ctx, engineEvent(2, 20, false))
	}
	// The journal reaches the backup, but the last entry is not marked
	// sent yet (the active manager died in the middle of sending it).
	journal := a.Journal()
	if len(journal) != 2 || !journal[0].Sent || !journal[1].Sent {
		t.Fatalf("journal %+v", journal)
	}
	journal[1].Sent = false
	// An entry the backup never saw: engine 4 came up.
	up4 := engineEvent(4, 40, true)
	journal = append(journal, rwire.Entry{Kind: uint8(up4.Key.Kind), Subject: up4.Key.Subject, Instance: up4.Key.Instance,
		At: now.UnixNano(), TrapOID: up4.TrapOID, VarBinds: up4.VarBinds})
	b.Adopt(journal)
	// After the active manager died, the backup saw engine 3 go down.
	now = now.Add(200 * time.Millisecond)
	b.Notify(ctx, engineEvent(3, 30, false))
	if got := bsm.engines(t, 1001, 2); len(got) != 0 {
		t.Fatalf("backup sent %v before taking over", got)
	}

	now = now.Add(700 * time.Millisecond)
	oid, vbs := mib.TakeoverNotification(1001, 2)
	b.Activate(ctx, mib.Notification{Key: mib.NotifyKey{Kind: mib.NotifyTakeover, Subject: 1001, Instance: 2}, TrapOID: oid, VarBinds: vbs})
	want := []string{"takeover", "down 2", "up 4", "down 3"}
	if got := bsm.engines(t, 1001, 2); !equalStrings(got, want) {
		t.Errorf("after the takeover the new active manager sent %v, want %v", got, want)
	}
	// What it re-sent is its own now: no second copy from it.
	b.Notify(ctx, engineEvent(3, 30, false))
	if got := bsm.engines(t, 1001, 2); len(got) != len(want) {
		t.Errorf("sent again: %v", got)
	}
}

// TestNotifierRetention: what is older than the retention is not sent
// again by a manager taking over.
func TestNotifierRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var s sink
	b := newNotifier(t, 1001, 2, &s, func() time.Time { return now })
	b.Notify(ctx, engineEvent(1, 10, false))
	now = now.Add(mib.DefaultNotifyRetention + time.Second)
	b.Notify(ctx, engineEvent(2, 20, false))
	b.Activate(ctx)
	if got := s.engines(t, 1001, 2); !equalStrings(got, []string{"down 2"}) {
		t.Errorf("sent %v, want only the change of the last retention", got)
	}
}
