package mib

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// The notifications' varbinds, after the sysUpTime.0 and snmpTrapOID.0
// that the agents' Notify put first (agent/v2c and agent/agentx).

// EngineNotification returns the notification for an engine event:
// smEngineUp or smEngineDown, with smEngineAddressType, smEngineAddress,
// smEngineState and smEngineLastStatus of the engine's row (instance
// smEngineIndex).
func EngineNotification(ev fanout.EngineEvent) (trapOID smi.OID, vbs []smi.VarBind) {
	trapOID = SmEngineDown.OID()
	if ev.Up {
		trapOID = SmEngineUp.OID()
	}
	e := ev.Engine
	idx := uint32(e.ID)
	typ, addr := inetAddress(e.Addr.Addr())
	vbs = []smi.VarBind{
		{Name: SmEngineAddressType.OID().Append(idx), Value: smi.Integer(typ)},
		{Name: SmEngineAddress.OID().Append(idx), Value: smi.OctetString(addr)},
		{Name: SmEngineState.OID().Append(idx), Value: smi.Integer(int32(e.State))},
		{Name: SmEngineLastStatus.OID().Append(idx), Value: smi.Integer(int32(LastStatusOf(e)))},
	}
	return trapOID, vbs
}

// TakeoverNotification returns smManagerTakeover for the manager node
// that took over with term.
func TakeoverNotification(node uint32, term uint64) (trapOID smi.OID, vbs []smi.VarBind) {
	return SmManagerTakeover.OID(), []smi.VarBind{
		{Name: SmNodeID.OID().Append(0), Value: smi.Gauge32(node)},
		{Name: SmViewTerm.OID().Append(0), Value: smi.Counter64(term)},
	}
}

// TransferAborted describes an aborted transfer for smTransferAborted.
type TransferAborted struct {
	Sender    uint32 // node id of the transfer's sender
	MessageID uint64
	Complete  bool   // every member confirmed the abort
	Aborts    uint64 // smTransportAborts of this node now
}

// TransferAbortedNotification returns smTransferAborted.
func TransferAbortedNotification(t TransferAborted) (trapOID smi.OID, vbs []smi.VarBind) {
	return SmTransferAborted.OID(), []smi.VarBind{
		{Name: SmTransferSender.OID().Append(0), Value: smi.Gauge32(t.Sender)},
		{Name: SmTransferMessageID.OID().Append(0), Value: smi.Counter64(t.MessageID)},
		{Name: SmTransferComplete.OID().Append(0), Value: truthValue(t.Complete)},
		{Name: SmTransportAborts.OID().Append(0), Value: smi.Counter64(t.Aborts)},
	}
}

// NotifyKind says what a notification is about, for the journal that
// tells a manager taking over which ones the previous one sent.
// Append-only: the numbers travel in the replicated state.
type NotifyKind uint8

// Kinds of notifications.
const (
	NotifyEngineUp        NotifyKind = 1
	NotifyEngineDown      NotifyKind = 2
	NotifyTakeover        NotifyKind = 3
	NotifyTransferAborted NotifyKind = 4
)

// NotifyKey names one notification the same way on every manager: two
// managers seeing the same change make the same key.
type NotifyKey struct {
	Kind     NotifyKind
	Subject  uint32 // the engine, the manager, the sender of a transfer
	Instance uint64 // the engine's incarnation, the term, the message id
}

// EngineNotifyKey is the key of an engine event: an engine's incarnation
// comes up once and goes down once.
func EngineNotifyKey(ev fanout.EngineEvent) NotifyKey {
	k := NotifyKey{Kind: NotifyEngineDown, Subject: uint32(ev.Engine.ID), Instance: ev.Engine.Incarnation}
	if ev.Up {
		k.Kind = NotifyEngineUp
	}
	return k
}

// Notification is one notification to send: its key, smsnmpd's trap OID
// and varbinds (without the sender's, which Notifier adds).
type Notification struct {
	Key      NotifyKey
	TrapOID  smi.OID
	VarBinds []smi.VarBind
}

