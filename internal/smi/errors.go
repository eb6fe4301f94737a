package smi

import "strconv"

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

// SetError is the error a SET handler returns to fail a phase with a
// specific SNMP error-status; any other error becomes genErr.
type SetError struct {
	Status ErrorStatus
	Reason string // for logs; never sent on the wire
}

func (e *SetError) Error() string {
	if e.Reason == "" {
		return "snmp set: " + e.Status.String()
	}
	return "snmp set: " + e.Status.String() + ": " + e.Reason
}

// Errorf builds a *SetError.
func Errorf(status ErrorStatus, reason string) error {
	return &SetError{Status: status, Reason: reason}
}
