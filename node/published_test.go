package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

func readAll(path string) ([]directory.Entry, error) {
	var out []directory.Entry
	err := readPublished(path)(func(e directory.Entry) error { out = append(out, e); return nil })
	return out, err
}

// TestPublishedFile: the state file streams out and back in unchanged
// (the same JSON array as before, so an older version reads it); a
// missing file is no entry; a broken one is an error naming the file and
// the byte, never a partial list taken silently.
func TestPublishedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, publishedFile)
	if es, err := readAll(path); err != nil || len(es) != 0 {
		t.Fatalf("missing file: %v, %v", es, err)
	}
	exp := time.UnixMilli(1_900_000_000_123).UTC()
	want := []directory.Entry{{Key: "a", Size: 1}, {Key: "b/é", Size: 1 << 40, Expiry: exp}}
	if err := writePublished(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(path)
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1].Key != want[1].Key || !got[1].Expiry.Equal(exp) || got[1].Size != 1<<40 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}
	if err := writePublished(path, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "[]" {
		t.Fatalf("empty list written as %q", b)
	}
	for name, body := range map[string]string{
		"not an array": `{"Key":"a"}`,
		"cut short":    `[{"Key":"a"},{"Key":`,
		"trailing":     `[{"Key":"a"}] x`,
		"bad field":    `[{"Key":"a","Size":"big"}]`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The publisher's refusal of an entry (a bad key) fails the load too.
	os.WriteFile(path, []byte(`[{"Key":"ok"},{"Key":"bad\u0000key"}]`), 0o600)
	err = readPublished(path)(func(e directory.Entry) error { return directory.CheckKey(e.Key, 0) })
	if !errors.Is(err, directory.ErrBadKey) {
		t.Errorf("bad key: %v", err)
	}
}

// BenchmarkPublishedReannounce: an SE restarts with 10^6 entries in
// published.json and re-announces them to its SM and BSM (memnet) at
// publish_rate 50,000/s (burst 100,000): the time from reading the file
// until both managers accepted every entry (target 60 s), the publisher's
// heap per entry once loaded, and the heap the loading added at its peak
// beyond that (sampled), against the file's size.
func BenchmarkPublishedReannounce(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	path := filepath.Join(dir, publishedFile)
	entries := make([]directory.Entry, n)
	for i := range entries {
		entries[i] = directory.Entry{Key: fmt.Sprintf("http://cdn.example/c/%08d.obj", i), Size: uint64(i)}
	}
	if err := writePublished(path, entries); err != nil {
		b.Fatal(err)
	}
	entries = nil
	info, _ := os.Stat(path)
	cfg := config.Default()
	cfg.Directory.PublishRate, cfg.Directory.PublishBurst, cfg.Directory.MaxEntries = 50000, 100000, 2*n
	for range b.N {
		net := memnet.New(1472)
		var eps []*rmtp.Endpoint
		ep := func(id rmtp.NodeID, role rmtp.Role) *rmtp.Endpoint {
			e, err := rmtp.New(net.Attach(role == rmtp.Manager, memnet.Faults{}, uint64(id)),
				rmtp.Config{Node: id, Role: role, Insecure: true, HelloInterval: 20 * time.Millisecond, DownAfter: 50})
			if err != nil {
				b.Fatal(err)
			}
			eps = append(eps, e)
			return e
		}
		var mgrs []*directory.Manager
		for id := rmtp.NodeID(1); id <= 2; id++ {
			e := ep(id, rmtp.Manager)
			if id == 1 {
				e.Activate(1)
			}
			m, err := directory.NewManager(e, directory.ManagerConfig{Store: storeConfig(cfg)}, e)
			if err != nil {
				b.Fatal(err)
			}
			mgrs = append(mgrs, m)
		}
		se := *cfg
		se.Node.Role, se.Node.ID = config.RoleSE, 101
		seEP := ep(101, rmtp.Engine)
		for len(pubManagers(seEP)) < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		base := heapNow()
		peak := base
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}()
		start := time.Now()
		pc := publisherConfig(&se, nil, seEP, nil)
		pc.InitialFrom = readPublished(path)
		pub, err := directory.NewPublisher(seEP, pc)
		if err != nil {
			b.Fatal(err)
		}
		loaded := time.Since(start)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := pub.Flush(ctx); err != nil {
			b.Fatalf("flush: %v (%+v)", err, pub.Stats())
		}
		cancel()
		el := time.Since(start)
		close(stop)
		<-sampled
		for i, m := range mgrs {
			if m.Store().Count() != n {
				b.Fatalf("manager %d holds %d of %d", i+1, m.Store().Count(), n)
			}
		}
		b.ReportMetric(loaded.Seconds(), "s-to-load")
		b.ReportMetric(el.Seconds(), "s-until-both-accepted")
		b.ReportMetric(float64(info.Size())/1e6, "file-MB")
		b.ReportMetric(float64(peak-base)/1e6, "peak-heap-MB-added")
		b.ReportMetric(float64(pub.Stats().Refused), "refused")
		pub.Close()
		for _, m := range mgrs {
			m.Close()
		}
		for _, e := range eps {
			e.Close()
		}
	}
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
