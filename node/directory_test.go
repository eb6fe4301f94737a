package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestPublishRateDrivesBothSides ties directory.publish_rate and
// publish_burst to the SE's publisher and the farm managers' store, so
// that they cannot diverge again (issue 14: the publisher kept the
// library's 10,000/s while the managers admitted 1,000/s and dropped the
// rest): the same numbers on both sides, from the default configuration
// and from a file; only the farm's store is limited.
func TestPublishRateDrivesBothSides(t *testing.T) {
	custom, err := config.Parse("custom.toml", []byte("[node]\nrole = \"manager\"\nid = 1\n[rmtp]\ninsecure = true\n[directory]\npublish_rate = 2500\npublish_burst = 7000\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*config.Config{"default": config.Default(), "custom": custom} {
		pc := publisherConfig(cfg, nil, nil, nil)
		sc := storeConfig(cfg)
		rate, burst := float64(cfg.Directory.PublishRate), float64(cfg.Directory.PublishBurst)
		if pc.Rate != rate || pc.Burst != burst || sc.Rate != rate || sc.Burst != burst {
			t.Errorf("%s: publisher %v/%v, store %v/%v, configured %v/%v: one setting must drive both", name, pc.Rate, pc.Burst, sc.Rate, sc.Burst, rate, burst)
		}
		if pc.MaxKey != sc.MaxKey {
			t.Errorf("%s: publisher key cap %d, managers' %d", name, pc.MaxKey, sc.MaxKey)
		}
		up := *cfg
		up.Node.Level = 2
		if s := storeConfig(&up); s.Rate != 0 || s.Burst != 0 {
			t.Errorf("%s: a level-2 store is limited %v/%v; the limit is the SEs', at the farm", name, s.Rate, s.Burst)
		}
	}
	if custom.Directory.PublishRate != 2500 {
		t.Fatalf("the custom file was not read: %+v", custom.Directory)
	}

	// And in operation: a publisher and two managers built from one
	// configuration by these functions, over an in-memory farm, publish
	// three bursts' worth; Flush means both managers hold everything, and
	// no manager refused anything (the publisher keeps half a burst of
	// margin).
	cfg := config.Default()
	cfg.Directory.PublishRate, cfg.Directory.PublishBurst = 2000, 2000
	net := memnet.New(1472)
	ep := func(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
		e, err := rmtp.New(net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id)),
			rmtp.Config{Node: id, Role: role, Insecure: true, HelloInterval: 20 * time.Millisecond, DownAfter: 50})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	var mgrs []*directory.Manager
	for id := rmtp.NodeID(1); id <= 2; id++ {
		e := ep(id, rmtp.Manager)
		if id == 1 {
			if err := e.Activate(1); err != nil {
				t.Fatal(err)
			}
		}
		m, err := directory.NewManager(e, directory.ManagerConfig{Store: storeConfig(cfg)}, e)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		mgrs = append(mgrs, m)
	}
	se := *cfg
	se.Node.Role, se.Node.ID = config.RoleSE, 101
	seEP := ep(101, rmtp.Engine)
	pub, err := directory.NewPublisher(seEP, publisherConfig(&se, nil, seEP, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(pubManagers(seEP)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the SE does not see both managers")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const n = 6000
	for i := range n {
		if err := pub.Add(directory.Entry{Key: fmt.Sprintf("tie/%05d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pub.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (%+v)", err, pub.Stats())
	}
	for i, m := range mgrs {
		if c := m.Store().Counters(); m.Store().Count() != n || c.RateLimited != 0 {
			t.Errorf("manager %d holds %d of %d, refused %d operations", i+1, m.Store().Count(), n, c.RateLimited)
		}
	}
	if s := pub.Stats(); s.Refused != 0 || s.Rate != 2000 || s.Burst != 2000 {
		t.Errorf("publisher %+v", s)
	}
}

func pubManagers(e *rmtp.Endpoint) []rmtp.NodeID {
	var out []rmtp.NodeID
	for _, p := range e.Stats().Peers {
		if p.Role == rmtp.Manager && p.State == rmtp.PeerAlive {
			out = append(out, p.Node)
		}
	}
	return out
}
