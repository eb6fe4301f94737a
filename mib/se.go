package mib

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/hoststat"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// AdminState is smSeAdminState. The numbers are the MIB's enumeration:
// append-only.
type AdminState int32

// Administrative states.
const (
	InService    AdminState = 1
	Drain        AdminState = 2
	OutOfService AdminState = 3
)

var adminStateNames = [...]string{"", "inService", "drain", "outOfService"}

// String returns the MIB label ("drain").
func (a AdminState) String() string {
	if a.Valid() {
		return adminStateNames[a]
	}
	return "AdminState(" + strconv.Itoa(int(a)) + ")"
}

// Valid reports whether a is one of the MIB's states.
func (a AdminState) Valid() bool { return a >= InService && a <= OutOfService }

// ParseAdminState parses a MIB label ("drain") or its number ("2").
func ParseAdminState(s string) (AdminState, error) {
	for i, n := range adminStateNames {
		if n != "" && n == s {
			return AdminState(i), nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && AdminState(n).Valid() {
		return AdminState(n), nil
	}
	return 0, fmt.Errorf("%w: smSeAdminState %q", ErrInvalid, s)
}

// Limits and defaults of smSeWeight.
const (
	// MaxSeWeight is the largest weight the MIB allows (0..1000).
	MaxSeWeight = 1000
	// DefaultSeWeight is the weight of an engine that was never given
	// one (the MIB's DEFVAL), lowered to its max_weight if that is less.
	DefaultSeWeight = 100
)

// Store keys of the engine's writable objects: their MIB descriptors.
const (
	KeySeAdminState = "smSeAdminState"
	KeySeWeight     = "smSeWeight"
)

// HostStats is where an engine reads its host's numbers;
// *hoststat.Reader is the real one.
type HostStats interface {
	Load() (hoststat.Load, error)
	Memory() (hoststat.Memory, error)
	Net() (hoststat.Net, error)
	Uptime() (time.Duration, error)
}

// SEConfig is what an engine's smSe group reports.
type SEConfig struct {
	// MaxWeight is the engine's max_weight: a SET of smSeWeight above it
	// is refused with wrongValue. 0 = MaxSeWeight; to keep an engine from
	// taking requests, set smSeAdminState instead.
	MaxWeight uint32
	// Weight and AdminState are the values served until one is SET and
	// kept by Store (which takes precedence from then on, across
	// restarts). Zero values: DefaultSeWeight (at most MaxWeight) and
	// InService.
	Weight     uint32
	AdminState AdminState
	// Store keeps SET values across restarts, under KeySeAdminState and
	// KeySeWeight; nil = they last until exit.
	Store Store

	// Requests, BytesOut and ContentCount are the engine's own numbers
	// (smSeRequests, smSeBytesOut, smSeContentCount), read on every
	// request. A nil function leaves its object out.
	Requests     func() uint64
	BytesOut     func() uint64
	ContentCount func() uint64

	// Name is the engine's sysName, carried in its heartbeats
	// (smEngineName on its managers); nil = none.
	Name func() string

	// Host reads the host's numbers; nil = &hoststat.Reader{} (/proc). An
	// object whose read fails answers noSuchInstance (a host without
	// /proc/loadavg has no load to report), not an error that would fail
	// every other varbind of the request.
	Host HostStats
}

// SE is a registered smSe group.
type SE struct {
	max   uint32
	store Store
	host  HostStats

	requests, bytesOut, contentCount func() uint64
	name                             func() string

	mu     sync.Mutex
	weight uint32
	admin  AdminState
}

// RegisterSE puts the smSe group on tree: smSeAdminState and smSeWeight
// (read-write, kept by cfg.Store; a SET is answered after the store kept
// it), and the read-only numbers, read live on every request. Nothing is
// registered when it fails.
func RegisterSE(tree *agent.Tree, cfg SEConfig) (*SE, error) {
	s := &SE{max: cfg.MaxWeight, store: cfg.Store, weight: cfg.Weight, admin: cfg.AdminState}
	if s.max == 0 {
		s.max = MaxSeWeight
	}
	if s.max > MaxSeWeight {
		return nil, fmt.Errorf("%w: max_weight %d above %d", ErrInvalid, s.max, MaxSeWeight)
	}
	if s.weight == 0 {
		s.weight = min(DefaultSeWeight, s.max)
	}
	if s.weight > s.max {
		return nil, fmt.Errorf("%w: smSeWeight %d above max_weight %d", ErrInvalid, s.weight, s.max)
	}
	if s.admin == 0 {
		s.admin = InService
	}
	if !s.admin.Valid() {
		return nil, fmt.Errorf("%w: smSeAdminState %d", ErrInvalid, int32(s.admin))
	}
	if err := s.loadStore(); err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == nil {
		host = &hoststat.Reader{}
	}
	s.host, s.requests, s.bytesOut, s.contentCount = host, cfg.Requests, cfg.BytesOut, cfg.ContentCount
	s.name = cfg.Name

	r := registrar{tree: tree}
	r.scalar(SmSeAdminState.OID(), &agent.Scalar{
		Type:  smi.TypeInteger,
		Value: func(context.Context) (smi.Value, error) { return smi.Integer(int32(s.AdminState())), nil },
		Check: func(v smi.Value) error {
			if !AdminState(v.Int).Valid() || v.Int != int64(int32(v.Int)) {
				return smi.Errorf(smi.WrongValue, fmt.Sprintf("smSeAdminState %d is not inService(1), drain(2) or outOfService(3)", v.Int))
			}
			return nil
		},
		Set: func(_ context.Context, v smi.Value) error { return s.SetAdminState(AdminState(v.Int)) },
	})
	r.scalar(SmSeWeight.OID(), &agent.Scalar{
		Type:  smi.TypeGauge32,
		Value: func(context.Context) (smi.Value, error) { return smi.Gauge32(s.Weight()), nil },
		Check: func(v smi.Value) error { return s.checkWeight(v.Uint) },
		Set:   func(_ context.Context, v smi.Value) error { return s.SetWeight(uint32(v.Uint)) },
	})
	r.scalar(SmSeLoad.OID(), hostScalar(func() (smi.Value, error) {
		l, err := host.Load()
		return smi.Gauge32(l.One), err
	}))
	r.scalar(SmSeMemTotal.OID(), hostScalar(func() (smi.Value, error) {
		m, err := host.Memory()
		return smi.Gauge32(latch32(m.TotalKiB)), err
	}))
	r.scalar(SmSeMemAvailable.OID(), hostScalar(func() (smi.Value, error) {
		m, err := host.Memory()
		return smi.Gauge32(latch32(m.AvailableKiB)), err
	}))
	r.scalar(SmSeNetInOctets.OID(), hostScalar(func() (smi.Value, error) {
		n, err := host.Net()
		return smi.Counter64(n.RxBytes), err
	}))
	r.scalar(SmSeNetOutOctets.OID(), hostScalar(func() (smi.Value, error) {
		n, err := host.Net()
		return smi.Counter64(n.TxBytes), err
	}))
	r.scalar(SmSeHostUptime.OID(), hostScalar(func() (smi.Value, error) {
		d, err := host.Uptime()
		return smi.Gauge32(latch32(uint64(d / time.Second))), err
	}))
	if f := cfg.Requests; f != nil {
		r.scalar(SmSeRequests.OID(), agent.Func(func() smi.Value { return smi.Counter64(f()) }))
	}
	if f := cfg.BytesOut; f != nil {
		r.scalar(SmSeBytesOut.OID(), agent.Func(func() smi.Value { return smi.Counter64(f()) }))
	}
	if f := cfg.ContentCount; f != nil {
		r.scalar(SmSeContentCount.OID(), agent.Func(func() smi.Value { return smi.Gauge32(latch32(f())) }))
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return s, nil
}

// hostScalar answers noSuchInstance when the host cannot be read.
func hostScalar(read func() (smi.Value, error)) *agent.Scalar {
	return &agent.Scalar{Value: func(context.Context) (smi.Value, error) {
		v, err := read()
		if err != nil {
			return smi.NoSuchInstance(), nil
		}
		return v, nil
	}}
}

// latch32 is a Gauge32's value for v: the maximum when v is larger
// (RFC 2578 §7.1.7).
func latch32(v uint64) uint32 {
	if v > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(v)
}

func (s *SE) loadStore() error {
	if s.store == nil {
		return nil
	}
	m, err := s.store.Load()
	if err != nil {
		return err
	}
	if v, ok := m[KeySeAdminState]; ok {
		a, err := ParseAdminState(v)
		if err != nil {
			return fmt.Errorf("%w: stored %s: %w", ErrStore, KeySeAdminState, err)
		}
		s.admin = a
	}
	if v, ok := m[KeySeWeight]; ok {
		w, err := strconv.ParseUint(v, 10, 32)
		if err != nil || w > MaxSeWeight {
			return fmt.Errorf("%w: stored %s %q is not 0..%d", ErrStore, KeySeWeight, v, MaxSeWeight)
		}
		// A max_weight lowered since the SET wins: the configuration says
		// what this hardware can take.
		s.weight = min(uint32(w), s.max)
	}
	return nil
}

// EngineInfo returns the engine's numbers for its heartbeats, so that the
// manager's smEngineTable shows them without a request:
//
//	rmtp.Config.HelloApp = func() []byte { return wire.AppendEngineInfo(nil, se.EngineInfo()) }
//
// A number without a source, or a load the host cannot read, is 0; the
// name (smEngineName) is the engine's sysName when SEConfig.Name is set.
func (s *SE) EngineInfo() wire.EngineInfo {
	var info wire.EngineInfo
	if s.name != nil {
		info.Name = s.name()
	}
	if l, err := s.host.Load(); err == nil {
		info.Load = l.One
	}
	for _, f := range []struct {
		src func() uint64
		dst *uint64
	}{{s.requests, &info.Requests}, {s.bytesOut, &info.BytesOut}, {s.contentCount, &info.ContentCount}} {
		if f.src != nil {
			*f.dst = f.src()
		}
	}
	return info
}

// MaxWeight is the engine's max_weight.
func (s *SE) MaxWeight() uint32 { return s.max }

// Weight is the current smSeWeight.
func (s *SE) Weight() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.weight
}

// AdminState is the current smSeAdminState.
func (s *SE) AdminState() AdminState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin
}

func (s *SE) checkWeight(w uint64) error {
	if w > MaxSeWeight {
		return smi.Errorf(smi.WrongValue, fmt.Sprintf("smSeWeight %d outside 0..%d", w, MaxSeWeight))
	}
	if w > uint64(s.max) {
		return smi.Errorf(smi.WrongValue, fmt.Sprintf("smSeWeight %d above this engine's max_weight %d", w, s.max))
	}
	return nil
}

// SetWeight changes smSeWeight as a SET does: refused above max_weight
// (a *smi.Error, wrongValue), kept by the store before it is served.
func (s *SE) SetWeight(w uint32) error {
	if err := s.checkWeight(uint64(w)); err != nil {
		return err
	}
	return s.set(KeySeWeight, strconv.FormatUint(uint64(w), 10), func() bool {
		if s.weight == w {
			return false
		}
		s.weight = w
		return true
	})
}

// SetAdminState changes smSeAdminState as a SET does.
func (s *SE) SetAdminState(a AdminState) error {
	if !a.Valid() {
		return smi.Errorf(smi.WrongValue, fmt.Sprintf("smSeAdminState %d", int32(a)))
	}
	return s.set(KeySeAdminState, a.String(), func() bool {
		if s.admin == a {
			return false
		}
		s.admin = a
		return true
	})
}

// set saves then applies, under mu so the file's order of writes is
// memory's. Setting the value already served writes nothing, which also
// makes the undo of a commit whose save failed succeed (see System).
func (s *SE) set(key, stored string, apply func() bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := struct {
		w uint32
		a AdminState
	}{s.weight, s.admin}
	if !apply() {
		return nil
	}
	if s.store != nil {
		if err := s.store.Save(key, stored); err != nil {
			s.weight, s.admin = old.w, old.a
			return err
		}
	}
	return nil
}
