package agentx_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// treeSet serves given trees (agent.Contexts cannot adopt a tree built
// elsewhere, such as agenttest's).
type treeSet map[string]*agent.Tree

func (s treeSet) Names() []string              { return slices.Sorted(maps.Keys(s)) }
func (s treeSet) Tree(name string) *agent.Tree { return s[name] }

func contextsWith(def *agent.Tree, extra map[string]*agent.Tree) treeSet {
	s := treeSet{"": def}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// mergedTree returns a tree serving the subtrees of both (disjoint) trees.
func mergedTree(t testing.TB, a, b *agent.Tree) *agent.Tree {
	t.Helper()
	m := agent.NewTree()
	for _, src := range []*agent.Tree{a, b} {
		for _, root := range src.Roots() {
			if err := m.Register(root, subtreeOf{src, root}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

// subtreeOf serves one registration of another tree (reads only).
type subtreeOf struct {
	t    *agent.Tree
	root smi.OID
}

func (s subtreeOf) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	vbs, err := s.t.Get(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]smi.Value, len(vbs))
	for i, vb := range vbs {
		out[i] = vb.Value
	}
	return out, nil
}

func (s subtreeOf) GetNext(ctx context.Context, rs []smi.Range) ([]smi.VarBind, error) {
	end := s.root.SubtreeEnd()
	bounded := make([]smi.Range, len(rs))
	for i, r := range rs {
		bounded[i] = r
		if len(r.End) == 0 || r.End.Compare(end) > 0 {
			bounded[i].End = end
		}
	}
	return s.t.GetNext(ctx, bounded)
}

// lockedTrees is a treeSet that may change while the subagent serves it.
type lockedTrees struct {
	mu sync.Mutex
	m  treeSet
}

func (l *lockedTrees) Names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.Names()
}

func (l *lockedTrees) Tree(name string) *agent.Tree {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[name]
}

func (l *lockedTrees) remove(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, name)
}