// DefaultNotifyRetention is how long the journal of notifications, and
// what a backup saw and did not send, are kept: longer than a takeover
// (0.7 s by default) plus the replication interval (1 s), so everything
// of the last takeover interval is still there when a backup takes over.
const DefaultNotifyRetention = 3 * time.Second

// MaxNotifyJournal bounds the journal and the backup's unsent
// notifications, each.
const MaxNotifyJournal = 256

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	// Node and Term are the sender's smNodeId and smViewTerm, appended to
	// every notification.
	Node uint32
	Term func() uint64
	// Send hands a notification to the northbound frontends (trap sinks,
	// the AgentX master). Required.
	Send func(ctx context.Context, trapOID smi.OID, vbs []smi.VarBind)
	// Retention: see DefaultNotifyRetention.
	Retention time.Duration
	// Changed, if set, is called when the journal changed; it must not
	// block (the replication coalesces).
	Changed func()
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Logger gets one line per takeover's re-sends; nil = discard.
	Logger logrus.FieldLogger
}

// journalEntry is a notification with when it was made and whether it
// went out.
type journalEntry struct {
	Notification
	at   time.Time
	sent bool
}

// Notifier sends a manager's notifications: only while it is the active
// manager, each carrying the sender (smNodeId.0, smViewTerm.0). The
// active manager journals what it sends, and the journal travels to the
// backups with the rest of the replicated state; a backup keeps what it
// saw itself and did not send. A backup that becomes active sends again
// what the journal does not show as sent, and what it saw that the
// journal lacks, from the last Retention: each notification arrives at
// least once and, around a takeover, at most twice (once from each
// manager; the sender's varbinds tell them apart).
type Notifier struct {
	cfg NotifierConfig
	now func() time.Time
	log logrus.FieldLogger

	mu      sync.Mutex
	active  bool
	journal []*journalEntry // this manager's (active) or the active one's (backup), oldest first
	unsent  []*journalEntry // seen as a backup, oldest first
}

// NewNotifier returns a Notifier of a backup; Activate makes it send.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	if cfg.Send == nil {
		return nil, fmt.Errorf("%w: Notifier needs Send", ErrInvalid)
	}
	n := &Notifier{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if n.now == nil {
		n.now = time.Now
	}
	if n.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		n.log = l
	}
	if n.cfg.Retention <= 0 {
		n.cfg.Retention = DefaultNotifyRetention
	}
	return n, nil
}

func (n *Notifier) changed() {
	if n.cfg.Changed != nil {
		n.cfg.Changed()
	}
}

// pruneLocked drops what is older than the retention, and the oldest
// beyond the cap.
func (n *Notifier) pruneLocked(now time.Time) {
	old := func(e *journalEntry) bool { return now.Sub(e.at) > n.cfg.Retention }
	n.journal = slices.DeleteFunc(n.journal, old)
	n.unsent = slices.DeleteFunc(n.unsent, old)
	if k := len(n.journal) - MaxNotifyJournal; k > 0 {
		n.journal = slices.Delete(n.journal, 0, k)
	}
	if k := len(n.unsent) - MaxNotifyJournal; k > 0 {
		n.unsent = slices.Delete(n.unsent, 0, k)
	}
}

func (n *Notifier) journaledLocked(k NotifyKey) bool {
	return slices.ContainsFunc(n.journal, func(e *journalEntry) bool { return e.Key == k })
}

// Notify sends nt if this manager is active (once per key: a change
// already journaled is not sent again) and keeps it for a takeover if
// not.
func (n *Notifier) Notify(ctx context.Context, nt Notification) {
	now := n.now()
	n.mu.Lock()
	n.pruneLocked(now)
	if n.journaledLocked(nt.Key) || slices.ContainsFunc(n.unsent, func(e *journalEntry) bool { return e.Key == nt.Key }) {
		n.mu.Unlock()
		return
	}
	e := &journalEntry{Notification: nt, at: now}
	if !n.active {
		n.unsent = append(n.unsent, e)
		n.mu.Unlock()
		return
	}
	n.journal = append(n.journal, e)
	n.mu.Unlock()
	n.changed()
	n.send(ctx, []*journalEntry{e})
}

