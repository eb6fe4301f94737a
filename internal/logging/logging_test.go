package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/smsnmpd/smsnmpd/internal/config"
)

func TestLevel(t *testing.T) {
	cases := []struct {
		name    config.LogLevel
		verbose int
		want    logrus.Level
		wantErr bool
	}{
		{"info", 0, logrus.InfoLevel, false},
		{"", 0, logrus.InfoLevel, false},
		{"info", 1, logrus.DebugLevel, false},
		{"info", 2, logrus.TraceLevel, false},
		{"info", 9, logrus.TraceLevel, false},
		{"error", 1, logrus.WarnLevel, false},
		{"warn", -3, logrus.WarnLevel, false},
		{"WARNING", 0, logrus.WarnLevel, false},
		{"trace", 1, logrus.TraceLevel, false},
		{"fatal", 0, 0, true},
		{"loud", 0, 0, true},
	}
	for _, c := range cases {
		got, err := Level(c.name, c.verbose)
		if (err != nil) != c.wantErr || (!c.wantErr && got != c.want) {
			t.Errorf("Level(%q, %d) = %v, %v; want %v, err=%v", c.name, c.verbose, got, err, c.want, c.wantErr)
		}
	}
}

func TestNewFormats(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(config.Log{Level: "debug", Format: config.FormatJSON}, 0, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.WithField("node", 7).Debug("joined")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("json format wrote %q: %v", buf.String(), err)
	}
	if m["msg"] != "joined" || m["node"] != float64(7) || m["level"] != "debug" {
		t.Errorf("json entry = %v", m)
	}

	// text off a terminal: logfmt, no escape sequences.
	buf.Reset()
	l, err = New(config.Log{Level: "info", Format: config.FormatText}, 0, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.WithField("peer", "se 2").Info("state change")
	l.Debug("hidden")
	out := buf.String()
	if !strings.Contains(out, `level=info msg="state change" peer="se 2"`) || strings.Contains(out, "\x1b[") || strings.Contains(out, "hidden") {
		t.Errorf("text format wrote %q", out)
	}

	// auto off a terminal is JSON.
	buf.Reset()
	l, err = New(config.Log{Level: "info", Format: config.FormatAuto}, 0, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("x")
	if !json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("auto off a terminal wrote %q, want JSON", buf.String())
	}

	if _, err := New(config.Log{Level: "info", Format: "xml"}, 0, &buf); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := New(config.Log{Level: "nope"}, 0, &buf); err == nil {
		t.Error("level nope accepted")
	}
}

func TestVerboseRaisesLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(config.Log{Level: "info"}, 1, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("visible with -v")
	l.Trace("needs -vv")
	if !strings.Contains(buf.String(), "visible with -v") || strings.Contains(buf.String(), "needs -vv") {
		t.Errorf("output %q", buf.String())
	}
}

func TestReload(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(config.Log{Level: "info", Format: config.FormatText}, 0, &buf)
	if err != nil {
		t.Fatal(err)
	}
	old, now, err := Reload(l, config.Log{Level: "debug", Format: config.FormatJSON}, 0)
	if err != nil || old != logrus.InfoLevel || now != logrus.DebugLevel || l.GetLevel() != logrus.DebugLevel {
		t.Fatalf("Reload = %v %v %v, level %v", old, now, err, l.GetLevel())
	}
	l.Debug("after")
	if !json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("format not reloaded: %q", buf.String())
	}
	// -v survives a reload.
	if _, now, _ := Reload(l, config.Log{Level: "info"}, 1); now != logrus.DebugLevel {
		t.Errorf("reload with -v: %v", now)
	}
	// A bad reload changes nothing.
	before := l.GetLevel()
	if _, _, err := Reload(l, config.Log{Level: "bogus"}, 0); err == nil || l.GetLevel() != before {
		t.Errorf("bad reload: err=%v level=%v", err, l.GetLevel())
	}
}

// TestReloadConcurrent: SIGHUP arrives on its own goroutine while others
// log; the race detector checks it.
func TestReloadConcurrent(t *testing.T) {
	l, err := New(config.Log{Level: "info"}, 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.WithField("i", i).Debug("x")
				l.Info("y")
			}
		}()
	}
	for i := 0; i < 200; i++ {
		lvl := config.LogLevel([]string{"info", "debug", "warn"}[i%3])
		if _, _, err := Reload(l, config.Log{Level: lvl, Format: config.FormatText}, 0); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestOrDiscard(t *testing.T) {
	var nilLogger *logrus.Logger
	var nilEntry *logrus.Entry
	for _, in := range []logrus.FieldLogger{nil, nilLogger, nilEntry} {
		d := OrDiscard(in)
		dl, ok := d.(*logrus.Logger)
		if !ok || dl == nil || dl.Out != io.Discard {
			t.Errorf("OrDiscard(%#v) = %#v", in, d)
			continue
		}
		d.WithField("a", 1).Error("dropped") // must not panic
	}
	l := logrus.New()
	if OrDiscard(l) != logrus.FieldLogger(l) {
		t.Error("OrDiscard replaced a real logger")
	}
}

// skipOrFail skips, except under CI=true where a missing capability of the
// machine is a failure.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// openPTY returns the slave side of a new pseudo-terminal.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		skipOrFail(t, "no pseudo-terminal (/dev/ptmx): %v", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		skipOrFail(t, "unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		skipOrFail(t, "ptsname: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		skipOrFail(t, "open pts: %v", err)
	}
	drained := make(chan struct{})
	t.Cleanup(func() {
		slave.Close()
		master.Close()
		<-drained
	})
	// Drain the master so writes to the slave never block; the cleanup
	// above closes it and waits for this goroutine.
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, master)
	}()
	return slave
}

func TestTerminalDetection(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
	pty := openPTY(t)
	if !IsTerminal(pty) {
		t.Fatal("pty not detected as a terminal")
	}
	fm, err := Formatter(config.FormatAuto, pty)
	if err != nil {
		t.Fatal(err)
	}
	tf, ok := fm.(*logrus.TextFormatter)
	if !ok || !tf.ForceColors {
		t.Errorf("auto on a terminal = %#v, want colored text", fm)
	}
}
