package hoststat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestReaderOnTestdata(t *testing.T) {
	r := &Reader{Root: filepath.Join("testdata", "proc")}
	l, err := r.Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Load{One: 643, Five: 556, Fifteen: 349}); l != want {
		t.Errorf("Load = %+v, want %+v", l, want)
	}
	m, err := r.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{TotalKiB: 24684084, FreeKiB: 23248068, AvailableKiB: 23699196}); m != want {
		t.Errorf("Memory = %+v, want %+v", m, want)
	}
	n, err := r.Net()
	if err != nil {
		t.Fatal(err)
	}
	// eth0 + eth1 (above 2^32) + two idle ifb; lo left out.
	if want := (Net{RxBytes: 40400884 + 5000000000, TxBytes: 115315 + 6000000000}); n != want {
		t.Errorf("Net = %+v, want %+v", n, want)
	}
	up, err := r.Uptime()
	if err != nil {
		t.Fatal(err)
	}
	if want := 1604*time.Second + 380*time.Millisecond; up != want {
		t.Errorf("Uptime = %v, want %v", up, want)
	}
}

func TestReaderMissingRoot(t *testing.T) {
	r := &Reader{Root: t.TempDir()}
	if _, err := r.Load(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load on an empty root = %v, want ErrNotExist", err)
	}
}

// TestReaderLive reads the real /proc: the values must parse and be
// plausible for any Linux host.
func TestReaderLive(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		t.Skip("no /proc/loadavg: not Linux")
	}
	var r Reader
	if _, err := r.Load(); err != nil {
		t.Error(err)
	}
	if m, err := r.Memory(); err != nil || m.TotalKiB == 0 || m.AvailableKiB > m.TotalKiB {
		t.Errorf("Memory = %+v, %v", m, err)
	}
	if _, err := r.Net(); err != nil {
		t.Error(err)
	}
	if up, err := r.Uptime(); err != nil || up <= 0 {
		t.Errorf("Uptime = %v, %v", up, err)
	}
}

func TestMemInfoWithoutMemAvailable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "meminfo-3.10"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMemInfo(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{TotalKiB: 1016196, FreeKiB: 101472, AvailableKiB: 101472 + 50000 + 400000}); m != want {
		t.Errorf("Memory = %+v, want %+v", m, want)
	}
}

