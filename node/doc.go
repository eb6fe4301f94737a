// Package node is one running smsnmpd node: a service engine (SE) or a
// service manager (SM or BSM) of any level, built from its configuration.
// It wires the packages below it together and owns what a node does
// beyond them: the role policy (a manager's northbound role follows the
// election: smNodeRole, the AgentX registration priority, upward
// forwarding only while active, smManagerTakeover), the persistence of its
// state in node.state_dir (system.json, the term file, an SE's published
// entries with their save loop, all through internal/statefile), the
// directory's catch-up at start, the parent link and lookups of the 4-level
// hierarchy, the control socket's commands, and Snapshot: what an operator
// sees of the node (`smsnmpd status`, the status page, /metrics).
//
// Life: New builds the trees, binds the sockets and joins the farm (an
// error an operator can fix is reported before anything serves, and what
// had started is stopped again); Run serves the northbound frontends (the
// built-in agent, the AgentX subagent) until its context ends; Shutdown
// stops everything, last started first, within its context (ShutdownGrace
// is what SIGTERM allows). Several nodes may run in one process (the demo,
// tests): a node keeps no global state.
//
// It does not own the protocols (rmtp, fanout, directory), the MIB's
// objects (mib), the agents (agent/...), the election (internal/election)
// or the configuration's syntax and defaults (internal/config); nor flags,
// signals or logging set-up, which are cmd/smsnmpd's.
package node
