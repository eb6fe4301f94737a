package zabbix

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

// zabbixObject is one item, item prototype or discovery rule of the
// template: the lines from its "uuid:" to the next one.
type zabbixObject struct {
	uuid, key, oid, valuemap string
	text                     string
}

var (
	uuidLine  = regexp.MustCompile(`(?m)^\s+uuid: (\S+)$`)
	fieldLine = func(name string) *regexp.Regexp { return regexp.MustCompile(`(?m)^\s+` + name + `: '?(.*?)'?$`) }
	keyRe     = regexp.MustCompile(`^smsnmpd\[(\w+)(,\{#SNMPINDEX\})?\]$`)
	uuidV4    = regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)
	macroRe   = regexp.MustCompile(`\{\$[A-Z0-9_.]+\}`)
)

func readTemplate(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, templateFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// split cuts the template at every uuid line.
func split(src string) []zabbixObject {
	locs := uuidLine.FindAllStringSubmatchIndex(src, -1)
	var out []zabbixObject
	for i, l := range locs {
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		o := zabbixObject{uuid: src[l[2]:l[3]], text: src[l[0]:end]}
		if m := fieldLine("key").FindStringSubmatch(o.text); m != nil {
			o.key = m[1]
		}
		if m := fieldLine("snmp_oid").FindStringSubmatch(o.text); m != nil {
			o.oid = m[1]
		}
		if m := regexp.MustCompile(`(?m)^\s+valuemap:\n\s+name: '?(.*?)'?$`).FindStringSubmatch(o.text); m != nil {
			o.valuemap = m[1]
		}
		out = append(out, o)
	}
	return out
}

// The template as the Zabbix server will read it, checked against the
// MIB's Go table without any Zabbix: 6.0's format, a UUIDv4 for
// everything, numeric OIDs that are the objects the keys name (scalars
// with .0, columns with the discovered index), nothing polled under the
// farm operations, value maps equal to the MIB's enumerations, and every
// threshold and interval a macro the template defines.
func TestTemplateMatchesMIB(t *testing.T) {
	src := readTemplate(t)
	if !strings.HasPrefix(src, "zabbix_export:\n  version: '6.0'\n") {
		t.Errorf("not a Zabbix 6.0 export: %.60q", src)
	}
	if strings.Contains(src, "template_groups:") {
		t.Error("template_groups: is 6.2's format; 6.0 wants groups:")
	}
	objs := split(src)
	seen := map[string]bool{}
	for _, o := range objs {
		if !uuidV4.MatchString(o.uuid) {
			t.Errorf("uuid %s is not a UUIDv4 (32 hex digits, version 4, variant 8-b)", o.uuid)
		}
		if seen[o.uuid] {
			t.Errorf("uuid %s used twice", o.uuid)
		}
		seen[o.uuid] = true
	}
	farmOps := []smi.OID{mib.SmAggregate.OID(), mib.SmEngineProxy.OID(), mib.SmAllEngines.OID()}
	polled := map[string]bool{}
	var items, protos int
	for _, o := range objs {
		if o.oid == "" {
			continue
		}
		if strings.HasPrefix(o.oid, "discovery[") {
			want := "discovery[{#ENGINE.NAME}," + mib.SmEngineName.OID().String() + "]"
			if o.oid != want {
				t.Errorf("discovery rule %s: snmp_oid %s, want %s", o.key, o.oid, want)
			}
			continue
		}
		m := keyRe.FindStringSubmatch(o.key)
		if m == nil {
			t.Errorf("item key %q is not smsnmpd[<MIB object>] or smsnmpd[<column>,{#SNMPINDEX}]", o.key)
			continue
		}
		obj, ok := mib.ByName(m[1])
		if !ok {
			t.Errorf("item %s: no object %s in SERVICE-MANAGER-MIB", o.key, m[1])
			continue
		}
		polled[obj.Name] = true
		want := obj.OID.String() + ".0"
		kind := mib.KindScalar
		if m[2] != "" {
			want, kind = obj.OID.String()+".{#SNMPINDEX}", mib.KindColumn
			protos++
		} else {
			items++
		}
		if o.oid != want || obj.Kind != kind {
			t.Errorf("item %s: snmp_oid %s, want %s (a %s; the key says %s)", o.key, o.oid, want, obj.Kind, kind)
		}
		if obj.Access != mib.ReadOnly && obj.Access != mib.ReadWrite {
			t.Errorf("item %s polls %s, which is %s", o.key, obj.Name, obj.Access)
		}
		for _, r := range farmOps {
			if obj.OID.HasPrefix(r) {
				t.Errorf("item %s polls under %s: a walk there is an operation on the whole farm", o.key, r)
			}
		}
		if len(obj.Syntax.Enum) > 0 && o.valuemap == "" {
			t.Errorf("item %s shows the enumeration %s without a value map", o.key, obj.Name)
		}
		if obj.Syntax.Type == smi.TypeCounter64 && !strings.Contains(o.text, "CHANGE_PER_SECOND") && obj.ID != mib.SmViewTerm {
			t.Errorf("item %s stores the raw counter %s: want change per second", o.key, obj.Name)
		}
	}
	// What the issue asks the node items and the prototypes to cover.
	for _, id := range []mib.ID{mib.SmNodeRole, mib.SmNodeLevel, mib.SmViewTerm, mib.SmNodeActivePeer, mib.SmEngineCount,
		mib.SmDirectoryCount, mib.SmTransportRetransmits, mib.SmTransportAuthFailures, mib.SmSubtreeRequests,
		mib.SmSubtreeEnginesDown, mib.SmEngineState, mib.SmEngineLoad, mib.SmEngineRttMicros, mib.SmEngineRequests,
		mib.SmEngineContentCount} {
		if !polled[id.String()] {
			t.Errorf("the template does not poll %s", id)
		}
	}
	t.Logf("%d items, %d item prototypes, %d uuids", items, protos, len(seen))

	// Value maps: one per enumeration of the MIB, with its very labels,
	// and each item's map the one of its object (TruthValue's for a
	// TruthValue).
	maps := valueMaps(t, src)
	for _, o := range mib.Objects() {
		if len(o.Syntax.Enum) == 0 {
			continue
		}
		name := "smsnmpd: " + o.Name
		if slices.Equal(o.Syntax.Enum, []mib.Enum{{Label: "true", Value: 1}, {Label: "false", Value: 2}}) {
			name = "smsnmpd: TruthValue"
		}
		got, ok := maps[name]
		if !ok {
			t.Errorf("no value map %q for the enumeration of %s", name, o.Name)
			continue
		}
		if !slices.Equal(got, o.Syntax.Enum) {
			t.Errorf("value map %q = %v, the MIB says %v", name, got, o.Syntax.Enum)
		}
	}
	for _, o := range objs {
		if m := keyRe.FindStringSubmatch(o.key); m != nil && o.valuemap != "" {
			if _, ok := maps[o.valuemap]; !ok {
				t.Errorf("item %s uses value map %q, which the template does not define", o.key, o.valuemap)
			}
		}
	}

	// Thresholds and intervals are macros, and every macro is defined
	// (and every defined one used).
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+macro: '(\{\$[A-Z0-9_.]+\})'$`).FindAllStringSubmatch(src, -1) {
		defined[m[1]] = true
	}
	for _, m := range macroRe.FindAllString(src, -1) {
		if m != "{$SNMP_COMMUNITY}" && !defined[m] {
			t.Errorf("macro %s used but not defined by the template", m)
		}
	}
	for m := range defined {
		if strings.Count(src, m) < 2 {
			t.Errorf("macro %s defined but never used", m)
		}
	}
	for _, m := range fieldLine("expression").FindAllStringSubmatch(src, -1) {
		if strings.HasPrefix(m[1], "change(") {
			continue // "changed", not a threshold
		}
		for _, cmp := range regexp.MustCompile(`[<>]=?\s*([^\s)]+)`).FindAllStringSubmatch(m[1], -1) {
			if !macroRe.MatchString(cmp[1]) {
				t.Errorf("trigger %q compares with %s: thresholds are macros", m[1], cmp[1])
			}
		}
	}
	for _, m := range fieldLine("delay").FindAllStringSubmatch(src, -1) {
		if !macroRe.MatchString(m[1]) {
			t.Errorf("delay %s: intervals are macros", m[1])
		}
	}
}

// valueMaps reads the template's value maps: name -> mappings.
func valueMaps(t *testing.T, src string) map[string][]mib.Enum {
	t.Helper()
	_, rest, ok := strings.Cut(src, "\n      valuemaps:\n")
	if !ok {
		t.Fatal("the template has no valuemaps")
	}
	if i := strings.Index(rest, "\n  triggers:"); i >= 0 {
		rest = rest[:i]
	}
	out := map[string][]mib.Enum{}
	var cur string
	var value string
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		unq := func(s string) string { return strings.Trim(s, "'") }
		switch {
		case strings.HasPrefix(line, "name: "):
			cur = unq(strings.TrimPrefix(line, "name: "))
			out[cur] = nil
		case strings.HasPrefix(line, "value: "):
			value = unq(strings.TrimPrefix(line, "value: "))
		case strings.HasPrefix(line, "newvalue: "):
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				t.Fatalf("value map %s: value %q", cur, value)
			}
			out[cur] = append(out[cur], mib.Enum{Label: unq(strings.TrimPrefix(line, "newvalue: ")), Value: v})
		}
	}
	return out
}
