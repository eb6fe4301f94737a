// Package agenttest builds the test MIB tree that the handler tree, the
// built-in UDP agent and the AgentX subagent are all checked against: the
// shapes that break toy agents (a sparse 10,000-row table with gaps and a
// sparse column, empty tables between full ones, a callback subtree,
// Counter64 values above 2^32, writable objects whose test or commit phase
// can fail) in one place, so differential tests compare like with like.
package agenttest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Base is the root of the test tree, in net-snmp's playpen arc.
var Base = smi.MustParseOID("1.3.6.1.4.1.8072.9999.4242")

// OIDs of the test tree, relative to Base.
var (
	ScalarInt     = Base.Append(1, 1)  // INTEGER 42
	ScalarString  = Base.Append(1, 2)  // OCTET STRING
	ScalarC64     = Base.Append(1, 3)  // Counter64 above 2^32
	WritableInt   = Base.Append(1, 4)  // INTEGER 0..1000, read-write
	WritableStr   = Base.Append(1, 5)  // OCTET STRING (SIZE(0..32)), read-write
	ScalarIP      = Base.Append(1, 6)  // IpAddress
	ScalarTicks   = Base.Append(1, 7)  // TimeTicks
	ScalarOID     = Base.Append(1, 8)  // OBJECT IDENTIFIER
	ScalarGauge   = Base.Append(1, 9)  // Gauge32
	ScalarC32     = Base.Append(1, 10) // Counter32
	CommitFails   = Base.Append(1, 11) // INTEGER read-write: commit of 13 fails
	EmptyTable1   = Base.Append(2, 1)  // entry of a table with no rows
	SparseTable   = Base.Append(3, 1)  // entry of the 10,000-row table
	EmptyTable2   = Base.Append(4, 1)  // entry of another empty table
	CallbackRoot  = Base.Append(5)     // a subtree answered by a callback
	TwoIndexTable = Base.Append(6, 1)  // entry of a table with a 2-part index
	SlowScalar    = Base.Append(7)     // INTEGER answered after Options.SlowDelay
)

// SparseRows is the number of rows of the sparse table.
const SparseRows = 10000

// C64Base is the Counter64 value of ScalarC64, above 2^32 on purpose.
const C64Base = uint64(1)<<40 + 12345

// Options tune the tree for particular tests.
type Options struct {
	// SlowDelay is how long SlowScalar takes to answer; 0 registers no slow object.
	SlowDelay time.Duration
}

// Tree is the built tree with the state tests inspect.
type Tree struct {
	*agent.Tree
	mu          sync.Mutex
	writableInt int64
	writableStr []byte
	commitFails int64
	// SlowCalls counts executions of the slow handler (a re-sent AgentX
	// PDU must not execute it twice).
	SlowCalls atomic.Int64
	// CallbackCalls counts batched calls into the callback subtree.
	CallbackCalls atomic.Int64
}

// WritableIntValue returns the current value of WritableInt.0.
func (t *Tree) WritableIntValue() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writableInt
}

// WritableStrValue returns the current value of WritableStr.0.
func (t *Tree) WritableStrValue() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.writableStr)
}

// SparseIndex returns the index of the i-th row (0-based) of the sparse
// table: indexes skip every value ≡ 3 (mod 7), so the table has gaps.
func SparseIndex(i int) uint32 {
	// the n-th positive integer not ≡ 3 mod 7
	n := uint32(i)
	return n/6*7 + [6]uint32{1, 2, 4, 5, 6, 7}[n%6]
}

