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

func (f *socketFlags) path() (string, error) {
	if f.socket != "" {
		a, err := config.ParseAddr(f.socket)
		if err != nil || a.Network() != "unix" {
			return "", fmt.Errorf("-socket %q: want unix:/path", f.socket)
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

// call sends one command to the node and decodes its result into out; it
// reports a failure on stderr and returns the exit code.
func (f *socketFlags) call(stderr io.Writer, cmd string, args, out any) int {
	path, err := f.path()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), control.IOTimeout)
	defer cancel()
	if err := control.Call(ctx, path, cmd, args, out); err != nil {
		fmt.Fprintf(stderr, "smsnmpd %s: %v\n", cmd, err)
		return exitFail
	}
	return exitOK
}

// publish sends entries (from the arguments or -from FILE, one key per
// line) to an SE in batches.
func publish(args []string, stdout, stderr io.Writer, remove bool) int {
	name := cmdPublish
	if remove {
		name = cmdUnpublish
	}
	fs := newFlagSet(name, stderr)
	var sf socketFlags
	sf.register(fs)
	engine := fs.Uint("engine", 0, "which SE of a multi-engine process (the demo) by node id; 0 = the only one")
	from := fs.String("from", "", "read keys from `file`, one per line (- for standard input)")
	var size uint64
	var ttl time.Duration
	if !remove {
		fs.Uint64Var(&size, "size", 0, "content size in `bytes`")
		fs.DurationVar(&ttl, "ttl", 0, "expire the entry after this `duration` (0 = never)")
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	keys := fs.Args()
	if *from != "" {
		more, err := readKeys(*from)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		keys = append(keys, more...)
	}
	if len(keys) == 0 {
		fmt.Fprintf(stderr, "usage: smsnmpd %s [flags] KEY... (smsnmpd %s -h)\n", name, name)
		return exitUsage
	}
	path, err := sf.path()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	total := 0
	for start := 0; start < len(keys); start += maxPublishBatch {
		batch := keys[start:min(start+maxPublishBatch, len(keys))]
		a := publishArgs{Engine: uint32(*engine)}
		if remove {
			a.Keys = batch
		} else {
			for _, k := range batch {
				a.Entries = append(a.Entries, publishEntry{Key: k, Size: size, TTL: ttl})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), control.IOTimeout)
		var res publishResult
		err := control.Call(ctx, path, name, a, &res)
		cancel()
		total += res.Accepted
		if err != nil {
			fmt.Fprintf(stderr, "smsnmpd %s: %v (%d accepted)\n", name, err, total)
			return exitFail
		}
	}
	verb := "published"
	if remove {
		verb = "unpublished"
	}
	fmt.Fprintf(stdout, "%s %d entries\n", verb, total)
	return exitOK
}

// maxKeysFile bounds what -from reads.
const maxKeysFile = 64 << 20

func readKeys(name string) ([]string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var keys []string
	sc := bufio.NewScanner(io.LimitReader(r, maxKeysFile))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	return keys, sc.Err()
}

// lookup asks a manager where a key is.
func lookup(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(cmdLookup, stderr)
	var sf socketFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print the whole answer (hits and the path taken) as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: smsnmpd lookup [-json] [-socket unix:/path | -config FILE] KEY")
		return exitUsage
	}
	var res lookupResult
	if code := sf.call(stderr, cmdLookup, lookupArgs{Key: fs.Arg(0)}, &res); code != exitOK {
		return code
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printHits(stdout, res)
	}
	if len(res.Hits) == 0 {
		return exitFail // a miss is a failure for scripts: `smsnmpd lookup K && ...`
	}
	return exitOK
}

func printHits(w io.Writer, res lookupResult) {
	if len(res.Hits) == 0 {
		fmt.Fprintf(w, "%s: not found\n", res.Key)
		return
	}
	fmt.Fprintf(w, "%s: %d location(s), nearest first\n", res.Key, len(res.Hits))
	for _, h := range res.Hits {
		fmt.Fprintf(w, "  %s  size %d  version %s  %d hop(s)%s\n", where(h.Location), h.Size, h.Version, h.Hops, downMark(h))
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
	fs := newFlagSet(cmdDigest, stderr)
	var sf socketFlags
	sf.register(fs)
	engine := fs.Uint("engine", 0, "which SE of a multi-engine process (the demo); 0 = the node itself")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	var res digestOut
	if code := sf.call(stderr, cmdDigest, publishArgs{Engine: uint32(*engine)}, &res); code != exitOK {
		return code
	}
	fmt.Fprintf(stdout, "%s %d entries\n", res.Digest, res.Entries)
	return exitOK
}
