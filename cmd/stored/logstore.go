package main

import (
	"flag"

	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/server"
)

// logStoreFlag is --raft-log-store: the Raft log store of a new data dir.
type logStoreFlag struct{ kind *raftnode.LogStoreKind }

func (f logStoreFlag) String() string {
	if f.kind == nil {
		return ""
	}
	return string(*f.kind)
}

// Set parses wal or boltdb; anything else is an error naming both.
func (f logStoreFlag) Set(s string) error {
	k, err := raftnode.ParseLogStoreKind(s)
	if err != nil {
		return err
	}
	*f.kind = k
	return nil
}

// registerLogStoreFlag registers --raft-log-store (config file key
// raft_log_store), which sets cfg.Raft.LogStore.
func registerLogStoreFlag(fs *flag.FlagSet, cfg *server.Config) {
	fs.Var(logStoreFlag{&cfg.Raft.LogStore}, "raft-log-store",
		"Raft log store of a NEW data dir: wal (raft-wal segment files) or boltdb (raft.db); an existing data dir keeps the one it was created with (docs/operations.md)")
}