// New builds the test tree.
func New(opts Options) *Tree {
	t := &Tree{Tree: agent.NewTree(), writableInt: 7, writableStr: []byte("initial")}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(t.RegisterScalar(ScalarInt, agent.Const(smi.Integer(42))))
	must(t.RegisterScalar(ScalarString, agent.Const(smi.String("smsnmpd test tree"))))
	must(t.RegisterScalar(ScalarC64, agent.Const(smi.Counter64(C64Base))))
	must(t.RegisterScalar(ScalarIP, agent.Const(smi.IPAddress(netip.MustParseAddr("192.0.2.7")))))
	must(t.RegisterScalar(ScalarTicks, agent.Const(smi.TimeTicks(123456))))
	must(t.RegisterScalar(ScalarOID, agent.Const(smi.ObjectID(Base.Append(99, 1)))))
	must(t.RegisterScalar(ScalarGauge, agent.Const(smi.Gauge32(4000000000))))
	must(t.RegisterScalar(ScalarC32, agent.Const(smi.Counter32(4294967295))))
	must(t.RegisterScalar(WritableInt, &agent.Scalar{
		Type: smi.TypeInteger,
		Value: func(context.Context) (smi.Value, error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			return smi.Integer(int32(t.writableInt)), nil
		},
		Check: func(v smi.Value) error {
			if v.Int < 0 || v.Int > 1000 {
				return smi.Errorf(smi.WrongValue, "outside 0..1000")
			}
			return nil
		},
		Set: func(_ context.Context, v smi.Value) error {
			t.mu.Lock()
			t.writableInt = v.Int
			t.mu.Unlock()
			return nil
		},
	}))
	must(t.RegisterScalar(WritableStr, &agent.Scalar{
		Type: smi.TypeOctetString,
		Value: func(context.Context) (smi.Value, error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			return smi.OctetString(append([]byte(nil), t.writableStr...)), nil
		},
		Check: func(v smi.Value) error {
			if len(v.Bytes) > 32 {
				return smi.Errorf(smi.WrongLength, "longer than 32")
			}
			return nil
		},
		Set: func(_ context.Context, v smi.Value) error {
			t.mu.Lock()
			t.writableStr = append([]byte(nil), v.Bytes...)
			t.mu.Unlock()
			return nil
		},
	}))
	must(t.RegisterScalar(CommitFails, &agent.Scalar{
		Type: smi.TypeInteger,
		Value: func(context.Context) (smi.Value, error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			return smi.Integer(int32(t.commitFails)), nil
		},
		Set: func(_ context.Context, v smi.Value) error {
			if v.Int == 13 {
				return fmt.Errorf("agenttest: commit of 13 refused on purpose")
			}
			t.mu.Lock()
			t.commitFails = v.Int
			t.mu.Unlock()
			return nil
		},
	}))

	must(t.RegisterTable(agent.NewTable(EmptyTable1, 1, 2, 3)))
	sparse := agent.NewTable(SparseTable, 1, 2, 3, 4)
	for i := 0; i < SparseRows; i++ {
		idx := SparseIndex(i)
		row := agent.Columns{
			1: smi.Integer(int32(idx)),
			2: smi.String(fmt.Sprintf("row-%05d", idx)),
			3: smi.Counter64(C64Base + uint64(idx)*1000003),
		}
		if idx%2 == 0 {
			row[4] = smi.Gauge32(idx) // a sparse column: even rows only
		}
		sparse.SetRow(smi.OID{idx}, row)
	}
	must(t.RegisterTable(sparse))
	must(t.RegisterTable(agent.NewTable(EmptyTable2, 1, 2)))
	must(t.Register(CallbackRoot, &callback{root: CallbackRoot, calls: &t.CallbackCalls}))

	two := agent.NewTable(TwoIndexTable, 2, 3)
	for a := uint32(1); a <= 3; a++ {
		for _, b := range []uint32{10, 7, 4, 1} {
			two.SetRow(smi.OID{a, b}, agent.Columns{2: smi.Integer(int32(a*100 + b)), 3: smi.String(fmt.Sprintf("%d.%d", a, b))})
		}
	}
	must(t.RegisterTable(two))

	if opts.SlowDelay > 0 {
		must(t.RegisterScalar(SlowScalar, &agent.Scalar{Value: func(ctx context.Context) (smi.Value, error) {
			t.SlowCalls.Add(1)
			select {
			case <-time.After(opts.SlowDelay):
			case <-ctx.Done():
				return smi.Value{}, ctx.Err()
			}
			return smi.Integer(77), nil
		}}))
	}
	return t
}

// callback is a subtree computed on demand: CallbackRoot.<i>.0 = i*i for
// i in 1..50, and CallbackRoot.100.<j> = Counter64(2^33 + j) for j in 1..20.
type callback struct {
	root  smi.OID
	calls *atomic.Int64
}

func (c *callback) instances() []smi.VarBind {
	var out []smi.VarBind
	for i := uint32(1); i <= 50; i++ {
		out = append(out, smi.VarBind{Name: c.root.Append(i, 0), Value: smi.Integer(int32(i * i))})
	}
	for j := uint32(1); j <= 20; j++ {
		out = append(out, smi.VarBind{Name: c.root.Append(100, j), Value: smi.Counter64(1<<33 + uint64(j))})
	}
	return out
}

func (c *callback) Get(_ context.Context, names []smi.OID) ([]smi.Value, error) {
	c.calls.Add(1)
	all := c.instances()
	out := make([]smi.Value, len(names))
	for i, n := range names {
		out[i] = smi.NoSuchInstance()
		for _, vb := range all {
			if vb.Name.Equal(n) {
				out[i] = vb.Value
			}
		}
	}
	return out, nil
}

func (c *callback) GetNext(_ context.Context, ranges []smi.Range) ([]smi.VarBind, error) {
	c.calls.Add(1)
	all := c.instances()
	out := make([]smi.VarBind, len(ranges))
	for i, r := range ranges {
		out[i] = smi.VarBind{Name: r.Start, Value: smi.EndOfMibView()}
		for _, vb := range all {
			c := vb.Name.Compare(r.Start)
			if c > 0 || (c == 0 && r.Include) {
				if len(r.End) == 0 || vb.Name.Compare(r.End) < 0 {
					out[i] = vb
				}
				break
			}
		}
	}
	return out, nil
}
