package snmp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/snmp/usm"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file is SNMPv3's message processing (RFC 3412 §7.2) with the
// User-based Security Model (RFC 3414 §3.2) as the agent's authoritative
// engine: discovery, authentication, the 150-second time window,
// decryption, the reports of each failure, and the way back. The
// cryptography is package usm's; keys are localized once, in New.

// TimeWindow is RFC 3414 §3.2.7's: a message whose engine time differs
// from ours by more is not in the time window.
const TimeWindow = 150

// User is an SNMPv3 user of this agent.
type User struct {
	Name     string
	Auth     usm.AuthProtocol // usm.NoAuth: noAuthNoPriv, only when configured so
	AuthPass config.Secret
	Priv     usm.PrivProtocol
	PrivPass config.Secret
	// Write grants SET.
	Write bool
	// Contexts the user may name ("" is the default context); nil allows
	// the default context only.
	Contexts []string
	// Sources, when set, are the only addresses the user's requests are
	// accepted from.
	Sources []netip.Prefix
	// Read and WriteSubtrees, when set, are the only subtrees the user
	// reads and (with Write) writes: a small VACM view.
	Read, WriteSubtrees []smi.OID
}

// OIDs of SNMPv3's objects this agent serves and reports.
var (
	OIDSnmpEngine      = smi.OID{1, 3, 6, 1, 6, 3, 10, 2, 1} // snmpEngineID .1, Boots .2, Time .3, MaxMessageSize .4
	OIDUsmStats        = smi.OID{1, 3, 6, 1, 6, 3, 15, 1, 1} // usmStats*: .1 unsupportedSecLevels .. .6 decryptionErrors
	OIDSnmpMPDStats    = smi.OID{1, 3, 6, 1, 6, 3, 11, 2, 1} // .1 unknownSecurityModels, .2 invalidMsgs, .3 unknownPDUHandlers
	OIDSnmpUnknownCtxs = smi.OID{1, 3, 6, 1, 6, 3, 12, 1, 5} // snmpUnknownContexts
)

// usmUser is a configured user with its keys localized to our engine.
type usmUser struct {
	User
	keys  *usm.Keys
	level byte // the flags (ber.FlagAuth, ber.FlagPriv) its requests must carry
	view  *view
}

// usmModel is the agent's SNMPv3 state.
type usmModel struct {
	engine Engine
	start  time.Time
	now    func() time.Time
	users  map[string]*usmUser
	salt   atomic.Uint64

	unsupportedSecLevels, notInTimeWindows, unknownUserNames, unknownEngineIDs,
	wrongDigests, decryptionErrors atomic.Uint64
	unknownSecurityModels, invalidMsgs, unknownPDUHandlers, unknownContexts atomic.Uint64
}

func newUSM(cfg *Config) (*usmModel, error) {
	if len(cfg.Users) == 0 {
		return nil, nil
	}
	if n := len(cfg.Engine.ID); n < ber.MinEngineID || n > ber.MaxEngineID {
		return nil, fmt.Errorf("%w: engine ID of %d octets (5..32)", ErrConfig, n)
	}
	m := &usmModel{engine: cfg.Engine, now: cfg.Now, users: make(map[string]*usmUser)}
	if m.now == nil {
		m.now = time.Now
	}
	m.start = m.now()
	var salt [8]byte
	_, _ = rand.Read(salt[:])
	m.salt.Store(binary.BigEndian.Uint64(salt[:]))
	for _, u := range cfg.Users {
		if u.Name == "" || len(u.Name) > ber.MaxUserName {
			return nil, fmt.Errorf("%w: user name %q (1..32 octets)", ErrConfig, u.Name)
		}
		if _, dup := m.users[u.Name]; dup {
			return nil, fmt.Errorf("%w: user %q twice", ErrConfig, u.Name)
		}
		k, err := usm.NewKeys(u.Auth, []byte(u.AuthPass.Reveal()), u.Priv, []byte(u.PrivPass.Reveal()), cfg.Engine.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: user %q: %w", ErrConfig, u.Name, err)
		}
		uu := &usmUser{User: u, keys: k, view: newView(u.Read, u.WriteSubtrees)}
		if u.Auth != usm.NoAuth {
			uu.level |= ber.FlagAuth
		}
		if u.Priv != usm.NoPriv {
			uu.level |= ber.FlagPriv
		}
		m.users[u.Name] = uu
	}
	return m, nil
}

