package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// PeersFile is the name, inside DataDir, of the manual outage-recovery file
// (docs/recovery.md, "Lost quorum for good"): a JSON list of
// {"id", "address", "non_voter"} objects naming the servers that survive,
// hashicorp/raft's peers.json format (raft.ReadConfigJSON), as Consul uses
// it. When it is present at start, New rewrites the node's Raft
// configuration to exactly that list with raft.RecoverCluster before Raft
// starts, then renames the file to peers.json.applied-<index> so that it
// is used once. Every surviving server must get the same file.
const PeersFile = "peers.json"

// recoverFromPeersFile applies DataDir/peers.json if it exists. It returns
// whether it did.
func (n *Node) recoverFromPeersFile(fsm raft.FSM, trans raft.Transport, snaps raft.SnapshotStore) (bool, error) {
	path := filepath.Join(n.cfg.DataDir, PeersFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	conf, err := raft.ReadConfigJSON(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w: %w", path, err, ErrInvalidConfig)
	}
	self := false
	for _, s := range conf.Servers {
		self = self || (string(s.ID) == n.cfg.NodeID && s.Suffrage == raft.Voter)
	}
	if !self {
		return false, fmt.Errorf("%s does not list this server (%s) as a voter: %w", path, n.cfg.NodeID, ErrInvalidConfig)
	}
	n.logger.Warn("recovering the raft configuration from peers.json", "path", path, "servers", conf.Servers)
	if err := raft.RecoverCluster(n.raftConfig(), fsm, n.logs, n.stable, snaps, trans, conf); err != nil {
		return false, fmt.Errorf("recover cluster from %s: %w", path, err)
	}
	last, err := n.log.store.LastIndex()
	if err != nil {
		return false, fmt.Errorf("read last index after recovery: %w", err)
	}
	done := fmt.Sprintf("%s.applied-%d", path, last)
	if err := os.Rename(path, done); err != nil {
		return false, fmt.Errorf("rename %s after recovery: %w", path, err)
	}
	return true, nil
}
