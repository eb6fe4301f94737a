package mib

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/test/deps"
)

const mibFile = "SERVICE-MANAGER-MIB.txt"

// run runs a tool and returns its stdout and stderr; a non-zero exit
// fails the test.
func run(t *testing.T, env []string, name string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// snmptranslate runs net-snmp's MIB parser the way the project's tools
// load the module: -M <this directory>:<std MIBs>:<net-snmp's> -m <modules>.
func snmptranslate(t *testing.T, modules string, args ...string) string {
	t.Helper()
	tool := deps.NeedTool(t, "snmptranslate")
	std := deps.NeedStdMIBs(t)
	netsnmp := deps.NeedNetSnmpMIBs(t)
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	// An explicit -M (no "+") keeps ~/.snmp/mibs and the MIBDIRS of
	// whoever runs the test out of it. A clean load prints nothing on
	// stderr; anything there (an unresolved import, a bad clause) fails.
	out, errs := run(t, nil, tool,
		append([]string{"-M", here + ":" + std + ":" + netsnmp, "-m", modules}, args...)...)
	if errs != "" {
		t.Fatalf("snmptranslate %s: stderr:\n%s", strings.Join(args, " "), errs)
	}
	return out
}

var tzLine = regexp.MustCompile(`^"([^"]+)"\s+"([0-9.]+)"$`)

// mibNames returns name -> OID of every node net-snmp places under
// netSnmpPlaypen once SERVICE-MANAGER-MIB is loaded: every node the
// module defines, and any it defines in the wrong place nearby.
func mibNames(t *testing.T) map[string]smi.OID {
	t.Helper()
	out := snmptranslate(t, ModuleName, "-Tz", "-On")
	got := map[string]smi.OID{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := tzLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			t.Fatalf("unexpected -Tz line %q", line)
		}
		o, err := smi.ParseOID(m[2])
		if err != nil {
			t.Fatal(err)
		}
		if o.HasPrefix(netSnmpPlaypen) && !o.Equal(netSnmpPlaypen) {
			got[m[1]] = o
		}
	}
	return got
}

// TestTableMatchesMIB checks the Go table against the MIB text both ways:
// every node the MIB defines is in the table with the same OID, and every
// row of the table is in the MIB.
func TestTableMatchesMIB(t *testing.T) {
	inMIB := mibNames(t)
	if len(inMIB) == 0 {
		t.Fatal("snmptranslate listed no node of " + ModuleName + ": module not loaded")
	}
	inTable := map[string]bool{}
	for _, o := range Objects() {
		inTable[o.Name] = true
		m, ok := inMIB[o.Name]
		switch {
		case !ok:
			t.Errorf("%s (%s) is in the Go table but not in %s", o.Name, o.OID, mibFile)
		case !m.Equal(o.OID):
			t.Errorf("%s: Go table says %s, %s says %s", o.Name, o.OID, mibFile, m)
		}
	}
	for name, o := range inMIB {
		if !inTable[name] {
			t.Errorf("%s (%s) is in %s but not in the Go table", name, o, mibFile)
		}
	}
}

// tdObject is what snmptranslate -Td says about one node.
type tdObject struct {
	oid    smi.OID
	name   string
	macro  string
	syntax string
	access string
	row    bool // INDEX or AUGMENTS
}

var tdClause = regexp.MustCompile(`^  (SYNTAX|MAX-ACCESS|INDEX|AUGMENTS)\t+(.*?)\s*$`)

func parseTd(t *testing.T, out string) []tdObject {
	t.Helper()
	var objs []tdObject
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], ".") {
			continue
		}
		o, err := smi.ParseOID(lines[i])
		if err != nil || i+1 >= len(lines) {
			t.Fatalf("bad -Td block at %q", lines[i])
		}
		head := strings.Fields(lines[i+1])
		if len(head) != 2 {
			t.Fatalf("bad -Td header %q", lines[i+1])
		}
		obj := tdObject{oid: o, name: head[0], macro: head[1]}
		for i += 2; i < len(lines) && !strings.HasPrefix(lines[i], "::="); i++ {
			m := tdClause.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			switch m[1] {
			case "SYNTAX":
				obj.syntax = m[2]
			case "MAX-ACCESS":
				obj.access = m[2]
			default:
				obj.row = true
			}
		}
		objs = append(objs, obj)
	}
	return objs
}

