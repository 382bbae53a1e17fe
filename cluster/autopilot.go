package cluster

import (
	"time"

	"github.com/chainstore/chainstore/raftnode"
)

// Autopilot-style server stages, decided by planReconcile (pure, like the
// rest of reconcile.go):
//
//   - A server the Raft configuration does not hold joins as a non-voter:
//     it receives the log (and a snapshot) but does not count for quorum,
//     so a slow or flapping newcomer cannot stall commits or elections.
//   - It is promoted to voter once it has been alive in gossip for
//     Config.ServerStabilizationTime (default 10 s, as Consul's autopilot)
//     and is in the configuration at its gossiped address. Replication to
//     a non-voter runs at full speed meanwhile, so on a healthy network it
//     has caught up by then; the leader does not compare indexes (Raft
//     does not expose a follower's progress), which is the one difference
//     from Consul's "healthy server" check.
//   - A voter that is already present stays a voter: a restart, even
//     after a graceful leave within DeadServerTimeout, never demotes it.
//   - A voter at a new address is re-added as a voter at once (same
//     identity, new location).
//
// With ServerStabilizationTime 0, new servers are added as voters at once.

// planAdds lists the alive servers to add (Voter false: as non-voters) or
// promote, sorted by ID, and the earliest time a non-voter becomes due
// for promotion (zero: none pending).
func planAdds(in planInput, byID map[string]memberState) (adds []raftnode.Server, nextDue time.Time) {
	current := make(map[string]raftnode.Server, len(in.servers))
	for _, s := range in.servers {
		current[s.ID] = s
	}
	for _, id := range sortedKeys(byID) {
		m := byID[id]
		if id == in.selfID || m.status != StatusAlive || m.meta.RaftAddr == "" {
			continue
		}
		addr := m.meta.RaftAddr
		s, ok := current[id]
		switch {
		case ok && s.Voter && s.Address == addr:
			continue // already a voter: a no-op
		case ok && s.Voter, in.stabilization <= 0:
			adds = append(adds, raftnode.Server{ID: id, Address: addr, Voter: true})
		case ok && s.Address == addr:
			// A non-voter at its address: promote once stable.
			due := m.since.Add(in.stabilization)
			if in.now.Before(due) {
				if nextDue.IsZero() || due.Before(nextDue) {
					nextDue = due
				}
				continue
			}
			adds = append(adds, raftnode.Server{ID: id, Address: addr, Voter: true})
		default:
			// New, or a non-voter at a new address: (re-)add as non-voter.
			adds = append(adds, raftnode.Server{ID: id, Address: addr, Voter: false})
		}
	}
	return adds, nextDue
}
