package mib

import "github.com/smsnmpd/smsnmpd/agent"

// The handlers of this package that answer from memory (snapshots the
// process keeps, the engine rows fed by heartbeats, the directory store):
// agent.Local, so a frontend serves them on its few workers at once and
// never counts them among the requests waiting on the farm. The farm's
// own handlers (smAggregate, smEngineProxy, smAllEngines, the engine
// contexts) are not: they wait for the SEs' answers.
var (
	_ agent.Local = (*groupHandler)(nil)
	_ agent.Local = (*engineTable)(nil)
	_ agent.Local = (*dirTable)(nil)
)

// AnswersFromMemory implements agent.Local.
func (*groupHandler) AnswersFromMemory() {}

// AnswersFromMemory implements agent.Local.
func (*engineTable) AnswersFromMemory() {}

// AnswersFromMemory implements agent.Local.
func (*dirTable) AnswersFromMemory() {}
