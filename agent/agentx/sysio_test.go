//go:build linux

package agentx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A write larger than the socket buffers goes out whole (partial writes
// and waits for writability), and reads see every byte, then EOF.
func TestSysConnLargeWriteAndEOF(t *testing.T) {
	client, server := tcpPair(t)
	w, r := newSysConn(client), newSysConn(server)
	if _, ok := w.(*sysConn); !ok {
		t.Fatalf("newSysConn(%T) = %T, want *sysConn", client, w)
	}
	msg := make([]byte, 16<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := w.Write(msg)
		if err == nil && n != len(msg) {
			err = io.ErrShortWrite
		}
		client.Close()
		errc <- err
	}()
	server.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(r) // small reads: bufio-sized chunks
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(msg))
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after EOF: %d, %v", n, err)
	}
}

// A write to a peer that stops reading ends at the write deadline, and a
// read blocked on the socket returns when the connection is closed.
func TestSysConnDeadlineAndClose(t *testing.T) {
	client, server := tcpPair(t)
	w := newSysConn(client)
	client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := w.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a stalled peer: %v, want a deadline error", err)
	}

	r := newSysConn(server)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // usually the reader is blocked by now; either way Close must end it
	server.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a blocked read did not return after Close")
	}
}
