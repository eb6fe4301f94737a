package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/control"
)

// socketFlags are how a CLI command finds the node: an explicit socket, or
// the control.socket of a configuration file.
type socketFlags struct {
	socket, config string
}

func (f *socketFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.socket, "socket", "", "the node's control `socket` (unix:/path); default: control.socket of -config")
	fs.StringVar(&f.config, "config", defaultConfigPath, "configuration `file` naming the control socket")
}

// usageError is a bad command line (exitUsage); other errors of path are
// the configuration's (exitConfig).
type usageError struct{ error }

// path is the socket to call; its error is a usageError or a
// configuration error, which pathExit tells apart.
func (f *socketFlags) path() (string, error) {
	if f.socket != "" {
		a, err := config.ParseAddr(f.socket)
		if err != nil || a.Network() != "unix" {
			return "", usageError{fmt.Errorf("-socket %q: want unix:/path", f.socket)}
		}
		return a.Address(), nil
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		if errors.Is(err, config.ErrRead) && f.config == defaultConfigPath {
			return config.Default().Control.Socket.Address(), nil
		}
		return "", err
	}
	if cfg.Control.Socket.IsZero() {
		return "", fmt.Errorf("%s: control.socket is empty: the node has no control socket", f.config)
	}
	return cfg.Control.Socket.Address(), nil
}

// pathExit is the exit code of an error of socketFlags.path.
func pathExit(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitConfig
}

// callExit is the exit code of an error of control.Call: an untrusted
// socket is refused before anything is sent, anything else failed at or
// on the way to the node.
func callExit(err error) int {
	if errors.Is(err, control.ErrUntrusted) {
		return exitUntrusted
	}
	return exitFail
}

// call sends one command to the node and decodes its result into out; it
// reports a failure on stderr and returns the exit code.
func (f *socketFlags) call(stderr io.Writer, cmd string, args, out any) int {
	path, err := f.path()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return pathExit(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), control.IOTimeout)
	defer cancel()
	if err := control.Call(ctx, path, cmd, args, out); err != nil {
		fmt.Fprintf(stderr, "smsnmpd %s: %v\n", cmd, err)
		return callExit(err)
	}
	return exitOK
}