// send sends es in order and marks them sent.
func (n *Notifier) send(ctx context.Context, es []*journalEntry) {
	if len(es) == 0 {
		return
	}
	for _, e := range es {
		n.cfg.Send(ctx, e.TrapOID, n.withSender(e.VarBinds))
		n.mu.Lock()
		e.sent = true
		n.mu.Unlock()
	}
	n.changed()
}

// withSender appends smNodeId.0 and smViewTerm.0 unless the notification
// carries them already (smManagerTakeover).
func (n *Notifier) withSender(vbs []smi.VarBind) []smi.VarBind {
	id, term := SmNodeID.OID().Append(0), SmViewTerm.OID().Append(0)
	out := slices.Clip(vbs)
	if !slices.ContainsFunc(vbs, func(vb smi.VarBind) bool { return vb.Name.Equal(id) }) {
		out = append(out, smi.VarBind{Name: id, Value: smi.Gauge32(n.cfg.Node)})
	}
	if !slices.ContainsFunc(vbs, func(vb smi.VarBind) bool { return vb.Name.Equal(term) }) {
		var t uint64
		if n.cfg.Term != nil {
			t = n.cfg.Term()
		}
		out = append(out, smi.VarBind{Name: term, Value: smi.Counter64(t)})
	}
	return out
}

// Activate makes this manager the one that notifies. It sends lead
// first (smManagerTakeover), then, oldest first, the notifications of the
// last Retention that the previous active manager may not have sent: the
// journal's entries not marked sent, and what this manager saw as a
// backup that the journal lacks.
func (n *Notifier) Activate(ctx context.Context, lead ...Notification) {
	now := n.now()
	n.mu.Lock()
	n.pruneLocked(now)
	n.active = true
	var again []*journalEntry
	for _, e := range n.journal {
		if !e.sent {
			again = append(again, e)
		}
	}
	for _, e := range n.unsent {
		if !n.journaledLocked(e.Key) {
			again = append(again, e)
			n.journal = append(n.journal, e)
		}
	}
	n.unsent = nil
	slices.SortStableFunc(again, func(a, b *journalEntry) int { return a.at.Compare(b.at) })
	var first []*journalEntry
	for _, nt := range lead {
		if !n.journaledLocked(nt.Key) {
			e := &journalEntry{Notification: nt, at: now}
			n.journal = append(n.journal, e)
			first = append(first, e)
		}
	}
	n.mu.Unlock()
	if len(again) > 0 {
		n.log.WithField("notifications", len(again)).Info("mib: active: sending the notifications seen while not active that no active manager is known to have sent")
	}
	n.changed()
	n.send(ctx, append(first, again...))
}

// Deactivate stops this manager's notifications: it is a backup.
func (n *Notifier) Deactivate() {
	n.mu.Lock()
	n.active = false
	n.mu.Unlock()
}

// Journal returns the journal for the backups, oldest first.
func (n *Notifier) Journal() []wire.Entry {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pruneLocked(now)
	out := make([]wire.Entry, 0, len(n.journal))
	for _, e := range n.journal {
		out = append(out, wire.Entry{Kind: uint8(e.Key.Kind), Subject: e.Key.Subject, Instance: e.Key.Instance,
			At: e.at.UnixNano(), Sent: e.sent, TrapOID: e.TrapOID, VarBinds: e.VarBinds})
	}
	return out
}

// Adopt takes the active manager's journal: what it saw here and the
// journal holds is no longer this manager's to send. An active manager
// ignores it (its own journal is the one that counts).
func (n *Notifier) Adopt(entries []wire.Entry) {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.active {
		return
	}
	n.journal = n.journal[:0:0]
	for _, w := range entries {
		if len(w.TrapOID) == 0 {
			continue
		}
		n.journal = append(n.journal, &journalEntry{
			Notification: Notification{Key: NotifyKey{Kind: NotifyKind(w.Kind), Subject: w.Subject, Instance: w.Instance},
				TrapOID: w.TrapOID, VarBinds: w.VarBinds},
			at: time.Unix(0, w.At), sent: w.Sent})
	}
	n.unsent = slices.DeleteFunc(n.unsent, func(e *journalEntry) bool { return n.journaledLocked(e.Key) })
	n.pruneLocked(now)
}
