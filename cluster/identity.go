package cluster

import (
	"context"
	"sort"
	"time"

	"github.com/chainstore/chainstore/raftnode"
)

// This file holds the identity rules that keep a gossip member from taking
// over another server's place. Gossip is not authenticated by itself (a
// process with the gossip key can claim any name, ID and addresses), so
// before the reconcile plan or the forwarding path looks at the member
// table, admitMembers drops every member whose claim conflicts with what
// Raft already knows. docs/security.md, "Identity", describes the rules.

// verifyTimeout bounds the certificate check of one would-be voter (on
// top of the gossip TCP timeout).
const verifyTimeout = 5 * time.Second

// refusalReason says why a member was refused.
type refusalReason uint8

const (
	// refusedAddress: its node ID is in the Raft configuration at another
	// Raft address. Adopting it would rewrite that server's address.
	refusedAddress refusalReason = iota + 1
	// refusedSelf: it claims this server's own node ID under another name.
	refusedSelf
	// refusedDuplicate: another live member made the same claim first.
	refusedDuplicate
	// refusedCertificate: TLS is on and the member could not prove a
	// server certificate naming it at its Raft address.
	refusedCertificate
)

func (r refusalReason) String() string {
	switch r {
	case refusedAddress:
		return "its node ID is in the Raft configuration at another address"
	case refusedSelf:
		return "it claims this server's node ID"
	case refusedDuplicate:
		return "another live member already holds its node ID"
	case refusedCertificate:
		return "it did not prove a server certificate for its node name"
	default:
		return "?"
	}
}

// refusal is one member admitMembers (or the certificate check) refused.
type refusal struct {
	name, id, raftAddr string
	reason             refusalReason
}

// admitMembers returns the members whose identity claims are consistent
// with the Raft configuration, in the input order, and the refusals.
// Members with undecodable metadata pass through (every consumer already
// skips them). Pure: no I/O, no clock.
//
// Rules, for a member claiming node ID id at Raft address addr:
//   - id is this server's ID and the name is not this server's: refused;
//   - id is in the Raft configuration at another address: refused (a
//     server that really moved must be removed from Raft first);
//   - several live members claim id: the first to have been seen alive
//     (oldest status change, then name) is admitted, the others refused.
func admitMembers(selfID, selfName string, servers []raftnode.Server, members []memberState) ([]memberState, []refusal) {
	cfgAddr := make(map[string]string, len(servers))
	for _, s := range servers {
		cfgAddr[s.ID] = s.Address
	}
	var refused []refusal
	refuse := func(m memberState, r refusalReason) {
		refused = append(refused, refusal{name: m.name, id: m.meta.ID, raftAddr: m.meta.RaftAddr, reason: r})
	}
	var firstPass []memberState
	for _, m := range members {
		if m.metaErr != nil || m.meta.ID == "" {
			firstPass = append(firstPass, m)
			continue
		}
		if m.meta.ID == selfID && m.name != selfName {
			refuse(m, refusedSelf)
			continue
		}
		if addr, ok := cfgAddr[m.meta.ID]; ok && addr != m.meta.RaftAddr {
			refuse(m, refusedAddress)
			continue
		}
		firstPass = append(firstPass, m)
	}
	// The first live claimant of each ID wins.
	winner := make(map[string]memberState)
	for _, m := range firstPass {
		if m.metaErr != nil || m.meta.ID == "" || !m.live() {
			continue
		}
		w, ok := winner[m.meta.ID]
		if !ok || m.since.Before(w.since) || m.since.Equal(w.since) && m.name < w.name {
			winner[m.meta.ID] = m
		}
	}
	out := make([]memberState, 0, len(firstPass))
	for _, m := range firstPass {
		if m.metaErr == nil && m.meta.ID != "" && m.live() && winner[m.meta.ID].name != m.name {
			refuse(m, refusedDuplicate)
			continue
		}
		out = append(out, m)
	}
	sort.SliceStable(refused, func(i, j int) bool { return refused[i].name < refused[j].name })
	return out, refused
}

// admitted returns the member table filtered by admitMembers against the
// current Raft configuration (an empty one if it cannot be read).
func (c *Cluster) admitted() ([]memberState, []refusal) {
	servers, _ := c.raft.Servers()
	return admitMembers(c.cfg.NodeID, c.cfg.NodeName, servers, c.table.snapshot())
}

