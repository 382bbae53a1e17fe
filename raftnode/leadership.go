package raftnode

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// leaderOutBuffer is the capacity of the LeadershipChanges channel.
	leaderOutBuffer = 16
	// leaderQueueMax bounds the transitions leadershipLoop holds for a
	// consumer that is not reading (beyond leaderOutBuffer).
	leaderQueueMax = 64
	// barrierTransferEvery: after this many failed start-of-term barriers in
	// a row the leader tries to hand leadership to another voter.
	barrierTransferEvery = 3
)

// barrierResult is what establishLeadership reports to leadershipLoop.
type barrierResult struct {
	gen  uint64 // leadershipLoop generation that started it
	term uint64 // term the barrier was issued for
	err  error
}

// LeadershipChanges returns the channel of leadership transitions of this
// node: true when it has become leader *and* its start-of-term Barrier has
// completed (the FSM reflects every earlier entry, so leader-only work may
// start), false when it has lost leadership after a true. Values alternate,
// starting with true; when the node shuts down a final false follows a true
// (best effort: if the consumer left the buffer full it may be missing). The
// channel is buffered; if the consumer falls far behind, the oldest
// true/false pairs are dropped, which keeps the order and the final state.
// There is one channel per node (a single consumer, e.g. the cluster
// reconcile loop). It is never closed: select on your own context as well.
func (n *Node) LeadershipChanges() <-chan bool { return n.leaderOut }

// leadershipLoop is the single owner of the leadership state: it reads Raft's
// NotifyCh, starts the start-of-term Barrier, sets and clears readyTerm and
// feeds LeadershipChanges. It never blocks on the consumer.
func (n *Node) leadershipLoop() {
	defer n.wg.Done()
	var lq leaderQueue
	var gen uint64 // bumped on each Raft notification; older barrier results are stale
	for {
		out, head := lq.next(n.leaderOut)
		select {
		case isLeader := <-n.raftNotify:
			gen++
			n.onRaftLeadership(isLeader, gen, &lq)
		case r := <-n.barrierCh:
			n.onBarrierResult(r, gen, &lq)
		case out <- head:
			lq.pop()
		case <-n.shutdownCh:
			n.readyTerm.Store(0)
			// A stopped node is not the leader: make sure a consumer that
			// saw true also gets false, as far as the buffer allows.
			lq.push(false)
			lq.flush(n.leaderOut)
			return
		}
	}
}

// onRaftLeadership handles one NotifyCh value.
func (n *Node) onRaftLeadership(isLeader bool, gen uint64, lq *leaderQueue) {
	if !isLeader {
		n.readyTerm.Store(0)
		lq.push(false)
		n.logger.Info("lost leadership")
		return
	}
	term := n.raft.CurrentTerm()
	n.logger.Info("gained leadership, running start-of-term barrier", "term", term)
	n.wg.Add(1)
	go n.establishLeadership(gen, term)
}

// onBarrierResult marks the term ready if the barrier that finished belongs
// to the current generation and the node is still leader in that term.
func (n *Node) onBarrierResult(r barrierResult, gen uint64, lq *leaderQueue) {
	switch {
	case r.gen != gen:
		n.logger.Debug("ignoring barrier result from an earlier leadership", "term", r.term)
	case r.err != nil:
		n.logger.Warn("start-of-term barrier did not complete", "term", r.term, "error", r.err)
	case !n.leaderInTerm(r.term):
		n.logger.Debug("barrier completed after leadership moved on", "term", r.term)
	default:
		n.readyTerm.Store(r.term)
		lq.push(true)
		n.logger.Info("leader ready", "term", r.term)
	}
}

// establishLeadership runs the start-of-term Barrier and reports it.
func (n *Node) establishLeadership(gen, term uint64) {
	defer n.wg.Done()
	if h := n.hooks.beforeBarrier; h != nil {
		h()
	}
	err := n.runBarrier(term)
	select {
	case n.barrierCh <- barrierResult{gen: gen, term: term, err: err}:
	case <-n.shutdownCh:
	}
}

// runBarrier issues Barrier until it succeeds, the node is no longer leader
// in term, or the node shuts down. A leader that cannot complete its barrier
// is useless for reads, so every few failures it tries to hand leadership
// over (Consul does the same when establishing leadership fails).
func (n *Node) runBarrier(term uint64) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resolved, err := n.awaitFuture(context.Background(), n.raft.Barrier(n.cfg.ApplyTimeout), n.shutdownCh)
		if !resolved {
			return err
		}
		if err == nil {
			return nil
		}
		if !n.leaderInTerm(term) {
			return n.translate("start-of-term barrier", err, false)
		}
		n.logger.Error("start-of-term barrier failed", "term", term, "attempt", attempt, "error", err)
		if attempt%barrierTransferEvery == 0 {
			_, terr := n.awaitFuture(context.Background(), n.raft.LeadershipTransfer(), n.shutdownCh)
			n.logger.Warn("transferring leadership after failed barriers", "error", terr)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-n.shutdownCh:
			t.Stop()
			return ErrShutdown
		}
		backoff = min(2*backoff, time.Second)
	}
}

// leaderInTerm reports whether this node is leader and the term is term.
func (n *Node) leaderInTerm(term uint64) bool {
	return n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term
}

// leaderQueue holds leadership transitions the consumer has not taken yet.
// Owned by leadershipLoop.
type leaderQueue struct {
	items []bool
	last  bool // last value pushed; the consumer starts from "not leader"
}

// push appends v unless it repeats the last value. On overflow it drops the
// oldest pair, which keeps alternation and the final state.
func (q *leaderQueue) push(v bool) {
	if v == q.last {
		return
	}
	q.last = v
	q.items = append(q.items, v)
	if len(q.items) > leaderQueueMax {
		q.items = q.items[2:]
	}
}

// next returns the channel to offer the head on (nil when empty) and the head.
func (q *leaderQueue) next(out chan bool) (chan bool, bool) {
	if len(q.items) == 0 {
		return nil, false
	}
	return out, q.items[0]
}

func (q *leaderQueue) pop() { q.items = q.items[1:] }

// flush moves queued values into out without blocking, while it has room.
func (q *leaderQueue) flush(out chan bool) {
	for len(q.items) > 0 {
		select {
		case out <- q.items[0]:
			q.pop()
		default:
			return
		}
	}
}
