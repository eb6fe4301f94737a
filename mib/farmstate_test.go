package mib_test

import (
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	rwire "github.com/smsnmpd/smsnmpd/internal/replica/wire"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// TestTakeoverDiscontinuity: a manager that takes over moves
// smAggregateDiscontinuityTime unless the last state it received vouches
// for every sum: one was received, recently, and whole.
func TestTakeoverDiscontinuity(t *testing.T) {
	fresh := &rwire.State{Node: 1000, Term: 1, Seq: 1,
		Sums: []rwire.Sum{{OID: seRequests, Engines: []rwire.Count{{Engine: 1, Incarnation: 1, Last: 5000, Offset: 100}}}}}
	partial := *fresh
	partial.Flags = rwire.FlagPartial
	cases := []struct {
		name  string
		state *rwire.State
		age   time.Duration // from the state's arrival to the takeover
		moves bool
	}{
		{"no state received", nil, 0, true},
		{"a state of a moment ago", fresh, 800 * time.Millisecond, false},
		{"a state older than StaleAfter", fresh, mib.DefaultStateStaleAfter + time.Second, true},
		{"a partial state", &partial, 800 * time.Millisecond, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := epoch.Add(time.Minute)
			clock := func() time.Time { return now }
			f := newFakeFarm(clock)
			f.add(1, engineVBs(1, 7, 5100)...)
			st, err := mib.NewFarmState(mib.FarmStateConfig{Farm: f, Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			tree := agent.NewTree()
			if _, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f, State: st, Start: epoch, Now: clock, EngineTableTTL: -1}); err != nil {
				t.Fatal(err)
			}
			if c.state != nil {
				st.Adopt(c.state)
			}
			now = now.Add(c.age)
			st.Activated(true)
			got := get(t, tree, discontTime, agg(mib.FuncSum, seRequests))
			if moved := !got[0].Equal(smi.TimeTicks(0)); moved != c.moves {
				t.Errorf("smAggregateDiscontinuityTime = %s after the takeover, want moved = %v", got[0], c.moves)
			}
			if c.state != nil && !got[1].Equal(smi.Counter64(5200)) {
				t.Errorf("sum after the takeover = %s, want the state's 5100 plus what engine 1 counted since: 5200", got[1])
			}
		})
	}
}

// TestFarmStateShared: the node's two frontends (built-in agent, AgentX)
// answer the same sums from one FarmState.
func TestFarmStateShared(t *testing.T) {
	clk := &tick{t: epoch}
	f := newFakeFarm(clk.Now)
	f.add(1, engineVBs(1, 7, 1000)...)
	st, err := mib.NewFarmState(mib.FarmStateConfig{Farm: f, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var trees []*agent.Tree
	for range 2 {
		tree := agent.NewTree()
		if _, err := mib.RegisterManager(tree, mib.ManagerConfig{Farm: f, State: st, Start: epoch, Now: clk.Now, EngineTableTTL: -1}); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tree)
	}
	sum := agg(mib.FuncSum, seRequests)
	get(t, trees[0], sum)
	f.set(1, smi.VarBind{Name: seRequests, Value: smi.Counter64(10)}) // engine 1 restarted
	if got := get(t, trees[0], sum)[0]; !got.Equal(smi.Counter64(1010)) {
		t.Fatalf("first frontend: %s", got)
	}
	// The second frontend never read the engine before its restart, yet
	// it keeps the offset the first one saw.
	if got := get(t, trees[1], sum)[0]; !got.Equal(smi.Counter64(1010)) {
		t.Errorf("second frontend: %s, want 1010", got)
	}
}
