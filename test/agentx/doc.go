// Package agentxe2e holds end-to-end tests of the AgentX subagent that
// reach beyond its package: the shipped etc/snmpd-agentx.conf fragment
// loaded into a real snmpd, and a differential test against the built-in
// SNMP agent (agent/snmp) serving the same tree. The subagent's own
// checks against snmpd live in agent/agentx.
package agentxe2e
