package config_test

import (
	"testing"

	"github.com/smsnmpd/smsnmpd/agent/agentx"
	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/election"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// TestDefaultsAreTheLibraries ties every key of Default that a library
// defaults too to the library's default, so that a node started with an
// empty section runs as the libraries' own tests do, and a default changed
// in a library changes the configuration's. Most of them Default reads
// from the library; those of the frontends and the election it cannot
// (they import this package) are written twice and this test holds them
// together.
//
// Some defaults differ on purpose and are not here: the product's rmtp
// ports (7730, 7731; rmtp's own groups use 7377), directory.max_entries,
// publish_rate and publish_burst (the store's defaults are a library's
// generous bounds; the operator's are the rates the README measures),
// se.scan_interval and agentx.ping_interval (the libraries' 5 s and none).
func TestDefaultsAreTheLibraries(t *testing.T) {
	c := config.Default()
	ep := rmtp.DefaultConfig()
	coord := fanout.DefaultCoordinatorConfig()
	resp := fanout.DefaultResponderConfig()
	for _, k := range []struct {
		key       string
		got, want any
	}{
		{"rmtp.interface", c.RMTP.Interface, rmtp.DefaultInterface},
		{"rmtp.parent.interface", c.RMTP.Parent.Interface, rmtp.DefaultInterface},
		{"rmtp.ttl", c.RMTP.TTL, rmtp.DefaultMulticastTTL},
		{"rmtp.recv_buffer", c.RMTP.RecvBuffer, rmtp.DefaultReadBuffer},
		{"rmtp.heartbeat", c.RMTP.Heartbeat.Duration, ep.HelloInterval},
		{"rmtp.suspect_after", c.RMTP.SuspectAfter, ep.SuspectAfter},
		{"rmtp.down_after", c.RMTP.DownAfter, ep.DownAfter},
		{"rmtp.ack_interval", c.RMTP.AckInterval.Duration, ep.AckDelay},
		{"rmtp.max_message", c.RMTP.MaxMessage, ep.MaxMessage},
		{"rmtp.reassembly_per_peer", c.RMTP.ReassemblyPerPeer, ep.PeerMemory},
		{"fanout.read_deadline", c.Fanout.ReadDeadline.Duration, coord.Deadline},
		{"fanout.set_phase_deadline", c.Fanout.SetPhaseDeadline.Duration, coord.PhaseDeadline},
		{"fanout.walk_cache_ttl", c.Fanout.WalkCacheTTL.Duration, coord.SnapshotTTL},
		{"fanout.walk_cache_max", c.Fanout.WalkCacheMax, coord.SnapshotMemory},
		{"fanout.max_varbinds", c.Fanout.MaxVarbinds, coord.MaxVarBinds},
		{"fanout.reservation_ttl", c.Fanout.ReservationTTL.Duration, resp.ReservationTTL},
		{"fanout.reply_cache_ttl", c.Fanout.ReplyCacheTTL.Duration, resp.ReplyCacheTTL},
		{"fanout.reply_cache_size", c.Fanout.ReplyCacheSize, resp.ReplyCacheSize},
		{"se.local_agent.timeout", c.SE.LocalAgent.Timeout.Duration, fanout.DefaultLocalAgentTimeout},
		{"directory.max_key_len", c.Directory.MaxKeyLen, directory.DefaultMaxKey},
		{"directory.tombstone_ttl", c.Directory.TombstoneTTL.Duration, directory.DefaultTombstoneTTL},
		{"manager.takeover_after", c.Manager.TakeoverAfter.Duration, election.DefaultTakeoverAfter},
		{"agentx.priority", c.AgentX.Priority, int(agentx.DefaultPriority)},
		{"agentx.reconnect_max", c.AgentX.ReconnectMax.Duration, agentx.DefaultReconnectMax},
		{"snmp.max_message_size", c.SNMP.MaxMessageSize, snmp.MaxDatagram},
		{"snmp.max_inflight", c.SNMP.MaxInFlight, snmp.DefaultMaxInFlight},
		{"snmp.inform_timeout", c.SNMP.InformTimeout.Duration, snmp.DefaultInformTimeout},
		{"snmp.inform_retries", c.SNMP.InformRetries, snmp.DefaultInformRetries},
	} {
		if k.got != k.want {
			t.Errorf("%s: config's default %v, the library's %v", k.key, k.got, k.want)
		}
	}
}
