package mib

import (
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// The notifications' varbinds, after the sysUpTime.0 and snmpTrapOID.0
// that the agents' Notify put first (agent/v2c and agent/agentx).

// EngineNotification returns the notification for an engine event:
// smEngineUp or smEngineDown, with smEngineAddressType, smEngineAddress,
// smEngineState and smEngineLastStatus of the engine's row (instance
// smEngineIndex).
func EngineNotification(ev fanout.EngineEvent) (trapOID smi.OID, vbs []smi.VarBind) {
	trapOID = SmEngineDown.OID()
	if ev.Up {
		trapOID = SmEngineUp.OID()
	}
	e := ev.Engine
	idx := uint32(e.ID)
	typ, addr := inetAddress(e.Addr.Addr())
	vbs = []smi.VarBind{
		{Name: SmEngineAddressType.OID().Append(idx), Value: smi.Integer(typ)},
		{Name: SmEngineAddress.OID().Append(idx), Value: smi.OctetString(addr)},
		{Name: SmEngineState.OID().Append(idx), Value: smi.Integer(int32(e.State))},
		{Name: SmEngineLastStatus.OID().Append(idx), Value: smi.Integer(int32(LastStatusOf(e)))},
	}
	return trapOID, vbs
}

// TakeoverNotification returns smManagerTakeover for the manager node
// that took over with term.
func TakeoverNotification(node uint32, term uint64) (trapOID smi.OID, vbs []smi.VarBind) {
	return SmManagerTakeover.OID(), []smi.VarBind{
		{Name: SmNodeID.OID().Append(0), Value: smi.Gauge32(node)},
		{Name: SmViewTerm.OID().Append(0), Value: smi.Counter64(term)},
	}
}

// TransferAborted describes an aborted transfer for smTransferAborted.
type TransferAborted struct {
	Sender    uint32 // node id of the transfer's sender
	MessageID uint64
	Complete  bool   // every member confirmed the abort
	Aborts    uint64 // smTransportAborts of this node now
}

// TransferAbortedNotification returns smTransferAborted.
func TransferAbortedNotification(t TransferAborted) (trapOID smi.OID, vbs []smi.VarBind) {
	return SmTransferAborted.OID(), []smi.VarBind{
		{Name: SmTransferSender.OID().Append(0), Value: smi.Gauge32(t.Sender)},
		{Name: SmTransferMessageID.OID().Append(0), Value: smi.Counter64(t.MessageID)},
		{Name: SmTransferComplete.OID().Append(0), Value: truthValue(t.Complete)},
		{Name: SmTransportAborts.OID().Append(0), Value: smi.Counter64(t.Aborts)},
	}
}
