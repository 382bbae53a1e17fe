package raftnode

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The commit nudge (DESIGN.md, "Commit nudge").
//
// hashicorp/raft v1.7.3 tells a follower the leader's commit index only in
// the next AppendEntries that carries entries or in the idle-leader tick
// sent every CommitTimeout (randomised up to 2x); heartbeats carry none. An
// isolated write is therefore applied on the followers - and delivered to
// the watchers connected there - one CommitTimeout or more after the leader
// acknowledged it. The library has no API to push the commit index sooner.
//
// We own the transport, so we push it ourselves. When Apply returns on the
// leader for index N (N is committed: the leader's FSM applied it) and N is
// the leader's last log index (nothing newer in flight whose AppendEntries
// would carry the commit index anyway), the nudger sends each follower
// whose log is known to hold N one extra AppendEntries on a connection of
// its own:
//
//	Term = the term the library replicates to that follower in,
//	PrevLogEntry = N, PrevLogTerm = term of entry N, no entries,
//	LeaderCommitIndex = N.
//
// Why it is safe (hashicorp/raft raft.go, appendEntries):
//   - A follower at a higher term rejects it before touching any state,
//     so a deposed leader's nudge is harmless. The term is always one in
//     which this node was the leader (it is copied from the library's own
//     replication requests), so a receiver in that term sees the same
//     leader as in every other AppendEntries of the term.
//   - The follower checks that its entry N has our term for N. If it does,
//     log matching says its log equals ours up to N, and N is committed, so
//     setting its commit index to min(N, its last index) = N commits only
//     committed entries. PrevLogEntry = LeaderCommitIndex is what keeps a
//     divergent uncommitted tail past N from being committed: with a lower
//     PrevLogEntry, min(LeaderCommitIndex, lastIndex) could reach entries
//     that are not ours.
//   - If the check fails the follower answers failure having changed
//     nothing but what any AppendEntries of the term changes (leader, last
//     contact); the nudger ignores the answer, and the library's own
//     replication (a different connection and state) is unaffected.
//
// To avoid sending requests a follower would reject (each rejection is a
// warning in its log), the transport wrapper watches the library's own
// AppendEntries responses: a success for a request in term T means the
// follower's log matches ours up to the request's last entry (or its
// PrevLogEntry when empty). A follower is nudged for N only once that
// "acked" index has reached N in the current term, either at once or when
// its ack arrives. The same responses show the commit index the library
// already delivered, so under load, when each AppendEntries carries the
// commit index, no nudge is sent. At most one nudge is in flight per
// follower; the latest N wins. Nudges go over a separate NetworkTransport
// on our stream layer (same TLS, dial override and fence) whose per-RPC
// deadline is short, so a frozen follower holds up only its own nudges and
// Shutdown for at most that deadline.

// nudgeTimeout bounds one nudge (dial and I/O). A nudge that cannot finish
// this fast is not worth waiting for: the library's CommitTimeout tick
// delivers the commit index anyway.
func nudgeTimeout(cfg Config) time.Duration {
	return min(cfg.TransportTimeout, cfg.HeartbeatTimeout)
}

// nudger sends commit nudges. Its methods are safe for concurrent use.
type nudger struct {
	logs   raft.LogStore // for the term of entry N
	send   raft.Transport
	logger hclog.Logger

	mu        sync.Mutex // protects everything below; a leaf lock
	committed uint64     // highest index applied by this leader's FSM with nothing newer in flight
	peers     map[raft.ServerID]*nudgePeer
	closed    bool
	wg        sync.WaitGroup // one sendLoop per peer with a nudge in flight

	// sent counts nudges that reached a follower, for tests and Stats.
	sent uint64
}

// nudgePeer is what the nudger knows about one follower, from the
// library's replication to it.
type nudgePeer struct {
	id   raft.ServerID
	addr raft.ServerAddress
	// term is the term of the requests acked is for; header is copied
	// from one of them (it names this leader: ID and address).
	term   uint64
	header raft.RPCHeader
	// acked: the follower's log is known to match ours up to here.
	acked uint64
	// known: the follower is known to have been told commit index >= known
	// (by the library or by a nudge).
	known    uint64
	inflight bool
}

