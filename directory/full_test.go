package directory_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestMaxEntriesRefusal: managers capped at 100 entries hold 100 of the
// 150 an SE publishes; the other 50 come back to the SE as refused for
// good (its Flush returns, Rejected says 50), each manager logs the cap
// once (not once per update), and logs again when there is room.
func TestMaxEntriesRefusal(t *testing.T) {
	checkNoLeak(t)
	f := memFarm(t, memnet.Faults{})
	f.mutStore = func(c *directory.StoreConfig) { c.MaxEntries = 100 }
	lg, hook := test.NewNullLogger()
	lg.SetLevel(logrus.InfoLevel)
	f.mutMgr = func(c *directory.ManagerConfig) { c.Logger = lg }
	sm, bsm := f.addManager(1), f.addManager(2)
	f.addEngines(1)
	f.waitPeers()
	p := f.pubs[0]
	for i := range 150 {
		if err := p.Add(directory.Entry{Key: key(0, i)}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(2 * time.Millisecond) // several updates, not one
		}
	}
	f.flush(30 * time.Second)
	if st := p.Stats(); st.Rejected != 50 {
		t.Fatalf("publisher %+v: want 50 refused for good", st)
	}
	for _, m := range []*directory.Manager{sm, bsm} {
		if m.Store().Count() != 100 || m.Store().Counters().Full < 50 {
			t.Fatalf("manager holds %d, counters %+v", m.Store().Count(), m.Store().Counters())
		}
	}
	count := func(msg string) int {
		n := 0
		for _, e := range hook.AllEntries() {
			if strings.Contains(e.Message, msg) {
				n++
			}
		}
		return n
	}
	if n := count("directory: full;"); n != 2 {
		t.Fatalf("%d 'full' log lines from 2 managers", n)
	}
	for i := range 10 {
		if err := p.Remove(key(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	f.flush(30 * time.Second)
	waitfor.True(t, 10*time.Second, "both managers log room again", func() bool { return count("below max_entries again") == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Add(directory.Entry{Key: key(0, 500)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil || sm.Store().Count() != 91 {
		t.Fatalf("after room: %v, %d entries", err, sm.Store().Count())
	}
}
