package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// The manual page (smsnmpd(8)) and the bash completion are made from the
// CLI's own help when the package is built (make deb): the synopsis and
// the commands from usage(), each command's options from what its -h
// prints. A command or flag added to the CLI appears in both without
// anyone editing them, and neither can describe a flag that does not
// exist.

// usageLine is one line of usage(): "smsnmpd demo [flags]   what it does".
type usageLine struct {
	command  string // "" for the node itself (no command word)
	synopsis string // "smsnmpd demo [flags]"
	summary  string
}

// flagHelp is one option as the flag package prints it under -h.
type flagHelp struct {
	name string // without the dash
	arg  string // the value's placeholder ("file", "duration"), "" for a boolean
	text string
}

// commandHelp is a command with its options.
type commandHelp struct {
	usageLine
	flags []flagHelp
}

// parseUsage reads usage()'s lines: two spaces, the synopsis, then at
// least two spaces before the summary.
func parseUsage() []usageLine {
	var b bytes.Buffer
	usage(&b)
	var out []usageLine
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.HasPrefix(line, "  smsnmpd") {
			continue
		}
		line = strings.TrimSpace(line)
		syn, sum, _ := strings.Cut(line, "   ")
		u := usageLine{synopsis: strings.TrimSpace(syn), summary: strings.TrimSpace(sum)}
		if f := strings.Fields(u.synopsis); len(f) > 1 && !strings.HasPrefix(f[1], "-") && !strings.HasPrefix(f[1], "[") {
			u.command = f[1]
		}
		out = append(out, u)
	}
	return out
}

// parseExitCodes reads the "exit codes" part of usage(): a code, then its
// meaning, continued on indented lines.
func parseExitCodes() [][2]string {
	var b bytes.Buffer
	usage(&b)
	_, rest, ok := strings.Cut(b.String(), "\nexit codes")
	if !ok {
		return nil
	}
	var out [][2]string
	for _, line := range strings.Split(rest, "\n")[1:] {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case len(f[0]) == 1 && f[0][0] >= '0' && f[0][0] <= '9' && strings.HasPrefix(line, "  "+f[0]+" "):
			out = append(out, [2]string{f[0], strings.Join(f[1:], " ")})
		case len(out) > 0:
			out[len(out)-1][1] += " " + strings.Join(f, " ")
		}
	}
	return out
}

// commandFlags runs `smsnmpd COMMAND -h` and parses the options it lists
// (none for a command without a flag set).
func commandFlags(command string) []flagHelp {
	var stdout, stderr bytes.Buffer
	if command == "" {
		serve([]string{"-h"}, &stderr)
	} else {
		run([]string{command, "-h"}, &stdout, &stderr)
	}
	return parseFlagHelp(stderr.String())
}

// parseFlagHelp reads flag.PrintDefaults' format:
//
//	-name placeholder
//	  	text
//	-v	text of a boolean with a one-letter name
func parseFlagHelp(s string) []flagHelp {
	if !strings.HasPrefix(s, "Usage of ") {
		return nil
	}
	var out []flagHelp
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			head, text, _ := strings.Cut(strings.TrimPrefix(line, "  -"), "\t")
			name, arg, _ := strings.Cut(head, " ")
			out = append(out, flagHelp{name: name, arg: strings.TrimSpace(arg), text: strings.TrimSpace(text)})
		case strings.HasPrefix(line, "    \t") && len(out) > 0:
			f := &out[len(out)-1]
			f.text = strings.TrimSpace(f.text + " " + strings.TrimSpace(line))
		}
	}
	return out
}

// commands is every command of usage() with its options; commands with
// nothing of their own (help, version) list none.
func commands() []commandHelp {
	var out []commandHelp
	for _, u := range parseUsage() {
		c := commandHelp{usageLine: u}
		switch u.command {
		case "version", "help":
		default:
			c.flags = commandFlags(u.command)
		}
		out = append(out, c)
	}
	return out
}

const cmdManpage = "manpage"

