package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/test/deps"
	"github.com/smsnmpd/smsnmpd/test/farmtest"
)

const (
	generator = "prometheus-snmp-generator"
	exporter  = "prometheus-snmp-exporter"
	engines   = 4
)

// Debian's generator makes the shipped snmp.yml again, byte for byte, from
// the shipped generator.yml and the MIB texts the package installs.
func TestGeneratorMakesShippedConfig(t *testing.T) {
	deps.NeedTool(t, generator)
	std := deps.NeedStdMIBs(t)
	netsnmp := deps.NeedNetSnmpMIBs(t)
	dir := t.TempDir()
	// Only NET-SNMP-MIB of net-snmp's directory: the generator reads every
	// module of its directories, and Debian's holds some whose imports
	// Debian does not ship.
	if err := os.Mkdir(filepath.Join(dir, "netsnmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(netsnmp, "NET-SNMP-MIB.txt"), filepath.Join(dir, "netsnmp", "NET-SNMP-MIB.txt")); err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadFile(filepath.Join(repoRoot, "etc/snmp_exporter/generator.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "generator.yml"), gen, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(generator, "--fail-on-parse-errors", "generate")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MIBDIRS="+strings.Join([]string{filepath.Join(repoRoot, "mib"), std, filepath.Join(dir, "netsnmp")}, ":"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s generate: %v\n%s", generator, err, out)
	}
	if bytes.Contains(out, []byte("level=warn")) || bytes.Contains(out, []byte("level=error")) {
		t.Errorf("%s generate warned:\n%s", generator, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "snmp.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(repoRoot, "etc/snmp_exporter/snmp.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("etc/snmp_exporter/snmp.yml is not what the generator makes of generator.yml and the MIB (a MIB text changed?): run etc/snmp_exporter/generate.sh\n%s",
			firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first line where two texts differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: shipped %q, generated %q", i+1, x, y)
		}
	}
	return "the same lines, different bytes"
}

// startDaemon starts a third-party daemon the test stops when it ends.
func startDaemon(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	return &daemon{farmtest.StartDaemon(t, name, syscall.SIGTERM, exec.Command(name, args...))}
}

type daemon struct{ *farmtest.Daemon }

