// Package raftnode wires hashicorp/raft (v1.7.3) into a chainstore server:
// a log store behind a LogCache (hashicorp/raft-wal in DataDir/wal, or
// raft-boltdb/v2 in DataDir/raft.db: logstore.go), raft-boltdb/v2 at
// DataDir/raft.db as the stable store, a FileSnapshotStore under DataDir, and a NetworkTransport over our
// own TCP StreamLayer (the place for mTLS, and for the test-only dial
// override the fault suite uses to put a proxy on every link).
//
// It is consensus plumbing only: application state lives in the FSM passed
// to New (package fsm), request policy in package rpc, membership decisions
// in package cluster. DESIGN.md explains the settings and the read path.
//
// # Usage
//
//	cfg := raftnode.DefaultConfig()
//	cfg.NodeID, cfg.DataDir, cfg.BindAddr = id, dir, "10.0.0.1:8300"
//	n, err := raftnode.New(cfg, fsm, logger)
//	if !n.HasExistingState() { err = n.BootstrapCluster(servers) } // same list everywhere
//	resp, index, err := n.Apply(ctx, cmd)   // leader only; resp is the FSM's return
//	idx, err := n.ReadIndex(ctx)            // leader only; then wait for the FSM to apply idx
//	defer n.Shutdown()                      // transfers leadership first when leader
//
// Errors from hashicorp/raft never leave the package untranslated: callers
// see ErrNotLeader, ErrNoLeader, ErrUnknownOutcome, ErrShutdown, ErrTimeout,
// ErrNotReady, ErrInvalidArgument or ErrInvalidConfig (see errors.go for
// which ones are safe to retry) and compare them with errors.Is.
//
// # Disk failures
//
// The log store is wrapped (diskguard.go; docs/reliability.md, G9): a
// failed log write, or on the leader a write still running after
// DiskStallTimeout, fails the node. It fences its transport (closes every Raft connection and
// refuses new ones, so the followers elect another leader instead of being
// kept quiet by the stuck leader's heartbeats, hashicorp/raft#503), answers
// every call as shut down, and closes Failed; the process should exit and be
// restarted once the disk is healthy (cmd/stored does).
//
// # Goroutines
//
// Started by this package, all joined by Shutdown:
//
//   - leadershipLoop (one per Node). Reads Raft's NotifyCh (buffered 64) and
//     owns the leadership state: it starts establishLeadership on every gain,
//     stores and clears readyTerm (the term whose start-of-term Barrier has
//     completed; ReadIndex reads it atomically) and feeds the
//     LeadershipChanges channel from a bounded queue, so a slow consumer
//     never blocks Raft. Stops when shutdownCh closes.
//   - establishLeadership (one per leadership gain; an outdated one ends as
//     soon as its Barrier fails). Runs Barrier, retrying with backoff while
//     the node is still leader in that term and trying a leadership transfer
//     every third failure, then reports to leadershipLoop over barrierCh.
//     Stops on shutdownCh.
//   - diskWatchLoop (one per Node). Ticks at DiskStallTimeout/8 and fails
//     a leader whose log write has been running for DiskStallTimeout of its
//     own ticks (so a paused process is not taken for a stalled disk).
//     Stops on shutdownCh or once the node failed.
//   - readLoop (one per Node). Owns VerifyLeader rounds: on each wake-up it
//     takes every queued ReadIndex caller, captures the commit index, runs
//     one VerifyLeader and answers the whole batch (buffered channels, so it
//     never blocks on a caller that gave up). Owns the memo of
//     lastCommandAtOrBelow. On shutdownCh it answers the queue with
//     ErrShutdown and returns.
//   - future waiters (one per in-flight Apply, Barrier, VerifyLeader,
//     membership change or transfer). hashicorp/raft futures offer only a
//     blocking Error(), so a waiter calls it and hands the result over a
//     buffered channel, letting the caller also watch its context and the
//     node's shutdown. Counted by waiterSet. Shutdown waits up to one second
//     for them after Raft has stopped; a future Raft left in one of its
//     buffered channels at shutdown is never answered (a v1.7.3 limitation:
//     such logFutures have no shutdown channel), so its waiter cannot end and
//     is reported in the log. Its caller has already returned.
//   - commit nudge senders (nudge.go): nudger.sendLoop, at most one per
//     follower with a nudge in flight, started when the leader's Apply
//     returns or a follower's replication answer arrives, each RPC bounded
//     by min(TransportTimeout, HeartbeatTimeout); the nudge transport's
//     accept loop (its stream layer accepts nothing); and one
//     observedPipeline.forward per replication pipeline, which shows each
//     AppendEntries answer to the nudger before handing it to Raft. The
//     transport's Close (called by raft.Shutdown) stops new nudges and
//     joins the senders; a pipeline's Close joins its forwarder.
//   - a restore runner per RestoreSnapshot (restore.go): raft.Restore takes
//     no context and returns no future, so it runs on its own goroutine and
//     the caller waits on it, its context and raftDone. It ends when Raft
//     finishes the restore or shuts down; not counted by waiterSet.
//
// Started by hashicorp/raft and its NetworkTransport: the main run loop, the
// FSM loop, the snapshot loop, one replication and one heartbeat goroutine
// per follower while leader, the transport's accept loop and one handler per
// inbound connection. raft.Shutdown joins Raft's own goroutines and closes
// the transport (listener and pooled connections), which ends the others.
// Started by raft-wal: one segment-rotation goroutine per open WAL, fed by
// appends that fill a segment; the WAL's Close ends it.
//
// Shutdown order: hand leadership over (when leader; bounded by twice the
// ElectionTimeout), close shutdownCh (our loops stop, queued reads fail with
// ErrShutdown), raft.Shutdown().Error(), close raftDone (waiting callers give
// up with ErrUnknownOutcome if their future is unanswered), join our
// goroutines, wait for future waiters, close the WAL (if any) and bbolt.
//
// # Locks
//
// readState.mu guards the ReadIndex queue; waiterSet.mu guards its counter;
// connSet.mu guards the transport's connection set (fence); nudger.mu
// guards the nudger's per-follower state (never held across an RPC). All are
// leaves: no other lock is taken while holding them. Everything
// else is owned by one goroutine or is atomic.
package raftnode
