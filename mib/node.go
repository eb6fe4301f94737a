package mib

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// ErrInvalid is returned when a registration is given a value its MIB
// object cannot hold.
var ErrInvalid = errors.New("mib: invalid value")

// Role is smNodeRole. The numbers are the MIB's enumeration: append-only.
type Role int32

// Roles.
const (
	RoleEngine  Role = 1
	RoleManager Role = 2
	RoleBackup  Role = 3
)

// String returns the MIB label.
func (r Role) String() string {
	switch r {
	case RoleEngine:
		return "engine"
	case RoleManager:
		return "manager"
	case RoleBackup:
		return "backup"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Valid reports whether r is one of the MIB's roles.
func (r Role) Valid() bool { return r >= RoleEngine && r <= RoleBackup }

// Limits of the node group's objects, as the MIB states them.
const (
	MinLevel  = 1
	MaxLevel  = 4
	MinNodeID = 1
	MaxNodeID = 2147483647
)

// NodeInfo is what the node group reports.
type NodeInfo struct {
	// Role is called on every read, so a takeover or a step-down shows at
	// the next poll without re-registering. Required.
	Role func() Role
	// Level and ID come from the configuration and change only with a
	// restart.
	Level int
	ID    uint32
	// Term, if set, serves smViewTerm: the term of the view the node
	// follows (rmtp's View().Term), read on every request. nil leaves
	// smNode.4 free for another registration.
	Term func() uint64
}

// RegisterNode puts the node group (smNodeRole, smNodeLevel, smNodeId,
// and smViewTerm when n.Term is set) on tree. Each object is its own
// registration. Nothing is registered when it fails.
func RegisterNode(tree *agent.Tree, n NodeInfo) error {
	switch {
	case n.Role == nil:
		return fmt.Errorf("%w: smNodeRole needs a role function", ErrInvalid)
	case n.Level < MinLevel || n.Level > MaxLevel:
		return fmt.Errorf("%w: smNodeLevel %d outside %d..%d", ErrInvalid, n.Level, MinLevel, MaxLevel)
	case n.ID < MinNodeID || n.ID > MaxNodeID:
		return fmt.Errorf("%w: smNodeId %d outside %d..%d", ErrInvalid, n.ID, MinNodeID, MaxNodeID)
	}
	role := n.Role
	r := registrar{tree: tree}
	r.scalar(SmNodeRole.OID(), &agent.Scalar{Type: smi.TypeInteger, Value: func(context.Context) (smi.Value, error) {
		v := role()
		if !v.Valid() {
			// Answering a number the MIB does not define would mislead
			// an NMS more than a genErr does.
			return smi.Value{}, fmt.Errorf("%w: smNodeRole %d", ErrInvalid, int32(v))
		}
		return smi.Integer(int32(v)), nil
	}})
	r.scalar(SmNodeLevel.OID(), agent.Const(smi.Integer(int32(n.Level))))
	r.scalar(SmNodeID.OID(), agent.Const(smi.Gauge32(n.ID)))
	if term := n.Term; term != nil {
		r.scalar(SmViewTerm.OID(), agent.Func(func() smi.Value { return smi.Counter64(term()) }))
	}
	return r.finish()
}

// registrar registers a group of objects all or nothing: after the first
// failure it registers nothing more, and finish removes what it did.
type registrar struct {
	tree *agent.Tree
	done []smi.OID
	err  error
}

func (r *registrar) scalar(oid smi.OID, s *agent.Scalar) {
	if r.err == nil {
		r.add(oid, r.tree.RegisterScalar(oid, s))
	}
}

func (r *registrar) table(t *agent.Table) {
	if r.err == nil {
		r.add(t.Entry(), r.tree.RegisterTable(t))
	}
}

func (r *registrar) handler(root smi.OID, h agent.Handler) {
	if r.err == nil {
		r.add(root, r.tree.Register(root, h))
	}
}

func (r *registrar) add(root smi.OID, err error) {
	if err != nil {
		r.err = err
		return
	}
	r.done = append(r.done, root)
}

func (r *registrar) finish() error {
	if r.err == nil {
		return nil
	}
	for _, root := range r.done {
		_ = r.tree.Unregister(root) // registered by us a moment ago
	}
	return r.err
}
