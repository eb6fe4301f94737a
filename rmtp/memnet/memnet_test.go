package memnet

import (
	"errors"
	"testing"

	"github.com/smsnmpd/smsnmpd/rmtp"
)

func TestGroupsFaultsAndClose(t *testing.T) {
	n := New(0)
	mgr := n.Attach(true, Faults{}, 1)
	eng := n.Attach(false, Faults{Loss: 0.5, Dup: 0.2}, 2)
	const sent = 2000
	for i := range sent {
		if err := mgr.Send(rmtp.Down, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := mgr.Send(rmtp.Up, []byte("managers only")); err != nil {
		t.Fatal(err)
	}
	s := eng.Stats()
	if s.Dropped < sent/3 || s.Dropped > sent*2/3 || s.Duplicated == 0 {
		t.Errorf("50%% loss, 20%% dup gave %+v", s)
	}
	if s.Delivered != sent-s.Dropped+s.Duplicated {
		t.Errorf("delivered %d, want %d", s.Delivered, sent-s.Dropped+s.Duplicated)
	}
	for range s.Delivered {
		d, err := eng.Recv()
		if err != nil || len(d.Data) != 1 || d.From != mgr.LocalAddr() {
			t.Fatalf("recv %v %v", d, err)
		}
	}
	if got := mgr.Stats().Delivered; got != sent+1 {
		t.Errorf("sender's loopback copies: %d, want %d (the up datagram included)", got, sent+1)
	}
	eng.Close()
	if _, err := eng.Recv(); !errors.Is(err, rmtp.ErrClosed) {
		t.Errorf("recv after close: %v", err)
	}
	if err := eng.Send(rmtp.Down, []byte("x")); !errors.Is(err, rmtp.ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
	mgr.Close()
}
