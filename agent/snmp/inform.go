package snmp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/agent/snmp/usm"
	"github.com/smsnmpd/smsnmpd/internal/ber"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// This file sends notifications to Config.Sinks: SNMPv2c or SNMPv3
// traps (one datagram), and informs, re-sent until the receiver answers
// or the retries run out (RFC 3416 §4.2.7). An SNMPv3 inform first
// discovers the receiver's engine (it is the authoritative one, RFC 3414
// §4) and localizes the user's keys to it, once per engine ID.

// Sink is a notification receiver.
type Sink struct {
	Address string // "host:port", UDP
	// Community sends SNMPv2c; User (one of Config.Users) SNMPv3 at that
	// user's level.
	Community config.Secret
	User      string
	// Inform asks for an acknowledgement: re-sent every InformTimeout,
	// InformRetries times at most.
	Inform bool
}

// Defaults of the informs' policy.
const (
	DefaultInformTimeout = time.Second
	DefaultInformRetries = 3
	// MaxInformsInFlight bounds the informs waiting for their
	// acknowledgement; beyond it a new one is counted as failed.
	MaxInformsInFlight = 64
	// maxInformEngines bounds the receivers' localized keys kept.
	maxInformEngines = 64
)

// ErrInform is returned (joined) for an inform that was not acknowledged.
var ErrInform = errors.New("snmp: inform not acknowledged")

// informer is the agent's state for informs in flight.
type informer struct {
	wg   sync.WaitGroup
	sem  chan struct{}
	mu   sync.Mutex
	keys map[string]*usm.Keys // user + "\x00" + receiver engine ID
}

func (in *informer) localized(u *usmUser, engineID []byte) (*usm.Keys, error) {
	key := u.Name + "\x00" + string(engineID)
	in.mu.Lock()
	defer in.mu.Unlock()
	if k := in.keys[key]; k != nil {
		return k, nil
	}
	k, err := usm.NewKeys(u.Auth, []byte(u.AuthPass.Reveal()), u.Priv, []byte(u.PrivPass.Reveal()), engineID)
	if err != nil {
		return nil, err
	}
	if len(in.keys) >= maxInformEngines {
		clear(in.keys) // receivers changing engine IDs without end: start over
	}
	in.keys[key] = k
	return k, nil
}

// notifySinks sends the notification vbs (sysUpTime.0 and snmpTrapOID.0
// first) to every Config.Sinks entry: traps at once, informs on their
// own goroutines (waited for by Wait). It returns the traps' errors.
func (a *Agent) notifySinks(ctx context.Context, vbs []smi.VarBind) error {
	var errs []error
	for _, s := range a.cfg.Sinks {
		if s.Inform {
			select {
			case a.inform.sem <- struct{}{}:
			default:
				a.c.informFailures.Add(1)
				errs = append(errs, fmt.Errorf("%w: %s: %d informs already waiting", ErrInform, s.Address, MaxInformsInFlight))
				continue
			}
			a.inform.wg.Add(1)
			go func() {
				defer a.inform.wg.Done()
				defer func() { <-a.inform.sem }()
				if err := a.sendInform(ctx, s, vbs); err != nil {
					a.c.informFailures.Add(1)
					a.log.WithError(err).WithField("sink", s.Address).Warn("inform not acknowledged")
					return
				}
				a.c.informsAcked.Add(1)
			}()
			continue
		}
		pkt, err := a.encodeNotification(s, ber.PDUTrapV2, a.trapSeq.Add(1)&0x7fffffff, vbs, nil)
		if err == nil {
			err = a.sendTo(ctx, s.Address, pkt)
		}
		if err != nil {
			a.c.trapErrors.Add(1)
			errs = append(errs, fmt.Errorf("snmp: notify %s: %w", s.Address, err))
			continue
		}
		a.c.outTraps.Add(1)
	}
	return errors.Join(errs...)
}