// kindOf derives a node's kind the way SMIv2 defines it. net-snmp prints
// plain OBJECT IDENTIFIER nodes as OBJECT-TYPEs without clauses, and
// tables without their SEQUENCE OF syntax.
func kindOf(o tdObject, rows map[string]bool) Kind {
	switch o.macro {
	case "MODULE-IDENTITY":
		return KindModuleIdentity
	case "OBJECT-IDENTITY":
		return KindIdentity
	case "OBJECT-GROUP", "NOTIFICATION-GROUP", "type_23":
		// net-snmp 5.9.3 has no name for its NOTIFICATION-GROUP macro
		// (MIB_NOTIFICATIONGROUP = 23) and prints "type_23".
		return KindGroup
	case "MODULE-COMPLIANCE":
		return KindCompliance
	case "NOTIFICATION-TYPE":
		return KindNotification
	case "OBJECT-TYPE":
		switch {
		case o.row:
			return KindRow
		case o.syntax == "" && o.access == "":
			return KindNode
		case o.syntax == "" || strings.HasPrefix(o.syntax, "SEQUENCE OF"):
			return KindTable
		case rows[o.oid[:len(o.oid)-1].String()]:
			return KindColumn
		}
		return KindScalar
	}
	return 0
}

var baseTypes = map[string]smi.Type{
	"INTEGER": smi.TypeInteger, "Integer32": smi.TypeInteger,
	"Unsigned32": smi.TypeGauge32, "Gauge32": smi.TypeGauge32,
	"Counter32": smi.TypeCounter32, "Counter64": smi.TypeCounter64,
	"TimeTicks": smi.TypeTimeTicks, "IpAddress": smi.TypeIPAddress,
	"OCTET STRING": smi.TypeOctetString, "BITS": smi.TypeOctetString,
	"OBJECT IDENTIFIER": smi.TypeObjectIdentifier, "Opaque": smi.TypeOpaque,
}

var (
	rangeRe = regexp.MustCompile(`\((-?\d+)(?:\.\.(-?\d+))?\)`)
	enumRe  = regexp.MustCompile(`([a-zA-Z][-a-zA-Z0-9]*)\((-?\d+)\)`)
)

// parseSyntax reads net-snmp's rendering of a SYNTAX clause:
// "INTEGER {engine(1), manager(2)}", "Integer32 (1..4)", "OCTET STRING (0..255)".
func parseSyntax(t *testing.T, s string) Syntax {
	t.Helper()
	base, rest := s, ""
	if i := strings.IndexAny(s, "({"); i >= 0 {
		base, rest = strings.TrimSpace(s[:i]), s[i:]
	}
	typ, ok := baseTypes[base]
	if !ok {
		t.Fatalf("SYNTAX %q: unknown base type %q", s, base)
	}
	out := Syntax{Type: typ}
	if strings.HasPrefix(rest, "{") {
		for _, m := range enumRe.FindAllStringSubmatch(rest, -1) {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			out.Enum = append(out.Enum, Enum{Label: m[1], Value: v})
		}
		return out
	}
	if strings.Contains(rest, "|") {
		t.Fatalf("SYNTAX %q: several ranges; teach Syntax and this parser about them", s)
	}
	if m := rangeRe.FindStringSubmatch(rest); m != nil {
		out.Ranged = true
		out.Min, _ = strconv.ParseInt(m[1], 10, 64)
		out.Max = out.Min
		if m[2] != "" {
			out.Max, _ = strconv.ParseInt(m[2], 10, 64)
		}
	}
	return out
}

// TestTableSyntaxMatchesMIB checks kind, syntax and access of every row
// against what net-snmp reads from the MIB.
func TestTableSyntaxMatchesMIB(t *testing.T) {
	var args []string
	for _, o := range Objects() {
		args = append(args, ModuleName+"::"+o.Name)
	}
	objs := parseTd(t, snmptranslate(t, ModuleName, append([]string{"-Td", "-On"}, args...)...))
	if len(objs) != len(args) {
		t.Fatalf("snmptranslate -Td described %d nodes, asked for %d", len(objs), len(args))
	}
	rows := map[string]bool{}
	for _, o := range objs {
		if o.row {
			rows[o.oid.String()] = true
		}
	}
	for _, m := range objs {
		o, ok := ByName(m.name)
		if !ok {
			t.Errorf("-Td described %s, not in the table", m.name)
			continue
		}
		if !o.OID.Equal(m.oid) {
			t.Errorf("%s: OID %s in the table, %s in the MIB", o.Name, o.OID, m.oid)
		}
		if k := kindOf(m, rows); k != o.Kind {
			t.Errorf("%s: kind %s in the table, %s (%s) in the MIB", o.Name, o.Kind, k, m.macro)
		}
		if o.Access.String() != m.access {
			t.Errorf("%s: access %q in the table, %q in the MIB", o.Name, o.Access, m.access)
		}
		var want Syntax
		if m.syntax != "" && o.Kind != KindTable {
			want = parseSyntax(t, m.syntax)
		}
		if o.Syntax.Type != want.Type || o.Syntax.Ranged != want.Ranged ||
			o.Syntax.Min != want.Min || o.Syntax.Max != want.Max || !slices.Equal(o.Syntax.Enum, want.Enum) {
			t.Errorf("%s: syntax %+v in the table, %+v in the MIB (%q)", o.Name, o.Syntax, want, m.syntax)
		}
	}
}

