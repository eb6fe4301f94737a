package snmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/agent/snmp/usm"
	"github.com/smsnmpd/smsnmpd/internal/logging"
)

// udpSession is the TxID.Session of every SET this agent runs: AgentX
// session ids are small numbers handed out by snmpd, so the two frontends
// never share a transaction id on one Tree.
const udpSession = 0xffff_fffe

// Agent is the built-in SNMP agent. It is safe for concurrent use; one Agent
// may Serve several sockets.
type Agent struct {
	cfg      Config
	contexts *agent.Contexts
	log      logrus.FieldLogger
	start    time.Time

	txSeq         atomic.Uint32
	trapSeq       atomic.Int32
	waiting       atomic.Int64 // requests waiting on blocking handlers (at most cfg.MaxInFlight)
	pend          pending      // those requests, for retransmissions to join
	busyLog       logging.Limit
	authTraps     atomic.Int32 // snmpEnableAuthenTraps: 1 enabled, 2 disabled
	lastAuth      atomic.Int64 // unix nanoseconds of the last authenticationFailure sent
	v3            *usmModel    // nil without SNMPv3 users
	communityView *view
	inform        informer

	c counters
}

// counters are the agent's statistics; Counters() snapshots them.
type counters struct {
	inPkts, inBadVersions, inBadCommunityNames, inBadCommunityUses, inASNParseErrs atomic.Uint64
	silentDrops, proxyDrops                                                        atomic.Uint64
	oversized, unsupportedPDUs, queueDrops, panics                                 atomic.Uint64
	outResponses, outTooBig, bulkTruncated, outTraps, trapErrors, sendErrors       atomic.Uint64
	requestErrors, busyDrops, joined                                               atomic.Uint64
	accessRefused, outReports, informsAcked, informFailures                        atomic.Uint64
}

// Counters is a snapshot of the agent's statistics. The first group is
// RFC 3418's snmp group; the rest are this agent's own.
type Counters struct {
	InPkts              uint64 // snmpInPkts: every datagram received
	InBadVersions       uint64 // snmpInBadVersions: SNMPv3 or unknown versions
	InBadCommunityNames uint64 // snmpInBadCommunityNames: unknown community (or context)
	InBadCommunityUses  uint64 // snmpInBadCommunityUses: SET with a read-only community
	InASNParseErrs      uint64 // snmpInASNParseErrs: undecodable messages
	SilentDrops         uint64 // snmpSilentDrops: even a tooBig answer did not fit, or BusyDrops
	ProxyDrops          uint64 // snmpProxyDrops: always 0, this agent proxies nothing

	Oversized       uint64 // datagrams above MaxDatagram, dropped
	UnsupportedPDUs uint64 // Response, Trap, Inform or Report PDUs sent to the agent, dropped
	QueueDrops      uint64 // datagrams dropped because every worker was busy and the queue full
	BusyDrops       uint64 // requests dropped because MaxInFlight requests were already waiting on the farm
	Joined          uint64 // retransmissions (same source, request-id and bytes) joined to their pending request
	Waiting         uint64 // requests waiting on the farm now (a gauge, at most MaxInFlight)
	Panics          uint64 // requests that panicked (a bug; logged), dropped
	OutResponses    uint64 // responses sent
	OutTooBig       uint64 // tooBig responses
	BulkTruncated   uint64 // GETBULK responses truncated to the message size
	RequestErrors   uint64 // responses with an error-status other than noError and tooBig
	OutTraps        uint64 // notifications sent (one per sink)
	TrapErrors      uint64 // notifications that could not be sent
	SendErrors      uint64 // responses the socket refused
	AccessRefused   uint64 // requests refused by a source allowlist, and SETs by a user without write access
	OutReports      uint64 // SNMPv3 Reports sent (discovery and USM failures)
	InformsAcked    uint64 // informs the receiver acknowledged
	InformFailures  uint64 // informs not acknowledged within their retries (or beyond MaxInformsInFlight)

	// SNMPv3 (zero without users): usmStats (RFC 3414) and snmpMPDStats
	// (RFC 3412), snmpUnknownContexts.
	UnsupportedSecLevels, NotInTimeWindows, UnknownUserNames, UnknownEngineIDs, WrongDigests, DecryptionErrors uint64
	UnknownSecurityModels, InvalidMsgs, UnknownPDUHandlers, UnknownContexts                                    uint64
}

// Counters returns a snapshot of the statistics.
func (a *Agent) Counters() Counters {
	c := &a.c
	out := Counters{
		InPkts: c.inPkts.Load(), InBadVersions: c.inBadVersions.Load(),
		InBadCommunityNames: c.inBadCommunityNames.Load(), InBadCommunityUses: c.inBadCommunityUses.Load(),
		InASNParseErrs: c.inASNParseErrs.Load(), SilentDrops: c.silentDrops.Load(), ProxyDrops: c.proxyDrops.Load(),
		Oversized: c.oversized.Load(), UnsupportedPDUs: c.unsupportedPDUs.Load(), QueueDrops: c.queueDrops.Load(),
		Panics: c.panics.Load(), OutResponses: c.outResponses.Load(), OutTooBig: c.outTooBig.Load(),
		BulkTruncated: c.bulkTruncated.Load(), RequestErrors: c.requestErrors.Load(),
		OutTraps: c.outTraps.Load(), TrapErrors: c.trapErrors.Load(), SendErrors: c.sendErrors.Load(),
		BusyDrops: c.busyDrops.Load(), Joined: c.joined.Load(), Waiting: uint64(max(a.waiting.Load(), 0)),
		AccessRefused: c.accessRefused.Load(), OutReports: c.outReports.Load(),
		InformsAcked: c.informsAcked.Load(), InformFailures: c.informFailures.Load(),
	}
	if m := a.v3; m != nil {
		out.UnsupportedSecLevels, out.NotInTimeWindows = m.unsupportedSecLevels.Load(), m.notInTimeWindows.Load()
		out.UnknownUserNames, out.UnknownEngineIDs = m.unknownUserNames.Load(), m.unknownEngineIDs.Load()
		out.WrongDigests, out.DecryptionErrors = m.wrongDigests.Load(), m.decryptionErrors.Load()
		out.UnknownSecurityModels, out.InvalidMsgs = m.unknownSecurityModels.Load(), m.invalidMsgs.Load()
		out.UnknownPDUHandlers, out.UnknownContexts = m.unknownPDUHandlers.Load(), m.unknownContexts.Load()
	}
	return out
}