// newNudger builds a nudger that sends through its own NetworkTransport
// over stream (dial only: it never accepts).
func newNudger(cfg Config, stream *streamLayer, logs raft.LogStore, logger hclog.Logger) *nudger {
	send := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  newDialOnly(stream),
		MaxPool: 1,
		Timeout: nudgeTimeout(cfg),
		Logger:  logger.Named("raft-nudge-net"),
	})
	return &nudger{logs: logs, send: send, logger: logger, peers: map[raft.ServerID]*nudgePeer{}}
}

// applied is called when Apply returned on the leader for index, with
// last the leader's last log index right after. Only an index with nothing
// newer behind it is nudged: a newer entry's AppendEntries, or its own
// nudge, tells the followers.
func (n *nudger) applied(index, last uint64) {
	if index == 0 || index != last {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if index <= n.committed {
		return
	}
	n.committed = index
	for _, p := range n.peers {
		n.maybeSendLocked(p)
	}
}

// observe records the outcome of one of the library's AppendEntries to id
// at addr.
func (n *nudger) observe(id raft.ServerID, addr raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if req == nil || resp == nil || !resp.Success || resp.Term > req.Term {
		return
	}
	acked := req.PrevLogEntry
	if k := len(req.Entries); k > 0 {
		acked = req.Entries[k-1].Index
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[id]
	if p == nil {
		p = &nudgePeer{id: id}
		n.peers[id] = p
	}
	switch {
	case req.Term < p.term:
		return // an answer from an earlier leadership of ours
	case req.Term > p.term:
		p.term, p.acked, p.known = req.Term, 0, 0
	}
	p.addr, p.header = addr, req.RPCHeader
	p.acked = max(p.acked, acked)
	// The follower set its commit index to min(LeaderCommitIndex, its last
	// index), and its last index is at least acked.
	p.known = max(p.known, min(req.LeaderCommitIndex, acked))
	n.maybeSendLocked(p)
}

// maybeSendLocked starts a sendLoop for p if it has something to learn and
// no nudge in flight.
func (n *nudger) maybeSendLocked(p *nudgePeer) {
	if n.closed || p.inflight || p.term == 0 || min(n.committed, p.acked) <= p.known {
		return
	}
	p.inflight = true
	n.wg.Add(1)
	go n.sendLoop(p)
}

// sendLoop sends p nudges until it knows the latest nudgeable index.
func (n *nudger) sendLoop(p *nudgePeer) {
	defer n.wg.Done()
	n.mu.Lock()
	for !n.closed && p.term != 0 && min(n.committed, p.acked) > p.known {
		target := min(n.committed, p.acked)
		req, err := n.requestLocked(p, target)
		if err != nil {
			n.logger.Debug("not nudging follower", "peer", p.id, "index", target, "error", err)
			p.known = target // give up on this index: the library's tick delivers it
			break
		}
		id, addr := p.id, p.addr
		n.mu.Unlock()
		var resp raft.AppendEntriesResponse
		err = n.send.AppendEntries(id, addr, req, &resp)
		n.mu.Lock()
		switch {
		case err != nil:
			n.logger.Debug("commit nudge failed", "peer", id, "index", target, "error", err)
		case resp.Term > req.Term:
			// Deposed: stop until the library replicates in a newer term.
			if p.term == req.Term {
				p.term = 0
			}
		case resp.Success:
			n.sent++
		}
		// Whatever happened, this index is not retried: the library's own
		// replication delivers it within CommitTimeout.
		if p.term == req.Term {
			p.known = max(p.known, target)
		}
	}
	p.inflight = false
	n.mu.Unlock()
}

// requestLocked builds the nudge for index on p (see the top of the file).
func (n *nudger) requestLocked(p *nudgePeer, index uint64) (*raft.AppendEntriesRequest, error) {
	var entry raft.Log
	if err := n.logs.GetLog(index, &entry); err != nil {
		return nil, fmt.Errorf("read log entry %d: %w", index, err)
	}
	return nudgeRequest(p.header, p.term, index, entry.Term), nil
}

// nudgeRequest is the AppendEntries that tells a follower whose entry index
// has term entryTerm that index is committed, and nothing else.
// The leader is named by header.Addr (the deprecated Leader field is left
// empty: followers read the header).
func nudgeRequest(header raft.RPCHeader, term, index, entryTerm uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{
		RPCHeader:         header,
		Term:              term,
		PrevLogEntry:      index,
		PrevLogTerm:       entryTerm,
		LeaderCommitIndex: index,
	}
}

// nudgesSent reports how many nudges followers accepted.
func (n *nudger) nudgesSent() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent
}

// close stops new nudges, waits for those in flight (each bounded by
// nudgeTimeout) and closes the nudge transport.
func (n *nudger) close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
	if c, ok := n.send.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// nudgeTransport is the transport Raft uses: the real one, with every
// AppendEntries answer shown to the nudger.
type nudgeTransport struct {
	raft.Transport
	n *nudger
}

var (
	_ raft.Transport   = (*nudgeTransport)(nil)
	_ raft.WithClose   = (*nudgeTransport)(nil)
	_ raft.WithPreVote = (*nudgeTransport)(nil)
)

// errNoPreVote is returned if the wrapped transport cannot send pre-votes
// (ours always can).
var errNoPreVote = errors.New("raftnode: transport does not support pre-vote")

// AppendEntries sends through the real transport and records the answer.
func (t *nudgeTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress,
	args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse,
) error {
	err := t.Transport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.n.observe(id, target, args, resp)
	}
	return err
}

