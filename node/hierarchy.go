package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/fanout"
	fwire "github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/hoststat"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// parentLink is a level 1..3 manager's membership in its parent level's
// group (DESIGN.md §4, §7): a second rmtp endpoint, role Engine there,
// over the data center's SM farm (multicast) or unicast to the parent's
// managers. On it run the Forwarder (this level's directory going up by
// the level's policy; only while this manager is active), the lookup
// Uplink (climbing, and answering the parent's downward questions), and a
// Responder, so the parent's management operations reach this manager as
// they reach an SE.
type parentLink struct {
	tr    rmtp.Transport
	ep    *rmtp.Endpoint
	resp  *fanout.Responder
	fw    *directory.Forwarder
	up    *directory.Uplink
	stops teardown

	policy directory.Policy // what goes up
	mode   config.ParentMode
}

// startParentLink joins the parent level's group, over tr when given (tests)
// or as rmtp.parent says. tree is what the parent's management operations
// see of this manager; term numbers the forwarder's re-announcements (the
// own level's rmtp term, which grows at every takeover).
func startParentLink(cfg *config.Config, tr rmtp.Transport, dir *directory.Manager, tree *agent.Tree, term func() uint64, sub *mib.Subtree, name func() string, log logrus.FieldLogger) (*parentLink, error) {
	p := cfg.RMTP.Parent
	log = log.WithField("link", "parent")
	var policy directory.Policy
	switch cfg.Directory.Forward {
	case config.ForwardSummary:
		policy = directory.PolicySummary
	case config.ForwardNone:
		policy = directory.PolicyNone
	case config.ForwardDigest:
		policy = directory.PolicyDigest
	default:
		policy = directory.PolicyFull
	}
	l := &parentLink{policy: policy, mode: p.Mode, tr: tr}
	var err error
	switch {
	case tr != nil:
	case p.Mode == config.ParentMulticast:
		down, err1 := groupAddr(p.Group, p.Port)
		up, err2 := groupAddr(p.ManagerGroup, p.Port)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("rmtp.parent: %w", err)
		}
		l.tr, err = rmtp.ListenMulticast(rmtp.MulticastConfig{Interface: p.Interface, Down: down, Up: up,
			TTL: cfg.RMTP.TTL, ReadBuffer: cfg.RMTP.RecvBuffer, Logger: log})
	case p.Mode == config.ParentUnicast:
		l.tr, err = listenUnicast("rmtp.parent", p.Listen, p.Peers, cfg.RMTP.RecvBuffer, log)
	default:
		return nil, fmt.Errorf("rmtp.parent.mode %q has no link", p.Mode)
	}
	if err != nil {
		return nil, err
	}
	l.stops.push(l.tr.Close)
	keys, err := rmtpKeys(cfg)
	if err != nil {
		l.close()
		return nil, err
	}
	// The parent's engine table shows this manager's numbers, as it
	// shows an SE's: its host's load and bytes, its directory's size, its
	// name; and its subtree totals, which the parent sums (the last
	// computed: this runs under the parent link's lock).
	host := &hoststat.Reader{}
	hello := func() []byte {
		info := fwire.EngineInfo{ContentCount: uint64(dir.Store().Count()), Name: name()}
		if r := sub.Report(); r.Level != 0 { // computed at least once
			info.Subtree, info.HasSubtree = r, true
		}
		if ld, err := host.Load(); err == nil {
			info.Load = ld.One
		}
		if n, err := host.Net(); err == nil {
			info.BytesOut = n.TxBytes
		}
		return fwire.AppendEngineInfo(nil, info)
	}
	l.ep, err = rmtp.New(l.tr, rmtpConfig(cfg, rmtp.Engine, cfg.Node.Level, keys, hello, log))
	if err != nil {
		l.close()
		return nil, fmt.Errorf("rmtp.parent: %w", err)
	}
	l.stops.push(l.ep.Close)
	l.resp, err = fanout.NewResponder(l.ep, responderConfig(cfg, tree, log))
	if err != nil {
		l.close()
		return nil, err
	}
	l.stops.push(l.resp.Close)
	l.fw, err = directory.NewForwarder(l.ep, dir.Store(), directory.ForwarderConfig{
		Policy: policy,
		FPRate: cfg.Directory.DigestFPRate,
		Epoch:  func() uint64 { return term() << 32 },
		Resync: l.ep.Channel(rmtp.ChannelDirectory),
		Logger: log,
	})
	if err != nil {
		l.close()
		return nil, fmt.Errorf("directory forwarder: %w", err)
	}
	l.stops.push(l.fw.Close)
	l.up = directory.NewUplink(l.ep, l.ep.Channel(rmtp.ChannelLookup), directory.LinkConfig{Logger: log})
	l.stops.push(l.up.Close)
	log.WithFields(logrus.Fields{"mode": string(p.Mode), "forward": policy.String()}).Info("parent link up")
	return l, nil
}

func (l *parentLink) close() error { return l.stops.run() }

// listenUnicast opens rmtp over unicast UDP (between LANs): listen is this
// node's address, peers every other member's. Host names are resolved
// once, at start.
func listenUnicast(key string, listen config.Addr, peers []config.Addr, rcvbuf int, log logrus.FieldLogger) (rmtp.Transport, error) {
	la, err := resolveUDP(listen)
	if err != nil {
		return nil, fmt.Errorf("%s.listen: %w", key, err)
	}
	var ps []netip.AddrPort
	for _, a := range peers {
		pa, err := resolveUDP(a)
		if err != nil {
			return nil, fmt.Errorf("%s.peers: %w", key, err)
		}
		ps = append(ps, pa)
	}
	u, err := rmtp.ListenUnicast(rmtp.UnicastConfig{Listen: la, Peers: ps, ReadBuffer: rcvbuf, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return u, nil
}

func resolveUDP(a config.Addr) (netip.AddrPort, error) {
	ua, err := net.ResolveUDPAddr("udp4", a.Address())
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// lookups wires a manager's resolver: its own store, the parent level
// through the parent link, child units through its own group.
type lookups struct {
	res  *directory.Resolver
	down *directory.Downlink
}

func startLookups(cfg *config.Config, farm *southbound, parent *parentLink, log logrus.FieldLogger) (*lookups, error) {
	lk := &lookups{}
	rc := directory.ResolverConfig{Node: cfg.Node.ID, Store: farm.dir.Store()}
	if parent != nil {
		rc.Parent = parent.up
	}
	if cfg.Node.Level > 1 {
		// Only the active manager answers its children: a backup would
		// double every lookup climbing the tree.
		lk.down = directory.NewDownlink(farm.ep, farm.ep.Channel(rmtp.ChannelLookup), farm.dir.ChildNode,
			directory.LinkConfig{Answering: farm.ep.Active, Logger: log})
		rc.Child = lk.down.Child
	}
	res, err := directory.NewResolver(rc)
	if err != nil {
		if lk.down != nil {
			lk.down.Close()
		}
		return nil, err
	}
	lk.res = res
	if parent != nil {
		parent.up.Serve(res)
	}
	if lk.down != nil {
		lk.down.Serve(res)
	}
	return lk, nil
}

func (lk *lookups) close() {
	if lk.down != nil {
		lk.down.Close()
	}
}
