package directory

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// parentSender delivers a forwarder's DIGESTs straight into a parent
// store, as its managers would.
type parentSender struct {
	t      *testing.T
	parent *Store
	mu     sync.Mutex
}

func (p *parentSender) Send(_ context.Context, _ uint8, _ rmtp.Dest, b []byte) (rmtp.Report, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, err := wire.ParseDigest(b)
	if err != nil {
		p.t.Errorf("forwarder sent %x: %v", b, err)
	} else if err := p.parent.ApplyDigest(&d); err != nil {
		p.t.Errorf("parent refused: %v", err)
	}
	return rmtp.Report{Members: []rmtp.NodeID{1}, Acked: []rmtp.NodeID{1}}, nil
}

// TestDigestRebuildUnderChanges: the filter doubles from 16 keys to
// thousands, each rebuild filled off the store's lock while adds and
// removals keep coming (held in the middle of each rebuild so that some
// land between its snapshot and its end): afterwards the parent's digest
// matches every key held (no false negative), and most removed keys no
// longer match (they were counted out; the rest are false positives).
func TestDigestRebuildUnderChanges(t *testing.T) {
	unit := Location{CDN: 1, DataCenter: 1, Farm: 1}
	child, err := NewStore(StoreConfig{Unit: unit, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := NewStore(StoreConfig{Level: LevelDataCenter, Unit: Location{CDN: 1, DataCenter: 1}})
	if err != nil {
		t.Fatal(err)
	}
	fw, err := NewForwarder(&parentSender{t: t, parent: parent}, child, ForwarderConfig{Policy: PolicyDigest, MinDigestKeys: 16, FPRate: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	fw.mu.Lock()
	fw.dg.testHold = func() { time.Sleep(2 * time.Millisecond) }
	fw.mu.Unlock()
	fw.SetActive(true)
	origin := unit
	origin.Engine = 7
	seq := uint64(0)
	apply := func(kind wire.OpKind, k string) {
		seq++
		u := &wire.Update{Level: 1, Groups: []wire.Group{{Origin: origin, Incarnation: 1, Ops: []wire.Op{{Kind: kind, Seq: seq, Key: k}}}}}
		if r := child.Apply(u, 7, 1, time.Now()); r.Applied != 1 {
			t.Fatalf("apply: %+v", r)
		}
	}
	const n = 6000
	for i := range n {
		apply(wire.OpAdd, fmt.Sprintf("key/%d", i))
		if i%3 == 0 && i > 0 {
			apply(wire.OpRemove, fmt.Sprintf("key/%d", i-1))
		}
		if i%500 == 0 {
			time.Sleep(time.Millisecond) // let rebuilds run between changes
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	building := func() bool {
		fw.mu.Lock()
		defer fw.mu.Unlock()
		return fw.dg.building
	}
	for fw.Stats().DigestKeys != uint64(child.Count()) || fw.Flush(ctx) != nil || building() {
		if ctx.Err() != nil {
			t.Fatalf("never idle: %+v", fw.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := fw.Stats()
	if st.DigestRebuilds < 3 || st.DigestKeys != uint64(child.Count()) {
		t.Fatalf("forwarder %+v, store %d keys", st, child.Count())
	}
	gone := 0
	for i := range n {
		k := fmt.Sprintf("key/%d", i)
		held := len(child.Lookup(k, Location{}, time.Now())) == 1
		match := len(parent.DigestMatches(k, Location{})) == 1
		if held && !match {
			t.Fatalf("false negative for %s after %d rebuilds", k, st.DigestRebuilds)
		}
		if !held && !match {
			gone++
		}
	}
	if gone < n/3/2 { // the rest: false positives of a filter up to twice as full as sized
		t.Fatalf("only %d of %d removed keys no longer match", gone, n/3)
	}
}
