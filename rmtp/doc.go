// Package rmtp is smsnmpd's reliable multicast transport (seed Fig 5 and
// Fig 6, DESIGN.md §4). It owns the wire format (subpackage wire), message
// segmentation and reassembly, ACK vectors and NAK-based repair, the
// retransmission timer, request/response, the abort protocol, the
// membership view, authentication and the transport counters. It does not
// own what the messages mean (fanout and directory do), the election of the
// active manager (the caller calls Activate with the term it won), or
// configuration files (the caller fills Config).
//
// # Model
//
// Every member runs one Endpoint over a Transport: UDP multicast inside a
// LAN (ListenMulticast), unicast UDP to a list of peers between LANs
// (ListenUnicast), or memnet in tests. There are two groups: Down, the
// farm group every member joins, and Up, the managers' group that only the
// SM and BSMs join. A message goes on a channel (0..255) in one direction
// and is delivered exactly once and in order per (sender, incarnation,
// channel, direction), so a 1 MiB directory transfer on one channel never
// delays a management reply on another. The channels smsnmpd's protocols
// use are one table (ChannelManagement, ChannelDirectory, ChannelTransfer,
// ChannelLookup, ChannelReplica); each protocol reads its own through an
// inbox (Endpoint.Channel, an rmtp.Receiver) or a Handler, and a node
// whose protocols all do so drops what arrives on any other channel
// (Config.DropUnclaimed).
//
// Managers send Down (and Up, to each other); engines send only Up
// (ErrDirection otherwise). Acknowledgements go the other way from the data: engines acknowledge
// (ACK, ABORT_ACK) on Up, where only managers hear them; managers
// acknowledge on Down with one cumulative ACK vector covering every
// sender. So an operation costs O(N) datagrams, not O(N²). NAKs always go
// Down: every receiver of the same stream hears them and suppresses its
// own, and the sender (an engine sending Up is still in the farm group)
// hears them and repairs by multicast once per round. Tail loss is the
// sender's: a message not acknowledged by every member within the
// retransmission timeout (below) has its last segment re-sent, which
// tells a receiver that lost everything how many segments to NAK.
//
// # Retransmission timer
//
// The timeout of a message is
//
//	RTO = max(2×srtt, MinRTO) [+ AckDelay] + (P-1)×spacing [+ ahead/32 MB/s on the first try]
//
// doubled per retry, at most MaxRTO and never past the caller's deadline;
// an engine's answer waits at least 2×answerWait (below). srtt is the
// slowest pending member's smoothed RTT (RFC 6298, Karn's rule: no sample
// from a re-sent message, nor from one queued behind a burst, which
// measures the receivers' drain); AckDelay is added when a manager is
// pending, since managers acknowledge by a vector at most every AckDelay;
// ahead is the bytes in flight when the message was sent, its own
// included, which the receivers drain before its last segment; P is the
// number of members still pending. spacing is this endpoint's smoothed time between two
// answers to one transfer: N answers converge on one receiver, which
// reads them one at a time, so the last lands (N-1) spacings after the
// first whatever the network's RTT. A sample is (last - first) /
// (answers - 1) over the answers that came before any re-send, from
// transfers with at least 4 of them, each capped at 500 µs. For a plain
// message (one or a few members) P-1 is 0 or small, and the first retry
// stays at about max(2×RTT, 2 ms).
//
// The timer also does not fire while the fan-in is visibly still going
// on: if a member became done (ACK or answer) less than quiet =
// max(MinRTO, 8×spacing) ago, the re-send moves to quiet after that
// answer, without a backoff step. Each deferral needs a new answer, so a
// request to N members is deferred at most N times, and a member whose
// request was lost gets the re-send one quiet period after the others
// have answered.
//
// (Not TCP's srtt+4·rttvar, nor TCP's backoff carried to the next
// message: both were measured; they stretched the 16-receiver 10 % loss
// test from about 10 s to 15-20 s, and saved only engines' spurious
// re-sends of responses, which cost a datagram each and no latency.)
//
// # Acknowledgements and fan-in
//
// An engine acknowledges what it delivered at once, one ACK per batch of
// datagrams read, to the managers only. A manager's vector for engines'
// streams goes down, to every member, so it coalesces: one per AckDelay,
// with refinements for answers; its entries for other managers' streams
// go up, to the managers only, so a backup manager acknowledging each
// request does not wake the farm. Answers to the manager's own request are held while the
// request collects; its end (all answered, deadline) arms one vector for
// all of them, due within AnswerAckDelay (20 ms) when engines answered:
// the requester already has the answers, so the vector only releases
// them at the engines, and with back-to-back requests one vector per
// AnswerAckDelay releases the answers of all of them instead of every
// engine waking for a vector per request (engines' answers a backup
// manager overhears wait as long). A manager's answer is acknowledged
// within AckDelay: it may be waiting for that (a synchronous Reply, as
// the directory serves snapshot chunks) before it serves the next. A vector
// due within AckDelay goes ahead of the next message the manager sends,
// in the same flush (one wake-up of every engine for both), still at most
// one per AckDelay; when a request's timer fires, the vector goes first,
// in the same flush as the re-sent request, so engines that answered do
// not answer again. And a duplicate segment re-arms the vector within
// AckDelay, not at once, so engines' early re-sends of answers do not
// each cost the farm a vector.
//
// An engine that receives a request again after answering it re-sends its
// answer if that is still unacknowledged (the manager, having acknowledged
// what it has just before, lacks it) and otherwise sends nothing: the
// re-sent request was for other members, and an ACK would not tell the
// manager anything the answer did not. The manager's timer thus recovers
// lost answers, one datagram per engine that lacks something. An engine's
// own timer for an answer is the backstop: at least 2×AnswerAckDelay +
// AckDelay (an engine's) and 2×answerWait, where
// answerWait rises at once to, and decays slowly from, the time answers
// took to be acknowledged (every sample: a held answer is acknowledged no
// sooner than its request completes, however often it was sent).
//
// # Receive path
//
// UDP reads every datagram waiting, up to 32, with one recvmmsg (sends
// use sendmmsg); the endpoint checks their tags outside its lock, then
// handles the batch under one lock and sends what it queued in one flush.
// On an engine's single socket the datagrams stay in the socket's receive
// buffers: segments are copied straight into their message, which is
// allocated once its segment size is known (every segment but the last
// has the sender's size) and charged in full to the peer's reassembly
// budget. A channel with a Handler (Endpoint.Handle) has its messages
// handed to a function on the receive goroutine, after the batch's
// acknowledgements went out, instead of to an inbox: a responder saves a
// goroutine hand-off per request. One goroutine at a time drains the
// queue of such messages, in order; a call that outlasts its budget hands
// receiving (and the queue) to a new goroutine and finishes alone. A
// receiver that is done with a message may hand its buffer
// back (Message.Release) for the next message of a like size, and a
// sender's copy of a large message goes back to the same bounded pool
// once every member has it: at a high rate of large messages, allocating
// each afresh made the garbage collector run every few messages. A
// socket filter (classic BPF) drops the endpoint's own
// multicast loopback in the kernel. Arming a timer moves the timer
// loop's deadline without waking it, and a finished message moves it
// back, so timers cost a wake-up only when they are due.
//
// A request (Request) goes Down; each targeted engine's Reply goes Up and
// is its acknowledgement. Send, Request and Reply return a Report: who
// acknowledged, who answered, who was missing at the deadline.
//
// Membership: members send HELLO every HelloInterval (managers Down,
// engines Up); a member silent for SuspectAfter intervals is suspect, for
// DownAfter intervals down, and no transfer waits for it any more. A
// graceful Close sends HELLO with LEAVE. A restarted member comes back
// with a higher incarnation; datagrams of the old one are dropped
// (Counters.Stale). The active manager announces the VIEW (term, version,
// members); "every member" means every member of the current view.
// HELLO carries role, priority, level and the term its sender holds (an
// engine: the term of the view it obeys while that view's owner is alive,
// else 0), but no "active" flag: the active manager is the VIEW's owner
// (View.Owner, PeerStats.Active). An election reads these from
// Stats().Peers; the engines' terms tell a manager cut off from the other
// managers, but not from the engines, that another one was elected.
//
// Membership changes are also published on Events (smEngineUp, smEngineDown
// and smManagerTakeover are made from them); Stats is the snapshot the MIB
// reads: counters, per-peer state and RTT, the view.
//
// Abort (Fig 6): Transfer.Abort multicasts ABORT; every receiver discards
// the partial message and answers ABORT_ACK; the active SM answers only
// after every other receiver has (or was declared down, or AbortWait
// passed), so its ABORT_ACK tells the sender the abort is complete. When
// the SM itself aborts, the abort completes when every member answered.
//
// # Wire format, version 1
//
// All integers are big-endian. Every datagram is a 48-byte header, a
// payload of PayloadLen bytes, and a 16-byte tag:
//
//	offset size field
//	     0    2 magic        0x524D ("RM")
//	     2    1 version      1; other versions are dropped (counted Malformed)
//	     3    1 type         1 DATA, 2 ACK, 3 NAK, 4 ABORT, 5 ABORT_ACK,
//	                         6 HELLO, 7 VIEW, 8 REQUEST, 9 RESPONSE (append-only)
//	     4    1 flags        0x01 INIT (first segment), 0x02 NO_MORE (last
//	                         segment), 0x04 UP (message goes to the managers'
//	                         group), 0x08 LEAVE (HELLO only); other bits: error
//	     5    1 channel      message channel (ABORT: channel of the aborted message)
//	     6    2 key id       key that made the tag; 0 = unauthenticated
//	     8    4 node         sender node id, never 0
//	    12    8 incarnation  sender incarnation, higher on every restart
//	    20    8 message id   segments: message id on the stream, from 1;
//	                         others: control sequence (replay window)
//	    28    4 seq          segment number, 0..count-1 (0 for control)
//	    32    4 count        segments in the message, 1..65536 (0 for control)
//	    36    8 ref          segments: the sender's low-water mark (oldest id it
//	                         can still repair; receivers skip below it); else 0
//	    44    2 payload len  at most 65507-64
//	    46    2 reserved     0
//	    48    n payload      segment bytes, or the body of a control type
//	  48+n   16 tag          HMAC-SHA256(key, bytes 0..48+n-1), first 16 bytes;
//	                         all zero when key id is 0
//
// DATA, REQUEST and RESPONSE carry segments: INIT is set exactly on seq 0,
// NO_MORE exactly on seq count-1. Segments fill the path MTU (interface MTU
// minus 28) so IP never fragments. A RESPONSE message (all its segments
// concatenated) starts with a 21-byte ref: requester node (4), requester
// incarnation (8), request message id (8), request direction (1: 0 down,
// 1 up); the response payload follows.
//
// Control bodies (a StreamID is node 4, incarnation 8, channel 1,
// direction 1 = 14 bytes; every count is checked against its cap before
// anything is allocated, and a body with trailing bytes is an error):
//
//	ACK        count 2 (≤ 1024), count × {StreamID, next 8}: every message of
//	           the stream with id < next was delivered
//	NAK        StreamID, count 2 (≤ 512), count × {message id 8, first seg 4,
//	           last seg 4}; first 0 / last 0xFFFFFFFF asks for a whole message
//	ABORT      message id 8 (stream: header node, incarnation, channel, UP flag)
//	ABORT_ACK  StreamID, message id 8, status 1 (0 discarded, 1 already delivered)
//	HELLO      role 1 (1 engine, 2 manager), priority 1, level 1, term 8,
//	           time 8 (sender's clock, Unix ns), address family 1 (0 none, 4, 6) + address 4|16 + port 2 if any,
//	           count 2 (≤ 512) × {channel 1, direction 1, next 8, low 8},
//	           app length 2 (≤ 1024) + app bytes (opaque, for the MIB)
//	VIEW       term 8, version 8, count 2 (≤ 4096) × {node 4, incarnation 8,
//	           role 1, state 1 (1 alive, 2 suspect)}
//
// # Authentication and replay
//
// The tag is checked before anything but the fixed header is looked at;
// a datagram that fails (unknown key id, bad tag, unauthenticated on a
// secure endpoint) is dropped and counted (AuthFailures). Keys come from a
// 0600 key file (LoadKeyFile); every key in it is accepted and the last
// one signs, which is how a key is rolled. Control datagrams carry a
// per-sender sequence checked against a 1024-entry sliding window
// (Counters.Replays); a replayed segment is a duplicate of a message
// already delivered, or older than the sender's low-water mark, and is
// never delivered twice (Counters.Duplicates). Those windows live as long
// as the receiver's state, so a member that restarts must not learn
// stream positions from a replay: a stream starts only after the sender's
// HELLO, whose timestamp must be within Config.MaxClockSkew of the
// receiver's clock (hosts run NTP), and which carries every stream's
// current position (Counters.Unsynced counts segments that came first). An endpoint without a key
// refuses to start unless Config.Insecure is set.
//
// # Bounds
//
// Config.MaxMessage (default 1 MiB) caps a message; Config.PeerMemory
// caps the reassembly bytes held per peer (segments beyond it are dropped
// and repaired later); a receiver buffers at most 4096 messages ahead of
// the next one it must deliver; Config.RepairRate caps repair bytes per
// second; the UDP transports ask for a 4 MiB receive buffer and log what
// the kernel granted (see README.md for net.core.rmem_max).
package rmtp
