package directory

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smsnmpd/smsnmpd/directory/wire"
)

// Location places an entry in the tree: CDN, data center, farm, SE. Zero
// fields below a unit make it a summary of that unit (issue 8).
type Location = wire.Location

// Level is a management level (DESIGN.md §1): 1 farm, 2 data center,
// 3 CDN, 4 peering of CDNs.
type Level uint8

// Levels.
const (
	LevelFarm       Level = 1
	LevelDataCenter Level = 2
	LevelCDN        Level = 3
	LevelPeering    Level = 4
)

func (l Level) String() string {
	switch l {
	case LevelFarm:
		return "farm"
	case LevelDataCenter:
		return "data-center"
	case LevelCDN:
		return "cdn"
	case LevelPeering:
		return "peering"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Unit returns the location of the unit a directory of level l serves,
// cut from any location inside it: a farm keeps CDN, data center and farm.
func (l Level) Unit(in Location) Location {
	switch l {
	case LevelFarm:
		in.Engine = 0
	case LevelDataCenter:
		in.Engine, in.Farm = 0, 0
	case LevelCDN:
		in.Engine, in.Farm, in.DataCenter = 0, 0, 0
	default:
		return Location{}
	}
	return in
}

// Contains reports whether loc lies inside the unit u (a Unit result).
func Contains(u, loc Location) bool {
	return (u.CDN == 0 || u.CDN == loc.CDN) && (u.DataCenter == 0 || u.DataCenter == loc.DataCenter) &&
		(u.Farm == 0 || u.Farm == loc.Farm) && (u.Engine == 0 || u.Engine == loc.Engine)
}

// Policy is what a level forwards to its parent (DESIGN.md §7); the
// Forwarder applies it.
type Policy uint8

// Policies. Append-only (config files name them).
const (
	PolicyFull    Policy = 1 // every entry, with its origin and version
	PolicySummary Policy = 2 // the key and this level's unit id
	PolicyNone    Policy = 3 // nothing
	// PolicyDigest: a Bloom filter of this level's keys (issue 22); the
	// parent answers "maybe in this unit" and asks this level.
	PolicyDigest Policy = 4
)

func (p Policy) String() string {
	switch p {
	case PolicyFull:
		return "full"
	case PolicySummary:
		return "summary"
	case PolicyNone:
		return "none"
	case PolicyDigest:
		return "digest"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy parses "full", "summary", "digest" or "none".
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{PolicyFull, PolicySummary, PolicyNone, PolicyDigest} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: forwarding policy %q (want full, summary, digest or none)", ErrInvalid, s)
}

// Summarize is what a level of unit u forwards for loc under PolicySummary:
// the location cut to the unit.
func Summarize(u, loc Location) Location {
	if !Contains(u, loc) {
		return loc
	}
	return u
}

// Version orders the states of one record: per origin, a higher
// incarnation (the origin restarted) wins, then a higher sequence.
type Version struct {
	Incarnation uint64 `json:"incarnation"`
	Seq         uint64 `json:"seq"`
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	if v.Incarnation != w.Incarnation {
		return v.Incarnation < w.Incarnation
	}
	return v.Seq < w.Seq
}

// String is "incarnation.seq", printable for smDirectoryTable.
func (v Version) String() string {
	return strconv.FormatUint(v.Incarnation, 10) + "." + strconv.FormatUint(v.Seq, 10)
}

// Entry is what a publisher says about one piece of content.
type Entry struct {
	Key    string
	Size   uint64
	Expiry time.Time // zero: never
}

// DefaultMaxKey is the default cap on a key's length in bytes.
const DefaultMaxKey = 1024

// Errors. Callers branch on them with errors.Is.
var (
	ErrInvalid     = errors.New("directory: invalid configuration")
	ErrKeyTooLong  = errors.New("directory: key longer than the cap")
	ErrBadKey      = errors.New("directory: bad key")
	ErrFull        = errors.New("directory: entry cap reached")
	ErrRateLimited = errors.New("directory: update rate limit exceeded")
	ErrWrongOrigin = errors.New("directory: update from the wrong origin")
	ErrClosed      = errors.New("directory: closed")
	ErrNoDonor     = errors.New("directory: no other manager to catch up from")
	ErrTransfer    = errors.New("directory: state transfer failed")
)

// CheckKey validates a content key: 1..maxKey bytes (maxKey ≤ 0 means
// DefaultMaxKey), valid UTF-8, no control characters (keys are printed by
// the CLI and in SNMP OCTET STRINGs; a NUL or newline there is a forgery
// risk, not a name).
func CheckKey(key string, maxKey int) error {
	if maxKey <= 0 {
		maxKey = DefaultMaxKey
	}
	if len(key) == 0 {
		return fmt.Errorf("%w: empty", ErrBadKey)
	}
	if len(key) > maxKey {
		return fmt.Errorf("%w: %d bytes > %d", ErrKeyTooLong, len(key), maxKey)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: not valid UTF-8", ErrBadKey)
	}
	for i, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrBadKey, r, i)
		}
	}
	return nil
}

// Hops is the tree distance between two locations (DESIGN.md §7
// "nearest"): 0 for the same SE, 2 within a farm (SE, farm manager, SE),
// 4 within a data center, 6 within a CDN, 8 across CDNs. A summary
// location (zero below its unit) counts as the unit itself.
func Hops(from, to Location) int {
	switch {
	case from.CDN != to.CDN:
		return 8
	case from.DataCenter != to.DataCenter:
		return 6
	case from.Farm != to.Farm:
		return 4
	case from.Engine != to.Engine:
		return 2
	}
	return 0
}

func expiryMillis(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	ms := t.UnixMilli()
	if ms <= 0 {
		return 1 // before 1970: already expired, but not "never"
	}
	return uint64(ms)
}

func millisTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(min(ms, 1<<62)))
}
