package hoststat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrFormat is returned for input a parser does not understand.
	ErrFormat = errors.New("hoststat: malformed input")
	// ErrTooLarge is returned when an input exceeds its cap.
	ErrTooLarge = errors.New("hoststat: input too large")
)

// Caps on what the parsers accept: /proc files of real hosts are far
// below them, so anything larger is not what the parser expects.
const (
	// MaxLine is the longest line read (a /proc/net/dev line is about 130
	// octets).
	MaxLine = 4096
	// MaxInterfaces is the most interfaces ParseNetDev returns.
	MaxInterfaces = 16384
	// MaxMemInfoLines is the most lines ParseMemInfo reads.
	MaxMemInfoLines = 1024
)

// Load is the load average in hundredths (a load of 1.5 is 150), as the
// kernel prints it with two decimals.
type Load struct {
	One, Five, Fifteen uint32
}

// Memory is what /proc/meminfo says, in KiB.
type Memory struct {
	TotalKiB uint64
	FreeKiB  uint64
	// AvailableKiB is MemAvailable; kernels before 3.14 lack it, and then
	// it is MemFree + Buffers + Cached, the estimate those kernels' tools
	// used.
	AvailableKiB uint64
}

// Interface is one line of /proc/net/dev.
type Interface struct {
	Name               string
	RxBytes, RxPackets uint64
	TxBytes, TxPackets uint64
}

// Net is the octets of every interface but loopback.
type Net struct {
	RxBytes, TxBytes uint64
}

// lines returns a scanner whose lines longer than MaxLine are an error.
func lines(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxLine)
	return sc
}

func scanErr(sc *bufio.Scanner, what string) error {
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: %s: line longer than %d octets", ErrTooLarge, what, MaxLine)
		}
		return fmt.Errorf("hoststat: %s: %w", what, err)
	}
	return nil
}

// firstLine reads the only line of a one-line /proc file.
func firstLine(r io.Reader, what string) (string, error) {
	sc := lines(r)
	if !sc.Scan() {
		if err := scanErr(sc, what); err != nil {
			return "", err
		}
		return "", fmt.Errorf("%w: %s: empty", ErrFormat, what)
	}
	return sc.Text(), nil
}

// parseFixed parses a non-negative decimal with at most `decimals`
// fractional digits into an integer scaled by 10^decimals ("1.5" with 2
// decimals is 150), without floating point.
func parseFixed(s string, decimals int) (uint64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > decimals {
		return 0, fmt.Errorf("%w: number %q", ErrFormat, s)
	}
	frac += strings.Repeat("0", decimals-len(frac))
	n, err := strconv.ParseUint(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: number %q", ErrFormat, s)
	}
	return n, nil
}

// ParseLoadAvg parses /proc/loadavg ("0.52 0.41 0.35 1/123 4567").
func ParseLoadAvg(r io.Reader) (Load, error) {
	line, err := firstLine(r, "loadavg")
	if err != nil {
		return Load{}, err
	}
	f := strings.Fields(line)
	if len(f) < 3 {
		return Load{}, fmt.Errorf("%w: loadavg: %d fields", ErrFormat, len(f))
	}
	var v [3]uint32
	for i := range v {
		n, err := parseFixed(f[i], 2)
		if err != nil {
			return Load{}, fmt.Errorf("loadavg: %w", err)
		}
		if n > 1<<32-1 {
			return Load{}, fmt.Errorf("%w: loadavg %q out of range", ErrFormat, f[i])
		}
		v[i] = uint32(n)
	}
	return Load{One: v[0], Five: v[1], Fifteen: v[2]}, nil
}