// publish sends entries (from the arguments or -from FILE, one key per
// line) to an SE in batches. The SE queues them and sends them on to the
// farm's managers at their rate (directory.publish_rate), so what the
// command reports is both: how many it queued, and how many of those every
// manager accepted so far; -wait waits until that is all of them.
func publish(args []string, stdout, stderr io.Writer, remove bool) int {
	name := control.CmdPublish
	if remove {
		name = control.CmdUnpublish
	}
	fs := newFlagSet(name, stderr)
	var sf socketFlags
	sf.register(fs)
	engine := fs.Uint("engine", 0, "which SE of a multi-engine process (the demo) by node id; 0 = the only one")
	from := fs.String("from", "", "read keys from `file`, one per line (- for standard input)")
	wait := fs.Bool("wait", false, "wait until every manager accepted everything this command queued (exit 1 if -timeout passes first)")
	timeout := fs.Duration("timeout", 10*time.Minute, "with -wait: give up after this `duration` (the SE keeps sending)")
	var size uint64
	var ttl time.Duration
	if !remove {
		fs.Uint64Var(&size, "size", 0, "content size in `bytes`")
		fs.DurationVar(&ttl, "ttl", 0, "expire the entry after this `duration` (0 = never)")
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if ttl < 0 {
		// A negative TTL would read as "never expires" on the node.
		fmt.Fprintf(stderr, "smsnmpd %s: -ttl %v is negative: give how long the entry lives, or 0 for never\n", name, ttl)
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "smsnmpd %s: -timeout must be positive\n", name)
		return exitUsage
	}
	path, err := sf.path()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return pathExit(err)
	}
	status := func(a control.PublishStatusArgs) (control.PublishStatus, error) {
		a.Engine = uint32(*engine)
		ctx, cancel := context.WithTimeout(context.Background(), control.IOTimeout)
		defer cancel()
		var st control.PublishStatus
		err := control.Call(ctx, path, control.CmdPublishStatus, a, &st)
		return st, err
	}
	before, err := status(control.PublishStatusArgs{})
	if err != nil {
		fmt.Fprintf(stderr, "smsnmpd %s: %v\n", name, err)
		return callExit(err)
	}
	total := 0
	var seqFrom, seqTo uint64
	send := func(batch []string) error {
		for len(batch) > 0 {
			a := control.PublishArgs{Engine: uint32(*engine)}
			if remove {
				a.Keys = batch
			} else {
				for _, k := range batch {
					a.Entries = append(a.Entries, control.PublishEntry{Key: k, Size: size, TTL: ttl})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), control.IOTimeout)
			var res control.PublishResult
			err := control.Call(ctx, path, name, a, &res)
			cancel()
			total += res.Queued
			if res.Queued > 0 {
				if seqFrom == 0 {
					seqFrom = res.From
				}
				seqTo = res.To
			}
			if err != nil {
				return err
			}
			if !res.Full { // a full queue took only part: the rest again
				return nil
			}
			batch = batch[min(res.Queued, len(batch)):]
		}
		return nil
	}
	keys := fs.Args()
	if len(keys) == 0 && *from == "" {
		fmt.Fprintf(stderr, "usage: smsnmpd %s [flags] KEY... (smsnmpd %s -h)\n", name, name)
		return exitUsage
	}
	for start := 0; start < len(keys); start += control.MaxPublishBatch {
		if err := send(keys[start:min(start+control.MaxPublishBatch, len(keys))]); err != nil {
			fmt.Fprintf(stderr, "smsnmpd %s: %v (%d queued)\n", name, err, total)
			return callExit(err)
		}
	}
	if *from != "" {
		if err := streamKeys(*from, send); err != nil {
			fmt.Fprintf(stderr, "smsnmpd %s: %v (%d queued)\n", name, err, total)
			if errors.Is(err, errKeysInput) {
				return exitUsage
			}
			return callExit(err)
		}
	}
	verb := "published"
	if remove {
		verb = "unpublished"
	}
	q := control.PublishStatusArgs{From: seqFrom, To: seqTo}
	began := time.Now()
	st, err := status(q)
	for poll := 5 * time.Millisecond; err == nil && *wait && st.Outstanding > 0 && time.Since(began) < *timeout; poll = min(2*poll, 100*time.Millisecond) {
		time.Sleep(max(0, min(poll, time.Until(began.Add(*timeout)))))
		st, err = status(q)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smsnmpd %s: %d queued, then: %v\n", name, total, err)
		return callExit(err)
	}
	rejected := int(min(st.Rejected-before.Rejected, uint64(total)))
	accepted := max(0, total-st.Outstanding-rejected)
	line := fmt.Sprintf("%s %d entries: %d queued, %d accepted by every manager", verb, total, total, accepted)
	switch {
	case st.Outstanding == 0 && len(st.Managers) > 0:
		line += fmt.Sprintf(" (%s)", managerList(st.Managers))
	case st.Outstanding > 0 && !*wait:
		line += fmt.Sprintf(" so far (the SE sends the rest at up to %s; -wait waits for them)", rateText(st.Rate))
	}
	if *wait {
		line += fmt.Sprintf(" in %v", time.Since(began).Round(time.Millisecond))
	}
	if rejected > 0 {
		line += fmt.Sprintf("; %d refused for good by a manager (see the SE's log)", rejected)
	}
	fmt.Fprintln(stdout, line)
	switch {
	case *wait && st.Outstanding > 0:
		fmt.Fprintf(stderr, "smsnmpd %s: %d of %d not yet accepted by every manager after %v; the SE keeps sending them\n", name, st.Outstanding, total, *timeout)
		return exitFail
	case *wait && rejected > 0:
		return exitFail
	}
	return exitOK
}

func managerList(ms []uint32) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = strconv.FormatUint(uint64(m), 10)
	}
	if len(ms) == 1 {
		return "manager " + parts[0]
	}
	return "managers " + strings.Join(parts, ", ")
}

