// Package cluster discovers chainstore servers and detects their failure
// with hashicorp/memberlist, bootstraps Raft from that membership, and, on
// the Raft leader, keeps the Raft configuration in line with it.
//
// Membership flows one way: gossip events -> member table -> the reconcile
// loop -> Raft (AddVoter / RemoveServer on the leader only). Gossip never
// decides who is in Raft by itself; Raft protocol-3 IDs (LoadOrCreateNodeID)
// are the identity, addresses are just where to find a server.
//
// # Usage
//
//	id, err := cluster.LoadOrCreateNodeID(dataDir)
//	cfg := cluster.DefaultConfig()
//	cfg.NodeName, cfg.NodeID = "n1", id
//	cfg.RaftAddr, cfg.GRPCAddr = "10.0.0.1:8300", "10.0.0.1:8502"
//	cfg.Join, cfg.BootstrapExpect = []string{"10.0.0.2:8301", "10.0.0.3:8301"}, 3
//	c, err := cluster.New(cfg, raftNode, logger) // memberlist is listening
//	go func() { runErr <- c.Run(ctx) }()       // join, bootstrap, reconcile
//	...
//	c.Leave(5 * time.Second) // graceful: our voter slot is kept for DeadServerTimeout
//	<-runErr                 // Run has returned (Leave waited for it too)
//	raftNode.Shutdown()
//
// # Gossip metadata
//
// Each server gossips a small versioned record (meta.go, < 512 bytes): its
// Raft ID, datacenter, Raft and gRPC addresses, whether it has Raft state,
// its BootstrapExpect, whether it is leaving, and the hash of the
// configuration it bootstrapped with (if it did in this run). memberlist
// (v0.6/v0.7) does not tell a graceful leave from a failure in its events,
// so Leave first announces itself, in its metadata and with a direct TCP
// message to every live member (a "leave intent"), and a server that
// disappears after that counts as left; any other counts as failed. Gossip
// packets carry Config.Label: clusters with different labels never merge.
//
// memberlist calls its delegates with its node lock held. memberTable (the
// EventDelegate) therefore does what memberlist's ChannelEventDelegate does,
// copying each Node before it leaves the callback, but instead of sending
// the copy on a channel (which blocks gossip whenever the reader is busy,
// e.g. waiting on a Raft commit) it stores it in the member table and posts
// a coalescing wake-up; the loop reads the whole table on each wake-up.
//
// # Bootstrap
//
// With BootstrapExpect = N > 0 and no local Raft state, the loop waits until
// N alive servers of the datacenter with the same BootstrapExpect are
// visible and none reports Raft state from an existing cluster, then calls
// BootstrapCluster once with all of them sorted by ID, so every one proposes
// the identical configuration. A server that has just bootstrapped gossips
// the hash of its configuration, so a slower peer seeing it still proposes
// the same configuration instead of giving up; any other peer with state
// means "wait to be added by the leader". See planBootstrap.
//
// # Reconcile (leader only)
//
// A pass runs on gaining leadership, after every batch of membership events,
// every ReconcileInterval, when a failed server's DeadServerTimeout expires
// and shortly after a failed change. planReconcile (pure, reconcile.go)
// decides: add alive servers missing from Raft as non-voters and promote
// them after ServerStabilizationTime (autopilot.go); remove servers
// that left gracefully, failed, or are absent from gossip, for
// DeadServerTimeout (a restart within it keeps the voter slot), only while the remaining alive voters stay a majority
// of the new configuration and at most (voters-1)/2 per pass; never remove
// this server. Gossip is not trusted alone: a server due for removal is
// first probed outside gossip (Config.Prober, probe.go); one that answers
// is kept, its dead timer restarts from the answer and it counts as alive
// for the majority rule, so a gossip-only partition keeps a healthy voter.
//
// # Identity and gossip encryption
//
// Before a pass plans anything, admitMembers (identity.go, pure) drops the
// members whose claims conflict with Raft: this server's ID under another
// name, an ID already in the Raft configuration at another address, or a
// second live claimant of one ID. With Config.VerifyServer (TLS mode) a
// member becomes a voter, or part of the bootstrap configuration, only
// after proving a server certificate for its name at its Raft address.
// Refusals are logged once and reported by Refused. ServerGRPCAddr, which
// the forwarding path uses, applies the same rules and matches the Raft
// address Raft reports for the leader. With Config.Keyring gossip is
// encrypted; keyring.go loads, persists and changes it (docs/security.md).
//
// # Goroutines
//
//   - Run's goroutine (the caller's) runs the reconcile loop (runLoop). It
//     alone reads Raft.LeadershipChanges, calls BootstrapCluster, AddVoter
//     and RemoveServer, and owns the loop state (leadership flag, bootstrap
//     done, unknown-since times, the due timer). Each select case calls a
//     named method. It is woken by leadership changes, the member table's
//     coalescing notify channel, the ReconcileInterval ticker and the due
//     timer.
//   - The join goroutine (joinLoop) is started and joined by Run: it retries
//     Join with backoff and rejoins when this node finds itself alone.
//   - memberlist's own goroutines (UDP/TCP listeners, packet handler,
//     probe/gossip/push-pull tickers) start in New and are stopped by
//     memberlist.Shutdown (Leave or Shutdown). memberlist joins its
//     transport listeners but not its packet handler or ticker goroutines;
//     they exit on their own shortly after (one may still log). They call
//     the EventDelegate (memberTable) and Delegate (metaDelegate, which
//     also receives leave intents) with memberlist's node lock held; those
//     only copy data under their own short locks and never block (a full
//     notify channel is skipped: the loop reads the whole table anyway).
//   - A reconcile pass with servers due for removal runs one goroutine per
//     such server to probe it (probe.go), each bounded by probeTimeout,
//     and waits for all of them before it plans again.
//   - With Config.TestGossipCut (tests only) the gossip transport wrapper
//     (gossipcut.go) runs two forwarding goroutines, stopped and joined by
//     the transport's Shutdown (memberlist's Shutdown).
//   - Leave runs one short goroutine per live member to send the leave
//     intents in parallel, and waits for all of them before it returns.
//
// Shutdown: Run returns when its ctx is done or Shutdown/Leave closes the
// shutdown channel, after cancelling and waiting for the join goroutine.
// Shutdown (and Leave, which ends in Shutdown) stops memberlist and then
// waits for Run to return, so when it returns none of this package's
// goroutines is running. A Raft call or memberlist.Join in progress delays
// this by at most its own timeout.
//
// # Locks
//
// memberTable.mu protects the member table; Cluster.metaMu the local
// metadata; Cluster.lifeMu the lifecycle (closed, runDone) and serialises
// Leave against Shutdown. All are leaves taken after memberlist's internal
// node lock; no memberlist method is called while holding one, except
// that Leave holds lifeMu across its memberlist calls (which never take
// lifeMu).
package cluster
