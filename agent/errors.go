package agent

import (
	"errors"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

var (
	// ErrOverlap is returned when a registration would share OIDs with an
	// existing one: handlers own disjoint subtrees.
	ErrOverlap = errors.New("agent: subtree overlaps an existing registration")
	// ErrNotRegistered is returned by Unregister for an unknown root.
	ErrNotRegistered = errors.New("agent: no registration at that OID")
)

// statusFor chooses the status for a failed handler call in a phase whose
// default is def: the handler's own, from a *smi.Error, when it gave one.
func statusFor(err error, def smi.ErrorStatus) smi.ErrorStatus {
	var se *smi.Error
	if errors.As(err, &se) && se.Status != smi.NoError {
		return se.Status
	}
	return def
}