func rateText(r float64) string {
	if r < 0 {
		return "the managers' pace"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + " per second"
}

// maxKeysFile bounds what -from reads.
const maxKeysFile = 64 << 20

// errKeysInput marks a failure to read -from (not to publish).
var errKeysInput = errors.New("reading keys")

// streamKeys reads keys, one per line ("#" comments and blank lines
// skipped), and hands them to send in batches of at most control.MaxPublishBatch:
// a batch goes when it is full, when the input pauses (a pipe feeding
// keys as content arrives is published as it goes, not at EOF), and at
// the end.
func streamKeys(name string, send func([]string) error) error {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("%w: %w", errKeysInput, err)
		}
		defer f.Close()
		r = f
	}
	lines := make(chan string, control.MaxPublishBatch)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(io.LimitReader(r, maxKeysFile))
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			k := strings.TrimSpace(sc.Text())
			if k == "" || strings.HasPrefix(k, "#") {
				continue
			}
			select {
			case lines <- k:
			case <-stop:
				return
			}
		}
		readErr <- sc.Err()
	}()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := send(batch)
		batch = nil
		return err
	}
	pause := time.NewTimer(time.Hour)
	defer pause.Stop()
	for {
		select {
		case k, ok := <-lines:
			if !ok {
				if err := flush(); err != nil {
					return err
				}
				if err := <-readErr; err != nil {
					return fmt.Errorf("%w: %w", errKeysInput, err)
				}
				return nil
			}
			batch = append(batch, k)
			if len(batch) == control.MaxPublishBatch {
				if err := flush(); err != nil {
					return err
				}
			}
			pause.Reset(streamPause)
		case <-pause.C:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// streamPause is how long the input may pause before the keys read so
// far are sent.
const streamPause = 20 * time.Millisecond

// lookup asks a manager where a key is.
func lookup(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(control.CmdLookup, stderr)
	var sf socketFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print the whole answer (hits, unresolved summaries and the path taken) as JSON")
	local := fs.Bool("local", false, "answer from this node's own directory only: no climbing, no summary resolved downward")
	timeout := fs.Duration("timeout", control.LookupTimeout, "bound a lookup across levels")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: smsnmpd lookup [-json] [-local] [-timeout D] [-socket unix:/path | -config FILE] KEY")
		return exitUsage
	}
	var res control.LookupResult
	a := control.LookupArgs{Key: fs.Arg(0), Local: *local, TimeoutMs: int(timeout.Milliseconds())}
	if code := sf.call(stderr, control.CmdLookup, a, &res); code != exitOK {
		return code
	}
	if res.Hits == nil {
		res.Hits = []directory.Hit{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printHits(stdout, res)
	}
	if len(res.Hits) == 0 {
		for _, s := range res.Path {
			if s.Error != "" {
				return exitPartial
			}
		}
		return exitFail // a miss is a failure for scripts: `smsnmpd lookup K && ...`
	}
	return exitOK
}

func printHits(w io.Writer, res control.LookupResult) {
	if len(res.Hits) == 0 {
		fmt.Fprintf(w, "%s: not found\n", res.Key)
	} else {
		fmt.Fprintf(w, "%s: %d location(s), nearest first\n", res.Key, len(res.Hits))
	}
	for _, h := range res.Hits {
		fmt.Fprintf(w, "  %s  size %d  version %s  %d hop(s)%s\n", where(h.Location), h.Size, h.Version, h.Hops, downMark(h))
	}
	for _, h := range res.Unresolved {
		fmt.Fprintf(w, "  somewhere in %s (not resolved further)\n", where(h.Location))
	}
	// The path only says more than the answer when the lookup left this
	// node or a level failed.
	if len(res.Path) > 1 || len(res.Path) == 1 && res.Path[0].Error != "" {
		fmt.Fprintln(w, "path:")
		for _, s := range res.Path {
			node := "?" // a level that did not answer: any of its managers
			if s.Node != 0 {
				node = strconv.FormatUint(uint64(s.Node), 10)
			}
			line := fmt.Sprintf("  %-6s level %d node %s: %d hit(s), %d summary(ies)", s.Via, s.Level, node, s.Hits, s.Summaries)
			if s.Error != "" {
				line += "  error: " + s.Error
			}
			fmt.Fprintln(w, line)
		}
	}
}

func where(l directory.Location) string {
	s := fmt.Sprintf("cdn %d / datacenter %d / farm %d", l.CDN, l.DataCenter, l.Farm)
	if l.Engine != 0 {
		s += fmt.Sprintf(" / se %d", l.Engine)
	}
	return s
}

func downMark(h directory.Hit) string {
	if h.Down {
		return "  (engine down)"
	}
	return ""
}

// digest prints the digest of the entries the node holds.
func digest(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(control.CmdDigest, stderr)
	var sf socketFlags
	sf.register(fs)
	engine := fs.Uint("engine", 0, "which SE of a multi-engine process (the demo); 0 = the node itself")
	unit := fs.String("unit", "", "a manager's records inside this unit only: CDN/DC/FARM/SE, 0 = any (e.g. 1/2/0/0)")
	asJSON := fs.Bool("json", false, "print {\"digest\", \"entries\"} as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	a := control.DigestArgs{Engine: uint32(*engine)}
	if *unit != "" {
		u, err := parseLocation(*unit)
		if err != nil {
			fmt.Fprintf(stderr, "smsnmpd digest: -unit: %v\n", err)
			return exitUsage
		}
		a.Unit = u
	}
	var res control.DigestResult
	if code := sf.call(stderr, control.CmdDigest, a, &res); code != exitOK {
		return code
	}
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(res)
		return exitOK
	}
	fmt.Fprintf(stdout, "%s %d entries\n", res.Digest, res.Entries)
	return exitOK
}

// parseLocation reads "CDN/DC/FARM/SE" (0 = any below).
func parseLocation(s string) (directory.Location, error) {
	var l directory.Location
	var extra string
	n, _ := fmt.Sscanf(s+" end", "%d/%d/%d/%d %s", &l.CDN, &l.DataCenter, &l.Farm, &l.Engine, &extra)
	if n != 5 || extra != "end" {
		return l, fmt.Errorf("want CDN/DC/FARM/SE such as 1/2/0/0, got %q", s)
	}
	return l, nil
}
