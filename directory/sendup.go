package directory

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory/wire"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// sendUp sends one message up on the updates channel until every manager
// of the destination has it, retrying with a capped exponential backoff
// until ctx ends; it returns the report of the attempt that reached every
// manager, and whether there was one. An attempt that reached no manager
// at all counts as failed. attempt sees the report of every attempt (ok:
// delivered) for the caller's bookkeeping; whom names the receivers in the
// log.
func sendUp(ctx context.Context, s Sender, b []byte, timeout time.Duration, log logrus.FieldLogger, whom string, attempt func(rep rmtp.Report, ok bool)) (rmtp.Report, bool) {
	backoff := retryMin
	for {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		rep, err := s.Send(sctx, rmtp.ChannelDirectory, rmtp.Up, b)
		cancel()
		if err == nil && len(rep.Members) > 0 {
			attempt(rep, true)
			return rep, true
		}
		if ctx.Err() != nil {
			return rep, false
		}
		attempt(rep, false)
		if err == nil {
			err = errors.New("no " + whom + " in the view")
		}
		log.WithError(err).WithField("retry_in", backoff).Debug("directory: update not delivered to every " + whom)
		if !sleepCtx(ctx, backoff) {
			return rep, false
		}
		backoff = min(2*backoff, retryMax)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// watchResync calls reannounce whenever a manager above asks for it (a
// RESYNC sent down on the updates channel), until ctx ends. Forwarders
// answer it so; a Publisher reads the same channel for verdicts too.
func watchResync(ctx context.Context, in rmtp.Receiver, log logrus.FieldLogger, msg string, reannounce func()) {
	for {
		m, err := in.Receive(ctx)
		if err != nil {
			return
		}
		if isResync(m) {
			log.WithField("manager", m.From).Info(msg)
			reannounce()
		}
	}
}

func isResync(m *rmtp.Message) bool {
	if m.Channel != rmtp.ChannelDirectory || m.Dest != rmtp.Down {
		return false
	}
	t, err := wire.Peek(m.Payload)
	return err == nil && t == wire.TypeResync && wire.ParseResync(m.Payload) == nil
}

func discard(l logrus.FieldLogger) logrus.FieldLogger {
	if l == nil {
		lg := logrus.New()
		lg.Out = nopWriter{}
		lg.Level = logrus.PanicLevel
		return lg
	}
	return l
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
