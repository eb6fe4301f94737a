package mib

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// OIDs of the SNMPv2-MIB system group (RFC 3418). They are not part of
// SERVICE-MANAGER-MIB's table; a test checks them against SNMPv2-MIB.
var (
	oidSystem          = smi.OID{1, 3, 6, 1, 2, 1, 1}
	oidSysDescr        = oidSystem.Append(1)
	oidSysObjectID     = oidSystem.Append(2)
	oidSysUpTime       = oidSystem.Append(3)
	oidSysContact      = oidSystem.Append(4)
	oidSysName         = oidSystem.Append(5)
	oidSysLocation     = oidSystem.Append(6)
	oidSysServices     = oidSystem.Append(7)
	oidSysORLastChange = oidSystem.Append(8)
	oidSysOREntry      = oidSystem.Append(9, 1)
)

// Columns of sysOREntry; sysORIndex (1) is not-accessible.
const (
	colSysORID     = 2
	colSysORDescr  = 3
	colSysORUpTime = 4
)

// Limits of the system group's values.
const (
	// MaxDisplayString is DisplayString's SIZE (0..255) (RFC 2579).
	MaxDisplayString = 255
	// DefaultServices is sysServices when none is configured: application
	// (64) and end-to-end (8) layers, as net-snmp reports.
	DefaultServices = 72
	// MaxServices is the largest sysServices (0..127).
	MaxServices = 127
	// MaxORIndex is the largest sysORIndex (1..2147483647).
	MaxORIndex = 2147483647
)

// Descriptors of the writable system objects, used as Store keys.
const (
	KeySysContact  = "sysContact"
	KeySysName     = "sysName"
	KeySysLocation = "sysLocation"
)

// SystemConfig is what the system group reports. Empty fields get the
// defaults named on them.
type SystemConfig struct {
	Descr    string  // sysDescr; "" = "smsnmpd"
	ObjectID smi.OID // sysObjectID; nil = smAgentSmsnmpd
	// Contact, Name and Location are the initial values of the writable
	// objects. A value SET over SNMP and kept by Store takes precedence
	// from then on, across restarts, as net-snmp does with values it
	// persists; to return to the configured value, SET it again or delete
	// the key from the store. A SET of the value already served writes
	// nothing. Name "" = the host name.
	Contact, Name, Location string
	Services                int // sysServices; 0 = DefaultServices

	// Start is when the management portion started (sysUpTime counts from
	// it); zero = when RegisterSystem runs.
	Start time.Time
	// Store keeps SET values across restarts; nil = they last until exit.
	Store Store
	// Capabilities are sysORTable rows to list after SERVICE-MANAGER-MIB's.
	Capabilities []Capability
	// Now is the clock; nil = time.Now. Tests set it.
	Now func() time.Time
}

// Capability is one sysORTable row.
type Capability struct {
	ID    smi.OID // sysORID
	Descr string  // sysORDescr
}

// System is a registered system group; its methods change sysORTable.
type System struct {
	now   func() time.Time
	start time.Time
	store Store

	mu                      sync.RWMutex
	contact, name, location string

	orMu         sync.Mutex
	or           *agent.Table
	orNext       uint32
	orLastChange uint32
}

// RegisterSystem puts the SNMPv2-MIB system group (RFC 3418) on tree:
// sysDescr, sysObjectID, sysUpTime, the writable sysContact, sysName and
// sysLocation (DisplayString, printable ASCII, at most 255 octets; a SET is
// answered after Store has kept it), sysServices, sysORLastChange and
// sysORTable, which lists SERVICE-MANAGER-MIB and cfg.Capabilities.
//
// An AgentX subagent must not register this in the master's default
// context: snmpd serves its own system group there. Nothing is registered
// when it fails.
func RegisterSystem(tree *agent.Tree, cfg SystemConfig) (*System, error) {
	s := &System{now: cfg.Now, start: cfg.Start, store: cfg.Store}
	if s.now == nil {
		s.now = time.Now
	}
	if s.start.IsZero() {
		s.start = s.now()
	}
	descr := cfg.Descr
	if descr == "" {
		descr = "smsnmpd"
	}
	objectID := cfg.ObjectID.Clone()
	if len(objectID) == 0 {
		objectID = SmAgentSmsnmpd.OID()
	}
	services := cfg.Services
	if services == 0 {
		services = DefaultServices
	}
	s.contact, s.name, s.location = cfg.Contact, cfg.Name, cfg.Location
	if s.name == "" {
		if h, err := os.Hostname(); err == nil {
			s.name = h
		}
	}
	if services < 0 || services > MaxServices {
		return nil, fmt.Errorf("%w: sysServices %d outside 0..%d", ErrInvalid, services, MaxServices)
	}
	if err := s.loadStore(); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{
		{"sysDescr", descr}, {KeySysContact, s.contact}, {KeySysName, s.name}, {KeySysLocation, s.location},
	} {
		if err := CheckDisplayString(f.v); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, f.name, err)
		}
	}

	s.or = agent.NewTable(oidSysOREntry, colSysORID, colSysORDescr, colSysORUpTime)
	caps := append([]Capability{{
		ID:    SmMIB.OID(),
		Descr: "SERVICE-MANAGER-MIB: hierarchical service management of a content delivery network by smsnmpd",
	}}, cfg.Capabilities...)
	for _, c := range caps {
		if _, err := s.AddCapability(c.ID, c.Descr); err != nil {
			return nil, err
		}
	}

	r := registrar{tree: tree}
	r.scalar(oidSysDescr, agent.Const(smi.String(descr)))
	r.scalar(oidSysObjectID, agent.Const(smi.ObjectID(objectID)))
	r.scalar(oidSysUpTime, agent.Func(func() smi.Value { return smi.TimeTicks(s.UpTime()) }))
	r.scalar(oidSysContact, s.writable(KeySysContact, &s.contact))
	r.scalar(oidSysName, s.writable(KeySysName, &s.name))
	r.scalar(oidSysLocation, s.writable(KeySysLocation, &s.location))
	r.scalar(oidSysServices, agent.Const(smi.Integer(int32(services))))
	r.scalar(oidSysORLastChange, agent.Func(func() smi.Value {
		s.orMu.Lock()
		defer s.orMu.Unlock()
		return smi.TimeTicks(s.orLastChange)
	}))
	r.table(s.or)
	if err := r.finish(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *System) loadStore() error {
	if s.store == nil {
		return nil
	}
	m, err := s.store.Load()
	if err != nil {
		return err
	}
	for key, dst := range map[string]*string{KeySysContact: &s.contact, KeySysName: &s.name, KeySysLocation: &s.location} {
		v, ok := m[key]
		if !ok {
			continue
		}
		// A hand-edited file must not make the agent serve what a SET
		// would have refused.
		if err := CheckDisplayString(v); err != nil {
			return fmt.Errorf("%w: stored %s: %w", ErrStore, key, err)
		}
		*dst = v
	}
	return nil
}

