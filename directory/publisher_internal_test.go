package directory

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// scriptedFarm is a Sender and an Inbox: every UPDATE sent is "delivered"
// to the managers, whose verdicts judge decides.
type scriptedFarm struct {
	view, peers []rmtp.NodeID // the report's members; the managers the endpoint hears
	judge       func(ops int, from rmtp.NodeID) wire.Result

	mu    sync.Mutex
	id    uint64
	tries int
	inbox chan *rmtp.Message
}

func (f *scriptedFarm) Send(_ context.Context, ch uint8, dest rmtp.Dest, payload []byte) (rmtp.Report, error) {
	f.mu.Lock()
	f.id++
	f.tries++
	id := f.id
	f.mu.Unlock()
	u, err := wire.ParseUpdate(payload)
	if err != nil || ch != rmtp.ChannelDirectory || dest != rmtp.Up {
		return rmtp.Report{}, err
	}
	g := u.Groups[0]
	for _, m := range f.peers {
		v := wire.Verdict{Level: 1, Entries: []wire.VerdictEntry{{Engine: g.Origin.Engine, Incarnation: g.Incarnation, Message: id,
			Result: f.judge(len(g.Ops), m), RetryAfter: 5, Rate: 1000, Burst: 1000}}}
		b, _ := wire.AppendVerdict(nil, &v)
		f.inbox <- &rmtp.Message{From: m, Channel: rmtp.ChannelDirectory, Dest: rmtp.Down, Kind: rmtp.KindData, Payload: b}
	}
	return rmtp.Report{Channel: ch, Dest: dest, ID: id, Members: f.view, Acked: f.view}, nil
}

func (f *scriptedFarm) Stats() rmtp.Stats {
	var st rmtp.Stats
	for _, m := range f.peers {
		st.Peers = append(st.Peers, rmtp.PeerStats{Node: m, Role: rmtp.Manager, State: rmtp.PeerAlive})
	}
	return st
}

func (f *scriptedFarm) Receive(ctx context.Context) (*rmtp.Message, error) {
	select {
	case m := <-f.inbox:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestPublisherWaitsForManagersOutsideTheView: a backup manager the view
// does not list yet (it just joined) still receives the update and may
// refuse it; the publisher waits for every manager it hears, not only the
// report's members, and sends again until that one accepted too. (Found
// by TestFlowControlReannounceAfterRestart: a BSM held 2,084 of 3,000
// after Flush when it refused before the view named it.)
func TestPublisherWaitsForManagersOutsideTheView(t *testing.T) {
	refused := false // manager 2 refuses the first update with operations
	f := &scriptedFarm{view: []rmtp.NodeID{1}, peers: []rmtp.NodeID{1, 2}, inbox: make(chan *rmtp.Message, 64),
		judge: func(ops int, from rmtp.NodeID) wire.Result {
			if from == 2 && ops > 0 && !refused {
				refused = true
				return wire.ResultRateLimited
			}
			return wire.ResultAccepted
		}}
	p, err := NewPublisher(f, PublisherConfig{Location: Location{CDN: 1, DataCenter: 1, Farm: 1, Engine: 101}, Incarnation: 7,
		Rate: 1000, Burst: 1000, Inbox: f})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := p.Add(Entry{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	f.mu.Lock()
	tries := f.tries
	f.mu.Unlock()
	if tries < 2 || s.Refused != 3 || s.Resent == 0 || s.Ops != 3 || len(s.Managers) != 2 {
		t.Fatalf("%d sends, publisher %+v: the refusal of manager 2, outside the view, must make it send again", tries, s)
	}
}
