package rmtp_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/memnet"
	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

func ring(t *testing.T, current uint16, ids ...uint16) *rmtp.Keyring {
	t.Helper()
	keys := map[uint16][]byte{}
	for _, id := range ids {
		keys[id] = bytes.Repeat([]byte{byte(id)}, 32)
	}
	kr, err := wire.NewKeyring(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestAuthentication(t *testing.T) {
	checkNoLeak(t)
	f := newFarm(t)
	withKeys := func(kr *rmtp.Keyring) func(*rmtp.Config) {
		return func(c *rmtp.Config) { c.Keys, c.Insecure = kr, false }
	}
	// Mid-roll: both hold keys 1 and 2; the manager still signs with 1,
	// the engine already with 2.
	old := ring(t, 1, 1, 2)
	rolling := ring(t, 2, 1, 2)
	mgr := f.add(1, rmtp.Manager, withKeys(old))
	f.add(101, rmtp.Engine, withKeys(rolling))
	f.add(102, rmtp.Engine, withKeys(ring(t, 3, 3))) // wrong key
	waitfor.True(t, 5*time.Second, "manager sees 101", func() bool { return peerState(mgr, 101) == rmtp.PeerAlive })

	t.Run("rolled key interoperates, wrong key is dropped and counted", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		waitfor.True(t, 5*time.Second, "auth failures at the manager", func() bool { return mgr.Stats().AuthFailures > 0 })
		r, err := mgr.Send(ctx, 1, rmtp.Down, []byte("hello"))
		if err != nil || len(r.Members) != 1 || r.Members[0] != 101 {
			t.Fatalf("report %+v, %v (102 must not be a member)", r, err)
		}
		if m, err := f.eps[101].Receive(ctx); err != nil || string(m.Payload) != "hello" {
			t.Fatalf("101 got %v %v", m, err)
		}
		if peerState(mgr, 102) != 0 {
			t.Error("a node with the wrong key became a peer")
		}
	})

	raw := f.net.Attach(true, memnet.Faults{}, 77)
	defer raw.Close()
	t.Run("tampered", func(t *testing.T) {
		var d traced
		for _, x := range f.datagrams(wire.TypeData) {
			if x.h.Node == 1 {
				d = x
			}
		}
		b, _ := wire.AppendPacket(nil, d.h, d.body)
		old.Sign(b)
		b[wire.HeaderLen] ^= 0x20
		before := f.eps[101].Stats().AuthFailures
		raw.Send(rmtp.Down, b)
		waitfor.True(t, 5*time.Second, "tampered datagram counted", func() bool { return f.eps[101].Stats().AuthFailures > before })
	})
	t.Run("replayed", func(t *testing.T) {
		// A control datagram replayed verbatim is refused by the window.
		// The newest of the manager's HELLOs: engine 101 has certainly
		// had it (its first ones may have gone out before 101 was on
		// the network, and a never-seen sequence number inside the
		// window is rightly accepted, as in IPsec's window).
		var hello, data []byte
		for _, x := range f.datagrams(wire.TypeHello) {
			if x.h.Node == 1 {
				hello, _ = wire.AppendPacket(nil, x.h, x.body)
				old.Sign(hello)
			}
		}
		for _, x := range f.datagrams(wire.TypeData) {
			if x.h.Node == 1 {
				data, _ = wire.AppendPacket(nil, x.h, x.body)
				old.Sign(data)
			}
		}
		e := f.eps[101]
		before := e.Stats()
		raw.Send(rmtp.Down, hello)
		raw.Send(rmtp.Down, data)
		waitfor.True(t, 5*time.Second, "replays counted", func() bool {
			s := e.Stats()
			return s.Replays > before.Replays && s.Duplicates > before.Duplicates
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if m, err := e.Receive(ctx); err == nil {
			t.Fatalf("replayed message delivered again: %+v", m)
		}
	})
	t.Run("unauthenticated datagram on a secure endpoint", func(t *testing.T) {
		b, _ := wire.AppendPacket(nil, wire.Header{Type: wire.TypeHello, Node: 5, Incarnation: 1, MsgID: 1},
			wire.AppendHello(nil, &wire.Hello{Role: wire.RoleManager}))
		var none *rmtp.Keyring
		none.Sign(b)
		before := mgr.Stats().AuthFailures
		raw.Send(rmtp.Down, b)
		waitfor.True(t, 5*time.Second, "counted", func() bool { return mgr.Stats().AuthFailures > before })
		if peerState(mgr, 5) != 0 {
			t.Error("unauthenticated node became a peer")
		}
	})
}

func TestNoKeyRefused(t *testing.T) {
	n := memnet.New(0).Attach(false, memnet.Faults{}, 1)
	defer n.Close()
	_, err := rmtp.New(n, rmtp.Config{Node: 1, Role: rmtp.Engine})
	if !errors.Is(err, rmtp.ErrConfig) {
		t.Fatalf("got %v, want ErrConfig", err)
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1 := "0101010101010101010101010101010101010101010101010101010101010101"
	k2 := "0202020202020202020202020202020202020202020202020202020202020202"
	good := write("good", "# group key\n1 "+k1+"\n\n2 "+k2+"\n", 0o600)
	kr, err := rmtp.LoadKeyFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if kr.Current() != 2 || len(kr.IDs()) != 2 {
		t.Fatalf("current %d ids %v", kr.Current(), kr.IDs())
	}
	for name, c := range map[string]struct {
		text string
		mode os.FileMode
	}{
		"group-readable": {"1 " + k1 + "\n", 0o640},
		"world-readable": {"1 " + k1 + "\n", 0o604},
		"empty":          {"# nothing\n", 0o600},
		"short key":      {"1 0102\n", 0o600},
		"id 0":           {"0 " + k1 + "\n", 0o600},
		"not hex":        {"1 zz" + k1[2:] + "\n", 0o600},
		"duplicate id":   {"1 " + k1 + "\n1 " + k2 + "\n", 0o600},
		"three fields":   {"1 " + k1 + " x\n", 0o600},
	} {
		if _, err := rmtp.LoadKeyFile(write(name, c.text, c.mode)); !errors.Is(err, rmtp.ErrKeyFile) {
			t.Errorf("%s: got %v, want ErrKeyFile", name, err)
		}
	}
	if _, err := rmtp.LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, rmtp.ErrKeyFile) {
		t.Errorf("missing file: %v", err)
	}
}