// waitHTTP waits until url answers 200.
func (d *daemon) waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if code, _, err := get(url); err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-d.Exited():
			t.Fatalf("%s exited:\n%s", d.Name, d.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s does not answer after %v", d.Name, url, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sample is one line of the exposition: name, labels, value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

func parseExposition(t *testing.T, text string) []sample {
	t.Helper()
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRe.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("exposition line %q does not parse", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("exposition line %q: value: %v", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range labelRe.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out
}

// The shipped module, in Debian's exporter, against a farm of separate
// processes; then the shipped scrape configuration in Debian's Prometheus.
func TestExporterScrapesFarm(t *testing.T) {
	deps.NeedTool(t, exporter)
	promtool := deps.NeedTool(t, "promtool")
	prometheus := deps.NeedTool(t, "prometheus")
	began := time.Now()
	f := farmtest.Start(t, binary, engines)
	port := freePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	exp := startDaemon(t, exporter, "--config.file="+filepath.Join(repoRoot, "etc/snmp_exporter/snmp.yml"),
		"--web.listen-address="+listen, "--log.level=warn")
	exp.waitHTTP(t, "http://"+listen+"/", 15*time.Second)
	scrapeURL := fmt.Sprintf("http://%s/snmp?target=%s&module=smsnmpd", listen, url.QueryEscape(f.SNMP))
	scrape := func() (string, []sample) {
		t.Helper()
		code, body, err := get(scrapeURL)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusOK || bytes.Contains(body, []byte("snmp_error")) {
			t.Fatalf("scrape: HTTP %d:\n%s", code, farmtest.Tail(string(body), 4<<10))
		}
		return string(body), parseExposition(t, string(body))
	}
	started := time.Now()
	text, samples := scrape()
	t.Logf("scrape of %d samples in %v", len(samples), time.Since(started).Round(time.Microsecond))

	// One smEngineState series per engine, labelled with its name.
	states := map[string]sample{}
	for _, s := range samples {
		if s.name == "smEngineState" {
			if _, dup := states[s.labels["smEngineIndex"]]; dup {
				t.Errorf("two smEngineState series for engine %s", s.labels["smEngineIndex"])
			}
			states[s.labels["smEngineIndex"]] = s
		}
	}
	if len(states) != engines {
		t.Fatalf("%d smEngineState series, want %d:\n%s", len(states), engines, text)
	}
	for i := 1; i <= engines; i++ {
		s, ok := states[strconv.Itoa(i)]
		if !ok || s.labels["smEngineName"] != farmtest.EngineName(i) || s.value != 1 {
			t.Errorf("engine %d: %+v, want smEngineState 1 labelled smEngineName=%q", i, s, farmtest.EngineName(i))
		}
	}
	// The farm totals, and nothing the module must not walk.
	want := map[string]float64{"smSubtreeEnginesUp": engines, "smSubtreeEnginesDown": 0, "smNodeLevel": 1}
	have := map[string]bool{}
	for _, s := range samples {
		have[s.name] = true
		if v, ok := want[s.name]; ok && s.value != v {
			t.Errorf("%s = %v, want %v", s.name, s.value, v)
		}
		if strings.HasPrefix(s.name, "smAggregate") || strings.HasPrefix(s.name, "smEngineProxy") {
			t.Errorf("the module walked a farm operation: %s", s.name)
		}
	}
	for _, n := range []string{"smSubtreeRequests", "smSubtreeBytesOut", "smSubtreeContentCount", "smSubtreeLoad",
		"smSubtreeEnginesUp", "smSubtreeEnginesDown", "smNodeRole", "smViewTerm", "smTransportRetransmits"} {
		if !have[n] {
			t.Errorf("no %s in the scrape", n)
		}
	}
	lintExposition(t, promtool, text)

	// An engine killed: its series says down (3), still under its name.
	f.Kill(3)
	farmtest.WaitFor(t, 15*time.Second, 200*time.Millisecond, "the killed engine scraped down", func() string {
		_, samples := scrape()
		for _, s := range samples {
			if s.name == "smEngineState" && s.labels["smEngineIndex"] == "3" {
				if s.value == 3 && s.labels["smEngineName"] == farmtest.EngineName(3) {
					return ""
				}
				return fmt.Sprintf("%+v", s)
			}
		}
		return "no series for engine 3"
	})

	// The shipped scrape configuration, pointed at this farm and exporter.
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "etc/snmp_exporter/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rendered := strings.NewReplacer("sm1.example.net:161", f.SNMP, "127.0.0.1:9116", listen,
		"scrape_interval: 30s", "scrape_interval: 1s").Replace(string(cfg))
	if rendered == string(cfg) || !strings.Contains(rendered, f.SNMP) || !strings.Contains(rendered, listen) {
		t.Fatal("the example prometheus.yml no longer has the target, exporter address and interval the test rewrites")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	pport := freePort(t)
	papi := fmt.Sprintf("http://127.0.0.1:%d", pport)
	prom := startDaemon(t, prometheus, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", pport), "--log.level=warn")
	prom.waitHTTP(t, papi+"/-/ready", 30*time.Second)
	var series []map[string]string
	took := farmtest.WaitFor(t, 30*time.Second, 500*time.Millisecond, "Prometheus stores every engine's state", func() string {
		series = query(t, papi, `smEngineState{job="smsnmpd"}`)
		if len(series) != engines {
			return fmt.Sprintf("%d series", len(series))
		}
		return ""
	})
	for _, s := range series {
		i, _ := strconv.Atoi(s["smEngineIndex"])
		if s["smEngineName"] != farmtest.EngineName(i) || s["instance"] != f.SNMP {
			t.Errorf("Prometheus series %v: want smEngineName %q and instance %s", s, farmtest.EngineName(i), f.SNMP)
		}
	}
	if up := query(t, papi, `up{job="smsnmpd"} == 1`); len(up) != 1 {
		t.Errorf("up{job=\"smsnmpd\"} == 1: %v", up)
	}
	if tot := query(t, papi, `smSubtreeRequests{job="smsnmpd"}`); len(tot) != 1 {
		t.Errorf("smSubtreeRequests in Prometheus: %v", tot)
	}
	t.Logf("Prometheus stored the %d engines' series %v after its start; test %v in all", engines, took.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// lintExposition runs promtool check metrics: the exposition must parse;
// the only problems allowed are the naming ones every snmp_exporter
// module has (MIB names in camelCase, counters without _total).
func lintExposition(t *testing.T, promtool, text string) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	naming := regexp.MustCompile(`^\S+ (label names should be written in 'snake_case' not 'camelCase'|metric names should be written in 'snake_case' not 'camelCase'|counter metrics should have "_total" suffix)$`)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if !naming.MatchString(line) {
			t.Errorf("promtool check metrics: %s", line)
		}
		n++
	}
	t.Logf("promtool check metrics: parses; %d naming notes (MIB names, as snmp_exporter keeps them)", n)
}

// query runs an instant query and returns each series' labels.
func query(t *testing.T, api, q string) []map[string]string {
	t.Helper()
	code, body, err := get(api + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil || code != http.StatusOK {
		t.Fatalf("query %s: HTTP %d %v: %s", q, code, err, body)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v: %s", q, err, body)
	}
	var out []map[string]string
	for _, s := range r.Data.Result {
		out = append(out, s.Metric)
	}
	return out
}
