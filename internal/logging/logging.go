// Package logging builds smsnmpd's process logger from the [log] section of
// the config and the -v flag, and re-applies it on SIGHUP.
//
// It owns only that construction. Libraries never call it: they take a
// logrus.FieldLogger from their caller (OrDiscard turns nil into a logger
// that drops everything), and codecs do not log at all. Only cmd/smsnmpd
// builds a logger, once, and passes it down.
package logging

import (
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/smsnmpd/smsnmpd/internal/config"
)

// TimestampFormat has microseconds: takeover and propagation times are
// read from the logs of several processes and compared.
const TimestampFormat = "2006-01-02T15:04:05.000000Z07:00"

// New returns a logger writing to out with the level and format of c,
// the level raised one step per verbose (-v).
func New(c config.Log, verbose int, out io.Writer) (*logrus.Logger, error) {
	lvl, err := Level(c.Level, verbose)
	if err != nil {
		return nil, err
	}
	f, err := Formatter(c.Format, out)
	if err != nil {
		return nil, err
	}
	l := logrus.New()
	l.SetOutput(out)
	l.SetFormatter(f)
	l.SetLevel(lvl)
	return l, nil
}

// Reload applies a re-read [log] section to a running logger (SIGHUP). On
// error nothing changes. It returns the levels before and after, so the
// caller can log the change once.
func Reload(l *logrus.Logger, c config.Log, verbose int) (old, now logrus.Level, err error) {
	old = l.GetLevel()
	lvl, err := Level(c.Level, verbose)
	if err != nil {
		return old, old, err
	}
	f, err := Formatter(c.Format, l.Out)
	if err != nil {
		return old, old, err
	}
	l.SetFormatter(f)
	l.SetLevel(lvl)
	return old, lvl, nil
}

// Level parses a config level name and raises it by verbose steps, capped
// at trace. A negative verbose counts as zero: -v only ever adds detail.
func Level(name config.LogLevel, verbose int) (logrus.Level, error) {
	n := strings.ToLower(string(name))
	if n == "" {
		n = "info"
	}
	lvl, err := logrus.ParseLevel(n)
	if err != nil || lvl < logrus.ErrorLevel {
		// panic and fatal are not levels an operator should pick: they
		// would hide every error.
		return 0, fmt.Errorf("logging: unknown level %q (want error, warn, info, debug or trace)", string(name))
	}
	if verbose > 0 {
		lvl = min(lvl+logrus.Level(verbose), logrus.TraceLevel)
	}
	return lvl, nil
}

// Formatter returns the formatter for format writing to out: text (colored
// only on a terminal) or JSON; "auto" is text on a terminal, JSON otherwise.
func Formatter(format config.LogFormat, out io.Writer) (logrus.Formatter, error) {
	tty := IsTerminal(out)
	switch format {
	case config.FormatAuto:
		if tty {
			format = config.FormatText
		} else {
			format = config.FormatJSON
		}
	case "":
		format = config.FormatText
	}
	switch format {
	case config.FormatText:
		return &logrus.TextFormatter{
			FullTimestamp:   true,
			TimestampFormat: TimestampFormat,
			DisableColors:   !tty,
			ForceColors:     tty,
			// Off a terminal logrus already quotes values that need it, so
			// each line stays one logfmt record.
		}, nil
	case config.FormatJSON:
		return &logrus.JSONFormatter{TimestampFormat: TimestampFormat}, nil
	default:
		return nil, fmt.Errorf("logging: unknown format %q (want text, json or auto)", string(format))
	}
}

// IsTerminal reports whether w is a terminal (a *os.File on a tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// OrDiscard returns l, or when l is nil a logger that drops everything:
// the "nil means discard" rule of every library constructor in one place.
func OrDiscard(l logrus.FieldLogger) logrus.FieldLogger {
	switch v := l.(type) {
	case nil:
	case *logrus.Logger: // a typed nil inside the interface is nil too
		if v != nil {
			return l
		}
	case *logrus.Entry:
		if v != nil {
			return l
		}
	default:
		return l
	}
	d := logrus.New()
	d.SetOutput(io.Discard)
	d.SetLevel(logrus.PanicLevel) // skip formatting entirely
	return d
}
