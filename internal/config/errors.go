package config

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every *Error matches exactly one of them with errors.Is,
// so callers branch on the kind without parsing messages.
var (
	ErrRead       = errors.New("config: cannot read file")
	ErrSyntax     = errors.New("config: TOML syntax error")
	ErrUnknownKey = errors.New("config: unknown key")
	ErrType       = errors.New("config: wrong type")
	ErrInvalid    = errors.New("config: invalid value")
)

// ErrorKind classifies an *Error.
type ErrorKind uint8

// Error kinds.
const (
	KindRead ErrorKind = iota + 1
	KindSyntax
	KindUnknownKey
	KindType
	KindInvalid
)

var kindNames = [...]string{
	KindRead:       "cannot read",
	KindSyntax:     "syntax error",
	KindUnknownKey: "unknown key",
	KindType:       "wrong type",
	KindInvalid:    "invalid value",
}

func (k ErrorKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

func (k ErrorKind) sentinel() error {
	switch k {
	case KindRead:
		return ErrRead
	case KindSyntax:
		return ErrSyntax
	case KindUnknownKey:
		return ErrUnknownKey
	case KindType:
		return ErrType
	default:
		return ErrInvalid
	}
}

// Error is one problem in one config file. Its message has the form
//
//	FILE:LINE: KEY: KIND: DETAIL
//
// (compiler style, so editors jump to it), leaving out FILE, LINE or KEY when
// unknown: a missing required key has no line. Detail never contains the
// value of a Secret.
type Error struct {
	File   string    // as given to Load/Parse; "" for Validate on a built config
	Line   int       // 1-based; 0 when unknown
	Key    string    // dotted TOML key, e.g. "snmp.listen"; "" when unknown
	Kind   ErrorKind // what went wrong
	Detail string    // human explanation
	cause  error     // underlying error (e.g. *fs.PathError), may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind.sentinel() }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Errors is every problem found in one file, in line order. errors.Is and
// errors.As see each element.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap exposes the elements to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
