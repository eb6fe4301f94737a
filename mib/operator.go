package mib

import (
	"fmt"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// RegisterActivePeer puts smNodeActivePeer on tree: the node id of the
// active manager the node hears (itself on the active manager), 0 for
// none, read from activePeer on every request. An id the MIB cannot hold
// answers 0: a node that hears an active manager must not report one
// that does not exist.
func RegisterActivePeer(tree *agent.Tree, activePeer func() uint32) error {
	if activePeer == nil {
		return fmt.Errorf("%w: smNodeActivePeer needs a function", ErrInvalid)
	}
	return tree.RegisterScalar(SmNodeActivePeer.OID(), agent.Func(func() smi.Value {
		id := activePeer()
		if id > MaxNodeID {
			id = 0
		}
		return smi.Gauge32(id)
	}))
}

// engineName is smEngineName of a row: the name its heartbeats carried,
// "" without one.
func engineName(e fanout.Engine) string {
	if !e.HasInfo {
		return ""
	}
	n := e.Info.Name
	if len(n) > MaxEngineName {
		n = n[:MaxEngineName]
	}
	return n
}