// manpage prints smsnmpd(8) in roff, or with -completion the bash
// completion script.
func manpage(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(cmdManpage, stderr)
	date := fs.String("date", "", "the page's date (YYYY-MM-DD); default: $SOURCE_DATE_EPOCH, else today")
	bash := fs.Bool("completion", false, "print the bash completion script instead")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: smsnmpd manpage [-date YYYY-MM-DD] [-completion]")
		return exitUsage
	}
	if *bash {
		writeCompletion(stdout, commands())
		return exitOK
	}
	d := *date
	if d == "" {
		t := time.Now().UTC()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
				t = time.Unix(sec, 0).UTC()
			}
		}
		d = t.Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, d); err != nil {
		fmt.Fprintf(stderr, "smsnmpd manpage: -date %q: want YYYY-MM-DD\n", d)
		return exitUsage
	}
	writeManpage(stdout, commands(), d)
	return exitOK
}

// roff escapes text for a roff line: backslashes, and a line that would
// start with a control character.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffText is roff for running text: hyphens in words stay hyphens, only
// the option dashes become minus signs.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	words := strings.Split(s, " ")
	for i, w := range words {
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "(-") || strings.HasPrefix(w, "[-") {
			words[i] = strings.ReplaceAll(w, "-", `\-`)
		}
	}
	s = strings.Join(words, " ")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// synopsis renders "smsnmpd demo [flags]" on one line, the command in
// bold and its arguments in italics (a .TP tag is one line).
func synopsis(u usageLine) string {
	f := strings.Fields(u.synopsis)
	b := []string{`\fBsmsnmpd\fR`}
	for _, w := range f[1:] {
		if w == u.command {
			b = append(b, `\fB`+roff(w)+`\fR`)
			continue
		}
		b = append(b, `\fI`+roff(w)+`\fR`)
	}
	line := strings.Join(b, " ")
	return line + "\n"
}

func writeManpage(w io.Writer, cmds []commandHelp, date string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p(".\\\" Generated by `smsnmpd manpage` from the command's own help; do not edit.\n")
	p(".TH SMSNMPD 8 %q %q \"System Administration\"\n", date, "smsnmpd "+version)
	p(".SH NAME\nsmsnmpd \\- hierarchical SNMP service management of content delivery server farms\n")
	p(".SH SYNOPSIS\n")
	for i, c := range cmds {
		if i > 0 {
			p(".br\n")
		}
		p("%s", synopsis(c.usageLine))
	}
	p(".SH DESCRIPTION\n")
	for i, para := range manDescription {
		if i > 0 {
			p(".PP\n")
		}
		p("%s\n", roffText(para))
	}
	p(".SH COMMANDS\n")
	for _, c := range cmds {
		p(".TP\n%s", synopsis(c.usageLine))
		p("%s\n", roffText(c.summary))
		if len(c.flags) == 0 {
			continue
		}
		p(".RS\n")
		for _, f := range c.flags {
			p(".TP\n\\fB\\-%s\\fR", roff(f.name))
			if f.arg != "" {
				p(" \\fI%s\\fR", roff(f.arg))
			}
			p("\n%s\n", roffText(f.text))
		}
		p(".RE\n")
	}
	p(".SH FILES\n")
	for _, f := range manFiles {
		p(".TP\n.I %s\n%s\n", roff(f[0]), roffText(f[1]))
	}
	p(".SH SIGNALS\n")
	for _, s := range manSignals {
		p(".TP\n.B %s\n%s\n", s[0], roffText(s[1]))
	}
	p(".SH \"EXIT STATUS\"\n")
	for _, c := range parseExitCodes() {
		p(".TP\n.B %s\n%s\n", c[0], roffText(upperFirst(c[1])+"."))
	}
	p(".SH \"SEE ALSO\"\n")
	p(".BR snmpd (8),\n.BR snmpd.conf (5),\n.BR snmpwalk (1),\n.BR snmptable (1),\n.BR systemctl (1)\n")
	p(".PP\nThe MIB, SERVICE\\-MANAGER\\-MIB, is in /usr/share/snmp/mibs; the Zabbix template and the\nsnmp_exporter module are in /usr/share/smsnmpd; README.md in /usr/share/doc/smsnmpd says\nwhat is built and why.\n")
}