// ServerGRPCAddr returns the gRPC address of the admitted member that is
// Raft server nodeID at Raft address raftAddr, as Raft itself reports them
// (raftnode.Node.Leader). Followers forward to this address only, so a
// gossip member that merely claims the leader's ID is never a target.
func (c *Cluster) ServerGRPCAddr(nodeID, raftAddr string) (string, bool) {
	if nodeID == "" || raftAddr == "" {
		return "", false
	}
	members, _ := c.admitted()
	var found memberState
	ok := false
	for _, m := range members {
		if m.metaErr != nil || m.meta.ID != nodeID || m.meta.RaftAddr != raftAddr || m.meta.GRPCAddr == "" {
			continue
		}
		if !ok || m.live() && !found.live() {
			found, ok = m, true
		}
	}
	return found.meta.GRPCAddr, ok
}

// logRefusals logs each refusal once until the member's claim changes,
// and publishes the refused members (Cluster.Refused). Only the reconcile
// loop calls it (it owns refusalsLogged and certRefused).
func (l *loop) logRefusals(refused []refusal) {
	seen := make(map[string]bool, len(refused))
	current := make(map[string]string, len(refused)+len(l.certRefused))
	for name, why := range l.certRefused {
		current[name] = why
	}
	for _, r := range refused {
		current[r.name] = r.reason.String()
		key := r.name + "\x00" + r.id + "\x00" + r.raftAddr + "\x00" + r.reason.String()
		seen[key] = true
		if l.refusalsLogged[key] {
			continue
		}
		l.refusalsLogged[key] = true
		l.c.logger.Warn("refusing gossip member: "+r.reason.String(), "name", r.name, "id", r.id, "raft_addr", r.raftAddr)
	}
	for k := range l.refusalsLogged {
		if !seen[k] {
			delete(l.refusalsLogged, k)
		}
	}
	l.c.setRefused(current)
}

// verifyVoter checks, when TLS is on (Config.VerifyServer), that the
// member about to become a voter holds a server certificate for its node
// name at the Raft address it gossips. It returns false (and logs) to
// refuse it.
func (l *loop) verifyVoter(ctx context.Context, s raftnode.Server, name string) bool {
	verify := l.c.cfg.VerifyServer
	if verify == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, l.c.cfg.Gossip.TCPTimeout+verifyTimeout)
	defer cancel()
	err := verify(ctx, name, s.Address)
	if err == nil {
		if _, ok := l.certRefused[name]; ok {
			delete(l.certRefused, name)
			l.c.logger.Info("gossip member proved its server certificate", "name", name, "id", s.ID)
		}
		return true
	}
	if _, ok := l.certRefused[name]; !ok {
		l.c.logger.Warn("refusing gossip member: "+refusedCertificate.String(),
			"name", name, "id", s.ID, "raft_addr", s.Address, "error", err)
	}
	l.certRefused[name] = refusedCertificate.String()
	refused := l.c.Refused()
	refused[name] = refusedCertificate.String()
	l.c.setRefused(refused)
	return false
}

// setRefused publishes the refused members.
func (c *Cluster) setRefused(m map[string]string) {
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	c.refused = m
}

// Refused returns the gossip members the leader's last reconcile pass
// refused (name -> reason); empty on followers. The caller owns the map.
func (c *Cluster) Refused() map[string]string {
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	out := make(map[string]string, len(c.refused))
	for k, v := range c.refused {
		out[k] = v
	}
	return out
}

// memberNames maps the node ID of each admitted member to its gossip name.
func memberNames(members []memberState) map[string]string {
	out := make(map[string]string, len(members))
	live := make(map[string]bool, len(members))
	for _, m := range members {
		if m.metaErr != nil || m.meta.ID == "" || live[m.meta.ID] {
			continue
		}
		out[m.meta.ID], live[m.meta.ID] = m.name, m.live()
	}
	return out
}

// verifyBootstrap runs verifyVoter on every other server of a bootstrap
// proposal: in TLS mode a member without a server certificate for its
// name never enters the first configuration either.
func (l *loop) verifyBootstrap(ctx context.Context, servers []raftnode.Server) bool {
	if l.c.cfg.VerifyServer == nil {
		return true
	}
	names := memberNames(l.c.table.snapshot())
	for _, s := range servers {
		if s.ID != l.c.cfg.NodeID && !l.verifyVoter(ctx, s, names[s.ID]) {
			return false
		}
	}
	return true
}
