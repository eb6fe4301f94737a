package mib

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Bounds of smDirectoryTable.
const (
	// DefaultDirectoryRows is smDirectoryTableLimit when none is
	// configured.
	DefaultDirectoryRows = 1000
	// MaxDirectoryRows caps it: bulk export is the CLI's --json, not SNMP.
	MaxDirectoryRows = 100000
	// DefaultDirectoryTTL is how long one read of the entries serves the
	// table (a walk through snmpd is one AgentX GetNext per varbind).
	DefaultDirectoryTTL = time.Second
)

// DirectoryEntry is one row of smDirectoryTable.
type DirectoryEntry struct {
	// ID is the stable entry id (smDirectoryEntryId, 1..2^32-1): the
	// same for a key while the node runs, never reused for another key.
	ID  uint32
	Key string
	// Location; 0 where a summary entry stops above that unit.
	CDN, DataCenter, Farm, Engine uint32
	// Version is the publisher's version in printable ASCII, at most
	// MaxDirectoryVersion octets (longer ones are cut).
	Version string
	// Stored is when this node stored the current version.
	Stored time.Time
}

// DirectorySource is the directory as the MIB sees it; package directory
// implements it.
type DirectorySource interface {
	// Count is the number of entries held (smDirectoryCount).
	Count() int
	// Entries returns the entries of the lowest ids, at most limit, in
	// id order.
	Entries(limit int) []DirectoryEntry
	// Flow is what this node refused of the engines' updates
	// (smDirectoryRefusedOps and the objects after it); it must be
	// cheap, it is read once per object asked for.
	Flow() DirectoryFlow
}

// DirectoryFlow counts the engines' directory operations a manager
// refused (directory.StoreCounters and ManagerCounters); each only grows.
type DirectoryFlow struct {
	// RefusedOps: over the engine's rate limit; the engine sends them
	// again (smDirectoryRefusedOps).
	RefusedOps uint64
	// RejectedOps: refused for good (smDirectoryRejectedOps).
	RejectedOps uint64
	// Episodes: runs of refusals of one engine (smDirectoryRefusalEpisodes).
	Episodes uint64
}

// DirectoryConfig configures smDirectory.
type DirectoryConfig struct {
	Source DirectorySource // required
	// Limit is smDirectoryTableLimit; 0 = DefaultDirectoryRows, at most
	// MaxDirectoryRows.
	Limit int
	// TTL: see DefaultDirectoryTTL; negative = no caching.
	TTL time.Duration
	Now func() time.Time // nil = time.Now
}

// Columns of smDirectoryEntry.
const (
	colDirKey        = 2
	colDirCdn        = 3
	colDirDataCenter = 4
	colDirFarm       = 5
	colDirEngine     = 6
	colDirVersion    = 7
	colDirAge        = 8
)

// RegisterDirectory puts smDirectoryCount, smDirectoryTable,
// smDirectoryTableLimit and the flow-control counters
// (smDirectoryRefusedOps, smDirectoryRejectedOps,
// smDirectoryRefusalEpisodes) on tree. Nothing is registered when it
// fails.
func RegisterDirectory(tree *agent.Tree, cfg DirectoryConfig) error {
	if cfg.Source == nil {
		return fmt.Errorf("%w: RegisterDirectory needs a source", ErrInvalid)
	}
	limit := cfg.Limit
	if limit == 0 {
		limit = DefaultDirectoryRows
	}
	if limit < 0 || limit > MaxDirectoryRows {
		return fmt.Errorf("%w: smDirectoryTableLimit %d outside 1..%d", ErrInvalid, limit, MaxDirectoryRows)
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultDirectoryTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	d := &dirTable{src: cfg.Source, limit: limit, ttl: ttl, now: now}
	src := cfg.Source
	r := registrar{tree: tree}
	r.scalar(SmDirectoryCount.OID(), agent.Func(func() smi.Value { return smi.Gauge32(latch32(uint64(max(src.Count(), 0)))) }))
	r.handler(SmDirectoryEntry.OID(), d)
	r.scalar(SmDirectoryTableLimit.OID(), agent.Const(smi.Gauge32(uint32(limit))))
	r.scalar(SmDirectoryRefusedOps.OID(), agent.Func(func() smi.Value { return smi.Counter64(src.Flow().RefusedOps) }))
	r.scalar(SmDirectoryRejectedOps.OID(), agent.Func(func() smi.Value { return smi.Counter64(src.Flow().RejectedOps) }))
	r.scalar(SmDirectoryRefusalEpisodes.OID(), agent.Func(func() smi.Value { return smi.Counter64(src.Flow().Episodes) }))
	return r.finish()
}

// dirTable serves smDirectoryTable from the source's first rows, re-read
// at most once per TTL.
type dirTable struct {
	src   DirectorySource
	limit int
	ttl   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	read time.Time
	t    *agent.Table
}

func (d *dirTable) table() *agent.Table {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if d.t != nil && d.ttl > 0 && now.Sub(d.read) < d.ttl {
		return d.t
	}
	t := agent.NewTable(SmDirectoryEntry.OID(), colDirKey, colDirCdn, colDirDataCenter, colDirFarm,
		colDirEngine, colDirVersion, colDirAge)
	entries := d.src.Entries(d.limit)
	if len(entries) > d.limit {
		entries = entries[:d.limit] // the source's promise is not ours to trust
	}
	for _, e := range entries {
		if e.ID == 0 {
			continue // not an index the MIB allows
		}
		key, version := e.Key, e.Version
		if len(key) > MaxDirectoryKey {
			key = key[:MaxDirectoryKey]
		}
		if len(version) > MaxDirectoryVersion {
			version = version[:MaxDirectoryVersion]
		}
		age := uint32(0)
		if !e.Stored.IsZero() && now.After(e.Stored) {
			age = latch32(uint64(now.Sub(e.Stored) / time.Second))
		}
		t.SetRow(smi.OID{e.ID}, agent.Columns{
			colDirKey:        smi.String(key),
			colDirCdn:        smi.Gauge32(e.CDN),
			colDirDataCenter: smi.Gauge32(e.DataCenter),
			colDirFarm:       smi.Gauge32(e.Farm),
			colDirEngine:     smi.Gauge32(e.Engine),
			colDirVersion:    smi.String(version),
			colDirAge:        smi.Gauge32(age),
		})
	}
	d.t, d.read = t, now
	return t
}

func (d *dirTable) Get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	return d.table().Get(ctx, names)
}

func (d *dirTable) GetNext(ctx context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	return d.table().GetNext(ctx, ranges)
}
