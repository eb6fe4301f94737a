package rmtp_test

import (
	"bytes"
	"context"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

func TestMulticastLoopback16(t *testing.T) {
	checkNoLeak(t)
	const receivers = 16
	msgs := 1000
	if testing.Short() {
		msgs = 200
	}
	down, up := rmtptest.Groups(t)
	keys := rmtptest.Keys(t)
	mcfg := rmtp.MulticastConfig{Interface: "lo", Down: down, Up: up}

	mcfg.JoinUp = true
	mtr, err := rmtp.ListenMulticast(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("receive buffer granted: %d bytes, datagram %d", mtr.ReadBufferGranted(), mtr.MaxDatagram())
	mgr, err := rmtp.New(mtr, rmtp.Config{Node: 1, Role: rmtp.Manager, Keys: keys, DownAfter: lenientDown, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	mcfg.JoinUp = false
	var engines []*rmtp.Endpoint
	var impaired []*memnet.Impaired
	for i := range receivers {
		tr, err := rmtp.ListenMulticast(mcfg)
		if err != nil {
			t.Fatal(err)
		}
		im := memnet.Impair(tr, memnet.Faults{Loss: 0.1, Dup: 0.1, Reorder: 0.1}, uint64(i+1))
		impaired = append(impaired, im)
		e, err := rmtp.New(im, rmtp.Config{Node: rmtp.NodeID(101 + i), Role: rmtp.Engine, Keys: keys, DownAfter: lenientDown})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		engines = append(engines, e)
	}
	waitfor.True(t, 10*time.Second, "manager sees 16 engines", func() bool { return livePeers(mgr) == receivers })

	rng := mrand.New(mrand.NewPCG(7, 8))
	want := make([][]byte, msgs)
	for i := range want {
		size := 1 + rng.IntN(64<<10)
		if i%200 == 100 {
			size = 512<<10 + rng.IntN(512<<10) // a few up to 1 MiB
		}
		want[i] = payload(rng, i, size)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, receivers)
	for _, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := collect(ctx, e, 1, want)
			if err != nil {
				t.Error(err) // at once: a stalled reader stalls the sender
			}
			errs <- err
		}()
	}
	for i, p := range want {
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		t0 := time.Now()
		r, err := mgr.Send(sctx, 1, rmtp.Down, p)
		scancel()
		if err != nil {
			t.Logf("after %v: report %+v", time.Since(t0), r)
			t.Logf("sender: %+v", mgr.Stats().Counters)
			for _, e := range engines[:3] {
				s := e.Stats()
				t.Logf("engine %d: %+v peers %+v", e.Node(), s.Counters, s.Peers)
			}
			t.Fatalf("message %d (%d bytes): %v", i, len(p), err)
		}
		if len(r.Acked) != receivers {
			t.Fatalf("message %d: acked by %d", i, len(r.Acked))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := mgr.Stats()
	var naks, sup, dups uint64
	var faults memnet.Stats
	for i, e := range engines {
		es := e.Stats()
		naks += es.NaksSent
		sup += es.NaksSuppressed
		dups += es.Duplicates
		fs := impaired[i].Stats()
		faults.Dropped += fs.Dropped
		faults.Duplicated += fs.Duplicated
		faults.Reordered += fs.Reordered
	}
	t.Logf("sender: sent %d, retransmits %d, naks received %d; receivers: naks %d, suppressed %d, duplicates %d; injected: drop %d dup %d reorder %d",
		s.Sent, s.Retransmits, s.NaksReceived, naks, sup, dups, faults.Dropped, faults.Duplicated, faults.Reordered)
	if faults.Dropped == 0 || s.Retransmits == 0 {
		t.Error("no loss injected or no repair made")
	}
}

// TestUnicastLossy runs the same guarantees over unicast UDP (rmtp between
// LANs): one manager, three engines, each with the other's addresses.
func TestUnicastLossy(t *testing.T) {
	checkNoLeak(t)
	const n = 3
	keys := rmtptest.Keys(t)
	// Reserve ports first so every node knows every address.
	addrs := make([]netip.AddrPort, n+1)
	for i := range addrs {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.Close()
	}
	var eps []*rmtp.Endpoint
	for i := range addrs {
		var peers []netip.AddrPort
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		tr, err := rmtp.ListenUnicast(rmtp.UnicastConfig{Listen: addrs[i], Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		var trx rmtp.Transport = tr
		role, id := rmtp.Manager, rmtp.NodeID(1)
		if i > 0 {
			role, id = rmtp.Engine, rmtp.NodeID(100+i)
			trx = memnet.Impair(tr, memnet.Faults{Loss: 0.1, Dup: 0.1, Reorder: 0.1}, uint64(i))
		}
		e, err := rmtp.New(trx, rmtp.Config{Node: id, Role: role, Keys: keys, DownAfter: lenientDown})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		eps = append(eps, e)
	}
	mgr := eps[0]
	waitfor.True(t, 10*time.Second, "manager sees the engines", func() bool { return livePeers(mgr) == n })
	rng := mrand.New(mrand.NewPCG(9, 10))
	want := make([][]byte, 200)
	for i := range want {
		want[i] = payload(rng, i, 1+rng.IntN(16<<10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, e := range eps[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- collect(ctx, e, 1, want) }()
	}
	for i, p := range want {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := mgr.Send(sctx, 3, rmtp.Down, p)
		scancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if s := mgr.Stats(); s.Retransmits == 0 {
		t.Error("no repair under 10% loss")
	} else {
		t.Logf("unicast: retransmits %d, naks received %d", s.Retransmits, s.NaksReceived)
	}
}

// TestIgnoreSender: the socket filter drops datagrams naming the
// ignored sender (node and incarnation) before they are read, and
// nothing else: another incarnation of that node, another node, and a
// datagram too short to have a header all come through, in one batch.
func TestIgnoreSender(t *testing.T) {
	checkNoLeak(t)
	down, up := rmtptest.Groups(t)
	mcfg := rmtp.MulticastConfig{Down: down, Up: up, JoinUp: true}
	rx, err := rmtp.ListenMulticast(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	mcfg.JoinUp = false
	tx, err := rmtp.ListenMulticast(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := rx.IgnoreSender(5, 0x0102030405060708); err != nil {
		t.Fatal(err)
	}
	dgram := func(node uint32, inc uint64) []byte {
		b, err := wire.AppendPacket(nil, wire.Header{Type: wire.TypeAck, Node: node, Incarnation: inc, MsgID: 1}, []byte{0, 0})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sent := [][]byte{
		dgram(5, 0x0102030405060708), // ignored
		dgram(5, 0x0102030405060709), // a restarted node 5
		dgram(6, 0x0102030405060708),
		[]byte("short"),
		dgram(5, 0x0102030405060708), // ignored
	}
	for _, to := range []rmtp.Dest{rmtp.Down, rmtp.Up} {
		if err := tx.SendBatch(to, sent); err != nil {
			t.Fatal(err)
		}
	}
	var got [][]byte
	ds := make([]rmtp.Datagram, 8)
	for len(got) < 6 {
		n, err := rx.RecvBatch(ds)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds[:n] {
			got = append(got, d.Data)
		}
	}
	// Compare as multisets: the order across the two groups is the
	// kernel's business.
	count := map[string]int{}
	for _, g := range got {
		count[string(g)]++
	}
	for _, w := range sent[1:4] {
		if count[string(w)] != 2 {
			t.Errorf("%x arrived %d times, want once per group", w, count[string(w)])
		}
	}
	// Nothing else is waiting: the ignored ones never arrive.
	if err := tx.Send(rmtp.Down, sent[2]); err != nil {
		t.Fatal(err)
	}
	if d, err := rx.Recv(); err != nil || !bytes.Equal(d.Data, sent[2]) {
		t.Fatalf("after the batch: %x %v", d.Data, err)
	}
}

// TestManagerSocketTakesOnlyItsGroups: a manager's one socket is bound to
// the wildcard to hear both groups; its filter keeps out what that
// binding would let in: unicast to the port, and a third group on the
// same port that another socket of the host joined.
func TestManagerSocketTakesOnlyItsGroups(t *testing.T) {
	checkNoLeak(t)
	down, up := rmtptest.Groups(t)
	mgr, err := rmtp.ListenMulticast(rmtp.MulticastConfig{Down: down, Up: up, JoinUp: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	other := netip.AddrPortFrom(up.Addr().Next(), up.Port())
	stranger, err := rmtp.ListenMulticast(rmtp.MulticastConfig{Down: other, Up: netip.AddrPortFrom(other.Addr().Next(), up.Port())})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	for i, to := range []netip.AddrPort{other, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), down.Port()), down, up} {
		if err := stranger.SendTo(to, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The third group's datagram reaches its own member: it was sent.
	if d, err := stranger.Recv(); err != nil || !bytes.Equal(d.Data, []byte{0}) {
		t.Fatalf("the other group's member got %x, %v", d.Data, err)
	}
	var got []byte
	ds := make([]rmtp.Datagram, 4)
	for len(got) < 2 {
		n, err := mgr.RecvBatch(ds)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds[:n] {
			got = append(got, d.Data...)
			// The source as recvmmsg reported it: the sender's
			// interface address and its port.
			if d.From != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), up.Port()) {
				t.Errorf("datagram %x from %v", d.Data, d.From)
			}
		}
	}
	if !bytes.Equal(got, []byte{2, 3}) {
		t.Fatalf("manager read %x, want the down and up groups' datagrams only (02 03)", got)
	}
}
