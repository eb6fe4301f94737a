package snmp

import (
	"context"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// OIDSNMPGroup is SNMPv2-MIB's snmp group, 1.3.6.1.2.1.11.
var OIDSNMPGroup = smi.OID{1, 3, 6, 1, 2, 1, 11}

// RegisterSNMPGroup registers the objects of SNMPv2-MIB's snmp group that
// RFC 3418 keeps current (snmpInPkts, snmpInBadVersions,
// snmpInBadCommunityNames, snmpInBadCommunityUses, snmpInASNParseErrs,
// snmpEnableAuthenTraps, snmpSilentDrops, snmpProxyDrops) on t, answered
// from this agent's counters. snmpEnableAuthenTraps is read-write
// (enabled(1), disabled(2)); its value is not persisted.
func (a *Agent) RegisterSNMPGroup(t *agent.Tree) error {
	counter := func(sub uint32, v func() uint64) error {
		return t.RegisterScalar(OIDSNMPGroup.Append(sub), agent.Func(func() smi.Value {
			return smi.Counter32(uint32(v())) // Counter32 wraps, as the MIB says
		}))
	}
	c := &a.c
	for _, o := range []struct {
		sub uint32
		v   func() uint64
	}{
		{1, c.inPkts.Load},
		{3, c.inBadVersions.Load},
		{4, c.inBadCommunityNames.Load},
		{5, c.inBadCommunityUses.Load},
		{6, c.inASNParseErrs.Load},
		{31, c.silentDrops.Load},
		{32, c.proxyDrops.Load},
	} {
		if err := counter(o.sub, o.v); err != nil {
			return err
		}
	}
	if a.v3 != nil {
		if err := a.registerV3(t); err != nil {
			return err
		}
	}
	return t.RegisterScalar(OIDSNMPGroup.Append(30), &agent.Scalar{
		Type: smi.TypeInteger,
		Value: func(context.Context) (smi.Value, error) {
			return smi.Integer(a.authTraps.Load()), nil
		},
		Check: func(v smi.Value) error {
			if v.Int != 1 && v.Int != 2 {
				return smi.Errorf(smi.WrongValue, "snmpEnableAuthenTraps is enabled(1) or disabled(2)")
			}
			return nil
		},
		Set: func(_ context.Context, v smi.Value) error {
			a.authTraps.Store(int32(v.Int))
			return nil
		},
	})
}
