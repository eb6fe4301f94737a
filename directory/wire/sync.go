package wire

import (
	"encoding/binary"
	"fmt"
)

// Sync marks the start or the end of a forwarding manager's
// re-announcement of its whole unit to the parent level (issue 8): what
// the parent holds inside Unit and did not hear about between BEGIN and
// END of one generation is gone below and is dropped.
type Sync struct {
	Level      uint8    // level of the directory fed (the parent's)
	End        bool     // false: BEGIN, true: END
	Unit       Location // the forwarding manager's unit
	Generation uint64   // grows with every re-announcement of the unit, across its managers
}

const (
	syncBegin = 0x01
	syncEnd   = 0x02
	syncLen   = PrefixLen + LocationLen + 8
)

// ParseSync decodes a SYNC. Exactly one of BEGIN and END is set.
func ParseSync(b []byte) (Sync, error) {
	r := newReader(b)
	level, flags := r.prefix(TypeSync, syncBegin|syncEnd)
	s := Sync{Level: level, End: flags == syncEnd, Unit: r.loc(), Generation: r.U64()}
	if err := r.end(); err != nil {
		return Sync{}, err
	}
	if flags != syncBegin && flags != syncEnd {
		return Sync{}, fmt.Errorf("%w: sync 0x%02x (want exactly one of BEGIN, END)", ErrFlags, flags)
	}
	return s, nil
}

// AppendSync appends the encoding of s to b.
func AppendSync(b []byte, s *Sync) []byte {
	fl := byte(syncBegin)
	if s.End {
		fl = syncEnd
	}
	b = append(b, Version, byte(TypeSync), s.Level, fl)
	b = appendLoc(b, s.Unit)
	return binary.BigEndian.AppendUint64(b, s.Generation)
}