// New returns an agent serving the trees of contexts. log may be nil.
func New(cfg Config, contexts *agent.Contexts, log logrus.FieldLogger) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if contexts == nil {
		return nil, fmt.Errorf("%w: no contexts", ErrConfig)
	}
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	a := &Agent{cfg: cfg, contexts: contexts, log: log.WithField("component", "snmp-agent"), start: time.Now(),
		pend: newPending(), inform: informer{sem: make(chan struct{}, MaxInformsInFlight), keys: make(map[string]*usm.Keys)}}
	a.communityView = newView(cfg.CommunityRead, cfg.CommunityWrite)
	var err error
	if a.v3, err = newUSM(&a.cfg); err != nil {
		return nil, err
	}
	a.authTraps.Store(2)
	if cfg.AuthenticationTraps {
		a.authTraps.Store(1)
	}
	return a, nil
}

// ListenAndServe listens on addr ("host:port", UDP) and serves until ctx is
// done; it returns nil then.
func (a *Agent) ListenAndServe(ctx context.Context, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("snmp: listen address: %w", err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return fmt.Errorf("snmp: %w", err)
	}
	defer conn.Close()
	return a.Serve(ctx, conn)
}

type job struct {
	pkt  []byte
	from netip.AddrPort
}

// Serve answers the requests arriving on conn until ctx is done, then
// returns nil once every request has finished (conn stays open: the caller
// owns it; Serve only sets a past read deadline to stop reading). One
// goroutine reads; Workers goroutines decode, run the request on the Tree
// and answer. A request about to wait on a blocking handler (the farm)
// takes a worker's place with it: a new worker is started and the request
// goes on alone, answering when its handlers return (see the package
// documentation). Any other read error ends Serve with that error.
func (a *Agent) Serve(ctx context.Context, conn *net.UDPConn) error {
	s := &server{a: a, ctx: ctx, conn: conn, jobs: make(chan job, a.cfg.QueueLen)}
	for range a.cfg.Workers {
		s.startWorker()
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	a.log.WithField("addr", conn.LocalAddr().String()).Info("serving SNMPv1/v2c")
	err := a.read(ctx, conn, s.jobs)
	close(s.jobs)
	s.wg.Wait()
	a.log.WithField("addr", conn.LocalAddr().String()).Info("stopped serving SNMPv1/v2c")
	return err
}

// server is one Serve: its socket, its queue and its goroutines.
type server struct {
	a    *Agent
	ctx  context.Context
	conn *net.UDPConn
	jobs chan job
	wg   sync.WaitGroup // workers, and requests that left the pool to wait
}

func (s *server) startWorker() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.worker()
	}()
}

func (a *Agent) read(ctx context.Context, conn *net.UDPConn, jobs chan<- job) error {
	// One byte more than the largest datagram we accept, so a larger one
	// is seen as larger instead of silently cut.
	buf := make([]byte, MaxDatagram+1)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // a deadline someone else set; ours comes with ctx done
			}
			return fmt.Errorf("snmp: read: %w", err)
		}
		a.c.inPkts.Add(1)
		if n > MaxDatagram {
			a.c.oversized.Add(1)
			continue
		}
		pkt := make([]byte, n)
		copy(pkt, buf[:n])
		select {
		case jobs <- job{pkt: pkt, from: from}:
		default:
			a.c.queueDrops.Add(1)
		}
	}
}

// worker serves requests until the queue closes, or until a request it
// serves leaves to wait on the farm with this goroutine (a new worker has
// then taken its place).
func (s *server) worker() {
	a := s.a
	for j := range s.jobs {
		if s.ctx.Err() != nil {
			continue // drain without answering
		}
		if a.pend.join(j) {
			a.c.joined.Add(1)
			continue
		}
		w := &waiter{s: s, j: j}
		resp := a.serveOne(agent.WithWait(s.ctx, w.wait), j)
		if resp != nil {
			if _, err := s.conn.WriteToUDPAddrPort(resp, j.from); err != nil {
				a.c.sendErrors.Add(1)
			} else {
				a.c.outResponses.Add(1)
			}
		}
		if w.left {
			w.done()
			return
		}
	}
}

// serveOne runs one request with its timeout, turning a panic (a bug in a
// handler or a decoder) into a dropped request instead of a dead agent.
func (a *Agent) serveOne(ctx context.Context, j job) (resp []byte) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			a.c.panics.Add(1)
			a.log.WithField("panic", fmt.Sprint(r)).Error("request panicked; dropped")
			resp = nil
		}
	}()
	return a.handle(ctx, j.pkt, j.from)
}
