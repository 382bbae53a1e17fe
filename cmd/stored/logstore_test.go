package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/raftnode"
)

// TestRaftLogStoreFlag: --raft-log-store and the raft_log_store config key
// set the Raft log store of a new data dir; the default is raftnode's; an
// unknown store is refused with a message naming both choices.
func TestRaftLogStoreFlag(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "stored.hcl")
	if err := os.WriteFile(file, []byte("raft_log_store = \"boltdb\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want raftnode.LogStoreKind
	}{
		"default":                {args: nil, want: raftnode.DefaultLogStore},
		"flag wal":               {args: []string{"--raft-log-store", "wal"}, want: raftnode.LogStoreWAL},
		"flag boltdb":            {args: []string{"--raft-log-store=boltdb"}, want: raftnode.LogStoreBoltDB},
		"config file":            {args: []string{"--config-file", file}, want: raftnode.LogStoreBoltDB},
		"command line wins file": {args: []string{"--config-file", file, "--raft-log-store", "wal"}, want: raftnode.LogStoreWAL},
	} {
		var stderr bytes.Buffer
		cfg, _, err := parseFlags(tc.args, &stderr)
		if err != nil {
			t.Errorf("%s: parseFlags(%q): %v", name, tc.args, err)
			continue
		}
		if cfg.Raft.LogStore != tc.want {
			t.Errorf("%s: parseFlags(%q) log store = %q, want %q", name, tc.args, cfg.Raft.LogStore, tc.want)
		}
	}
	var stderr bytes.Buffer
	_, _, err := parseFlags([]string{"--raft-log-store", "leveldb"}, &stderr)
	if err == nil || !strings.Contains(err.Error(), `"leveldb"`) || !strings.Contains(err.Error(), `"wal" or "boltdb"`) {
		t.Errorf("parseFlags(--raft-log-store leveldb) = %v, want an error naming the value and both choices", err)
	}
}
