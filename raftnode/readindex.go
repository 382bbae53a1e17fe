package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// readState is the queue between ReadIndex callers and readLoop.
type readState struct {
	mu      sync.Mutex    // protects pending
	pending []*readWaiter // callers that arrived since the last round started
	// wake has capacity 1: a caller that queues itself drops a token in it
	// (non-blocking), so a round is always pending after any arrival.
	wake chan struct{}

	requests atomic.Uint64 // callers queued
	rounds   atomic.Uint64 // VerifyLeader rounds run

	// walkCommit/walkCommand memoise lastCommandAtOrBelow: the last command
	// at or below walkCommit is walkCommand. Owned by readLoop.
	walkCommit, walkCommand uint64
}

// readWaiter is one queued ReadIndex call. ch has capacity 1 so readLoop
// never blocks on a caller that gave up.
type readWaiter struct {
	ch chan readResult
}

type readResult struct {
	index uint64
	round uint64 // which VerifyLeader round served it (0: none)
	err   error
}

// ReadIndex returns an index I such that the state after applying every entry
// up to I reflects every write acknowledged before ReadIndex was called: the
// caller waits until its FSM has applied I and then reads locally, which
// makes the read linearizable.
//
// It works only on the leader (ErrNotLeader, ErrNoLeader) and only once the
// barrier that starts the leader's term has completed (ErrNotReady; retry
// shortly). The leader captures its commit index, confirms it is still
// leader with one heartbeat round to a quorum (VerifyLeader), and returns
// the index of the last *command* entry at or below the captured commit
// index (no-op and barrier entries never reach the FSM; see
// lastCommandAtOrBelow). The FSM must therefore track the index of the last
// command it applied (and carry it through snapshots); 0 means "nothing to
// wait for". Concurrent callers are batched: one round serves every
// caller that queued before the round started (etcd's
// linearizableReadLoop), so a burst of reads costs one heartbeat round trip.
//
// ctx and Config.ReadIndexTimeout bound the call (ErrTimeout on the latter).
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	r := n.readIndex(ctx)
	return r.index, r.err
}

func (n *Node) readIndex(ctx context.Context) readResult {
	const op = "read index"
	if err := n.checkOpen(op); err != nil {
		return readResult{err: err}
	}
	// Cheap early rejection; the round checks again.
	if _, err := n.readCheck(op); err != nil {
		return readResult{err: err}
	}
	if err := ctx.Err(); err != nil {
		return readResult{err: fmt.Errorf("%s: %w", op, err)}
	}

	w := &readWaiter{ch: make(chan readResult, 1)}
	n.reads.mu.Lock()
	n.reads.pending = append(n.reads.pending, w)
	n.reads.mu.Unlock()
	n.reads.requests.Add(1)
	select {
	case n.reads.wake <- struct{}{}:
	default:
	}

	t := time.NewTimer(n.cfg.ReadIndexTimeout)
	defer t.Stop()
	select {
	case r := <-w.ch:
		return r
	case <-ctx.Done():
		return readResult{err: fmt.Errorf("%s: %w", op, ctx.Err())}
	case <-t.C:
		return readResult{err: fmt.Errorf("%s: no result within %s: %w", op, n.cfg.ReadIndexTimeout, ErrTimeout)}
	case <-n.shutdownCh:
		return readResult{err: fmt.Errorf("%s: %w", op, ErrShutdown)}
	}
}

// readCheck returns the current term if this node is leader and that term's
// barrier has completed.
func (n *Node) readCheck(op string) (uint64, error) {
	term := n.raft.CurrentTerm()
	if err := n.checkOpen(op); err != nil {
		return 0, err
	}
	if n.raft.State() != raft.Leader {
		return 0, n.notLeaderError(op)
	}
	if n.readyTerm.Load() != term {
		return 0, fmt.Errorf("%s: term %d has not completed its barrier: %w", op, term, ErrNotReady)
	}
	return term, nil
}

// readLoop owns VerifyLeader rounds: each wake-up takes every queued caller
// and serves them with one round.
func (n *Node) readLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.reads.wake:
			n.readRound()
		case <-n.shutdownCh:
			n.answerPending(readResult{err: fmt.Errorf("read index: %w", ErrShutdown)})
			return
		}
	}
}

// readRound serves the callers queued so far with one VerifyLeader round.
// Callers that queue while the round runs wait for the next one: the commit
// index captured here may not cover a write acknowledged after they arrived.
func (n *Node) readRound() {
	if h := n.hooks.beforeReadRound; h != nil {
		h()
	}
	batch := n.takePending()
	if len(batch) == 0 {
		return
	}
	r := n.verifyRound("read index")
	for _, w := range batch {
		w.ch <- r
	}
}

// answerPending gives every queued caller r.
func (n *Node) answerPending(r readResult) {
	for _, w := range n.takePending() {
		w.ch <- r
	}
}

// takePending empties the queue and returns what it held.
func (n *Node) takePending() []*readWaiter {
	n.reads.mu.Lock()
	defer n.reads.mu.Unlock()
	batch := n.reads.pending
	n.reads.pending = nil
	return batch
}

// verifyRound captures the commit index and confirms leadership after the
// capture. The term must be the same, with a completed barrier, before the
// capture and after the verification: a node that lost and regained
// leadership in between may hold a commit index from before entries
// committed by the interim leader.
func (n *Node) verifyRound(op string) readResult {
	term, err := n.readCheck(op)
	if err != nil {
		return readResult{err: err}
	}
	commit := n.raft.CommitIndex()
	if h := n.hooks.afterReadIndexRead; h != nil {
		h()
	}
	round := n.reads.rounds.Add(1)
	resolved, err := n.awaitFuture(context.Background(), n.raft.VerifyLeader(), n.shutdownCh)
	switch {
	case !resolved:
		return readResult{round: round, err: fmt.Errorf("%s: %w", op, ErrShutdown)}
	case errors.Is(err, raft.ErrLeadershipLost):
		// A read has no side effects: losing leadership is a plain
		// "not leader", never an unknown outcome.
		return readResult{round: round, err: n.notLeaderError(op)}
	case err != nil:
		return readResult{round: round, err: n.translate(op+": verify leader", err, false)}
	}
	if n.raft.CurrentTerm() != term {
		return readResult{round: round, err: n.notLeaderError(op + ": term changed during verification")}
	}
	return readResult{index: n.lastCommandAtOrBelow(commit), round: round}
}

// lastCommandAtOrBelow returns the index of the last LogCommand entry at or
// below commit, the index an FSM that tracks "last entry applied" reaches.
// The commit index itself often points at a no-op (written by every new
// leader) or a Barrier, and Raft never hands those to the FSM, so waiting
// for the FSM to reach the commit index could wait for the next write.
// Configuration entries are skipped too (they do not change FSM state, and
// an FSM may choose not to count them). Committed entries never change, so
// the walk is memoised and only covers entries committed since the previous
// call.
//
// If the walk runs into the compacted part of the log, every command at or
// below commit is older than this node's last snapshot, so the FSM already
// reflects it: the result is then 0 ("no need to wait").
func (n *Node) lastCommandAtOrBelow(commit uint64) uint64 {
	floor, found := n.reads.walkCommit, n.reads.walkCommand
	if commit < floor { // cannot happen for committed entries; start over
		floor, found = 0, 0
	}
	result := found
	for i := commit; i > floor; i-- {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			result = 0
			break
		}
		if l.Type == raft.LogCommand {
			result = i
			break
		}
	}
	n.reads.walkCommit, n.reads.walkCommand = commit, result
	return result
}
