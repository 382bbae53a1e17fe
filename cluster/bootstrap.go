package cluster

import (
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/chainstore/chainstore/raftnode"
)

// bootstrapDecision is the outcome of one bootstrap evaluation.
type bootstrapDecision uint8

const (
	// bootstrapWaiting: fewer than BootstrapExpect participants are alive.
	bootstrapWaiting bootstrapDecision = iota + 1
	// bootstrapConflict: a misconfiguration (another BootstrapExpect, a
	// duplicate ID or Raft address) blocks bootstrap for now.
	bootstrapConflict
	// bootstrapPeerState: a peer already has Raft state from an existing
	// cluster; this node gives up and waits to be added by the leader.
	bootstrapPeerState
	// bootstrapLocalState: this node already has Raft state.
	bootstrapLocalState
	// bootstrapGo: propose the returned configuration.
	bootstrapGo
)

func (d bootstrapDecision) String() string {
	switch d {
	case bootstrapWaiting:
		return "waiting"
	case bootstrapConflict:
		return "conflict"
	case bootstrapPeerState:
		return "peer-has-state"
	case bootstrapLocalState:
		return "local-has-state"
	case bootstrapGo:
		return "bootstrap"
	default:
		return "?"
	}
}

// final reports whether the decision ends bootstrapping for this run.
func (d bootstrapDecision) final() bool {
	return d == bootstrapPeerState || d == bootstrapLocalState || d == bootstrapGo
}

// planBootstrap decides whether this node (selfID, which has no Raft state
// and BootstrapExpect = expect > 0) should bootstrap now, and with which
// servers. Pure: it reads only the member snapshot.
//
// Participants are the alive servers of datacenter dc that gossip the same
// BootstrapExpect; servers with BootstrapExpect 0 neither count nor take part
// (the leader adds them later). Rules, in order:
//  1. A live peer that reports Raft state from before (no bootstrap hash)
//     belongs to an existing cluster: give up for good (peer-has-state).
//  2. A live server with another non-zero BootstrapExpect: conflict, wait.
//  3. Fewer than expect participants: wait.
//  4. Duplicate IDs or Raft addresses among participants: conflict, wait.
//  5. The configuration is every participant, sorted by ID, all voters, so
//     every participant proposes the identical configuration. A participant
//     that already bootstrapped in this run reports state plus the hash of
//     the configuration it proposed: the same hash means it made this very
//     proposal, which is safe to repeat; another hash means the two saw
//     different servers, so give up (peer-has-state) rather than risk two
//     different initial configurations.
func planBootstrap(selfID, dc string, expect int, members []memberState) ([]raftnode.Server, bootstrapDecision, string) {
	var participants []memberState
	for _, m := range members {
		if m.metaErr != nil || m.meta.Datacenter != dc || m.status != StatusAlive {
			continue
		}
		switch {
		case m.meta.ID != selfID && m.meta.HasState && m.meta.BootstrapHash == 0:
			return nil, bootstrapPeerState, fmt.Sprintf("server %s (%s) already has raft state", m.name, m.meta.ID)
		case m.meta.BootstrapExpect != 0 && m.meta.BootstrapExpect != expect:
			return nil, bootstrapConflict, fmt.Sprintf("server %s has bootstrap_expect %d, this server %d", m.name, m.meta.BootstrapExpect, expect)
		case m.meta.BootstrapExpect == expect:
			participants = append(participants, m)
		}
	}
	if len(participants) < expect {
		return nil, bootstrapWaiting, fmt.Sprintf("%d of %d servers alive", len(participants), expect)
	}
	sort.Slice(participants, func(i, j int) bool { return participants[i].meta.ID < participants[j].meta.ID })
	servers := make([]raftnode.Server, 0, len(participants))
	ids, addrs := make(map[string]string), make(map[string]string)
	for _, m := range participants {
		if other, dup := ids[m.meta.ID]; dup {
			return nil, bootstrapConflict, fmt.Sprintf("servers %s and %s share ID %s", other, m.name, m.meta.ID)
		}
		if other, dup := addrs[m.meta.RaftAddr]; dup {
			return nil, bootstrapConflict, fmt.Sprintf("servers %s and %s share raft address %s", other, m.name, m.meta.RaftAddr)
		}
		ids[m.meta.ID], addrs[m.meta.RaftAddr] = m.name, m.name
		servers = append(servers, raftnode.Server{ID: m.meta.ID, Address: m.meta.RaftAddr, Voter: true})
	}
	if _, ok := ids[selfID]; !ok {
		return nil, bootstrapWaiting, "this server is not yet in its own member list"
	}
	h := configHash(servers)
	for _, m := range participants {
		if m.meta.ID != selfID && m.meta.HasState && m.meta.BootstrapHash != h {
			return nil, bootstrapPeerState, fmt.Sprintf("server %s bootstrapped with a different configuration", m.name)
		}
	}
	return servers, bootstrapGo, fmt.Sprintf("%d servers", len(servers))
}

// configHash identifies a bootstrap configuration (FNV-1a over the servers
// in order); never 0, which means "none" in nodeMeta.
func configHash(servers []raftnode.Server) uint64 {
	h := fnv.New64a()
	for _, s := range servers {
		h.Write([]byte(s.ID))
		h.Write([]byte{0})
		h.Write([]byte(s.Address))
		var voter byte
		if s.Voter {
			voter = 1
		}
		h.Write([]byte{0, voter})
	}
	sum := h.Sum64()
	if sum == 0 {
		sum = 1
	}
	return sum
}
