// Package control is the local control socket of an smsnmpd node: the way
// `smsnmpd publish`, `unpublish` and `lookup` reach the running SE or
// manager on the same host. It owns the socket's life (create with safe
// permissions, remove on close), the framing (one JSON object per line,
// bounded), the client, and the commands' names, arguments and results
// (commands.go: the protocol between the CLI and the node); what a
// command does is the caller's Handler (package node executes them).
//
// The socket is a unix socket, mode 0660, so access is the file system's:
// root and the service's group. Nothing here listens on the network. The
// client trusts only a socket root, the caller or a service given its
// directory by root could have created, and only a listener running as
// one of them (CheckSocket, ErrUntrusted): a socket another local user
// put first at the path would otherwise answer for the node.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Bounds: a request or a response is one line of JSON.
const (
	MaxRequest   = 64 << 10
	MaxResponse  = 16 << 20 // a lookup --json of many locations
	IOTimeout    = 10 * time.Second
	maxConns     = 32
	socketPerm   = 0o660
	dirPerm      = 0o750
	maxArgsBytes = MaxRequest
)

// Errors.
var (
	// ErrNotRunning means nothing listens on the socket: no node runs here,
	// or it runs without a control socket.
	ErrNotRunning = errors.New("control: no smsnmpd is listening on the control socket")
	// ErrUnknownCommand is returned by a Handler for a command it lacks.
	ErrUnknownCommand = errors.New("control: unknown command")
	// ErrTooLarge reports a request or response over its bound.
	ErrTooLarge = errors.New("control: message too large")
)

// Request is one command.
type Request struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Response answers a Request: Result on success, Error otherwise.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Handler executes commands. It returns a JSON-encodable result.
type Handler func(ctx context.Context, command string, args json.RawMessage) (any, error)

// Server serves a Handler on a unix socket.
type Server struct {
	path string
	ln   net.Listener
	h    Handler
	log  logrus.FieldLogger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
}

// Listen creates the socket at path (its directory too, mode 0750),
// replacing a stale socket left by a crashed node but refusing to take over
// one a live node still answers on.
func Listen(path string, h Handler, log logrus.FieldLogger) (*Server, error) {
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	if err := os.MkdirAll(dirOf(path), dirPerm); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another smsnmpd is listening on it", path)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		_ = os.Remove(path) // stale: its node is gone
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, socketPerm); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{path: path, ln: ln, h: h, log: log, ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxConns)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}

// Close stops serving, waits for commands in progress and removes the
// socket.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	_ = os.Remove(s.path)
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		select {
		case s.sem <- struct{}{}:
		default:
			c.Close() // at capacity: a client retries
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serve(c)
		}()
	}
}

// serve answers one request per connection.
func (s *Server) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(IOTimeout))
	var resp Response
	req, err := readLine[Request](bufio.NewReaderSize(c, 4096), MaxRequest)
	if err != nil {
		resp.Error = err.Error()
	} else {
		ctx, cancel := context.WithTimeout(s.ctx, IOTimeout)
		res, herr := s.h(ctx, req.Command, req.Args)
		cancel()
		if herr != nil {
			resp.Error = herr.Error()
		} else if b, merr := json.Marshal(res); merr != nil {
			resp.Error = "encoding result: " + merr.Error()
		} else {
			resp.Result = b
		}
		s.log.WithFields(logrus.Fields{"command": req.Command, "ok": herr == nil}).Debug("control command")
	}
	b, _ := json.Marshal(resp)
	if len(b) > MaxResponse {
		b, _ = json.Marshal(Response{Error: ErrTooLarge.Error()})
	}
	_, _ = c.Write(append(b, '\n'))
}

// readLine reads one newline-terminated JSON value of at most max bytes.
func readLine[T any](r *bufio.Reader, max int) (T, error) {
	var v T
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return v, fmt.Errorf("%w: over %d bytes", ErrTooLarge, max)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return v, fmt.Errorf("control: reading: %w", err)
		}
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return v, fmt.Errorf("control: malformed message: %w", err)
	}
	return v, nil
}

// Call sends one command to the node listening at path and decodes its
// result into out (which may be nil). It refuses (ErrUntrusted, nothing
// sent) a socket that CheckSocket does not trust, or whose listening
// process runs as another user than root, the caller or the socket's
// owner.
func Call(ctx context.Context, path, command string, args, out any) error {
	real, owner, err := CheckSocket(path)
	if err != nil {
		return err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", real)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w (%s): is the node running, with control.socket set?", ErrNotRunning, path)
		}
		return fmt.Errorf("control: %w", err)
	}
	defer c.Close()
	if err := checkPeer(c, owner); err != nil {
		return err
	}
	deadline := time.Now().Add(IOTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	req := Request{Command: command}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("control: encoding arguments: %w", err)
		}
		if len(b) > maxArgsBytes {
			return fmt.Errorf("%w: arguments of %d bytes", ErrTooLarge, len(b))
		}
		req.Args = b
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("control: sending: %w", err)
	}
	resp, err := readLine[Response](bufio.NewReaderSize(c, 64<<10), MaxResponse)
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return &RemoteError{Command: command, Message: resp.Error}
	}
	if out != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("control: decoding result: %w", err)
		}
	}
	return nil
}

// RemoteError is a command the node refused or failed.
type RemoteError struct {
	Command, Message string
}

func (e *RemoteError) Error() string { return e.Command + ": " + e.Message }