func TestParsersValid(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Load
	}{
		{"0.00 0.01 0.10 1/1 1\n", Load{0, 1, 10}},
		{"12.5 3 100.25 1/1 1", Load{1250, 300, 10025}},
	} {
		got, err := ParseLoadAvg(strings.NewReader(c.in))
		if err != nil || got != c.want {
			t.Errorf("ParseLoadAvg(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if d, err := ParseUptime(strings.NewReader("0.05 0.00\n")); err != nil || d != 50*time.Millisecond {
		t.Errorf("ParseUptime = %v, %v", d, err)
	}
	ifs, err := ParseNetDev(strings.NewReader("a|b\nc|d\n"))
	if err != nil || len(ifs) != 0 {
		t.Errorf("ParseNetDev(no interfaces) = %v, %v", ifs, err)
	}
}

func TestParsersInvalid(t *testing.T) {
	long := strings.Repeat("1", MaxLine+1)
	for _, c := range []struct {
		name  string
		parse func(string) error
		in    string
		want  error
	}{
		{"loadavg empty", loadavg, "", ErrFormat},
		{"loadavg two fields", loadavg, "0.1 0.2", ErrFormat},
		{"loadavg negative", loadavg, "-1 0.2 0.3 1/1 1", ErrFormat},
		{"loadavg three decimals", loadavg, "0.125 0.2 0.3 1/1 1", ErrFormat},
		{"loadavg no whole part", loadavg, ".5 0.2 0.3 1/1 1", ErrFormat},
		{"loadavg huge", loadavg, "99999999999 0.2 0.3", ErrFormat},
		{"loadavg long line", loadavg, long, ErrTooLarge},
		{"uptime empty", uptime, "\n", ErrFormat},
		{"uptime letters", uptime, "abc 1", ErrFormat},
		{"uptime overflow", uptime, "99999999999999999999 1", ErrFormat},
		{"meminfo empty", meminfo, "", ErrFormat},
		{"meminfo no colon", meminfo, "MemTotal 1 kB\n", ErrFormat},
		{"meminfo bad unit", meminfo, "MemTotal: 1 MB\nMemFree: 1 kB\n", ErrFormat},
		{"meminfo bad number", meminfo, "MemTotal: x kB\nMemFree: 1 kB\n", ErrFormat},
		{"meminfo no free", meminfo, "MemTotal: 1 kB\n", ErrFormat},
		{"meminfo too many lines", meminfo, strings.Repeat("A: 1\n", MaxMemInfoLines+1), ErrTooLarge},
		{"netdev bad header", netdev, "hello\n", ErrFormat},
		{"netdev no name", netdev, "a|\nb|\n: 1 2\n", ErrFormat},
		{"netdev few fields", netdev, "a|\nb|\neth0: 1 2 3\n", ErrFormat},
		{"netdev bad field", netdev, "a|\nb|\neth0: 1 2 3 4 5 6 7 8 x 10 11 12 13 14 15 16\n", ErrFormat},
		{"netdev read error", func(string) error { _, err := ParseNetDev(iotest.ErrReader(errors.New("boom"))); return err }, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.parse(c.in)
			if err == nil {
				t.Fatal("no error")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}

func loadavg(s string) error { _, err := ParseLoadAvg(strings.NewReader(s)); return err }
func uptime(s string) error  { _, err := ParseUptime(strings.NewReader(s)); return err }
func meminfo(s string) error { _, err := ParseMemInfo(strings.NewReader(s)); return err }
func netdev(s string) error  { _, err := ParseNetDev(strings.NewReader(s)); return err }

func TestNetDevTooManyInterfaces(t *testing.T) {
	var b strings.Builder
	b.WriteString("a|\nb|\n")
	for i := range MaxInterfaces + 1 {
		fmt.Fprintf(&b, "if%d: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", i)
	}
	if _, err := ParseNetDev(strings.NewReader(b.String())); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseNetDev(%d interfaces) = %v, want ErrTooLarge", MaxInterfaces+1, err)
	}
}

// TestTruncated cuts every testdata file at every length: the parsers
// return a value or an error, never panic, and a cut file never yields
// more interfaces than the whole one.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"proc/loadavg", "proc/uptime", "proc/meminfo", "proc/net/dev", "meminfo-3.10"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(b) {
			parseAll(b[:i])
		}
	}
	b, _ := os.ReadFile(filepath.Join("testdata", "proc", "net", "dev"))
	whole, _ := ParseNetDev(bytes.NewReader(b))
	for i := range len(b) {
		if ifs, err := ParseNetDev(bytes.NewReader(b[:i])); err == nil && len(ifs) > len(whole) {
			t.Fatalf("cut at %d: %d interfaces, whole file %d", i, len(ifs), len(whole))
		}
	}
}

func parseAll(b []byte) {
	_, _ = ParseLoadAvg(bytes.NewReader(b))
	_, _ = ParseUptime(bytes.NewReader(b))
	_, _ = ParseMemInfo(bytes.NewReader(b))
	_, _ = ParseNetDev(bytes.NewReader(b))
}

// FuzzParse feeds every parser the same input: none may panic, and a
// parse that succeeds must be deterministic.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"proc/loadavg", "proc/uptime", "proc/meminfo", "proc/net/dev", "meminfo-3.10"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l1, err1 := ParseLoadAvg(bytes.NewReader(b))
		l2, err2 := ParseLoadAvg(bytes.NewReader(b))
		if l1 != l2 || (err1 == nil) != (err2 == nil) {
			t.Fatal("ParseLoadAvg not deterministic")
		}
		if m, err := ParseMemInfo(bytes.NewReader(b)); err == nil && !bytes.Contains(b, []byte("MemAvailable")) &&
			m.AvailableKiB < m.FreeKiB {
			t.Fatalf("estimated MemAvailable %d below MemFree %d", m.AvailableKiB, m.FreeKiB)
		}
		if ifs, err := ParseNetDev(bytes.NewReader(b)); err == nil {
			for _, i := range ifs {
				if i.Name == "" || strings.ContainsAny(i.Name, ":\n") {
					t.Fatalf("interface name %q", i.Name)
				}
			}
		}
		if d, err := ParseUptime(bytes.NewReader(b)); err == nil && d < 0 {
			t.Fatalf("negative uptime %v", d)
		}
	})
}
