package fanout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/internal/gosnmpconv"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// LocalAgent is the SE host's own SNMP agent (SNMPv2c on UDP), asked for
// every OID the SE's tree does not hold.
type LocalAgent struct {
	Address   netip.AddrPort
	Community Secret        // nil: the empty community
	Timeout   time.Duration // per attempt, default 300 ms
	Retries   int
}

// Secret is a value that prints masked and gives itself up only where it
// is used (config.Secret is one).
type Secret interface{ Reveal() string }

// DefaultLocalAgentTimeout bounds one attempt at the local agent.
const DefaultLocalAgentTimeout = 300 * time.Millisecond

// proxyBulk is the max-repetitions of the proxy's walk requests.
const proxyBulk = 50

// ErrLocalAgent wraps failures talking to the local agent.
var ErrLocalAgent = errors.New("fanout: local agent")

// proxy talks to the local agent. gosnmp's client is not safe for
// concurrent use, so requests take turns on one socket: the local agent
// answers in about 100 µs, and the fan-out already batches all varbinds of
// a transaction into one call.
type proxy struct {
	mu sync.Mutex
	g  *gosnmp.GoSNMP
	ok bool // connected
}

func newProxy(la LocalAgent) *proxy {
	if la.Timeout <= 0 {
		la.Timeout = DefaultLocalAgentTimeout
	}
	community := ""
	if la.Community != nil {
		community = la.Community.Reveal()
	}
	return &proxy{g: &gosnmp.GoSNMP{
		Target: la.Address.Addr().String(), Port: la.Address.Port(), Transport: "udp",
		Community: community, Version: gosnmp.Version2c,
		Timeout: la.Timeout, Retries: la.Retries, MaxOids: gosnmp.MaxOids,
	}}
}

func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ok && p.g.Conn != nil {
		p.g.Conn.Close()
	}
	p.ok = false
}

// do runs one exchange with ctx as its overall deadline.
func (p *proxy) do(ctx context.Context, f func(g *gosnmp.GoSNMP) (*gosnmp.SnmpPacket, error)) (*gosnmp.SnmpPacket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !p.ok {
		if err := p.g.Connect(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrLocalAgent, err)
		}
		p.ok = true
	}
	p.g.Context = ctx
	pkt, err := f(p.g)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocalAgent, err)
	}
	return pkt, nil
}

// perName asks the local agent about names, in chunks of gosnmp's
// MaxOids, with call (Get or GetNext), and hands each answer with the
// name it answers to each.
func (p *proxy) perName(ctx context.Context, names []smi.OID,
	call func(g *gosnmp.GoSNMP, oids []string) (*gosnmp.SnmpPacket, error), each func(name smi.OID, v gosnmp.SnmpPDU)) error {
	for off := 0; off < len(names); off += gosnmp.MaxOids {
		chunk := names[off:min(off+gosnmp.MaxOids, len(names))]
		oids := make([]string, len(chunk))
		for i, n := range chunk {
			oids[i] = gosnmpconv.OIDText(n)
		}
		pkt, err := p.do(ctx, func(g *gosnmp.GoSNMP) (*gosnmp.SnmpPacket, error) { return call(g, oids) })
		if err != nil {
			return err
		}
		if len(pkt.Variables) != len(chunk) {
			return fmt.Errorf("%w: %d answers to %d names", ErrLocalAgent, len(pkt.Variables), len(chunk))
		}
		for i, v := range pkt.Variables {
			each(chunk[i], v)
		}
	}
	return nil
}

// get reads names.
func (p *proxy) get(ctx context.Context, names []smi.OID) ([]smi.Value, error) {
	out := make([]smi.Value, 0, len(names))
	err := p.perName(ctx, names, (*gosnmp.GoSNMP).Get, func(_ smi.OID, v gosnmp.SnmpPDU) {
		val, err := gosnmpconv.ValueFromPDU(v)
		if err != nil {
			val = smi.NoSuchInstance()
		}
		out = append(out, val)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// getNext returns the successor of each name on the local agent.
func (p *proxy) getNext(ctx context.Context, names []smi.OID) ([]smi.VarBind, error) {
	out := make([]smi.VarBind, 0, len(names))
	err := p.perName(ctx, names, (*gosnmp.GoSNMP).GetNext, func(name smi.OID, v gosnmp.SnmpPDU) {
		vb, err := gosnmpconv.FromPDU(v)
		if err != nil || vb.Name.Compare(name) <= 0 {
			vb = smi.VarBind{Name: name, Value: smi.EndOfMibView()}
		}
		out = append(out, vb)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// walk returns up to limit instances after start inside root, with GETBULK,
// and whether more remain.
func (p *proxy) walk(ctx context.Context, root, start smi.OID, limit int) ([]smi.VarBind, bool, error) {
	var out []smi.VarBind
	cur := start
	for len(out) < limit {
		reps := uint32(min(proxyBulk, limit-len(out)+1))
		pkt, err := p.do(ctx, func(g *gosnmp.GoSNMP) (*gosnmp.SnmpPacket, error) {
			return g.GetBulk([]string{gosnmpconv.OIDText(cur)}, 0, reps)
		})
		if err != nil {
			return nil, false, err
		}
		if len(pkt.Variables) == 0 {
			return out, false, nil
		}
		for _, v := range pkt.Variables {
			vb, err := gosnmpconv.FromPDU(v)
			if err != nil || vb.Value.Type.IsException() || !vb.Name.HasPrefix(root) || vb.Name.Compare(cur) <= 0 {
				return out, false, nil
			}
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, vb)
			cur = vb.Name
		}
	}
	return out, true, nil
}

// set writes vbs in one SNMP SET; the status and index are the agent's.
// refused is true when the agent answered with an error (so it wrote
// nothing); a transport error leaves it unknown.
func (p *proxy) set(ctx context.Context, vbs []smi.VarBind) (refused bool, idx int, err error) {
	pdus := make([]gosnmp.SnmpPDU, len(vbs))
	for i, vb := range vbs {
		pdus[i] = gosnmpconv.ToPDU(vb)
	}
	pkt, err := p.do(ctx, func(g *gosnmp.GoSNMP) (*gosnmp.SnmpPacket, error) { return g.Set(pdus) })
	if err != nil {
		return false, 0, err
	}
	if pkt.Error != gosnmp.NoError {
		idx := max(int(pkt.ErrorIndex)-1, 0)
		return true, idx, fmt.Errorf("%w: set: %v at varbind %d", ErrLocalAgent, pkt.Error, idx+1)
	}
	return false, 0, nil
}
