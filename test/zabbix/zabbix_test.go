package zabbix

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/test/farmtest"
)

const (
	templateFile = "etc/zabbix/smsnmpd_snmp.yaml"
	templateName = "smsnmpd SNMP"
	engines      = 4
	// How long the server may take, from its start, to poll every item
	// and discover every engine with the test's intervals.
	firstValues = 60 * time.Second
	// How long an engine's "down" trigger may take to change.
	triggerTime = 30 * time.Second
)

// item is what item.get returns of an item.
type item struct {
	ItemID    string `json:"itemid"`
	Name      string `json:"name"`
	Key       string `json:"key_"`
	LastClock string `json:"lastclock"`
	LastValue string `json:"lastvalue"`
	State     string `json:"state"` // 1: not supported
	Error     string `json:"error"`
	Flags     string `json:"flags"` // 0: plain, 4: discovered
}

type trigger struct {
	TriggerID   string `json:"triggerid"`
	Description string `json:"description"`
	Value       string `json:"value"` // 1: PROBLEM
	State       string `json:"state"`
	Error       string `json:"error"`
}

// The template on a real Zabbix 6.0 server, against a farm of separate
// processes: imported through the API and linked to a host, every node
// item gets a value, the 4 engines are discovered by their names, nothing
// is unsupported, and an engine killed and started again raises and
// clears its "down" trigger.
func TestTemplateOnZabbix(t *testing.T) {
	tl := needTools(t)
	began := time.Now()
	f := farmtest.Start(t, binary, engines)
	dir := workDir(t)
	pg := startPostgres(t, tl, dir)
	sport := serverPort(t)
	fe := startFrontend(t, dir, pg, sport)

	src, err := os.ReadFile(filepath.Join(repoRoot, templateFile))
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	fe.mustCall(t, "configuration.import", map[string]any{
		"format": "yaml", "source": string(src),
		"rules": map[string]any{
			"groups":          map[string]bool{"createMissing": true},
			"templates":       map[string]bool{"createMissing": true, "updateExisting": true},
			"items":           map[string]bool{"createMissing": true, "updateExisting": true},
			"discoveryRules":  map[string]bool{"createMissing": true, "updateExisting": true},
			"triggers":        map[string]bool{"createMissing": true, "updateExisting": true},
			"valueMaps":       map[string]bool{"createMissing": true, "updateExisting": true},
			"templateLinkage": map[string]bool{"createMissing": true},
		},
	}, &ok)
	if !ok {
		t.Fatal("configuration.import answered false")
	}
	var tmpls []struct {
		TemplateID string `json:"templateid"`
	}
	fe.mustCall(t, "template.get", map[string]any{"filter": map[string]any{"host": templateName}, "output": []string{"templateid"}}, &tmpls)
	if len(tmpls) != 1 {
		t.Fatalf("template %q after import: %v", templateName, tmpls)
	}
	var group struct {
		IDs []string `json:"groupids"`
	}
	fe.mustCall(t, "hostgroup.create", map[string]any{"name": "smsnmpd test"}, &group)
	host, port, _ := strings.Cut(f.SNMP, ":")
	macros := []map[string]string{
		{"macro": "{$SNMP_COMMUNITY}", "value": "public"},
		// Short intervals, through the template's own macros.
		{"macro": "{$SMSNMPD.INTERVAL}", "value": "2s"},
		{"macro": "{$SMSNMPD.ENGINE.INTERVAL}", "value": "2s"},
		{"macro": "{$SMSNMPD.LLD.INTERVAL}", "value": "5s"},
	}
	var created struct {
		IDs []string `json:"hostids"`
	}
	fe.mustCall(t, "host.create", map[string]any{
		"host":   "smsnmpd-farm",
		"groups": []map[string]string{{"groupid": group.IDs[0]}},
		"interfaces": []map[string]any{{"type": 2, "main": 1, "useip": 1, "ip": host, "dns": "", "port": port,
			"details": map[string]any{"version": 2, "bulk": 1, "community": "{$SNMP_COMMUNITY}"}}},
		"templates": []map[string]string{{"templateid": tmpls[0].TemplateID}},
		"macros":    macros,
	}, &created)
	hostID := created.IDs[0]
	// A 6.0 poller with nothing to do sleeps and misses a configuration
	// reload: the host and its items exist before the server starts.
	server := startServer(t, dir, pg, sport)
	serverUp := time.Now()
	t.Logf("set-up: farm, database, frontend, import and host in %v", serverUp.Sub(began).Round(time.Millisecond))

	items := func() []item {
		var out []item
		fe.mustCall(t, "item.get", map[string]any{"hostids": hostID,
			"output": []string{"itemid", "name", "key_", "lastclock", "lastvalue", "state", "error", "flags"}}, &out)
		return out
	}
	var plain, found []item
	took := farmtest.WaitFor(t, firstValues, time.Second, "every node item has a value and 4 engines are discovered", func() string {
		if !server.Running() {
			t.Fatal("zabbix_server exited")
		}
		plain, found = plain[:0], found[:0]
		var missing, unsupported []string
		for _, it := range items() {
			if it.State == "1" {
				unsupported = append(unsupported, fmt.Sprintf("%s (%s): %s", it.Name, it.Key, it.Error))
			}
			switch it.Flags {
			case "0":
				plain = append(plain, it)
			case "4":
				found = append(found, it)
			}
			if (it.Flags == "0" || it.Flags == "4") && (it.LastClock == "" || it.LastClock == "0") {
				missing = append(missing, it.Key)
			}
		}
		if len(unsupported) > 0 {
			t.Fatalf("items not supported:\n  %s", strings.Join(unsupported, "\n  "))
		}
		if len(plain) == 0 {
			return "no node items on the host: the template is not linked"
		}
		if got := discoveredEngines(found); len(got) != engines {
			return fmt.Sprintf("engines discovered: %v", got)
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d of %d items without a value yet, e.g. %v", len(missing), len(plain)+len(found), missing[:min(len(missing), 5)])
		}
		return ""
	})
	t.Logf("%d node items with values and %d discovered items of %d engines, %v after the server started",
		len(plain), len(found), engines, took.Round(time.Millisecond))
	// The engines are named by smEngineName.
	names := discoveredEngines(found)
	for i := 1; i <= engines; i++ {
		if names[strconv.Itoa(i)] != farmtest.EngineName(i) {
			t.Errorf("engine %d discovered as %q, want its sysName %q (all: %v)", i, names[strconv.Itoa(i)], farmtest.EngineName(i), names)
		}
	}
	for _, it := range plain {
		if it.Key == "smsnmpd[smNodeRole]" && it.LastValue != "2" {
			t.Errorf("smNodeRole = %s, want manager (2)", it.LastValue)
		}
		if it.Key == "smsnmpd[smSubtreeEnginesUp]" && it.LastValue != strconv.Itoa(engines) {
			t.Errorf("smSubtreeEnginesUp = %s, want %d", it.LastValue, engines)
		}
	}

	// Engine 2 killed: its "down" trigger fires; started again: it clears.
	down := fmt.Sprintf("smsnmpd: engine %s (2) is down", farmtest.EngineName(2))
	triggerValue := func() trigger {
		var ts []trigger
		fe.mustCall(t, "trigger.get", map[string]any{"hostids": hostID, "expandDescription": true,
			"output": []string{"triggerid", "description", "value", "state", "error"}}, &ts)
		for _, tr := range ts {
			if tr.Description == down {
				return tr
			}
		}
		var all []string
		for _, tr := range ts {
			all = append(all, tr.Description)
		}
		t.Fatalf("no trigger %q on the host; it has:\n  %s", down, strings.Join(all, "\n  "))
		return trigger{}
	}
	if tr := triggerValue(); tr.Value != "0" {
		t.Fatalf("%q is %s before the engine died", down, tr.Value)
	}
	f.Kill(2)
	tookDown := farmtest.WaitFor(t, triggerTime, 500*time.Millisecond, "the engine's down trigger fires", func() string {
		if tr := triggerValue(); tr.Value != "1" {
			return fmt.Sprintf("value %s %s", tr.Value, tr.Error)
		}
		return ""
	})
	f.StartEngine(2)
	tookUp := farmtest.WaitFor(t, triggerTime, 500*time.Millisecond, "the engine's down trigger clears", func() string {
		if tr := triggerValue(); tr.Value != "0" {
			return fmt.Sprintf("value %s %s", tr.Value, tr.Error)
		}
		return ""
	})
	t.Logf("%q: PROBLEM %v after the kill, OK %v after the restart", down, tookDown.Round(time.Millisecond), tookUp.Round(time.Millisecond))
	for _, it := range items() {
		if it.State == "1" {
			t.Errorf("item %s (%s) not supported at the end: %s", it.Name, it.Key, it.Error)
		}
	}
	t.Logf("test %v in all, %v of it from the server's start", time.Since(began).Round(time.Millisecond), time.Since(serverUp).Round(time.Millisecond))
}

// discoveredEngines maps each discovered engine's index to the name its
// items carry ("Engine NAME (INDEX): ...").
func discoveredEngines(found []item) map[string]string {
	out := map[string]string{}
	for _, it := range found {
		if !strings.HasPrefix(it.Key, "smsnmpd[smEngineState,") {
			continue
		}
		idx := strings.TrimSuffix(strings.TrimPrefix(it.Key, "smsnmpd[smEngineState,"), "]")
		name := strings.TrimPrefix(it.Name, "Engine ")
		if i := strings.LastIndex(name, " ("); i >= 0 {
			name = name[:i]
		}
		out[idx] = name
	}
	return out
}
