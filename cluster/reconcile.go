package cluster

import (
	"sort"
	"time"

	"github.com/chainstore/chainstore/raftnode"
)

// This file holds the reconcile decision as a pure function (no I/O, no
// clock, no goroutines): the loop gathers the Raft configuration and a
// snapshot of the member table, planReconcile says what to change, and the
// loop applies the plan with AddVoter/RemoveServer.

// removalReason says why a server is to be removed from Raft.
type removalReason uint8

const (
	reasonLeft    removalReason = iota + 1 // gossip: left gracefully for DeadServerTimeout
	reasonFailed                           // gossip: failed for DeadServerTimeout
	reasonUnknown                          // not in gossip at all for DeadServerTimeout
)

func (r removalReason) String() string {
	switch r {
	case reasonLeft:
		return "left"
	case reasonFailed:
		return "failed"
	case reasonUnknown:
		return "unknown to gossip"
	default:
		return "?"
	}
}

// removal is one server the plan removes (or would, but for the guard).
type removal struct {
	ID     string
	Voter  bool
	Reason removalReason
	Since  time.Time // when it left, failed or was first seen unknown
}

// planInput is everything a reconcile pass decides from. It is not modified.
type planInput struct {
	selfID            string
	datacenter        string
	servers           []raftnode.Server // current Raft configuration
	members           []memberState     // member table snapshot
	now               time.Time
	deadServerTimeout time.Duration
	// stabilization is how long a new server stays a non-voter
	// (autopilot.go); 0 adds new servers as voters at once.
	stabilization time.Duration
	// unknownSince: when each Raft server was first seen with no gossip
	// member (owned by the loop; the plan returns the updated map).
	unknownSince map[string]time.Time
	// answered: when each Raft server last answered a probe outside
	// gossip (probe.go; owned by the loop). A server gossip calls left,
	// failed or unknown is due for removal only deadServerTimeout after
	// its last answer, and one that answered within deadServerTimeout
	// counts as alive for the quorum guard.
	answered map[string]time.Time
}

// plan is the outcome of planReconcile, applied in field order.
type plan struct {
	add        []raftnode.Server    // alive servers missing (Voter false: as non-voters), stale, or due for promotion
	removeDead []removal            // left/failed/unknown past the timeout, allowed by the guard
	blocked    []removal            // left/failed/unknown past the timeout, kept by the quorum guard
	unknown    map[string]time.Time // new unknownSince
	// nextDue is the earliest time a failed or unknown server not yet due
	// becomes due for removal (zero: none pending). The loop sets a timer.
	nextDue time.Time
}

// planReconcile decides the changes that bring the Raft configuration in
// line with gossip membership. Rules:
//   - An alive server of our datacenter that is not a voter with the same
//     ID and address is added (AddVoter replaces a stale entry).
//   - A server that has left gracefully, failed, or been unknown to
//     gossip for at least deadServerTimeout (and has not answered a probe
//     within it, see probe.go) is removed (a graceful leave
//     is not removed at once: a restart keeps its voter slot), subject to the quorum guard: voters
//     are removed only while the remaining alive voters stay a majority of
//     the new configuration, and at most (voters-1)/2 in one pass.
//   - This server is never removed.
func planReconcile(in planInput) plan {
	byID := indexMembers(in.members, in.datacenter)
	p := plan{unknown: make(map[string]time.Time)}
	p.add, p.nextDue = planAdds(in, byID)

	var due []removal
	for _, s := range sortedServers(in.servers) {
		if s.ID == in.selfID {
			continue
		}
		m, known := byID[s.ID]
		r := removal{ID: s.ID, Voter: s.Voter, Since: m.since}
		switch {
		case known && m.status == StatusLeft:
			// A graceful leave keeps the server's slot like a failure
			// does: a restart within the timeout finds it a voter still,
			// so the configuration never shrinks for a restart.
			r.Reason = reasonLeft
		case known && m.live():
			continue
		case known:
			r.Reason = reasonFailed
		default:
			r.Reason = reasonUnknown
			r.Since = in.now
			if t, ok := in.unknownSince[s.ID]; ok {
				r.Since = t
			}
			p.unknown[s.ID] = r.Since
		}
		start := r.Since
		if t, ok := in.answered[s.ID]; ok && t.After(start) {
			start = t // it answered a probe since: its dead timer restarts
		}
		dueAt := start.Add(in.deadServerTimeout)
		if in.now.Before(dueAt) {
			if p.nextDue.IsZero() || dueAt.Before(p.nextDue) {
				p.nextDue = dueAt
			}
			continue
		}
		due = append(due, r)
	}
	p.removeDead, p.blocked = guardRemovals(in, byID, due)
	return p
}

// guardRemovals splits due removals into allowed and blocked. Non-voters
// never affect quorum and are always allowed. For voters, with V voters
// and A of them alive (this server included, and servers that answered
// a probe within deadServerTimeout): removing k more is allowed while k <= (V-1)/2 and
// 2*A > V-k, i.e. the remaining alive voters are a majority of the new
// configuration. Oldest failures go first; ties break by ID.
func guardRemovals(in planInput, byID map[string]memberState, due []removal) (allowed, blocked []removal) {
	voters, alive := 0, 0
	for _, s := range in.servers {
		if !s.Voter {
			continue
		}
		voters++
		if m, ok := byID[s.ID]; s.ID == in.selfID || (ok && m.live()) || answeredRecently(in, s.ID) {
			alive++
		}
	}
	sort.SliceStable(due, func(i, j int) bool {
		a, b := due[i], due[j]
		if a.Voter != b.Voter {
			return !a.Voter
		}
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		return a.ID < b.ID
	})
	maxRemovals := (voters - 1) / 2
	removed := 0
	for _, r := range due {
		if !r.Voter {
			allowed = append(allowed, r)
			continue
		}
		if removed < maxRemovals && 2*alive > voters-removed-1 {
			allowed = append(allowed, r)
			removed++
			continue
		}
		blocked = append(blocked, r)
	}
	return allowed, blocked
}

// answeredRecently reports whether server id answered a probe less than
// deadServerTimeout ago: it is alive, whatever gossip says.
func answeredRecently(in planInput, id string) bool {
	t, ok := in.answered[id]
	return ok && in.now.Sub(t) < in.deadServerTimeout
}

// indexMembers maps Raft server IDs to members of datacenter dc with valid
// metadata. If several gossip names claim one ID (a renamed server), a live
// one wins, then the most recent status change.
func indexMembers(members []memberState, dc string) map[string]memberState {
	byID := make(map[string]memberState, len(members))
	for _, m := range members {
		if m.metaErr != nil || m.meta.ID == "" || m.meta.Datacenter != dc {
			continue
		}
		prev, ok := byID[m.meta.ID]
		if ok && (prev.live() && !m.live() || prev.live() == m.live() && prev.since.After(m.since)) {
			continue
		}
		byID[m.meta.ID] = m
	}
	return byID
}

func sortedServers(servers []raftnode.Server) []raftnode.Server {
	out := append([]raftnode.Server(nil), servers...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