// engineTime is snmpEngineTime: seconds since the agent started.
func (m *usmModel) engineTime() int32 {
	return int32(min(m.now().Sub(m.start)/time.Second, math.MaxInt32))
}

// usmIncoming processes an SNMPv3 message: a request for the dispatcher,
// or a Report to send at once (discovery and the failures RFC 3414
// reports), or nothing.
func (a *Agent) usmIncoming(_ context.Context, pkt []byte, from netip.AddrPort) (*request, []byte) {
	m := a.v3
	if m == nil {
		a.c.inBadVersions.Add(1) // no SNMPv3 user configured: not a version we serve
		return nil, nil
	}
	msg, err := ber.DecodeV3Message(pkt)
	if err != nil {
		a.c.inASNParseErrs.Add(1)
		return nil, nil
	}
	if msg.MsgID < 0 || msg.MaxSize < MinMessageSize || msg.Flags&(ber.FlagAuth|ber.FlagPriv) == ber.FlagPriv {
		m.invalidMsgs.Add(1) // RFC 3412 §7.2 steps 2-3, §6.4: privacy without authentication
		return nil, nil
	}
	if msg.SecurityModel != ber.SecurityModelUSM {
		m.unknownSecurityModels.Add(1)
		return nil, nil
	}
	sp, err := ber.DecodeUSMParams(msg.SecurityParameters)
	if err != nil {
		a.c.inASNParseErrs.Add(1)
		return nil, nil
	}
	rep := &usmReply{a: a, m: m, msgID: msg.MsgID, maxSize: msg.MaxSize, userName: sp.UserName,
		reportable: msg.Flags&ber.FlagReportable != 0, boots: m.engine.Boots, time: m.engineTime()}
	if msg.ScopedPDU != nil {
		// A plaintext request's id goes into its reports (RFC 3412 §7.1
		// step 3); an encrypted one's is unknown until decrypted.
		if s, err := ber.DecodeScopedPDU(msg.ScopedPDU); err == nil {
			rep.requestID = s.PDU.RequestID
			rep.contextName = s.ContextName
		}
	}
	// RFC 3414 §3.2 step 3: an engine ID that is not ours (the discovery
	// probe carries none) is answered with ours, unauthenticated.
	if !slices.Equal(sp.EngineID, m.engine.ID) {
		m.unknownEngineIDs.Add(1)
		return nil, rep.report(OIDUsmStats.Append(4, 0), &m.unknownEngineIDs, 0)
	}
	u := m.users[string(sp.UserName)]
	if u == nil {
		m.unknownUserNames.Add(1)
		return nil, rep.report(OIDUsmStats.Append(3, 0), &m.unknownUserNames, 0)
	}
	if len(u.Sources) > 0 && !allowed(u.Sources, from) {
		a.c.accessRefused.Add(1) // no report: the source may not even learn the user exists
		return nil, nil
	}
	level := msg.Flags & (ber.FlagAuth | ber.FlagPriv)
	if level != u.level {
		// Below the user's level, or above what it has keys for.
		m.unsupportedSecLevels.Add(1)
		return nil, rep.report(OIDUsmStats.Append(1, 0), &m.unsupportedSecLevels, 0)
	}
	if level&ber.FlagAuth != 0 {
		if len(sp.AuthParams) != u.keys.Auth.MACLen() || !u.keys.Verify(pkt, msg.SecurityOffset+sp.AuthOffset) {
			m.wrongDigests.Add(1)
			return nil, rep.report(OIDUsmStats.Append(5, 0), &m.wrongDigests, 0)
		}
		rep.user = u
		// §3.2 step 7: the time window, as the authoritative engine.
		if sp.Boots != m.engine.Boots || sp.Boots == math.MaxInt32 || abs(int64(sp.Time)-int64(rep.time)) > TimeWindow {
			m.notInTimeWindows.Add(1)
			// This report is authenticated, so the manager can trust our
			// boots and time and resynchronize.
			return nil, rep.report(OIDUsmStats.Append(2, 0), &m.notInTimeWindows, ber.FlagAuth)
		}
	}
	scoped := msg.ScopedPDU
	if level&ber.FlagPriv != 0 {
		if msg.Encrypted == nil {
			m.decryptionErrors.Add(1)
			return nil, rep.report(OIDUsmStats.Append(6, 0), &m.decryptionErrors, 0)
		}
		plain, err := u.keys.Decrypt(msg.Encrypted, sp.Boots, sp.Time, sp.PrivParams)
		if err == nil {
			_, err = ber.DecodeScopedPDU(plain)
		}
		if err != nil {
			m.decryptionErrors.Add(1)
			return nil, rep.report(OIDUsmStats.Append(6, 0), &m.decryptionErrors, 0)
		}
		scoped = plain
	} else if scoped == nil {
		a.c.inASNParseErrs.Add(1) // encrypted data without the privacy flag
		return nil, nil
	}
	s, err := ber.DecodeScopedPDU(scoped)
	if err != nil {
		a.c.inASNParseErrs.Add(1)
		return nil, nil
	}
	rep.requestID, rep.contextName, rep.level = s.PDU.RequestID, s.ContextName, level
	switch s.PDU.Type {
	case ber.PDUGet, ber.PDUGetNext, ber.PDUGetBulk, ber.PDUSet:
	default: // Response, Trap, Inform, Report: not for a command responder
		a.c.unsupportedPDUs.Add(1)
		return nil, nil
	}
	if len(s.ContextEngineID) > 0 && !slices.Equal(s.ContextEngineID, m.engine.ID) {
		m.unknownPDUHandlers.Add(1)
		return nil, rep.report(OIDSnmpMPDStats.Append(3, 0), &m.unknownPDUHandlers, level)
	}
	tree := a.contexts.Tree(string(s.ContextName))
	if tree == nil || !u.mayUse(string(s.ContextName)) {
		m.unknownContexts.Add(1)
		return nil, rep.report(OIDSnmpUnknownCtxs.Append(0), &m.unknownContexts, level)
	}
	acc := accessRead
	if u.Write {
		acc = accessWrite
	}
	ur := &usmRequest{out: *rep}
	ur.request = request{pdu: s.PDU, tree: tree, acc: acc, view: u.view, out: &ur.out, denied: &a.c.accessRefused}
	ur.request.maxPDU = ur.out.maxPDU(min(a.cfg.MaxMessageSize, int(msg.MaxSize)))
	return &ur.request, nil
}

