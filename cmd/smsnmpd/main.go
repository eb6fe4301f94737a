// Command smsnmpd runs one node of the service management tree: a service
// engine (role "se") or a service manager (role "manager", active or
// backup), or the whole demo farm in one process.
//
//	smsnmpd -config /etc/smsnmpd/smsnmpd.toml [-v]...
//	smsnmpd demo [--snmp udp:127.0.0.1:1161] [--agentx tcp:127.0.0.1:705]
//	smsnmpd check-config FILE
//	smsnmpd publish|unpublish [-socket unix:/path] KEY...
//	smsnmpd lookup [-json] KEY
//	smsnmpd status [-json]
//	smsnmpd engine-id [-config FILE]
//	smsnmpd manpage [-completion]
//	smsnmpd version
//
// This package is flags, configuration loading, signals and wiring: it
// loads and checks the configuration, builds the node (package node, which
// owns everything a running node does) and runs it until a signal, or
// starts the demo's nodes in one process. publish, unpublish, lookup,
// digest and status are clients of a running node's control socket
// (internal/control): their flags, and how they print what the node
// answers; engine-id reads the node's state directory; manpage prints
// smsnmpd(8) from this CLI's own help.
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

// Exit codes: one per class of failure, the same for every command
// (README "Exit codes", smsnmpd -h).
const (
	exitOK = 0
	// exitFail: at run time. The node failed after its configuration was
	// accepted (an address in use, a frontend that died); a command failed
	// at the node or found nothing listening; lookup found nothing and
	// every level answered (a miss is a failure for `lookup K && ...`).
	exitFail = 1
	// exitUsage: the command line (an unknown command or flag, a bad flag
	// value, a file named on it that cannot be read).
	exitUsage = 2
	// exitConfig: the configuration, or a file it names (the rmtp key
	// file: unreadable, malformed, or readable by group or others), or
	// the control.socket a CLI command reads from it. Nothing was started.
	exitConfig = 3
	// exitPartial: lookup found nothing, but a level did not answer, so
	// the miss is not certain (a partition, a manager down).
	exitPartial = 4
	// exitUntrusted: the control socket, or its directory, belongs to
	// another user than root or the caller (or its listener runs as one):
	// nothing was sent to it.
	exitUntrusted = 5
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
		case "engine-id":
			return engineID(args[1:], stdout, stderr)
		case cmdManpage:
			return manpage(args[1:], stdout, stderr)
		case "status":
			return status(args[1:], stdout, stderr)
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
  smsnmpd engine-id [-config FILE]     print the node's SNMPv3 engine ID (for snmptrapd's createUser -e)
  smsnmpd status [-json]               what the node running here reports: role, term, view, engines, links, events
  smsnmpd version                      print version and commit
  smsnmpd manpage [-completion]        print this manual page (roff), or the bash completion

exit codes (every command):
  0  success
  1  failure at run time: the node stopped on an error, a command failed at the node
     or nothing listens on its control socket; lookup: not found; publish -wait:
     not everything accepted by every manager within -timeout
  2  bad command line
  3  bad configuration, or a file it names (rmtp key file missing, malformed or
     readable by group/others): nothing was started
  4  lookup: not found, but a level did not answer (the miss is not certain)
  5  the control socket (or its directory, or its listener) belongs to another user
     than root or you: nothing was sent
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