var manDescription = []string{
	"smsnmpd lets one SNMP request manage a whole farm of cache servers. One binary plays every node of a content delivery network's management tree: a service engine (role se, a caching proxy of a server farm), or a service manager of level 1 (a farm), 2 (a data center), 3 (a CDN) or 4 (several peering CDNs), active or backup, elected among the managers of a level.",
	"A manager is an SNMP agent: an AgentX subagent of net-snmp's snmpd (agentx.socket), or a built-in SNMPv2c agent (snmp.listen). It exposes SERVICE-MANAGER-MIB: its engines (smEngineTable), totals of everything below it (smSubtree), and farm operations (smAggregate, smEngineProxy, smAllEngines), each one multicast transaction to every engine over its own reliable multicast transport, rmtp, whose group key is the file rmtp.key_file.",
	"The configuration is TOML, read strictly: an unknown key, a wrong type or an invalid value is an error naming the file, the line and the key, and nothing starts. check-config says the same without starting anything; /usr/share/doc/smsnmpd/examples has commented examples of every role.",
}

var manFiles = [][2]string{
	{"/etc/smsnmpd/smsnmpd.toml", "The node's configuration (mode 0640, group smsnmpd)."},
	{"/etc/smsnmpd/rmtp.key", "The group key of rmtp (the default rmtp.key_file): lines of a key id and 32 bytes in hex; mode 0600, owned by the service user. Every member of a group holds the same file. The service does not start without it."},
	{"/var/lib/smsnmpd", "node.state_dir: what SNMP writes (sysContact, sysName, sysLocation, smSeWeight...), the election's term, an engine's published entries."},
	{"/run/smsnmpd/control.sock", "control.socket: the local socket of publish, unpublish, lookup, digest and status."},
	{"/usr/share/snmp/mibs/SERVICE-MANAGER-MIB.txt", "The MIB, with the standard modules it imports: snmptranslate -m +SERVICE-MANAGER-MIB -IR smEngineTable."},
}

var manSignals = [][2]string{
	{"SIGTERM, SIGINT", "Leave the group, unregister from snmpd, exit within 2 seconds."},
	{"SIGHUP", "Read the configuration again; apply the log level and format, and name the keys that take effect only at the next start."},
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// writeCompletion prints a bash completion for every command and option.
func writeCompletion(w io.Writer, cmds []commandHelp) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	var names, fileFlags []string
	seen := map[string]bool{}
	for _, c := range cmds {
		if c.command != "" {
			names = append(names, c.command)
		}
		for _, f := range c.flags {
			if (f.arg == "file" || f.arg == "socket") && !seen[f.name] {
				seen[f.name] = true
				fileFlags = append(fileFlags, "-"+f.name)
			}
		}
	}
	p("# bash completion for smsnmpd(8). Generated by `smsnmpd manpage -completion`\n")
	p("# from the command's own help; do not edit.\n")
	p("_smsnmpd() {\n")
	p("\tlocal cur prev words cword\n")
	p("\t_init_completion || return\n")
	p("\tlocal cmd= i\n")
	p("\tfor ((i = 1; i < cword; i++)); do\n")
	p("\t\tcase ${words[i]} in\n")
	p("\t\t%s) cmd=${words[i]}; break ;;\n", strings.Join(names, "|"))
	p("\t\tesac\n")
	p("\tdone\n")
	if len(fileFlags) > 0 {
		p("\tcase $prev in\n")
		p("\t%s)\n\t\t_filedir\n\t\treturn\n\t\t;;\n", strings.Join(fileFlags, "|"))
		p("\tesac\n")
	}
	p("\tlocal flags=\n")
	p("\tcase $cmd in\n")
	for _, c := range cmds {
		if len(c.flags) == 0 {
			continue
		}
		var fl []string
		for _, f := range c.flags {
			fl = append(fl, "-"+f.name)
		}
		label := c.command
		if label == "" {
			label = `""`
		}
		p("\t%s) flags=%q ;;\n", label, strings.Join(fl, " "))
	}
	p("\tesac\n")
	p("\tif [[ $cur == -* ]]; then\n")
	p("\t\tCOMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n")
	p("\telif [[ -z $cmd ]]; then\n")
	p("\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n", strings.Join(names, " "))
	p("\telif [[ $cmd == check-config ]]; then\n")
	p("\t\t_filedir toml\n")
	p("\tfi\n")
	p("}\n")
	p("complete -F _smsnmpd smsnmpd\n")
}
