package smi

import (
	"errors"
	"strconv"
	"strings"
)

// ErrorStatus is an SNMP PDU error-status (RFC 3416 §3). AgentX res.error
// uses the same numbers for these (RFC 2741 §6.2.16).
type ErrorStatus uint32

// Error statuses. Append-only: the numbers are on the wire.
const (
	NoError             ErrorStatus = 0
	TooBig              ErrorStatus = 1
	NoSuchName          ErrorStatus = 2
	BadValue            ErrorStatus = 3
	ReadOnly            ErrorStatus = 4
	GenErr              ErrorStatus = 5
	NoAccess            ErrorStatus = 6
	WrongType           ErrorStatus = 7
	WrongLength         ErrorStatus = 8
	WrongEncoding       ErrorStatus = 9
	WrongValue          ErrorStatus = 10
	NoCreation          ErrorStatus = 11
	InconsistentValue   ErrorStatus = 12
	ResourceUnavailable ErrorStatus = 13
	CommitFailed        ErrorStatus = 14
	UndoFailed          ErrorStatus = 15
	AuthorizationError  ErrorStatus = 16
	NotWritable         ErrorStatus = 17
	InconsistentName    ErrorStatus = 18
)

var errorStatusNames = [...]string{
	"noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
	"wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
	"inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
	"authorizationError", "notWritable", "inconsistentName",
}

func (e ErrorStatus) String() string {
	if int(e) < len(errorStatusNames) {
		return errorStatusNames[e]
	}
	return "ErrorStatus(" + strconv.FormatUint(uint64(e), 10) + ")"
}

// NoIndex is Error.Index when whoever fails does not know the request's
// varbinds: a handler refusing one of its own (the Tree, which called it,
// names the varbind).
const NoIndex = -1

// Error fails an SNMP operation with an error-status. It is the one error
// type that carries a status, wherever it is raised: a handler refusing a
// value (Errorf), the Tree naming the varbind at fault, the farm's
// coordinator failing a SET phase (its per-engine detail, fanout's
// *PhaseError, is Err), an SE answering the coordinator. StatusOf reads it
// back through any wrapping.
type Error struct {
	Status ErrorStatus
	// Index is the 0-based varbind of the request at fault, or NoIndex.
	Index int
	Err   error // why; for logs and errors.As, never sent on the wire
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("snmp ")
	b.WriteString(e.Status.String())
	if e.Index >= 0 {
		b.WriteString(" at varbind ")
		b.WriteString(strconv.Itoa(e.Index + 1))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf is a handler's refusal with status: the Tree answers it at the
// varbind the handler names.
func Errorf(status ErrorStatus, reason string) error {
	return &Error{Status: status, Index: NoIndex, Err: errors.New(reason)}
}

// StatusOf maps an error to the SNMP error-status and index to answer with:
// the outermost *Error keeps its own (index 0 where it has none), anything
// else is genErr at index 0.
func StatusOf(err error) (ErrorStatus, int) {
	if err == nil {
		return NoError, 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status, max(e.Index, 0)
	}
	return GenErr, 0
}

// ErrUnknownTx is a SET phase of a transaction its receiver does not hold
// (never tested, already cleaned up, or expired).
var ErrUnknownTx = errors.New("smi: unknown set transaction")
