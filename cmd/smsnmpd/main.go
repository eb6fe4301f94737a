// Command smsnmpd runs one node of the service management tree: a service
// engine (role "se") or a service manager (role "manager", active or
// backup), or the whole demo farm in one process.
//
//	smsnmpd -config /etc/smsnmpd/smsnmpd.toml [-v]...
//	smsnmpd demo [--snmp udp:127.0.0.1:1161] [--agentx tcp:127.0.0.1:705]
//	smsnmpd check-config FILE
//	smsnmpd publish|unpublish [-socket unix:/path] KEY...
//	smsnmpd lookup [-json] KEY
//	smsnmpd version
//
// This package only parses flags, loads the configuration, wires the
// packages together and handles signals; the work is done elsewhere.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
)

// Set at build time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure
	exitUsage  = 2 // bad command line
	exitConfig = 3 // bad configuration: nothing was started
	// exitPartial: lookup found nothing, but a level did not answer, so
	// the miss is not certain (a partition, a manager down).
	exitPartial = 4
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			fmt.Fprintf(stdout, "smsnmpd %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return exitOK
		case "check-config":
			return checkConfig(args[1:], stdout, stderr)
		case "demo":
			return demo(args[1:], stdout, stderr)
		case "publish":
			return publish(args[1:], stdout, stderr, false)
		case "unpublish":
			return publish(args[1:], stdout, stderr, true)
		case "lookup":
			return lookup(args[1:], stdout, stderr)
		case "digest":
			return digest(args[1:], stdout, stderr)
		case "help", "-h", "-help", "--help":
			usage(stdout)
			return exitOK
		}
		if args[0] != "" && args[0][0] != '-' {
			fmt.Fprintf(stderr, "smsnmpd: unknown command %q\n\n", args[0])
			usage(stderr)
			return exitUsage
		}
	}
	return serve(args, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  smsnmpd [-config FILE] [-v]...       run the node FILE describes (default /etc/smsnmpd/smsnmpd.toml)
  smsnmpd demo [flags]                 run a demo node on loopback (smsnmpd demo -h)
  smsnmpd check-config FILE            validate FILE and exit (0 = valid)
  smsnmpd publish [flags] KEY...       publish content on the SE running here (-h for flags)
  smsnmpd unpublish [flags] KEY...     remove it again
  smsnmpd lookup [-json] KEY           where is KEY? asks the manager running here
  smsnmpd digest                       digest of the entries held (SEs' digests add up to their manager's)
  smsnmpd version                      print version and commit
`)
}

// verbosity is a flag that counts its occurrences: -v -v raises the log
// level two steps; -v=3 sets three.
type verbosity int

func (v *verbosity) String() string   { return strconv.Itoa(int(*v)) }
func (v *verbosity) IsBoolFlag() bool { return true }
func (v *verbosity) Set(s string) error {
	if s == "true" {
		*v++
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a count, e.g. -v or -v=2")
	}
	*v = verbosity(n)
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
