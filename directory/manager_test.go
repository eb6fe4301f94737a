package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// fakeEP is an Endpoint whose requests are answered by a function.
type fakeEP struct {
	mu      sync.Mutex
	stats   rmtp.Stats
	answer  func(req []byte) []byte
	replies [][]byte
}

func (f *fakeEP) Send(context.Context, uint8, rmtp.Dest, []byte) (rmtp.Report, error) {
	return rmtp.Report{}, nil
}

func (f *fakeEP) Request(_ context.Context, _ uint8, p []byte, targets []rmtp.NodeID) (rmtp.Report, error) {
	return rmtp.Report{Responses: []rmtp.Response{{From: targets[0], Payload: f.answer(p)}}}, nil
}

func (f *fakeEP) Reply(_ context.Context, _ *rmtp.Message, p []byte) (rmtp.Report, error) {
	f.mu.Lock()
	f.replies = append(f.replies, p)
	f.mu.Unlock()
	return rmtp.Report{}, nil
}

func (f *fakeEP) Node() rmtp.NodeID { return 1 }
func (f *fakeEP) Stats() rmtp.Stats { return f.stats }

type nilInbox struct{}

func (nilInbox) Receive(ctx context.Context) (*rmtp.Message, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func newFakeManager(t *testing.T, ep *fakeEP) *Manager {
	m, err := NewManager(ep, ManagerConfig{Store: StoreConfig{Unit: farm}}, nilInbox{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestDonorChoice(t *testing.T) {
	ep := &fakeEP{}
	m := newFakeManager(t, ep)
	if _, err := m.Donor(); !errors.Is(err, ErrNoDonor) {
		t.Fatalf("alone: %v", err)
	}
	ep.stats = rmtp.Stats{View: rmtp.View{Owner: 7}, Peers: []rmtp.PeerStats{
		{Node: 3, Role: rmtp.Manager, State: rmtp.PeerAlive},
		{Node: 7, Role: rmtp.Manager, State: rmtp.PeerAlive},
		{Node: 101, Role: rmtp.Engine, State: rmtp.PeerAlive},
	}}
	if d, _ := m.Donor(); d != 7 {
		t.Fatalf("donor %d, want the view owner 7", d)
	}
	ep.stats.Peers[1].State = rmtp.PeerDown
	if d, _ := m.Donor(); d != 3 {
		t.Fatalf("donor %d, want the lowest live manager 3", d)
	}
}

func TestCatchUpBadDonor(t *testing.T) {
	ep := &fakeEP{answer: func([]byte) []byte { return []byte{1, 3, 0} }}
	m := newFakeManager(t, ep)
	if _, err := m.CatchUpFrom(context.Background(), 2); !errors.Is(err, ErrTransfer) || !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("garbage chunk: %v", err)
	}
	// A donor that never moves its cursor.
	ep.answer = func([]byte) []byte {
		b, _ := wire.AppendSnapshotChunk(nil, &wire.SnapshotChunk{Next: 0})
		return b
	}
	if _, err := m.CatchUpFrom(context.Background(), 2); !errors.Is(err, ErrTransfer) {
		t.Fatalf("no progress: %v", err)
	}
	if m.Counters().Malformed != 1 {
		t.Fatalf("counters %+v", m.Counters())
	}
}

// TestServeSnapshot: only requests naming this manager are answered, and
// the answer respects the requester's budget.
func TestServeSnapshot(t *testing.T) {
	ep := &fakeEP{}
	m := newFakeManager(t, ep)
	var ops []wire.Op
	for i := range 3000 {
		ops = append(ops, add(uint64(i+1), fmt.Sprintf("key-%05d", i)))
	}
	m.Store().Apply(upd(1, 1, 0, ops...), 1, 1, t0)
	req := func(donor uint32) *rmtp.Message {
		q := wire.SnapshotRequest{Donor: donor, MaxBytes: MinChunkBytes}
		return &rmtp.Message{Channel: rmtp.ChannelTransfer, Kind: rmtp.KindRequest, Payload: wire.AppendSnapshotRequest(nil, &q)}
	}
	m.handle(req(2))
	m.handle(req(1))
	m.handle(&rmtp.Message{Channel: rmtp.ChannelTransfer, Kind: rmtp.KindRequest, Payload: []byte{1}})
	m.handle(&rmtp.Message{Channel: rmtp.ChannelDirectory, Kind: rmtp.KindData, Dest: rmtp.Up, Payload: []byte{1, 1}})
	m.handle(&rmtp.Message{Channel: rmtp.ChannelDirectory, Kind: rmtp.KindData, Dest: rmtp.Up, Payload: wire.AppendResync(nil)})
	wrong, _ := wire.AppendUpdate(nil, &wire.Update{Level: 2})
	m.handle(&rmtp.Message{Channel: rmtp.ChannelDirectory, Kind: rmtp.KindData, Dest: rmtp.Up, Payload: wrong})
	waitfor.True(t, 5e9, "one reply", func() bool { return m.Counters().ChunksServed == 1 })
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.replies) != 1 || len(ep.replies[0]) > MinChunkBytes {
		t.Fatalf("%d replies, first %d bytes", len(ep.replies), len(ep.replies[0]))
	}
	c, err := wire.ParseSnapshotChunk(ep.replies[0])
	if err != nil || c.Last || len(c.Records) == 0 || len(c.Sources) != 1 {
		t.Fatalf("chunk: last %v, %d records, %d sources, %v", c.Last, len(c.Records), len(c.Sources), err)
	}
	if mc := m.Counters(); mc.Malformed != 3 || mc.WrongLevel != 1 {
		t.Fatalf("counters %+v", mc)
	}
}
