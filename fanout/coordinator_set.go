package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// setState is one SET transaction between its phases.
type setState struct {
	tx      uint64 // fanout transaction id of the TEST, shared by the phases
	asked   []NodeID
	created time.Time
	vbs     []smi.VarBind // what the SET writes
	// tested: each engine's TEST answer (incarnation, values before).
	tested map[NodeID]EngineResult
	// withheld: COMMIT was never sent because an engine had left the view
	// after TEST; nothing changed anywhere, so UNDO has nothing to do.
	withheld bool
}

// Diverged is an engine that a SET answered undoFailed may have left
// holding the SET's values while the others were put back: it did not
// confirm its UNDO (it died during COMMIT, say, after it had written).
// The manager reconciles it by writing Before back once it can.
type Diverged struct {
	Engine      NodeID
	Incarnation uint64 // the engine's when it answered TEST
	// Before is the engine's values of the SET's objects before the SET,
	// from its TEST answer, in the SET's order; nil when it did not report
	// them (an engine of an older version, or values too large).
	Before []smi.VarBind
	After  []smi.VarBind // what the SET wrote
}

// PhaseError is the per-engine detail of a SET phase that failed across
// the engines. The coordinator returns it as the Err of an *smi.Error,
// which carries the SNMP status and index to answer with (smi.StatusOf);
// errors.As recovers it.
type PhaseError struct {
	Phase   Op
	Engine  NodeID         // whose error was chosen; 0 when only silence failed it
	Failed  []EngineResult // engines that answered with an error
	Missing []NodeID       // engines that did not confirm
	Result  *Result
	// Diverged (UNDO only): the engines that may still hold the SET's
	// values, by id.
	Diverged []Diverged
}

func (e *PhaseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fanout: %s", e.Phase)
	sep := ": "
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "%sengine %d %s", sep, f.Engine, f.Status)
		sep = "; "
		if f.Status == StatusSNMPError {
			fmt.Fprintf(&b, " %s@%d", f.ErrStatus, f.ErrIndex+1)
		}
	}
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "%sno confirmation from %v", sep, e.Missing)
	}
	return b.String()
}

// phaseError builds the error for a phase whose result has failures or
// silence, or nil when every engine confirmed. def is the status when an
// engine's own does not apply (commitFailed, undoFailed, or for TEST the
// status of a silent engine).
func phaseError(res *Result, def smi.ErrorStatus) error {
	pe := &PhaseError{Phase: res.Op, Missing: res.Missing, Result: res}
	for _, r := range res.Replies {
		if r.Status != StatusOK {
			pe.Failed = append(pe.Failed, r)
		}
	}
	if len(pe.Failed) == 0 && len(pe.Missing) == 0 {
		return nil
	}
	e := &smi.Error{Status: def, Err: pe}
	if len(pe.Failed) > 0 {
		f := pe.Failed[0] // lowest engine id: deterministic
		pe.Engine, e.Index = f.Engine, f.ErrIndex
		if res.Op == OpSetTest {
			e.Status = testStatus(f)
		}
	}
	return e
}

// testStatus is the northbound status of an engine's failed TEST.
func testStatus(r EngineResult) smi.ErrorStatus {
	switch r.Status {
	case StatusSNMPError:
		if r.ErrStatus != smi.NoError {
			return r.ErrStatus
		}
	case StatusBusy:
		return smi.ResourceUnavailable
	}
	return smi.GenErr
}