// ParseUptime parses /proc/uptime ("1568.31 1414.71"): the first number,
// seconds since boot with two decimals.
func ParseUptime(r io.Reader) (time.Duration, error) {
	line, err := firstLine(r, "uptime")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 1 {
		return 0, fmt.Errorf("%w: uptime: empty", ErrFormat)
	}
	cs, err := parseFixed(f[0], 2)
	if err != nil {
		return 0, fmt.Errorf("uptime: %w", err)
	}
	const maxCS = uint64(1<<63-1) / uint64(10*time.Millisecond)
	if cs > maxCS {
		return 0, fmt.Errorf("%w: uptime %q out of range", ErrFormat, f[0])
	}
	return time.Duration(cs) * 10 * time.Millisecond, nil
}

// ParseMemInfo parses /proc/meminfo. MemTotal and MemFree are required.
func ParseMemInfo(r io.Reader) (Memory, error) {
	sc := lines(r)
	var m Memory
	var buffers, cached uint64
	var haveTotal, haveFree, haveAvail bool
	for n := 0; sc.Scan(); n++ {
		if n >= MaxMemInfoLines {
			return Memory{}, fmt.Errorf("%w: meminfo: more than %d lines", ErrTooLarge, MaxMemInfoLines)
		}
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return Memory{}, fmt.Errorf("%w: meminfo line %d: no colon", ErrFormat, n+1)
		}
		var dst *uint64
		switch key {
		case "MemTotal":
			dst, haveTotal = &m.TotalKiB, true
		case "MemFree":
			dst, haveFree = &m.FreeKiB, true
		case "MemAvailable":
			dst, haveAvail = &m.AvailableKiB, true
		case "Buffers":
			dst = &buffers
		case "Cached":
			dst = &cached
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
			return Memory{}, fmt.Errorf("%w: meminfo %s: %q", ErrFormat, key, rest)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("%w: meminfo %s: %q", ErrFormat, key, f[0])
		}
		*dst = v
	}
	if err := scanErr(sc, "meminfo"); err != nil {
		return Memory{}, err
	}
	if !haveTotal || !haveFree {
		return Memory{}, fmt.Errorf("%w: meminfo: no MemTotal or MemFree", ErrFormat)
	}
	if !haveAvail {
		m.AvailableKiB = sat(sat(m.FreeKiB, buffers), cached)
	}
	return m, nil
}

func sat(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// ParseNetDev parses /proc/net/dev: two header lines, then one line per
// interface, "name: 8 receive fields 8 transmit fields".
func ParseNetDev(r io.Reader) ([]Interface, error) {
	sc := lines(r)
	var out []Interface
	for n := 0; sc.Scan(); n++ {
		line := sc.Text()
		if n < 2 {
			if !strings.Contains(line, "|") {
				return nil, fmt.Errorf("%w: net/dev: header line %d %q", ErrFormat, n+1, line)
			}
			continue
		}
		if len(out) >= MaxInterfaces {
			return nil, fmt.Errorf("%w: net/dev: more than %d interfaces", ErrTooLarge, MaxInterfaces)
		}
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: net/dev line %d: no interface name", ErrFormat, n+1)
		}
		f := strings.Fields(rest)
		if len(f) != 16 {
			return nil, fmt.Errorf("%w: net/dev %s: %d fields, want 16", ErrFormat, name, len(f))
		}
		var v [16]uint64
		for i, s := range f {
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: net/dev %s: field %d %q", ErrFormat, name, i+1, s)
			}
			v[i] = x
		}
		out = append(out, Interface{Name: name, RxBytes: v[0], RxPackets: v[1], TxBytes: v[8], TxPackets: v[9]})
	}
	if err := scanErr(sc, "net/dev"); err != nil {
		return nil, err
	}
	return out, nil
}

// Totals sums the octets of every interface but "lo". Loopback traffic is
// the host talking to itself (smsnmpd's own multicast in a demo among
// it), not service to clients. The sums wrap like the counters they add.
func Totals(ifs []Interface) Net {
	var n Net
	for _, i := range ifs {
		if i.Name == "lo" {
			continue
		}
		n.RxBytes += i.RxBytes
		n.TxBytes += i.TxBytes
	}
	return n
}
