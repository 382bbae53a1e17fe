package raftnode

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Sentinel errors returned by Node. Every error that leaves this package and
// comes from hashicorp/raft is translated into one of these (wrapped with
// context); compare with errors.Is, never with == or by message.
//
// Retry safety, which is what callers usually need to know:
//   - ErrNotLeader, ErrNoLeader, ErrNotReady, ErrShutdown, ErrTimeout and
//     ErrInvalidArgument are definite: nothing was proposed to the log, so the
//     request can be retried (elsewhere) without risk of a double apply.
//   - ErrUnknownOutcome is indeterminate: the command may or may not have been
//     committed (hashicorp/raft#561). Only retry writes that are idempotent
//     or guarded by CAS. Check it before anything else.
var (
	// ErrNotLeader means this node is not the Raft leader, so it cannot
	// apply commands, change membership or serve a read index. Leader()
	// names the leader to forward to, if one is known. An error that also
	// matches ErrNoLeader satisfies errors.Is(err, ErrNotLeader) as well.
	ErrNotLeader = errors.New("raftnode: not the leader")

	// ErrNoLeader means this node is not the leader and knows of no leader
	// (an election is under way or quorum is lost). Errors matching it also
	// match ErrNotLeader; check ErrNoLeader first to wait instead of forwarding.
	ErrNoLeader = errors.New("raftnode: no known leader")

	// ErrUnknownOutcome means a command was handed to Raft but the outcome is
	// not known: leadership was lost before it committed
	// (raft.ErrLeadershipLost), the caller's context ended while waiting for
	// the commit, or the node shut down while it was in flight. The command
	// may still be committed by the next leader.
	ErrUnknownOutcome = errors.New("raftnode: outcome unknown, the command may or may not have been committed")

	// ErrShutdown means the node has been shut down (or is shutting down)
	// before the request was handed to Raft.
	ErrShutdown = errors.New("raftnode: node is shut down")

	// ErrTimeout means the request did not start in time: Apply could not
	// enqueue the command within Config.ApplyTimeout (or the context's
	// deadline), or ReadIndex did not complete within Config.ReadIndexTimeout.
	// Nothing was proposed.
	ErrTimeout = errors.New("raftnode: timed out")

	// ErrNotReady means this node is the leader but has not yet completed
	// the Barrier that starts its term, so its FSM may not reflect every
	// entry committed by earlier leaders. Linearizable reads must wait and
	// retry (Consul's "ready for consistent reads" flag).
	ErrNotReady = errors.New("raftnode: leader not ready for linearizable reads")

	// ErrInvalidArgument means the request itself is malformed (an empty ID
	// or address, a bootstrap server list without this node, duplicate IDs).
	ErrInvalidArgument = errors.New("raftnode: invalid argument")

	// ErrInvalidConfig is returned by Config.Validate and New for a bad Config.
	ErrInvalidConfig = errors.New("raftnode: invalid config")

	// ErrDiskStalled: this node led while a write to its Raft log did not
	// finish within Config.DiskStallTimeout; it fenced itself off (see
	// Node.Failed).
	ErrDiskStalled = errors.New("raftnode: raft log disk stalled")

	// ErrDiskFailed: a write to this node's Raft log failed; the node
	// fenced itself off rather than go on with a log it could not write.
	ErrDiskFailed = errors.New("raftnode: raft log write failed")

	// ErrFenced: the node failed and its transport refuses connections.
	ErrFenced = errors.New("raftnode: node failed and is fenced off")
)

// translate maps an error returned by hashicorp/raft (or by a future obtained
// from it) onto this package's sentinels. op is a verb phrase for context.
// dispatched reports whether the command reached the log (a logFuture with a
// non-zero index): a shutdown after that point is indeterminate.
func (n *Node) translate(op string, err error, dispatched bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrNotVoter):
		return n.notLeaderError(op)
	case errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrAbortedByRestore):
		// ErrAbortedByRestore follows a user snapshot restore
		// (RestoreSnapshot): the write may or may not be in the log the
		// restore replaced; it is treated as indeterminate, always safe.
		return fmt.Errorf("%s: %v: %w", op, err, ErrUnknownOutcome)
	case errors.Is(err, raft.ErrRaftShutdown):
		if dispatched {
			return fmt.Errorf("%s: node shut down after the command reached the log: %w", op, ErrUnknownOutcome)
		}
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%s: enqueue: %w", op, ErrTimeout)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// notLeaderError builds the ErrNotLeader (or ErrNoLeader+ErrNotLeader) error
// for op, naming the known leader when there is one.
func (n *Node) notLeaderError(op string) error {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return fmt.Errorf("%s: %w (%w)", op, ErrNoLeader, ErrNotLeader)
	}
	return fmt.Errorf("%s: leader is %s at %s: %w", op, id, addr, ErrNotLeader)
}

// ErrCorruptState means a file in the data dir is damaged in a way start-up
// cannot repair by itself; the message names the file and what to do
// (docs/recovery.md).
var ErrCorruptState = errors.New("raftnode: damaged raft state in the data dir")
