package node

import (
	"context"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory"
	fwire "github.com/smsnmpd/smsnmpd/fanout/wire"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// helloApp holds the engine info a manager's heartbeats carry. rmtp asks
// for it under its endpoint's lock, so it must be ready-made: the
// subtree's loop encodes it, the heartbeat only loads it.
type helloApp struct{ b atomic.Pointer[[]byte] }

func (h *helloApp) get() []byte {
	if p := h.b.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *helloApp) set(info fwire.EngineInfo) {
	b := fwire.AppendEngineInfo(nil, info)
	h.b.Store(&b)
}

// startSubtree keeps a manager's smSubtree totals from its farm's rows and
// the other managers' heartbeats, and puts its report in the manager's own
// heartbeats (hello) every heartbeat interval, so the other managers of
// the level follow it.
func startSubtree(cfg *config.Config, s *southbound, name func() string, hello *helloApp, log logrus.FieldLogger) error {
	unit := directory.Level(cfg.Node.Level).Unit(nodeLocation(cfg))
	ep := s.ep
	sub, err := mib.NewSubtree(mib.SubtreeConfig{
		Level: cfg.Node.Level, CDN: unit.CDN, DataCenter: unit.DataCenter, Farm: unit.Farm,
		Engines: s.coord.Engines, Peers: func() []fwire.Subtree { return managerReports(ep) },
		Active: ep.Active, Term: ep.Term, Interval: cfg.RMTP.Heartbeat.Duration, Logger: log,
	})
	if err != nil {
		return err
	}
	s.subtree = sub
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sub.Run(ctx, func(r fwire.Subtree) {
			info := fwire.EngineInfo{Subtree: r, HasSubtree: true}
			if name != nil {
				info.Name = name()
			}
			hello.set(info)
		})
	}()
	s.stops.pushClose(func() { cancel(); <-done })
	return nil
}

// managerReports returns the subtree reports in the heartbeats of the
// other live managers of this endpoint's group.
func managerReports(ep *rmtp.Endpoint) []fwire.Subtree {
	var out []fwire.Subtree
	for _, p := range ep.Stats().Peers {
		if p.Role != rmtp.Manager || (p.State != rmtp.PeerAlive && p.State != rmtp.PeerSuspect) || len(p.App) == 0 {
			continue
		}
		if info, err := fwire.ParseEngineInfo(p.App); err == nil && info.HasSubtree {
			out = append(out, info.Subtree)
		}
	}
	return out
}

// activePeer is smNodeActivePeer: the active manager ep hears (itself if
// it is the active one), 0 for none.
func activePeer(ep *rmtp.Endpoint) uint32 {
	st := ep.Stats()
	if st.Active {
		return uint32(st.Node)
	}
	for _, p := range st.Peers {
		if p.Active && p.Role == rmtp.Manager && (p.State == rmtp.PeerAlive || p.State == rmtp.PeerSuspect) {
			return uint32(p.Node)
		}
	}
	return 0
}
