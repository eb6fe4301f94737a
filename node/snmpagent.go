package node

import (
	"encoding/hex"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent/snmp"
	"github.com/smsnmpd/smsnmpd/internal/config"
)

// snmpConfig is the built-in agent's configuration: [snmp], and with
// SNMPv3 users their passphrases and the engine, whose boots it
// increments in node.state_dir before anything answers.
func snmpConfig(cfg *config.Config, log logrus.FieldLogger) (snmp.Config, error) {
	c := snmp.FromConfig(cfg.SNMP)
	if len(cfg.SNMP.V3.Users) == 0 {
		return c, nil
	}
	users, err := snmp.UsersFromConfig(cfg.SNMP.V3)
	if err != nil {
		return c, err
	}
	engine, persistent, err := snmp.StartEngine(cfg.Node.StateDir)
	if err != nil {
		return c, err
	}
	c.Users, c.Engine = users, engine
	l := log.WithFields(logrus.Fields{"engine_id": hex.EncodeToString(engine.ID), "engine_boots": engine.Boots, "users": len(users)})
	if persistent {
		l.Info("SNMPv3 engine started")
	} else {
		l.Warn("SNMPv3 engine started with a random engine ID: no node.state_dir to keep it, so managers (and snmptrapd's createUser -e) must learn it anew after every restart")
	}
	return c, nil
}