// WaitInforms waits for the informs in flight to be acknowledged or to
// give up (each within InformTimeout × (InformRetries+1) and the
// discovery), or for ctx.
func (a *Agent) WaitInforms(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.inform.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// remote is a receiver's engine, as its discovery report told it.
type remote struct {
	id          []byte
	boots, time int32
	at          time.Time // when time was learnt
	keys        *usm.Keys
}

func (r *remote) now() int32 { return r.time + int32(time.Since(r.at)/time.Second) }

// encodeNotification encodes a notification PDU for s. For SNMPv3, rem
// is the authoritative engine (nil for a trap: ours).
func (a *Agent) encodeNotification(s Sink, t ber.PDUType, rid int32, vbs []smi.VarBind, rem *remote) ([]byte, error) {
	p := &ber.PDU{Type: t, RequestID: rid, VarBinds: vbs}
	if s.User == "" {
		m := ber.CommunityMessage{Version: ber.Version2c, Community: []byte(s.Community.Reveal()), PDU: *p}
		b, err := m.Encode()
		if err == nil && len(b) > MaxDatagram {
			err = fmt.Errorf("snmp: notification of %d bytes exceeds %d", len(b), MaxDatagram)
		}
		return b, err
	}
	u := a.v3.users[s.User]
	if u == nil {
		return nil, fmt.Errorf("%w: sink %s: no SNMPv3 user %q", ErrConfig, s.Address, s.User)
	}
	rep := &usmReply{a: a, m: a.v3, msgID: rid, userName: []byte(u.Name), requestID: rid, user: u, level: u.level,
		boots: a.v3.engine.Boots, time: a.v3.engineTime(), reportable: true}
	if rem != nil {
		rep.engineID, rep.keys, rep.boots, rep.time = rem.id, rem.keys, rem.boots, rem.now()
	}
	return rep.encode(p)
}

// sendInform sends one inform to s and waits for its acknowledgement,
// re-sending it every InformTimeout at most InformRetries times.
func (a *Agent) sendInform(ctx context.Context, s Sink, vbs []smi.VarBind) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", s.Address)
	if err != nil {
		return err
	}
	defer conn.Close()
	ex := &exchange{conn: conn, timeout: a.cfg.InformTimeout, retries: a.cfg.InformRetries}
	var rem *remote
	if s.User != "" {
		if rem, err = a.discover(ex, s); err != nil {
			return fmt.Errorf("%w: %s: discovery: %w", ErrInform, s.Address, err)
		}
	}
	for resync := 0; ; resync++ {
		rid := randomID()
		pkt, err := a.encodeNotification(s, ber.PDUInform, rid, vbs, rem)
		if err != nil {
			return err
		}
		resp, err := ex.roundTrip(pkt, func(b []byte) (bool, error) { return a.informAnswer(b, s, rid, rem) })
		if errors.Is(err, errResync) && resync == 0 {
			continue // our idea of its clock was off: once more with the report's
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInform, s.Address, err)
		}
		_ = resp
		return nil
	}
}

var errResync = errors.New("snmp: receiver not in time window")

