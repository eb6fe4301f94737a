package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// OIDs a notification carries or names (SNMPv2-MIB, RFC 3418).
var (
	OIDSysUpTime             = smi.OID{1, 3, 6, 1, 2, 1, 1, 3, 0}
	OIDSnmpTrapOID           = smi.OID{1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0}
	OIDAuthenticationFailure = smi.OID{1, 3, 6, 1, 6, 3, 1, 1, 5, 5}
)

// ErrNoSinks is returned by Notify when no trap sink is configured.
var ErrNoSinks = errors.New("snmp: no trap sinks configured")

// sysUpTime is the agent's notion of sysUpTime.0 in hundredths of a second.
func (a *Agent) sysUpTime() uint32 {
	if a.cfg.SysUpTime != nil {
		return a.cfg.SysUpTime()
	}
	return uint32(time.Since(a.start) / (10 * time.Millisecond))
}

// HasSinks reports whether any notification receiver is configured.
func (a *Agent) HasSinks() bool { return len(a.cfg.TrapSinks) > 0 || len(a.cfg.Sinks) > 0 }

// Notify sends a notification (RFC 3416 §4.2.6): sysUpTime.0 and
// snmpTrapOID.0 = trapOID first, then vbs, as an SNMPv2-Trap to every
// TrapSinks entry and to every Sinks entry as it says (an SNMPv2c or
// SNMPv3 trap, or an inform re-sent on its own goroutine until
// acknowledged: WaitInforms). It tries every sink and returns the errors
// of the traps that failed, joined.
func (a *Agent) Notify(ctx context.Context, trapOID smi.OID, vbs []smi.VarBind) error {
	if !a.HasSinks() {
		return ErrNoSinks
	}
	all := make([]smi.VarBind, 0, 2+len(vbs))
	all = append(all,
		smi.VarBind{Name: OIDSysUpTime, Value: smi.TimeTicks(a.sysUpTime())},
		smi.VarBind{Name: OIDSnmpTrapOID, Value: smi.ObjectID(trapOID)})
	all = append(all, vbs...)
	m := ber.CommunityMessage{
		Version:   ber.Version2c,
		Community: []byte(a.cfg.TrapCommunity.Reveal()),
		PDU:       ber.PDU{Type: ber.PDUTrapV2, RequestID: a.trapSeq.Add(1) & 0x7fffffff, VarBinds: all},
	}
	pkt, err := m.Encode()
	if err != nil {
		return fmt.Errorf("snmp: notification: %w", err)
	}
	if len(pkt) > MaxDatagram {
		return fmt.Errorf("snmp: notification of %d bytes exceeds %d", len(pkt), MaxDatagram)
	}
	errs := []error{a.notifySinks(ctx, all)}
	for _, sink := range a.cfg.TrapSinks {
		if err := a.sendTo(ctx, sink, pkt); err != nil {
			a.c.trapErrors.Add(1)
			errs = append(errs, fmt.Errorf("snmp: notify %s: %w", sink, err))
			continue
		}
		a.c.outTraps.Add(1)
	}
	return errors.Join(errs...)
}

// sendTo sends one datagram from an ephemeral port, as snmpd does.
// Notifications are rare (state changes), so a socket per send is cheap
// and needs no lifecycle.
func (a *Agent) sendTo(ctx context.Context, sink string, pkt []byte) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTrapTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", sink)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	_, err = conn.Write(pkt)
	return err
}

// authenticationFailure sends the authenticationFailure notification for
// a message with a bad community when snmpEnableAuthenTraps is enabled, at
// most once a second so a flood of bad packets is not multiplied.
func (a *Agent) authenticationFailure(ctx context.Context) {
	if a.authTraps.Load() != 1 || len(a.cfg.TrapSinks) == 0 {
		return
	}
	now := time.Now().UnixNano()
	last := a.lastAuth.Load()
	if now-last < int64(time.Second) || !a.lastAuth.CompareAndSwap(last, now) {
		return
	}
	if err := a.Notify(ctx, OIDAuthenticationFailure, nil); err != nil {
		a.log.WithError(err).Warn("authenticationFailure notification not sent")
	}
}
