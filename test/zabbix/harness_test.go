package zabbix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
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

// Where Debian's packages put what the harness runs.
const (
	zabbixServer = "/usr/sbin/zabbix_server"
	zabbixSchema = "/usr/share/zabbix-server-pgsql" // schema, images, data .sql.gz
	zabbixUI     = "/usr/share/zabbix"              // the frontend; api_jsonrpc.php
	zabbixEtc    = "/etc/zabbix"                    // where the frontend reads zabbix.conf.php
)

// tools are what the harness needs, found or the test skips (fails in CI).
type tools struct {
	pgBin  string // /usr/lib/postgresql/N/bin
	pgUser *user.User
	zbxVer string // "6.0.14"
}

func needTools(t *testing.T) tools {
	t.Helper()
	deps.NeedRoot(t)
	for _, p := range []string{zabbixServer, filepath.Join(zabbixSchema, "schema.sql.gz"), filepath.Join(zabbixUI, "api_jsonrpc.php"), zabbixEtc} {
		if _, err := os.Stat(p); err != nil {
			deps.Need(t, fmt.Errorf("%w: %s (packages zabbix-server-pgsql, zabbix-frontend-php)", deps.ErrMissing, p))
		}
	}
	for _, tool := range []string{"php", "psql", "unshare", "tar", "gzip"} {
		deps.NeedTool(t, tool)
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		deps.Need(t, fmt.Errorf("%w: /usr/lib/postgresql/*/bin/postgres (package postgresql)", deps.ErrMissing))
	}
	tl := tools{pgBin: filepath.Dir(bins[len(bins)-1])}
	u, err := user.Lookup("postgres")
	if err != nil {
		deps.Need(t, fmt.Errorf("%w: user postgres (package postgresql)", deps.ErrMissing))
	}
	tl.pgUser = u
	if _, err := user.Lookup("zabbix"); err != nil {
		deps.Need(t, fmt.Errorf("%w: user zabbix (package zabbix-server-pgsql)", deps.ErrMissing))
	}
	out, err := exec.Command(zabbixServer, "-V").Output()
	if m := regexp.MustCompile(`\(Zabbix\) (\d+\.\d+\.\d+)`).FindSubmatch(out); err != nil || m == nil {
		t.Fatalf("zabbix_server -V: %v: %s", err, out)
	} else {
		tl.zbxVer = string(m[1])
	}
	if !strings.HasPrefix(tl.zbxVer, "6.0.") {
		t.Fatalf("zabbix_server %s: the template is tested against 6.0", tl.zbxVer)
	}
	return tl
}

// workDir is a directory every service user may enter (t.TempDir's are
// root's only), removed at the end.
func workDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "smsnmpd-zabbix-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// daemon is a process the harness started, stopped by its PID.
type daemon = farmtest.Daemon

func startDaemon(t *testing.T, name string, stop syscall.Signal, cmd *exec.Cmd) *daemon {
	t.Helper()
	return farmtest.StartDaemon(t, name, stop, cmd)
}

func asUser(u *user.User) *syscall.SysProcAttr {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// postgres is a private PostgreSQL with the Zabbix database loaded.
type postgres struct {
	port int
	d    *daemon
}

// cacheFile is the initialised data directory of this Zabbix and
// PostgreSQL, as a tarball: the schema's 30 s are paid once per machine.
func cacheFile(tl tools) (string, error) {
	root, err := deps.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "zabbix", fmt.Sprintf("pgdata-zabbix%s-%s.tar.gz", tl.zbxVer, filepath.Base(filepath.Dir(tl.pgBin)))), nil
}

// startPostgres starts PostgreSQL on 127.0.0.1 with the Zabbix database,
// from the cache (building it first when it is missing).
func startPostgres(t *testing.T, tl tools, dir string) *postgres {
	t.Helper()
	cache, err := cacheFile(tl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cache); err != nil {
		started := time.Now()
		buildCache(t, tl, cache)
		t.Logf("zabbix database initialised and cached in %v: %s", time.Since(started).Round(time.Millisecond), cache)
	}
	started := time.Now()
	data := filepath.Join(dir, "pgdata")
	run(t, "tar", "-C", dir, "-xzf", cache)
	run(t, "chown", "-R", tl.pgUser.Uid+":"+tl.pgUser.Gid, data)
	if err := os.Chmod(data, 0o700); err != nil {
		t.Fatal(err)
	}
	pg := &postgres{port: farmtest.FreeTCPPort(t)}
	pg.d = runPostgres(t, tl, dir, data, pg.port)
	t.Logf("postgres from the cache on port %d in %v", pg.port, time.Since(started).Round(time.Millisecond))
	return pg
}

