package agent

import (
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

var (
	// ErrOverlap is returned when a registration would share OIDs with an
	// existing one: handlers own disjoint subtrees.
	ErrOverlap = errors.New("agent: subtree overlaps an existing registration")
	// ErrNotRegistered is returned by Unregister for an unknown root.
	ErrNotRegistered = errors.New("agent: no registration at that OID")
	// ErrUnknownTx is returned for a SET phase of a transaction the Tree
	// does not know (never tested, already cleaned up, or expired).
	ErrUnknownTx = errors.New("agent: unknown set transaction")
)

// RequestError fails a whole request with an SNMP error-status; Index is
// the 0-based position of the varbind at fault in the request.
type RequestError struct {
	Status smi.ErrorStatus
	Index  int
	Err    error
}

func (e *RequestError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("agent: %s at varbind %d", e.Status, e.Index+1)
	}
	return fmt.Sprintf("agent: %s at varbind %d: %v", e.Status, e.Index+1, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// StatusOf maps an error to the SNMP error status and index to answer
// with: a *RequestError keeps its own, anything else is genErr at index 0.
func StatusOf(err error) (smi.ErrorStatus, int) {
	if err == nil {
		return smi.NoError, 0
	}
	var re *RequestError
	if errors.As(err, &re) {
		return re.Status, re.Index
	}
	return smi.GenErr, 0
}

// statusFor chooses the status for a failed handler call in a phase whose
// default is def.
func statusFor(err error, def smi.ErrorStatus) smi.ErrorStatus {
	var se *smi.SetError
	if errors.As(err, &se) && se.Status != smi.NoError {
		return se.Status
	}
	return def
}
