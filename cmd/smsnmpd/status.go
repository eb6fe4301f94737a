package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/control"
	"github.com/smsnmpd/smsnmpd/node"
)

// statusEvents is how many of the recent events the text form prints.
const statusEvents = 20

// status prints what the node running here reports of itself (its
// node.Snapshot): a summary, or with -json the whole snapshot as the node
// sent it.
func status(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(control.CmdStatus, stderr)
	var sf socketFlags
	sf.register(fs)
	engine := fs.Uint("engine", 0, "another node of a multi-node process (the demo's SEs) by node id; 0 = the node itself")
	asJSON := fs.Bool("json", false, "print the whole snapshot as JSON (every field, every event kept)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: smsnmpd status [-json] [-engine N] [-socket unix:/path | -config FILE]")
		return exitUsage
	}
	var raw json.RawMessage
	if code := sf.call(stderr, control.CmdStatus, control.StatusArgs{Engine: uint32(*engine)}, &raw); code != exitOK {
		return code
	}
	if *asJSON {
		// As sent: fields a newer node adds are printed too.
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			fmt.Fprintf(stderr, "smsnmpd status: %v\n", err)
			return exitFail
		}
		out.WriteByte('\n')
		_, _ = out.WriteTo(stdout)
		return exitOK
	}
	var s node.Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		fmt.Fprintf(stderr, "smsnmpd status: %v\n", err)
		return exitFail
	}
	printStatus(stdout, s)
	return exitOK
}

func printStatus(w io.Writer, s node.Snapshot) {
	fmt.Fprintf(w, "node %d", s.Node)
	if s.Name != "" {
		fmt.Fprintf(w, " (%s)", s.Name)
	}
	fmt.Fprintf(w, ": %s, level %d, %s", s.Role, s.Level, where(s.Location))
	if s.Version != "" {
		fmt.Fprintf(w, ", smsnmpd %s", s.Version)
	}
	fmt.Fprintf(w, ", up %v\n", s.Taken.Sub(s.Started).Round(time.Second))
	fmt.Fprintf(w, "view: term %d, owner %s, version %d, %d member(s)\n", s.View.Term, nodeName(s.View.Owner), s.View.Version, len(s.View.Members))
	if m := s.Manager; m != nil {
		line := "election: " + m.Election
		if m.Cause != "" {
			line += " (" + m.Cause + ")"
		}
		if m.Owner != 0 && m.Owner != s.Node {
			line += ", following " + nodeName(m.Owner)
		}
		if m.StaleTerm > s.Term {
			line += fmt.Sprintf(", fenced: the SEs obey term %d", m.StaleTerm)
		}
		fmt.Fprintln(w, line)
		f := m.Fanout
		fmt.Fprintf(w, "fan-out: %d transactions (%d partial), SETs failed at test %d, commit %d, undo %d; %d engine(s) to reconcile\n",
			f.Transactions, f.Partial, f.TestFailed, f.CommitFailed, f.UndoFailed, m.ReconcilesPending)
	}
	if e := s.Engine; e != nil {
		fmt.Fprintf(w, "engine: obeys term %d; %d requests, %d refused for a stale term, %d shed\n", e.ObeyedTerm, e.Requests, e.StaleTerm, e.Busy)
	}
	printPeers(w, "farm group", s.Farm)
	if len(s.Engines) > 0 {
		up := 0
		for _, e := range s.Engines {
			if e.State == "up" {
				up++
			}
		}
		fmt.Fprintf(w, "engines: %d (%d up)\n", len(s.Engines), up)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  id\tname\tstate\taddress\trtt\tload\trequests\tbytes out\tcontent\tlast status\t")
		for _, e := range s.Engines {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%v\t%.2f\t%d\t%d\t%d\t%s\t\n", e.ID, e.Name, e.State, e.Addr,
				time.Duration(e.RTTMicros)*time.Microsecond, e.Load, e.Requests, e.BytesOut, e.ContentCount, e.LastStatus)
		}
		tw.Flush()
	}
	if t := s.Subtree; t != nil {
		fmt.Fprintf(w, "below: %d engine(s) up, %d suspect, %d down; %d requests, %d bytes out, %d entries, load %.2f\n",
			t.Up, t.Suspect, t.Down, t.Requests, t.BytesOut, t.ContentCount, t.Load)
	}
	if p := s.Parent; p != nil {
		fmt.Fprintf(w, "parent link: %s, forward %s; queue %d, %d ops up, %d retries, %d overflows; forwarding %s\n",
			p.Mode, p.Policy, p.Forwarder.Pending, p.Forwarder.Ops, p.Forwarder.Retries, p.Forwarder.Overflows, onOff(p.Forwarder.Active))
		printPeers(w, "parent group", p.Link)
	}
	if d := s.Directory; d != nil {
		fmt.Fprintf(w, "directory: %d entries (cap %d), %d updates; refused %d ops over the rate, %d for good (%d episodes)\n",
			d.Entries, d.MaxEntries, d.Updates, d.Flow.RefusedOps, d.Flow.RejectedOps, d.Flow.RefusalEpisodes)
	}
	if p := s.Publisher; p != nil {
		rate := "no limit"
		if p.Rate >= 0 {
			rate = strconv.FormatFloat(p.Rate, 'f', -1, 64) + "/s"
		}
		fmt.Fprintf(w, "publisher: %d held, %d not yet accepted by every manager, %d refused, %d rejected; rate %s", p.Held, p.Pending, p.Refused, p.Rejected, rate)
		if len(p.Managers) > 0 {
			fmt.Fprintf(w, "; %s", managerList(p.Managers))
		}
		fmt.Fprintln(w)
	}
	t := s.Farm.Transport
	fmt.Fprintf(w, "transport: %d sent, %d received, %d retransmits, %d NAKs sent, %d auth failures, %d aborts\n",
		t.Sent, t.Received, t.Retransmits, t.NaksSent, t.AuthFailures, t.Aborts)
	fmt.Fprintf(w, "process: pid %d, %d goroutines, heap %d KiB\n", s.Process.PID, s.Process.Goroutines, s.Process.HeapBytes>>10)
	ev := s.Events
	if len(ev) > statusEvents {
		ev = ev[len(ev)-statusEvents:]
	}
	fmt.Fprintf(w, "recent events (%d of %d; -json for every one kept):\n", len(ev), s.EventsTotal)
	for _, e := range ev {
		fmt.Fprintf(w, "  %s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), eventText(e))
	}
}

func printPeers(w io.Writer, name string, l node.Link) {
	var parts []string
	for _, p := range l.Peers {
		s := fmt.Sprintf("%d %s %s", p.Node, p.Role, p.State)
		if p.Active {
			s += " active"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		parts = []string{"nobody heard"}
	}
	fmt.Fprintf(w, "%s: %s\n", name, strings.Join(parts, ", "))
}

func eventText(e node.Event) string {
	s := e.Kind
	if e.Engine != 0 {
		s += fmt.Sprintf(" %d", e.Engine)
	}
	if e.Role != "" {
		s += " " + e.Role
	}
	if e.Cause != "" {
		s += " (" + e.Cause + ")"
	}
	if e.Term != 0 {
		s += fmt.Sprintf(" term %d", e.Term)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func nodeName(id uint32) string {
	if id == 0 {
		return "none"
	}
	return strconv.FormatUint(uint64(id), 10)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