// informAnswer reports whether b answers the inform rid (a Response with
// its request-id, authenticated as sent), or a report that ends it.
func (a *Agent) informAnswer(b []byte, s Sink, rid int32, rem *remote) (bool, error) {
	if s.User == "" {
		m, err := ber.DecodeCommunityMessage(b)
		return err == nil && m.PDU.Type == ber.PDUResponse && m.PDU.RequestID == rid, nil
	}
	m, err := ber.DecodeV3Message(b)
	if err != nil || m.MsgID != rid {
		return false, nil
	}
	sp, err := ber.DecodeUSMParams(m.SecurityParameters)
	if err != nil {
		return false, nil
	}
	level := m.Flags & (ber.FlagAuth | ber.FlagPriv)
	if level&ber.FlagAuth != 0 && (len(sp.AuthParams) != rem.keys.Auth.MACLen() || !rem.keys.Verify(b, m.SecurityOffset+sp.AuthOffset)) {
		return false, nil // not from the receiver: keep waiting
	}
	scoped := m.ScopedPDU
	if level&ber.FlagPriv != 0 {
		if scoped, err = rem.keys.Decrypt(m.Encrypted, sp.Boots, sp.Time, sp.PrivParams); err != nil {
			return false, nil
		}
	}
	sc, err := ber.DecodeScopedPDU(scoped)
	if err != nil {
		return false, nil
	}
	if sc.PDU.Type == ber.PDUReport && len(sc.PDU.VarBinds) > 0 {
		if level&ber.FlagAuth != 0 && sc.PDU.VarBinds[0].Name.Equal(OIDUsmStats.Append(2, 0)) {
			rem.boots, rem.time, rem.at = sp.Boots, sp.Time, time.Now()
			return true, errResync
		}
		return true, fmt.Errorf("report %v", sc.PDU.VarBinds[0].Name)
	}
	return sc.PDU.Type == ber.PDUResponse && sc.PDU.RequestID == rid, nil
}

// discover learns the receiver's engine ID, boots and time (RFC 3414 §4:
// an unauthenticated probe, answered by an unknownEngineID report), and
// the user's keys localized to it.
func (a *Agent) discover(ex *exchange, s Sink) (*remote, error) {
	u := a.v3.users[s.User]
	if u == nil {
		return nil, fmt.Errorf("no SNMPv3 user %q", s.User)
	}
	rid := randomID()
	sp := ber.USMParams{AuthParams: []byte{}, PrivParams: []byte{}}
	msg := ber.V3Message{MsgID: rid, MaxSize: int32(a.cfg.MaxMessageSize), Flags: ber.FlagReportable, SecurityModel: ber.SecurityModelUSM}
	msg.SecurityParameters, _ = sp.Append(nil)
	sc := ber.ScopedPDU{PDU: ber.PDU{Type: ber.PDUGet, RequestID: rid}}
	msg.ScopedPDU, _ = sc.Append(nil)
	probe, _ := msg.Append(nil)
	var rem *remote
	_, err := ex.roundTrip(probe, func(b []byte) (bool, error) {
		m, err := ber.DecodeV3Message(b)
		if err != nil || m.MsgID != rid || m.ScopedPDU == nil {
			return false, nil
		}
		sp, err := ber.DecodeUSMParams(m.SecurityParameters)
		if err != nil || len(sp.EngineID) < ber.MinEngineID {
			return false, nil
		}
		rem = &remote{id: slices.Clone(sp.EngineID), boots: sp.Boots, time: sp.Time, at: time.Now()}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if rem.keys, err = a.inform.localized(u, rem.id); err != nil {
		return nil, err
	}
	return rem, nil
}

// exchange sends a datagram and waits for the answer that done accepts,
// re-sending it every timeout, retries times at most.
type exchange struct {
	conn    net.Conn
	timeout time.Duration
	retries int
}

var errNoAnswer = errors.New("no answer")

func (ex *exchange) roundTrip(pkt []byte, done func([]byte) (bool, error)) ([]byte, error) {
	buf := make([]byte, MaxDatagram)
	for try := 0; try <= ex.retries; try++ {
		if _, err := ex.conn.Write(pkt); err != nil {
			// A closed port answers ICMP, which a connected socket reports
			// here on the next write: the receiver is not there yet.
			var ne net.Error
			if !errors.As(err, &ne) {
				time.Sleep(min(ex.timeout, 100*time.Millisecond))
				continue
			}
		}
		deadline := time.Now().Add(ex.timeout)
		for {
			_ = ex.conn.SetReadDeadline(deadline)
			n, err := ex.conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // re-send
				}
				if time.Now().Before(deadline) {
					time.Sleep(time.Until(deadline)) // refused: wait out the timeout
				}
				break
			}
			ok, err := done(buf[:n])
			if ok {
				return buf[:n], err
			}
		}
	}
	return nil, errNoAnswer
}

func randomID() int32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int32(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
}
