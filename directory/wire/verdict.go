package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxVerdicts caps the entries of one VERDICT.
const MaxVerdicts = 4096

// VerdictEntryLen is the encoded length of one verdict entry.
const VerdictEntryLen = 4 + 8 + 8 + 1 + 4 + 4 + 4 + 4

// VerdictOverhead is the encoded length of a VERDICT without its entries.
const VerdictOverhead = PrefixLen + 2

// Result is what a manager did with one UPDATE. Append-only: it is on the
// wire.
type Result uint8

// Results.
const (
	// ResultAccepted: every operation was applied (or was already held),
	// except Rejected ones refused for good (a bad key, a key over the
	// manager's cap, the directory full).
	ResultAccepted Result = 1
	// ResultRateLimited: nothing was applied, the update was over the
	// sender's rate limit; send it again after RetryAfter.
	ResultRateLimited Result = 2
	// ResultWrongOrigin: nothing was applied and never will be: the
	// entries are not the sender's to publish at this manager (another
	// farm, another engine's entries): a configuration error.
	ResultWrongOrigin Result = 3
	// ResultWrongLevel: nothing was applied: the update feeds another
	// level's directory than this manager's.
	ResultWrongLevel Result = 4
)

func (r Result) String() string {
	switch r {
	case ResultAccepted:
		return "accepted"
	case ResultRateLimited:
		return "rateLimited"
	case ResultWrongOrigin:
		return "wrongOrigin"
	case ResultWrongLevel:
		return "wrongLevel"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// VerdictEntry is a manager's answer to one UPDATE of one sender.
type VerdictEntry struct {
	Engine      uint32 // the sender's node id
	Incarnation uint64 // the sender's rmtp incarnation
	Message     uint64 // the UPDATE's rmtp message id on the sender's updates stream
	Result      Result
	Rejected    uint32 // operations refused for good (ResultAccepted)
	RetryAfter  uint32 // milliseconds until the update fits the limit (ResultRateLimited)
	// Rate and Burst are the manager's limit for this sender: operations
	// per second and at once, 0 = no limit. Every verdict carries them,
	// so a publisher learns the managers' limit from its first update.
	Rate, Burst uint32
}

// Verdict (VERDICT) is a manager's answers to the UPDATEs it received, sent
// down to every member; each sender picks its own entries.
type Verdict struct {
	Level   uint8 // the level of the directory that judged
	Entries []VerdictEntry
}

// ParseVerdict decodes a VERDICT.
func ParseVerdict(b []byte) (Verdict, error) {
	r := newReader(b)
	level, _ := r.prefix(TypeVerdict, 0)
	n := r.count(int(r.U16()), MaxVerdicts, VerdictEntryLen, "verdicts")
	v := Verdict{Level: level}
	if n > 0 {
		v.Entries = make([]VerdictEntry, n)
	}
	for i := 0; i < n && r.Err == nil; i++ {
		e := &v.Entries[i]
		e.Engine, e.Incarnation, e.Message = r.U32(), r.U64(), r.U64()
		e.Result = Result(r.U8())
		e.Rejected, e.RetryAfter, e.Rate, e.Burst = r.U32(), r.U32(), r.U32(), r.U32()
		if r.Err == nil && (e.Result < ResultAccepted || e.Result > ResultWrongLevel) {
			r.Err = fmt.Errorf("%w %d", ErrResult, uint8(e.Result))
		}
	}
	if err := r.end(); err != nil {
		return Verdict{}, err
	}
	return v, nil
}

// AppendVerdict appends the encoding of v to b.
func AppendVerdict(b []byte, v *Verdict) ([]byte, error) {
	if len(v.Entries) > MaxVerdicts {
		return b, fmt.Errorf("%w: %d verdicts > %d", ErrCount, len(v.Entries), MaxVerdicts)
	}
	b = append(b, Version, byte(TypeVerdict), v.Level, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.Entries)))
	for i := range v.Entries {
		e := &v.Entries[i]
		if e.Result < ResultAccepted || e.Result > ResultWrongLevel {
			return b, fmt.Errorf("%w %d", ErrResult, uint8(e.Result))
		}
		b = binary.BigEndian.AppendUint32(b, e.Engine)
		b = binary.BigEndian.AppendUint64(b, e.Incarnation)
		b = binary.BigEndian.AppendUint64(b, e.Message)
		b = append(b, byte(e.Result))
		b = binary.BigEndian.AppendUint32(b, e.Rejected)
		b = binary.BigEndian.AppendUint32(b, e.RetryAfter)
		b = binary.BigEndian.AppendUint32(b, e.Rate)
		b = binary.BigEndian.AppendUint32(b, e.Burst)
	}
	return b, nil
}
