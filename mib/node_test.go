package mib_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
	"github.com/smsnmpd/smsnmpd/mib"
)

func inst(id mib.ID) smi.OID { return id.OID().Append(0) }

func get(t *testing.T, tree *agent.Tree, names ...smi.OID) []smi.Value {
	t.Helper()
	vbs, err := tree.Get(context.Background(), names)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	out := make([]smi.Value, len(vbs))
	for i, vb := range vbs {
		if !vb.Name.Equal(names[i]) {
			t.Fatalf("varbind %d named %s, asked %s", i, vb.Name, names[i])
		}
		out[i] = vb.Value
	}
	return out
}

// walk returns every varbind under root, by GetNext, checking that names
// strictly increase; it stops after limit steps.
func walk(t *testing.T, tree *agent.Tree, root smi.OID, limit int) []smi.VarBind {
	t.Helper()
	var out []smi.VarBind
	r := smi.Range{Start: root, End: root.SubtreeEnd()}
	for range limit {
		vbs, err := tree.GetNext(context.Background(), []smi.Range{r})
		if err != nil {
			t.Fatalf("GetNext %s: %v", r.Start, err)
		}
		vb := vbs[0]
		if vb.Value.Type == smi.TypeEndOfMibView {
			return out
		}
		if vb.Name.Compare(r.Start) <= 0 {
			t.Fatalf("walk went from %s to %s", r.Start, vb.Name)
		}
		out = append(out, vb)
		r.Start = vb.Name
	}
	t.Fatalf("walk of %s did not end in %d steps", root, limit)
	return nil
}

func TestRegisterNode(t *testing.T) {
	tree := agent.NewTree()
	var role atomic.Int32
	role.Store(int32(mib.RoleBackup))
	err := mib.RegisterNode(tree, mib.NodeInfo{
		Role:  func() mib.Role { return mib.Role(role.Load()) },
		Level: 2,
		ID:    2147483647,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []smi.Value{smi.Integer(3), smi.Integer(2), smi.Gauge32(2147483647)}
	got := get(t, tree, inst(mib.SmNodeRole), inst(mib.SmNodeLevel), inst(mib.SmNodeID))
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("varbind %d = %s, want %s", i, got[i], want[i])
		}
	}

	// A takeover shows at the next read, without re-registering.
	role.Store(int32(mib.RoleManager))
	if v := get(t, tree, inst(mib.SmNodeRole))[0]; !v.Equal(smi.Integer(2)) {
		t.Errorf("after takeover smNodeRole = %s, want 2 (manager)", v)
	}

	vbs := walk(t, tree, mib.SmNode.OID(), 10)
	wantNames := []smi.OID{inst(mib.SmNodeRole), inst(mib.SmNodeLevel), inst(mib.SmNodeID)}
	if len(vbs) != len(wantNames) {
		t.Fatalf("walk of smNode: %v", vbs)
	}
	for i, vb := range vbs {
		if !vb.Name.Equal(wantNames[i]) {
			t.Errorf("walk step %d = %s, want %s", i, vb.Name, wantNames[i])
		}
	}

	// smNode.4 (smViewTerm) stays free for the view's owner.
	if err := tree.RegisterScalar(mib.SmNode.OID().Append(4), agent.Const(smi.Gauge32(1))); err != nil {
		t.Errorf("smNode.4 not free: %v", err)
	}

	// The node group is read-only.
	err = tree.Set(context.Background(), smi.TxID{Transaction: 1},
		[]smi.VarBind{{Name: inst(mib.SmNodeRole), Value: smi.Integer(1)}})
	if st, _ := smi.StatusOf(err); st != smi.NotWritable {
		t.Errorf("SET smNodeRole: %v (status %s), want notWritable", err, st)
	}
}

func TestRegisterNodeBadRole(t *testing.T) {
	tree := agent.NewTree()
	if err := mib.RegisterNode(tree, mib.NodeInfo{Role: func() mib.Role { return 0 }, Level: 1, ID: 1}); err != nil {
		t.Fatal(err)
	}
	// A role the MIB does not define fails the read rather than answering
	// a number no NMS can label.
	_, err := tree.Get(context.Background(), []smi.OID{inst(mib.SmNodeRole)})
	if st, _ := smi.StatusOf(err); st != smi.GenErr {
		t.Errorf("GET with invalid role: %v, want genErr", err)
	}
}

func TestRegisterNodeInvalid(t *testing.T) {
	role := func() mib.Role { return mib.RoleEngine }
	for _, c := range []struct {
		name string
		info mib.NodeInfo
	}{
		{"no role func", mib.NodeInfo{Level: 1, ID: 1}},
		{"level 0", mib.NodeInfo{Role: role, Level: 0, ID: 1}},
		{"level 5", mib.NodeInfo{Role: role, Level: 5, ID: 1}},
		{"id 0", mib.NodeInfo{Role: role, Level: 1, ID: 0}},
		{"id 2^31", mib.NodeInfo{Role: role, Level: 1, ID: 1 << 31}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tree := agent.NewTree()
			if err := mib.RegisterNode(tree, c.info); !errors.Is(err, mib.ErrInvalid) {
				t.Errorf("RegisterNode = %v, want ErrInvalid", err)
			}
			if roots := tree.Roots(); len(roots) != 0 {
				t.Errorf("registered %v after failing", roots)
			}
		})
	}
}

func TestRegisterNodeAllOrNothing(t *testing.T) {
	tree := agent.NewTree()
	taken := mib.SmNodeLevel.OID()
	if err := tree.RegisterScalar(taken, agent.Const(smi.Integer(9))); err != nil {
		t.Fatal(err)
	}
	err := mib.RegisterNode(tree, mib.NodeInfo{Role: func() mib.Role { return mib.RoleEngine }, Level: 1, ID: 1})
	if !errors.Is(err, agent.ErrOverlap) {
		t.Fatalf("RegisterNode over a taken OID = %v, want ErrOverlap", err)
	}
	roots := tree.Roots()
	if len(roots) != 1 || !roots[0].Equal(taken) {
		t.Errorf("roots after a failed RegisterNode = %v, want only %s", roots, taken)
	}
}
