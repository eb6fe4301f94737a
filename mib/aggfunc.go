package mib

import "strconv"

// Func is an aggregate function: the arc under smAggregate. The numbers are
// the MIB's: append-only.
type Func uint32

// Aggregate functions.
const (
	FuncSum   Func = 1
	FuncMin   Func = 2
	FuncMax   Func = 3
	FuncAvg   Func = 4
	FuncCount Func = 5
)

// Funcs lists the functions in OID order.
var Funcs = [...]Func{FuncSum, FuncMin, FuncMax, FuncAvg, FuncCount}

// String returns the MIB's name of the function ("sum").
func (f Func) String() string {
	switch f {
	case FuncSum:
		return "sum"
	case FuncMin:
		return "min"
	case FuncMax:
		return "max"
	case FuncAvg:
		return "avg"
	case FuncCount:
		return "count"
	}
	return "Func(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// Valid reports whether f is one of the MIB's functions.
func (f Func) Valid() bool { return f >= FuncSum && f <= FuncCount }