// TestSet runs the TEST phase of SET transaction key on targets (nil:
// every engine of the view): each engine validates vbs and reserves what
// COMMIT needs. Any engine refusing fails the SET with its status and
// index; an engine that does not confirm fails it with
// resourceUnavailable. The caller must call CleanupSet afterwards, as
// AgentX does; a transaction never cleaned up expires after SetTTL.
func (c *Coordinator) TestSet(ctx context.Context, key smi.TxID, targets []NodeID, vbs []smi.VarBind) (*Result, error) {
	if !c.ep.Active() {
		c.mu.Lock()
		c.cnt.SetsRefused++
		c.mu.Unlock()
		// notWritable, not resourceUnavailable: nothing here is writable
		// while this manager is a backup, and net-snmp tools then say
		// "That object does not support modification" instead of
		// suggesting the agent ran out of memory.
		return nil, &smi.Error{Status: smi.NotWritable, Err: ErrNotActive}
	}
	if targets == nil {
		targets = c.viewEngines()
	}
	if len(targets) == 0 {
		return nil, &smi.Error{Status: smi.ResourceUnavailable, Err: ErrNoEngines}
	}
	st := &setState{created: time.Now(), vbs: vbs}
	c.mu.Lock()
	if _, dup := c.sets[key]; dup {
		c.mu.Unlock()
		return nil, &smi.Error{Status: smi.GenErr, Err: fmt.Errorf("fanout: set transaction %v already in progress", key)}
	}
	if len(c.sets) >= MaxSets {
		c.mu.Unlock()
		return nil, &smi.Error{Status: smi.ResourceUnavailable, Err: fmt.Errorf("fanout: %d set transactions in progress", len(c.sets))}
	}
	c.sets[key] = st
	c.mu.Unlock()

	res, err := c.transact(ctx, OpSetTest, targets, vbs, 0, c.cfg.PhaseDeadline)
	if err != nil {
		return nil, &smi.Error{Status: smi.GenErr, Err: err}
	}
	c.mu.Lock()
	st.tx, st.asked = res.Tx, res.Expected
	st.tested = make(map[NodeID]EngineResult, len(res.Replies))
	for _, r := range res.Replies {
		st.tested[r.Engine] = r
	}
	c.mu.Unlock()
	if err := phaseError(res, smi.ResourceUnavailable); err != nil {
		c.mu.Lock()
		c.cnt.TestFailed++
		c.mu.Unlock()
		return res, err
	}
	return res, nil
}

func (c *Coordinator) setFor(key smi.TxID) *setState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.sets[key]
	if st == nil || st.tx == 0 {
		return nil
	}
	return st
}

// CommitSet runs the COMMIT phase on the engines that were tested. An
// engine failing or not confirming makes it commitFailed (per-engine
// detail in the wrapped *PhaseError); the caller then runs UndoSet.
func (c *Coordinator) CommitSet(ctx context.Context, key smi.TxID) (*Result, error) {
	st := c.setFor(key)
	if st == nil {
		return nil, &smi.Error{Status: smi.CommitFailed, Err: fmt.Errorf("%w: %v", smi.ErrUnknownTx, key)}
	}
	// An engine that left the view since TEST cannot commit: withhold
	// COMMIT from everyone, so nothing changes anywhere (commitFailed with
	// everything "undone"), and let the reservations be cleaned up or
	// expire.
	in := c.viewEngines()
	var gone []NodeID
	for _, id := range st.asked {
		if _, ok := slices.BinarySearch(in, id); !ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		c.mu.Lock()
		st.withheld = true
		c.cnt.CommitFailed++
		c.mu.Unlock()
		res := &Result{Op: OpSetCommit, Tx: st.tx, Expected: st.asked, Missing: gone}
		return res, &smi.Error{Status: smi.CommitFailed,
			Err: &PhaseError{Phase: OpSetCommit, Missing: gone, Result: res}}
	}
	defer c.InvalidateSnapshots()
	res, err := c.phase(ctx, OpSetCommit, st)
	if err != nil {
		return nil, &smi.Error{Status: smi.CommitFailed, Err: err}
	}
	if err := phaseError(res, smi.CommitFailed); err != nil {
		c.mu.Lock()
		c.cnt.CommitFailed++
		c.mu.Unlock()
		return res, err
	}
	return res, nil
}