// runPostgres runs the postmaster in the foreground as user postgres, for
// a test only: no fsync.
func runPostgres(t *testing.T, tl tools, dir, data string, port int) *daemon {
	t.Helper()
	sockDir := filepath.Join(dir, "pgsock")
	if err := os.MkdirAll(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sockDir, atoi(tl.pgUser.Uid), atoi(tl.pgUser.Gid)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(tl.pgBin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+sockDir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.SysProcAttr = asUser(tl.pgUser)
	d := startDaemon(t, "postgres", syscall.SIGINT, cmd) // SIGINT: fast shutdown
	waitTCP(t, d, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Listening is not accepting: the startup finishes after the bind.
		if err := exec.Command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-Atc", "select 1", "postgres").Run(); err == nil {
			return d
		}
		if time.Now().After(deadline) || !d.Running() {
			t.Fatalf("postgres on port %d does not accept connections", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func buildCache(t *testing.T, tl tools, cache string) {
	t.Helper()
	dir := workDir(t)
	data := filepath.Join(dir, "pgdata")
	if err := os.Chown(dir, atoi(tl.pgUser.Uid), atoi(tl.pgUser.Gid)); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(tl.pgBin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = asUser(tl.pgUser)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := farmtest.FreeTCPPort(t)
	d := runPostgres(t, tl, dir, data, port)
	p := strconv.Itoa(port)
	run(t, "psql", "-h", "127.0.0.1", "-p", p, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "create user zabbix", "-c", "create database zabbix owner zabbix encoding 'UTF8'", "postgres")
	for _, f := range []string{"schema", "images", "data"} {
		sql := filepath.Join(zabbixSchema, f+".sql.gz")
		run(t, "sh", "-c", fmt.Sprintf("gzip -dc %q | psql -q -h 127.0.0.1 -p %s -U zabbix -v ON_ERROR_STOP=1 zabbix >/dev/null", sql, p))
	}
	d.Halt()
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	ignore := filepath.Join(filepath.Dir(filepath.Dir(cache)), ".gitignore")
	if _, err := os.Stat(ignore); err != nil {
		_ = os.WriteFile(ignore, []byte("*\n"), 0o644) // the cache stays out of git
	}
	tmp := fmt.Sprintf("%s.%d.tmp", cache, os.Getpid())
	run(t, "sh", "-c", fmt.Sprintf("tar -C %q -cf - pgdata | gzip -1 > %q", dir, tmp))
	if err := os.Rename(tmp, cache); err != nil {
		os.Remove(tmp)
		t.Fatal(err)
	}
}

// frontend is `php -S` serving the Zabbix frontend (its API) in a mount
// namespace of its own, where /etc/zabbix is the test's directory with
// its zabbix.conf.php.
type frontend struct {
	url  string
	auth string
	d    *daemon
}

func startFrontend(t *testing.T, dir string, pg *postgres, serverPort int) *frontend {
	t.Helper()
	etc := filepath.Join(dir, "etc-zabbix")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`<?php
// Written by smsnmpd's test/zabbix; mounted over /etc/zabbix for php -S only.
$DB['TYPE'] = 'POSTGRESQL';
$DB['SERVER'] = '127.0.0.1';
$DB['PORT'] = '%d';
$DB['DATABASE'] = 'zabbix';
$DB['USER'] = 'zabbix';
$DB['PASSWORD'] = '';
$DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false;
$DB['KEY_FILE'] = '';
$DB['CERT_FILE'] = '';
$DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false;
$DB['CIPHER_LIST'] = '';
$DB['VAULT_URL'] = '';
$DB['VAULT_DB_PATH'] = '';
$DB['VAULT_TOKEN'] = '';
$DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER = '127.0.0.1';
$ZBX_SERVER_PORT = '%d';
$ZBX_SERVER_NAME = 'smsnmpd test';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
`, pg.port, serverPort)
	if err := os.WriteFile(filepath.Join(etc, "zabbix.conf.php"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	port := farmtest.FreeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// unshare and sh exec in place: the PID is php's.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2" && exec php -S "$3" -t "$4"`, "sh", etc, zabbixEtc, addr, zabbixUI)
	fe := &frontend{url: "http://" + addr + "/api_jsonrpc.php"}
	fe.d = startDaemon(t, "php -S (zabbix frontend)", syscall.SIGTERM, cmd)
	waitTCP(t, fe.d, addr, 15*time.Second)
	var ver string
	if err := fe.call("apiinfo.version", map[string]any{}, &ver); err != nil {
		t.Fatalf("zabbix API: %v", err)
	}
	if err := fe.call("user.login", map[string]any{"username": "Admin", "password": "zabbix"}, &fe.auth); err != nil {
		t.Fatalf("zabbix API login: %v", err)
	}
	t.Logf("zabbix API %s at %s", ver, fe.url)
	return fe
}

// apiError is an error the API answered.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("zabbix API error %d: %s %s", e.Code, e.Message, e.Data)
}

// call runs one JSON-RPC method and decodes its result into out.
func (fe *frontend) call(method string, params any, out any) error {
	req := map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
	if fe.auth != "" && method != "apiinfo.version" && method != "user.login" {
		req["auth"] = fe.auth
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, fe.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json-rpc")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *apiError       `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: HTTP %d, not JSON-RPC: %w: %.500s", method, resp.StatusCode, err, b)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %w", method, r.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("%s: result: %w: %.500s", method, err, r.Result)
	}
	return nil
}

func (fe *frontend) mustCall(t *testing.T, method string, params any, out any) {
	t.Helper()
	if err := fe.call(method, params, out); err != nil {
		t.Fatal(err)
	}
}

// startServer runs zabbix_server in the foreground (it drops to user
// zabbix) with few processes and a configuration cache refreshed every
// second.
func startServer(t *testing.T, dir string, pg *postgres, port int) *daemon {
	t.Helper()
	zdir := filepath.Join(dir, "server")
	if err := os.MkdirAll(zdir, 0o755); err != nil {
		t.Fatal(err)
	}
	zu, err := user.Lookup("zabbix")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(zdir, atoi(zu.Uid), atoi(zu.Gid)); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(zdir, "zabbix_server.log")
	conf := fmt.Sprintf(`# Written by smsnmpd's test/zabbix.
ListenIP=127.0.0.1
ListenPort=%d
LogFile=%s
LogFileSize=0
PidFile=%s
SocketDir=%s
DBHost=127.0.0.1
DBPort=%d
DBName=zabbix
DBUser=zabbix
Timeout=3
CacheUpdateFrequency=1
HousekeepingFrequency=0
StartPollers=2
StartPollersUnreachable=1
StartPreprocessors=1
StartTrappers=1
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartTimers=1
StartEscalators=1
StartAlerters=1
StartLLDProcessors=1
StartDBSyncers=1
StartHistoryPollers=1
StartReportWriters=0
StartProxyPollers=0
`, port, logf, filepath.Join(zdir, "zabbix_server.pid"), zdir, pg.port)
	cf := filepath.Join(zdir, "zabbix_server.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "zabbix_server", syscall.SIGTERM, exec.Command(zabbixServer, "-f", "-c", cf))
	d.LogFile = logf
	waitTCP(t, d, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	return d
}

// serverPort is a free TCP port zabbix_server accepts as ListenPort
// (1024..32767, below Linux's ephemeral range).
func serverPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free TCP port in 20000..32000")
	return 0
}

// waitTCP waits until something accepts on addr, or the daemon exits.
func waitTCP(t *testing.T, d *daemon, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if !d.Running() {
			t.Fatalf("%s exited before listening on %s:\n%s", d.Name, addr, farmtest.Tail(d.Out.String(), 4<<10))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: nothing listens on %s after %v", d.Name, addr, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, farmtest.Tail(o.String(), 4<<10), farmtest.Tail(e.String(), 4<<10))
		}
		t.Fatal(err)
	}
	return o.String()
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
