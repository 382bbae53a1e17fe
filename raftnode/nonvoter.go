package raftnode

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// AddNonvoter adds id at addr as a non-voter: it receives the log but does
// not vote or count for quorum (the first stage of a new server, promoted
// later with AddVoter). It is a no-op when id is already present at addr,
// voter or not (it never demotes). A stale entry (same ID at another
// address, or another ID at the same address) is removed first, as in
// AddVoter. Leader only (ErrNotLeader otherwise).
func (n *Node) AddNonvoter(id, addr string) error {
	if id == "" || addr == "" {
		return fmt.Errorf("add non-voter %q at %q: empty ID or address: %w", id, addr, ErrInvalidArgument)
	}
	if err := n.checkOpen("add non-voter"); err != nil {
		return err
	}
	conf, _, err := n.configuration()
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		sameID, sameAddr := string(s.ID) == id, string(s.Address) == addr
		switch {
		case sameID && sameAddr:
			return nil
		case sameID || sameAddr:
			if string(s.ID) == n.cfg.NodeID {
				return fmt.Errorf("add non-voter %s at %s: conflicts with this node (%s at %s): %w",
					id, addr, s.ID, s.Address, ErrInvalidArgument)
			}
			n.logger.Info("removing stale raft server before adding", "stale-id", s.ID, "stale-address", s.Address, "id", id, "address", addr)
			if err := n.changeConfig("remove stale server "+string(s.ID),
				n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout)); err != nil {
				return err
			}
		}
	}
	return n.changeConfig("add non-voter "+id,
		n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.cfg.ApplyTimeout))
}