// UndoSet runs the UNDO phase on every engine that was tested (an engine
// that did not commit has nothing to undo and says so). An engine failing
// or not confirming makes it undoFailed.
func (c *Coordinator) UndoSet(ctx context.Context, key smi.TxID) (*Result, error) {
	st := c.setFor(key)
	if st == nil {
		return nil, &smi.Error{Status: smi.UndoFailed, Err: fmt.Errorf("%w: %v", smi.ErrUnknownTx, key)}
	}
	c.mu.Lock()
	withheld := st.withheld
	c.mu.Unlock()
	if withheld {
		return &Result{Op: OpSetUndo, Tx: st.tx}, nil
	}
	defer c.InvalidateSnapshots()
	res, err := c.phase(ctx, OpSetUndo, st)
	if err != nil {
		c.mu.Lock()
		c.cnt.UndoFailed++
		c.mu.Unlock()
		// Nobody confirmed: every engine asked may hold the values.
		res = &Result{Op: OpSetUndo, Tx: st.tx, Expected: st.asked, Missing: st.asked}
		return nil, &smi.Error{Status: smi.UndoFailed, Err: &PhaseError{Phase: OpSetUndo,
			Missing: st.asked, Result: res, Diverged: c.diverged(st, res)}}
	}
	if err := phaseError(res, smi.UndoFailed); err != nil {
		var pe *PhaseError
		if errors.As(err, &pe) {
			pe.Diverged = c.diverged(st, res)
		}
		c.mu.Lock()
		c.cnt.UndoFailed++
		c.mu.Unlock()
		return res, err
	}
	return res, nil
}

// diverged lists the engines of st whose UNDO res does not confirm.
func (c *Coordinator) diverged(st *setState, res *Result) []Diverged {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Diverged
	for _, id := range st.asked {
		if r := res.Reply(id); r != nil && r.Status == StatusOK {
			continue
		}
		d := Diverged{Engine: id, After: st.vbs}
		if t, ok := st.tested[id]; ok {
			d.Incarnation = t.Incarnation
			if len(t.VarBinds) == len(st.vbs) {
				d.Before = t.VarBinds
			}
		}
		out = append(out, d)
	}
	return out
}

// CleanupSet ends the transaction: the engines release their reservations.
// It has no answer, as in AgentX, and does not wait: the CLEANUP goes out
// in the background (an engine that misses it lets its reservation
// expire).
func (c *Coordinator) CleanupSet(_ context.Context, key smi.TxID) {
	c.mu.Lock()
	st := c.sets[key]
	delete(c.sets, key)
	closed := c.closed
	if st == nil || st.tx == 0 || closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PhaseDeadline)
		defer cancel()
		_, _ = c.phase(ctx, OpSetCleanup, st)
	}()
}

// phase sends one later phase of st to the engines asked in TEST.
func (c *Coordinator) phase(ctx context.Context, op Op, st *setState) (*Result, error) {
	return c.transactTx(ctx, op, st.tx, st.asked, nil, 0, c.cfg.PhaseDeadline)
}

// Set runs every phase for a caller without phases of its own: TEST,
// COMMIT, UNDO when the commit failed, CLEANUP. Per RFC 3416 §4.2.5 a
// failed commit answers commitFailed when the undo worked and undoFailed
// when it did not.
func (c *Coordinator) Set(ctx context.Context, targets []NodeID, vbs []smi.VarBind) (*Result, error) {
	key := smi.TxID{Session: ^uint32(0), Transaction: uint32(c.setSeq.Add(1))}
	defer c.CleanupSet(context.WithoutCancel(ctx), key)
	if res, err := c.TestSet(ctx, key, targets, vbs); err != nil {
		return res, err
	}
	res, err := c.CommitSet(ctx, key)
	if err == nil {
		return res, nil
	}
	_, idx := smi.StatusOf(err)
	if _, uerr := c.UndoSet(context.WithoutCancel(ctx), key); uerr != nil {
		return res, &smi.Error{Status: smi.UndoFailed, Index: idx, Err: fmt.Errorf("%w (after %w)", uerr, err)}
	}
	return res, err
}

// expireSets drops transactions whose caller never cleaned them up and
// tells their engines.
func (c *Coordinator) expireSets(_ context.Context, now time.Time) {
	c.mu.Lock()
	var keys []smi.TxID
	for k, st := range c.sets {
		if st.tx != 0 && now.Sub(st.created) > SetTTL {
			keys = append(keys, k)
		}
	}
	c.cnt.SetsExpired += uint64(len(keys))
	c.mu.Unlock()
	for _, k := range keys {
		c.CleanupSet(context.Background(), k)
	}
}
