package smi

// Range is an AgentX search range (RFC 2741 §5.2): the object sought is the
// first one after Start (or at Start when Include) and before End. A nil or
// empty End means no upper bound. SNMP GETNEXT is the range (name, false, nil).
type Range struct {
	Start   OID
	Include bool
	End     OID
}

// Contains reports whether o lies inside the range.
func (r Range) Contains(o OID) bool {
	c := o.Compare(r.Start)
	if c < 0 || (c == 0 && !r.Include) {
		return false
	}
	return len(r.End) == 0 || o.Compare(r.End) < 0
}

// TxID names one SET transaction across its phases (test, commit, undo,
// cleanup). The AgentX session uses its session and transaction ids; the
// UDP agent numbers its own requests; an SE derives one from the
// manager's transaction.
type TxID struct {
	Session     uint32
	Transaction uint32
}
