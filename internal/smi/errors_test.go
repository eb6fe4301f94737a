package smi

import (
	"errors"
	"fmt"
	"testing"
)

func TestStatusOf(t *testing.T) {
	refusal := Errorf(WrongValue, "outside 0..10")
	atTwo := &Error{Status: CommitFailed, Index: 2, Err: fmt.Errorf("commit: %w", refusal)}
	for _, c := range []struct {
		name string
		err  error
		st   ErrorStatus
		idx  int
		text string
	}{
		{"nil", nil, NoError, 0, ""},
		{"plain", errors.New("boom"), GenErr, 0, "boom"},
		{"refusal", refusal, WrongValue, 0, "snmp wrongValue: outside 0..10"},
		{"the outermost wins", atTwo, CommitFailed, 2, "snmp commitFailed at varbind 3: commit: snmp wrongValue: outside 0..10"},
		{"wrapped", fmt.Errorf("frontend: %w", atTwo), CommitFailed, 2, "frontend: snmp commitFailed at varbind 3: commit: snmp wrongValue: outside 0..10"},
		{"no reason", &Error{Status: TooBig}, TooBig, 0, "snmp tooBig at varbind 1"},
	} {
		st, idx := StatusOf(c.err)
		if st != c.st || idx != c.idx {
			t.Errorf("%s: StatusOf = %s, %d; want %s, %d", c.name, st, idx, c.st, c.idx)
		}
		if c.err != nil && c.err.Error() != c.text {
			t.Errorf("%s: %q, want %q", c.name, c.err.Error(), c.text)
		}
	}
	if !errors.Is(&Error{Status: UndoFailed, Err: fmt.Errorf("%w: 1/2", ErrUnknownTx)}, ErrUnknownTx) {
		t.Error("an *Error does not unwrap to its cause")
	}
}

func TestRangeContains(t *testing.T) {
	o := func(s string) OID { return MustParseOID(s) }
	for _, c := range []struct {
		r    Range
		o    string
		want bool
	}{
		{Range{Start: o("1.3.6")}, "1.3.6", false},
		{Range{Start: o("1.3.6"), Include: true}, "1.3.6", true},
		{Range{Start: o("1.3.6")}, "1.3.6.1", true},
		{Range{Start: o("1.3.6")}, "1.3.5.9", false},
		{Range{Start: o("1.3.6"), End: o("1.3.7")}, "1.3.6.99", true},
		{Range{Start: o("1.3.6"), End: o("1.3.7")}, "1.3.7", false},
		{Range{Start: o("1.3.6"), Include: true, End: o("1.3.6")}, "1.3.6", false},
	} {
		if got := c.r.Contains(o(c.o)); got != c.want {
			t.Errorf("%+v contains %s = %v, want %v", c.r, c.o, got, c.want)
		}
	}
}
