package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// ErrBusy is what a frontend's wait hook returns when it already has as
// many requests waiting on blocking handlers as it allows: the request is
// refused before any such handler runs. The Tree returns it wrapped in a
// *smi.Error (genErr for reads, resourceUnavailable for a SET's test
// phase); errors.Is finds it.
var ErrBusy = errors.New("agent: too many requests waiting on handlers")

type waitKey struct{}

// WithWait returns a context whose requests call wait, on the request's own
// goroutine, before the first call of a handler that is not Local (one
// that may block: the farm's). A frontend uses it to stop counting the
// request among those its few serving goroutines run, and to bound how
// many may wait at once: a non-nil error (ErrBusy) fails the request
// before any blocking handler sees it. The Tree may call wait more than
// once for one request (every GetNext round, every SET phase), never
// concurrently; after the first call it must be cheap, and return the
// first call's answer. Only a SET's test phase may be refused: a frontend
// that runs the later phases as requests of their own (AgentX) gives them a
// hook that admits them, and CleanupSet releases reservations whatever the
// hook answers.
func WithWait(ctx context.Context, wait func() error) context.Context {
	return context.WithValue(ctx, waitKey{}, wait)
}

// waitFor calls ctx's wait hook when reg's handler may block. idx is the
// request position the error names.
func waitFor(ctx context.Context, reg *registration, idx int, st smi.ErrorStatus) error {
	if _, local := reg.h.(Local); local {
		return nil
	}
	wait, _ := ctx.Value(waitKey{}).(func() error)
	if wait == nil {
		return nil
	}
	if err := wait(); err != nil {
		return &smi.Error{Status: st, Index: idx, Err: fmt.Errorf("%s: %w", reg.root, err)}
	}
	return nil
}
