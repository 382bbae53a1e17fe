package raftnode

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// RestoreSnapshot replaces the replicated state with the FSM snapshot in r
// (size bytes) through hashicorp/raft's user restore: on the leader only,
// the snapshot is written to the snapshot store at an index above index
// and the leader's last log index, restored into the leader's FSM, and
// followers install it as they would any snapshot. It returns once a no-op
// after the restore is committed, i.e. a quorum holds the new state, or
// with ErrUnknownOutcome when ctx ends first (the restore may still
// complete).
//
// index is the applied index the snapshot records (Raft restores at
// max(index, last log index)+1). The FSM must accept the snapshot: Raft
// panics if the leader's FSM refuses it, so the caller checks it fully
// first (fsm.RebaseSnapshot does). Writes in flight are aborted (their
// outcome is unknown). On a follower it fails with ErrNotLeader.
func (n *Node) RestoreSnapshot(ctx context.Context, index uint64, size int64, r io.Reader) error {
	if err := n.checkOpen("restore snapshot"); err != nil {
		return err
	}
	timeout, err := enqueueTimeout(ctx, n.cfg.ApplyTimeout)
	if err != nil {
		return fmt.Errorf("restore snapshot: %v before enqueue: %w", err, ErrTimeout)
	}
	if !n.IsLeader() {
		return n.notLeaderError("restore snapshot")
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: index, Term: n.raft.CurrentTerm(), Size: size}
	// raft.Restore takes no context: it runs on its own goroutine so ctx
	// bounds the wait. That goroutine ends when Raft finishes the restore
	// or shuts down; r must stay valid until then (callers pass memory).
	done := make(chan error, 1)
	go func() { done <- n.raft.Restore(meta, r, timeout) }()
	select {
	case err := <-done:
		if err != nil {
			return n.translate("restore snapshot", err, false)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("restore snapshot: stopped waiting (%v): %w", ctx.Err(), ErrUnknownOutcome)
	case <-n.raftDone:
		return fmt.Errorf("restore snapshot: %w", ErrShutdown)
	}
}

// LastIndex returns the index of the last entry in this node's Raft log
// (or of its last snapshot).
func (n *Node) LastIndex() uint64 { return n.raft.LastIndex() }