// TestRoleMatchesMIB keeps the Go enumeration and the MIB's labels equal.
func TestRoleMatchesMIB(t *testing.T) {
	enum := SmNodeRole.Object().Syntax.Enum
	if len(enum) != 3 {
		t.Fatalf("smNodeRole has %d labels in the table", len(enum))
	}
	for _, e := range enum {
		r := Role(e.Value)
		if !r.Valid() || r.String() != e.Label {
			t.Errorf("smNodeRole %s(%d): Role(%d) is %q, valid=%v", e.Label, e.Value, e.Value, r, r.Valid())
		}
	}
	if Role(0).Valid() || Role(4).Valid() {
		t.Error("roles outside the MIB's enumeration are valid")
	}
	lv := SmNodeLevel.Object().Syntax
	if lv.Min != MinLevel || lv.Max != MaxLevel {
		t.Errorf("smNodeLevel %d..%d in the table, constants %d..%d", lv.Min, lv.Max, MinLevel, MaxLevel)
	}
	id := SmNodeID.Object().Syntax
	if id.Min != MinNodeID || id.Max != MaxNodeID {
		t.Errorf("smNodeId %d..%d in the table, constants %d..%d", id.Min, id.Max, MinNodeID, MaxNodeID)
	}
}

// TestSystemOIDsMatchSNMPv2MIB checks the system group's OIDs, which this
// package writes by hand, against SNMPv2-MIB.
func TestSystemOIDsMatchSNMPv2MIB(t *testing.T) {
	want := map[string]smi.OID{
		"sysDescr": oidSysDescr, "sysObjectID": oidSysObjectID, "sysUpTime": oidSysUpTime,
		"sysContact": oidSysContact, "sysName": oidSysName, "sysLocation": oidSysLocation,
		"sysServices": oidSysServices, "sysORLastChange": oidSysORLastChange,
		"sysOREntry": oidSysOREntry, "sysORID": oidSysOREntry.Append(colSysORID),
		"sysORDescr": oidSysOREntry.Append(colSysORDescr), "sysORUpTime": oidSysOREntry.Append(colSysORUpTime),
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	args := []string{"-On"}
	for _, n := range names {
		args = append(args, "SNMPv2-MIB::"+n)
	}
	out := strings.Fields(snmptranslate(t, "SNMPv2-MIB", args...))
	if len(out) != len(names) {
		t.Fatalf("snmptranslate gave %d OIDs for %d names: %q", len(out), len(names), out)
	}
	for i, n := range names {
		if got := smi.MustParseOID(out[i]); !got.Equal(want[n]) {
			t.Errorf("%s: SNMPv2-MIB says %s, this package uses %s", n, got, want[n])
		}
	}
}

// TestSmilint requires smilint -l 6 to print nothing (it exits 0 even on
// errors, so the output is the verdict), with the site configuration and
// without it, so a warning hidden by /etc/smi.conf still fails.
func TestSmilint(t *testing.T) {
	tool := deps.NeedTool(t, "smilint")
	std := deps.NeedStdMIBs(t)
	netsnmp := deps.NeedNetSnmpMIBs(t)
	env := []string{"SMIPATH=" + std + ":" + netsnmp}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"site-config", []string{"-l", "6", mibFile}},
		{"no-config", []string{"-c", os.DevNull, "-l", "6", mibFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errs := run(t, env, tool, c.args...)
			if out+errs != "" {
				t.Errorf("smilint %s:\n%s%s", strings.Join(c.args, " "), out, errs)
			}
		})
	}
}
