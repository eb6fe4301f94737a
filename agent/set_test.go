package agent_test

import (
	"context"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

func TestSetPhases(t *testing.T) {
	ctx := context.Background()
	inst := func(o smi.OID) smi.OID { return o.Append(0) }
	cases := []struct {
		name       string
		vbs        []smi.VarBind
		wantStatus smi.ErrorStatus
		wantIndex  int
		wantInt    int64
		wantStr    string
	}{
		{"both written", []smi.VarBind{
			{Name: inst(agenttest.WritableInt), Value: smi.Integer(500)},
			{Name: inst(agenttest.WritableStr), Value: smi.String("new")},
		}, smi.NoError, 0, 500, "new"},
		{"second fails its test: nothing changes", []smi.VarBind{
			{Name: inst(agenttest.WritableInt), Value: smi.Integer(9)},
			{Name: inst(agenttest.WritableStr), Value: smi.String("this string is far longer than thirty-two bytes")},
		}, smi.WrongLength, 1, 7, "initial"},
		{"out of range", []smi.VarBind{{Name: inst(agenttest.WritableInt), Value: smi.Integer(1001)}}, smi.WrongValue, 0, 7, "initial"},
		{"wrong type", []smi.VarBind{{Name: inst(agenttest.WritableInt), Value: smi.String("x")}}, smi.WrongType, 0, 7, "initial"},
		{"read-only object", []smi.VarBind{
			{Name: inst(agenttest.WritableInt), Value: smi.Integer(3)},
			{Name: inst(agenttest.ScalarInt), Value: smi.Integer(3)},
		}, smi.NotWritable, 1, 7, "initial"},
		{"no such object", []smi.VarBind{{Name: agenttest.Base.Append(99, 0), Value: smi.Integer(3)}}, smi.NotWritable, 0, 7, "initial"},
		{"no such instance", []smi.VarBind{{Name: agenttest.WritableInt.Append(1), Value: smi.Integer(3)}}, smi.NoCreation, 0, 7, "initial"},
		{"commit fails after another commit: undone", []smi.VarBind{
			{Name: inst(agenttest.WritableInt), Value: smi.Integer(600)},
			{Name: inst(agenttest.CommitFails), Value: smi.Integer(13)},
		}, smi.CommitFailed, 1, 7, "initial"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := agenttest.New(agenttest.Options{})
			err := tr.Set(ctx, smi.TxID{Transaction: uint32(i)}, c.vbs)
			st, idx := smi.StatusOf(err)
			if st != c.wantStatus || (err != nil && idx != c.wantIndex) {
				t.Fatalf("Set = %v (status %v index %d), want %v index %d", err, st, idx, c.wantStatus, c.wantIndex)
			}
			if got := tr.WritableIntValue(); got != c.wantInt {
				t.Errorf("WritableInt = %d, want %d", got, c.wantInt)
			}
			if got := tr.WritableStrValue(); got != c.wantStr {
				t.Errorf("WritableStr = %q, want %q", got, c.wantStr)
			}
		})
	}
}

func TestSetPhaseErrorsForUnknownTransactions(t *testing.T) {
	ctx := context.Background()
	tr := agenttest.New(agenttest.Options{})
	tx := smi.TxID{Session: 1, Transaction: 1}
	if st, _ := smi.StatusOf(tr.CommitSet(ctx, tx)); st != smi.CommitFailed {
		t.Errorf("commit of unknown transaction: %v", st)
	}
	if st, _ := smi.StatusOf(tr.UndoSet(ctx, tx)); st != smi.UndoFailed {
		t.Errorf("undo of unknown transaction: %v", st)
	}
	tr.CleanupSet(ctx, tx) // must not panic
	vbs := []smi.VarBind{{Name: agenttest.WritableInt.Append(0), Value: smi.Integer(1)}}
	if err := tr.TestSet(ctx, tx, vbs); err != nil {
		t.Fatal(err)
	}
	if st, _ := smi.StatusOf(tr.TestSet(ctx, tx, vbs)); st != smi.GenErr {
		t.Errorf("second TestSet with the same transaction id: %v, want genErr", st)
	}
	tr.CleanupSet(ctx, tx)
	if err := tr.TestSet(ctx, tx, vbs); err != nil {
		t.Errorf("transaction id reusable after cleanup: %v", err)
	}
}