type usmRequest struct {
	request
	out usmReply
}

func (u *usmUser) mayUse(ctx string) bool {
	if u.Contexts == nil {
		return ctx == ""
	}
	return slices.Contains(u.Contexts, ctx)
}

func allowed(nets []netip.Prefix, from netip.AddrPort) bool {
	a := from.Addr().Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// usmReply is the way back of one SNMPv3 message (its response or a
// report, at the level and with the user the request had), or a
// notification (v3message.go): an SNMPv3 message to encode.
type usmReply struct {
	a           *Agent
	m           *usmModel
	msgID       int32
	maxSize     int32
	userName    []byte
	contextName []byte
	requestID   int32
	reportable  bool
	user        *usmUser // nil: unauthenticated
	level       byte
	boots, time int32
	// engineID is the authoritative engine's (nil: ours); keys, when set,
	// are user's localized to it (an inform's receiver).
	engineID []byte
	keys     *usm.Keys
}

func (rep *usmReply) authEngine() []byte {
	if rep.engineID != nil {
		return rep.engineID
	}
	return rep.m.engine.ID
}

func (rep *usmReply) userKeys() *usm.Keys {
	if rep.keys != nil {
		return rep.keys
	}
	return rep.user.keys
}

// report returns a Report PDU carrying counter (already incremented) at
// level (0, or ber.FlagAuth with rep.user's keys), or nil when the
// request was not reportable (RFC 3412 §7.1: no report for a
// non-reportable PDU).
func (rep *usmReply) report(oid smi.OID, counter *atomic.Uint64, level byte) []byte {
	if !rep.reportable {
		return nil
	}
	rep.level = level
	if level == 0 {
		rep.user = nil
		rep.userName = rep.userName[:min(len(rep.userName), ber.MaxUserName)]
	}
	p := &ber.PDU{Type: ber.PDUReport, RequestID: rep.requestID,
		VarBinds: []smi.VarBind{{Name: oid, Value: smi.Counter32(uint32(counter.Load()))}}}
	b, err := rep.encode(p)
	if err != nil {
		return nil // not reached: a one-varbind report always encodes
	}
	return b
}

func (rep *usmReply) params() ber.USMParams {
	p := ber.USMParams{EngineID: rep.authEngine(), Boots: rep.boots, Time: rep.time, UserName: rep.userName,
		AuthParams: []byte{}, PrivParams: []byte{}}
	if rep.level&ber.FlagAuth != 0 {
		p.AuthParams = make([]byte, rep.userKeys().Auth.MACLen())
	}
	if rep.level&ber.FlagPriv != 0 {
		p.PrivParams = make([]byte, 8)
	}
	return p
}

func (rep *usmReply) scoped(p *ber.PDU) ber.ScopedPDU {
	// The context is always ours: a notification's data come from here.
	return ber.ScopedPDU{ContextEngineID: rep.m.engine.ID, ContextName: rep.contextName, PDU: *p}
}

func (rep *usmReply) maxPDU(limit int) int {
	sp := rep.params()
	msg := ber.V3Message{MsgID: rep.msgID, MaxSize: int32(rep.a.cfg.MaxMessageSize), Flags: rep.level,
		SecurityModel: ber.SecurityModelUSM, SecurityParameters: make([]byte, sp.Len())}
	s := rep.scoped(&ber.PDU{})
	return s.MaxPDULen(msg.MaxScopedPDULen(limit))
}

func (rep *usmReply) encode(p *ber.PDU) ([]byte, error) {
	s := rep.scoped(p)
	plain, err := s.Append(nil)
	if err != nil {
		return nil, err
	}
	sp := rep.params()
	flags := rep.level
	if rep.reportable && p.Type.Confirmed() {
		flags |= ber.FlagReportable // an InformRequest we send
	}
	msg := ber.V3Message{MsgID: rep.msgID, MaxSize: int32(rep.a.cfg.MaxMessageSize), Flags: flags,
		SecurityModel: ber.SecurityModelUSM}
	if rep.level&ber.FlagPriv != 0 {
		binary.BigEndian.PutUint64(sp.PrivParams, rep.m.salt.Add(1))
		msg.Encrypted = rep.userKeys().Encrypt(plain, sp.Boots, sp.Time, sp.PrivParams)
	} else {
		msg.ScopedPDU = plain
	}
	var authOff int
	msg.SecurityParameters, authOff = sp.Append(nil)
	out, secOff := msg.Append(make([]byte, 0, msg.Len()))
	if rep.level&ber.FlagAuth != 0 {
		rep.userKeys().Sign(out, secOff+authOff)
	}
	return out, nil
}

// errNoV3 is returned by RegisterSNMPGroup's v3 half with no users.
var errNoV3 = errors.New("snmp: SNMPv3 is not configured")

// registerV3 registers snmpEngine (SNMP-FRAMEWORK-MIB), usmStats
// (SNMP-USER-BASED-SM-MIB), snmpMPDStats (SNMP-MPD-MIB) and
// snmpUnknownContexts (SNMP-TARGET-MIB) on t.
func (a *Agent) registerV3(t *agent.Tree) error {
	m := a.v3
	if m == nil {
		return errNoV3
	}
	for _, o := range []struct {
		oid smi.OID
		v   func() smi.Value
	}{
		{OIDSnmpEngine.Append(1), func() smi.Value { return smi.OctetString(m.engine.ID) }},
		{OIDSnmpEngine.Append(2), func() smi.Value { return smi.Integer(m.engine.Boots) }},
		{OIDSnmpEngine.Append(3), func() smi.Value { return smi.Integer(m.engineTime()) }},
		{OIDSnmpEngine.Append(4), func() smi.Value { return smi.Integer(int32(a.cfg.MaxMessageSize)) }},
	} {
		if err := t.RegisterScalar(o.oid, agent.Func(o.v)); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		oid smi.OID
		c   *atomic.Uint64
	}{
		{OIDUsmStats.Append(1), &m.unsupportedSecLevels}, {OIDUsmStats.Append(2), &m.notInTimeWindows},
		{OIDUsmStats.Append(3), &m.unknownUserNames}, {OIDUsmStats.Append(4), &m.unknownEngineIDs},
		{OIDUsmStats.Append(5), &m.wrongDigests}, {OIDUsmStats.Append(6), &m.decryptionErrors},
		{OIDSnmpMPDStats.Append(1), &m.unknownSecurityModels}, {OIDSnmpMPDStats.Append(2), &m.invalidMsgs},
		{OIDSnmpMPDStats.Append(3), &m.unknownPDUHandlers}, {OIDSnmpUnknownCtxs, &m.unknownContexts},
	} {
		v := c.c
		if err := t.RegisterScalar(c.oid, agent.Func(func() smi.Value { return smi.Counter32(uint32(v.Load())) })); err != nil {
			return err
		}
	}
	return nil
}