// UpTime is sysUpTime: hundredths of a second since Start, wrapping at
// 2^32 as TimeTicks do (RFC 2578 §7.1.8).
func (s *System) UpTime() uint32 {
	d := s.now().Sub(s.start)
	if d < 0 {
		return 0
	}
	return uint32(d / (10 * time.Millisecond)) // truncation is the wrap
}

// Contact, Name and Location return the current writable values.
func (s *System) Contact() string  { return s.get(&s.contact) }
func (s *System) Name() string     { return s.get(&s.name) }
func (s *System) Location() string { return s.get(&s.location) }

func (s *System) get(p *string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return *p
}

func (s *System) writable(key string, field *string) *agent.Scalar {
	return &agent.Scalar{
		Type:  smi.TypeOctetString,
		Value: func(context.Context) (smi.Value, error) { return smi.String(s.get(field)), nil },
		Check: func(v smi.Value) error { return CheckDisplayString(string(v.Bytes)) },
		Set: func(_ context.Context, v smi.Value) error {
			val := string(v.Bytes)
			s.mu.Lock()
			defer s.mu.Unlock()
			// Setting the current value changes nothing and writes
			// nothing. This is also what makes the undo of a commit
			// that failed to save (memory and file both still hold the
			// old value) succeed instead of failing on the same disk.
			if val == *field {
				return nil
			}
			// Store first: what the agent answers is what a restart
			// will answer. Holding mu across Save keeps the file's
			// order of writes the same as memory's.
			if s.store != nil {
				if err := s.store.Save(key, val); err != nil {
					return err
				}
			}
			*field = val
			return nil
		},
	}
}

// AddCapability appends a sysORTable row and returns its sysORIndex;
// sysORUpTime and sysORLastChange become the current sysUpTime. Indexes
// are never reused while the process runs.
func (s *System) AddCapability(id smi.OID, descr string) (uint32, error) {
	if len(id) < 2 {
		return 0, fmt.Errorf("%w: sysORID %q", ErrInvalid, id)
	}
	if err := CheckDisplayString(descr); err != nil {
		return 0, fmt.Errorf("%w: sysORDescr: %w", ErrInvalid, err)
	}
	s.orMu.Lock()
	defer s.orMu.Unlock()
	if s.orNext >= MaxORIndex {
		return 0, fmt.Errorf("%w: sysORIndex exhausted", ErrInvalid)
	}
	s.orNext++
	now := s.UpTime()
	s.or.SetRow(smi.OID{s.orNext}, agent.Columns{
		colSysORID:     smi.ObjectID(id.Clone()),
		colSysORDescr:  smi.String(descr),
		colSysORUpTime: smi.TimeTicks(now),
	})
	s.orLastChange = now
	return s.orNext, nil
}

// RemoveCapability deletes a sysORTable row and reports whether it existed.
func (s *System) RemoveCapability(index uint32) bool {
	s.orMu.Lock()
	defer s.orMu.Unlock()
	if !s.or.DeleteRow(smi.OID{index}) {
		return false
	}
	s.orLastChange = s.UpTime()
	return true
}

// CheckDisplayString validates a value for a DisplayString (SIZE (0..255))
// object: at most 255 octets of printable ASCII (0x20..0x7E). RFC 2579 also
// allows NVT control sequences; they are refused because every consumer of
// these values (NMS screens, logs, the state file) is better off without
// them. The error is a *smi.Error (wrongLength or wrongValue).
func CheckDisplayString(s string) error {
	if len(s) > MaxDisplayString {
		return smi.Errorf(smi.WrongLength, fmt.Sprintf("%d octets, at most %d", len(s), MaxDisplayString))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return smi.Errorf(smi.WrongValue, fmt.Sprintf("octet %d is 0x%02x, not printable ASCII", i+1, c))
		}
	}
	return nil
}
