package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
)

// TestCatchUpRateLimited: a catch-up asks its donor for no more than
// TransferRate bytes per second, in chunks of ChunkBytes: with 16 KiB
// chunks at 256 KiB/s, the transfer cannot be quicker than its bytes
// (less the first chunk) at that rate, and it is complete.
func TestCatchUpRateLimited(t *testing.T) {
	checkNoLeak(t)
	const rate = 256 << 10
	f := memFarm(t, memnet.Faults{})
	f.mutStore = func(c *directory.StoreConfig) { c.Rate = -1 }
	f.mutMgr = func(c *directory.ManagerConfig) { c.TransferRate, c.ChunkBytes = rate, directory.MinChunkBytes }
	donor := f.addManager(1)
	fill(t, donor.Store(), 8000)
	late := f.addManager(2)
	f.waitPeers()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := late.CatchUpFrom(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if late.Store().Count() != 8000 || late.Store().Digest(time.Now()) != donor.Store().Digest(time.Now()) {
		t.Fatalf("caught up %d entries, digests differ", late.Store().Count())
	}
	floor := time.Duration(float64(rep.Bytes-directory.MinChunkBytes) / rate * float64(time.Second))
	if rep.Chunks < 10 || rep.Elapsed < floor {
		t.Fatalf("%d chunks, %d bytes in %v: faster than %d B/s allows (%v)", rep.Chunks, rep.Bytes, rep.Elapsed, rate, floor)
	}
	t.Logf("%d chunks, %d bytes in %v (floor %v)", rep.Chunks, rep.Bytes, rep.Elapsed, floor)
}