// AppendEntriesPipeline wraps the real pipeline so that its answers are
// recorded too.
func (t *nudgeTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	op := &observedPipeline{
		AppendPipeline: p,
		id:             id,
		target:         target,
		n:              t.n,
		out:            make(chan raft.AppendFuture, cap(p.Consumer())),
		done:           make(chan struct{}),
	}
	op.wg.Add(1)
	go op.forward()
	return op, nil
}

// RequestPreVote implements raft.WithPreVote.
func (t *nudgeTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress,
	args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse,
) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return errNoPreVote
	}
	return pv.RequestPreVote(id, target, args, resp)
}

// Close implements raft.WithClose: it closes the real transport, then the
// nudger (Raft calls it from Shutdown).
func (t *nudgeTransport) Close() error {
	var errs []error
	if c, ok := t.Transport.(raft.WithClose); ok {
		errs = append(errs, c.Close())
	}
	errs = append(errs, t.n.close())
	return errors.Join(errs...)
}

// observedPipeline passes the real pipeline's answers on to Raft after
// showing them to the nudger. forward is its only goroutine, joined by
// Close (Raft closes a pipeline after its decoder has stopped reading).
type observedPipeline struct {
	raft.AppendPipeline
	id     raft.ServerID
	target raft.ServerAddress
	n      *nudger

	out       chan raft.AppendFuture
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func (p *observedPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *observedPipeline) forward() {
	defer p.wg.Done()
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			// The future is complete when the pipeline hands it over.
			if f.Error() == nil {
				p.n.observe(p.id, p.target, f.Request(), f.Response())
			}
			select {
			case p.out <- f:
			case <-p.done:
				return
			}
		case <-p.done:
			return
		}
	}
}

func (p *observedPipeline) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	err := p.AppendPipeline.Close()
	p.wg.Wait()
	return err
}

// dialOnly is the nudge transport's stream layer: it dials through the
// node's stream layer (same TLS, dial override and fence) and accepts
// nothing.
type dialOnly struct {
	*streamLayer
	done chan struct{}
	once sync.Once
}

func newDialOnly(s *streamLayer) *dialOnly {
	return &dialOnly{streamLayer: s, done: make(chan struct{})}
}

var errDialOnly = errors.New("raftnode: the nudge transport accepts no connections")

// Accept blocks until Close.
func (d *dialOnly) Accept() (net.Conn, error) {
	<-d.done
	return nil, errDialOnly
}

// Close ends Accept; the node's listener is left alone.
func (d *dialOnly) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
