package agent

import (
	"context"
	"slices"
	"sync"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Row is one conceptual row of a Table: the value of a column, if the row
// has one (tables may be sparse).
type Row interface {
	Column(col uint32) (smi.Value, bool)
}

// Columns is a Row held in memory.
type Columns map[uint32]smi.Value

// Column implements Row.
func (c Columns) Column(col uint32) (smi.Value, bool) {
	v, ok := c[col]
	return v, ok
}

// RowFunc is a Row computed when read, for live values.
type RowFunc func(col uint32) (smi.Value, bool)

// Column implements Row.
func (f RowFunc) Column(col uint32) (smi.Value, bool) { return f(col) }

// Table is a read-only conceptual table: instances are
// entry.column.index, walked column by column, rows in index order.
// Rows are added and removed while it serves; lookups are O(log rows).
type Table struct {
	entry   smi.OID
	columns []uint32 // sorted

	mu   sync.RWMutex
	rows *oidMap[Row]
}

// NewTable returns an empty table for the entry OID (the xxxEntry node)
// with the given column numbers.
func NewTable(entry smi.OID, columns ...uint32) *Table {
	cols := slices.Clone(columns)
	slices.Sort(cols)
	return &Table{entry: entry.Clone(), columns: slices.Compact(cols), rows: newOIDMap[Row]()}
}

// Entry is the OID the table is registered at.
func (t *Table) Entry() smi.OID { return t.entry }

// SetRow adds or replaces the row at index (the index sub-identifiers).
func (t *Table) SetRow(index smi.OID, r Row) {
	t.mu.Lock()
	t.rows.Set(index.Clone(), r)
	t.mu.Unlock()
}

// DeleteRow removes the row at index and reports whether it existed.
func (t *Table) DeleteRow(index smi.OID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rows.Delete(index)
}

// Len is the number of rows.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rows.Len()
}

// Indexes returns the row indexes in order.
func (t *Table) Indexes() []smi.OID {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]smi.OID, 0, t.rows.Len())
	for n := t.rows.First(); n != nil; n = n.Next() {
		out = append(out, n.key)
	}
	return out
}

// RegisterTable registers t at its entry OID.
func (tr *Tree) RegisterTable(t *Table) error { return tr.Register(t.entry, t) }

// AnswersFromMemory implements Local.
func (*Table) AnswersFromMemory() {}

func (t *Table) hasColumn(c uint32) bool {
	_, ok := slices.BinarySearch(t.columns, c)
	return ok
}

// Get implements Handler.
func (t *Table) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, len(names))
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, n := range names {
		rest := n[len(t.entry):]
		if len(rest) < 1 || !t.hasColumn(rest[0]) {
			out[i] = smi.NoSuchObject()
			continue
		}
		out[i] = smi.NoSuchInstance()
		if r, ok := t.rows.Get(rest[1:]); ok {
			if v, ok := r.Column(rest[0]); ok {
				out[i] = v
			}
		}
	}
	return out, nil
}

// GetNext implements Handler.
func (t *Table) GetNext(_ context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, len(ranges))
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, r := range ranges {
		out[i] = t.next(r)
	}
	return out, nil
}

func (t *Table) next(r smi.Range) smi.VarBind {
	end := smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
	startCol, startIdx, inside := uint32(0), smi.OID(nil), false
	switch {
	case r.Start.HasPrefix(t.entry) && len(r.Start) > len(t.entry):
		startCol, startIdx, inside = r.Start[len(t.entry)], r.Start[len(t.entry)+1:], true
	case r.Start.Compare(t.entry) > 0 && !r.Start.HasPrefix(t.entry):
		return end // the whole table lies before the range
	}
	ci, _ := slices.BinarySearch(t.columns, startCol)
	for ; ci < len(t.columns); ci++ {
		col := t.columns[ci]
		var n *oidNode[Row]
		if inside && col == startCol {
			n = t.rows.Ceil(startIdx, r.Include)
		} else {
			n = t.rows.First()
		}
		for ; n != nil; n = n.Next() {
			v, ok := n.val.Column(col)
			if !ok {
				continue
			}
			name := make(smi.OID, 0, len(t.entry)+1+len(n.key))
			name = append(append(append(name, t.entry...), col), n.key...)
			if len(r.End) > 0 && name.Compare(r.End) >= 0 {
				return end
			}
			return smi.VarBind{Name: name, Value: v}
		}
	}
	return end
}
