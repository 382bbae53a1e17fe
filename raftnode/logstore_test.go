package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestParseLogStoreKind(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]LogStoreKind{"wal": LogStoreWAL, "boltdb": LogStoreBoltDB} {
		if got, err := ParseLogStoreKind(in); err != nil || got != want {
			t.Errorf("ParseLogStoreKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "WAL", "bolt", "raft.db"} {
		_, err := ParseLogStoreKind(in)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("ParseLogStoreKind(%q) = %v, want ErrInvalidConfig naming the value", in, err)
		}
	}
}

// hasWALDir reports whether the data dir has a raft-wal directory.
func hasWALDir(t *testing.T, dir string) bool {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, WALDir))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.IsDir()
}

// checkEntries fails unless the node's FSM holds k0..k(n-1) = v0..v(n-1).
func checkEntries(t *testing.T, tn *testNode, n int) {
	t.Helper()
	for i := range n {
		if v, ok := tn.fsm.get(fmt.Sprintf("k%d", i)); !ok || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("%s: k%d = %q, %v after restart; want v%d", tn.cfg.NodeID, i, v, ok, i)
		}
	}
}

// TestLogStoreKindIsKeptAcrossRestarts: a new data dir gets the configured
// log store; after a restart (the whole log replayed from it, no snapshot)
// the entries are intact, and a data dir keeps its store even when the
// configuration names the other one.
func TestLogStoreKindIsKeptAcrossRestarts(t *testing.T) {
	for _, tc := range []struct{ created, configuredLater LogStoreKind }{
		{LogStoreWAL, LogStoreBoltDB},
		{LogStoreBoltDB, LogStoreWAL},
	} {
		t.Run(string(tc.created), func(t *testing.T) {
			c := newTestCluster(t, 1, func(c *Config) { c.LogStore = tc.created }, testHooks{})
			const n = 50
			var idx uint64
			for i := range n {
				idx = c.apply(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
			}
			tn := c.nodes[0]
			if got := tn.node.log.kind; got != tc.created {
				t.Fatalf("new data dir log store = %q, want %q", got, tc.created)
			}
			if got, want := hasWALDir(t, tn.cfg.DataDir), tc.created == LogStoreWAL; got != want {
				t.Fatalf("wal dir present = %v, want %v", got, want)
			}
			tn.cfg.LogStore = tc.configuredLater
			tn = c.restart(0)
			c.waitReadyLeader()
			if got := tn.node.log.kind; got != tc.created {
				t.Errorf("after restart with LogStore %q: log store = %q, want the data dir's %q", tc.configuredLater, got, tc.created)
			}
			if last, err := tn.node.log.store.LastIndex(); err != nil || last < idx {
				t.Fatalf("last index after restart = %d, %v; want >= %d", last, err, idx)
			}
			waitApplied(t, tn, idx)
			checkEntries(t, tn, n)
			if got, want := hasWALDir(t, tn.cfg.DataDir), tc.created == LogStoreWAL; got != want {
				t.Errorf("wal dir present after restart = %v, want %v", got, want)
			}
			// And it goes on taking writes.
			c.apply("after-restart", "x")
		})
	}
}

// waitApplied waits until the node's FSM has applied idx.
func waitApplied(t *testing.T, tn *testNode, idx uint64) {
	t.Helper()
	select {
	case <-tn.fsm.appliedCh(idx):
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not apply index %d within %s", tn.cfg.NodeID, idx, waitTimeout)
	}
}

// removeLogStoreRecord deletes the log store kind record from a stopped
// node's raft.db, making it look like a data dir from before the choice.
func removeLogStoreRecord(t *testing.T, dir string) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("conf")) // raft-boltdb's stable-store bucket
		if b == nil {
			return errors.New("no conf bucket in raft.db")
		}
		return b.Delete(logStoreKey)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPreviousDataDirKeepsItsBoltLog: a data dir written before the log
// store was selectable (a bbolt log, no record of the kind) keeps its
// bbolt log under a configuration that asks for the WAL, with its entries.
func TestPreviousDataDirKeepsItsBoltLog(t *testing.T) {
	c := newTestCluster(t, 1, func(c *Config) { c.LogStore = LogStoreBoltDB }, testHooks{})
	const n = 20
	var idx uint64
	for i := range n {
		idx = c.apply(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	tn := c.nodes[0]
	if err := tn.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	removeLogStoreRecord(t, tn.cfg.DataDir)
	tn.cfg.LogStore = LogStoreWAL
	c.nodes[0] = c.startNode(tn.cfg, testHooks{})
	tn = c.nodes[0]
	c.waitReadyLeader()
	if tn.node.log.kind != LogStoreBoltDB || hasWALDir(t, tn.cfg.DataDir) {
		t.Fatalf("previous data dir: log store %q, wal dir %v; want boltdb and no wal dir", tn.node.log.kind, hasWALDir(t, tn.cfg.DataDir))
	}
	waitApplied(t, tn, idx)
	checkEntries(t, tn, n)
	// The kind is now recorded.
	if err := tn.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckDataDir(tn.cfg.DataDir, false, nil)
	if err != nil || rep.LastIndex < idx {
		t.Fatalf("CheckDataDir = %+v, %v; want a clean report with the log up to %d", rep, err, idx)
	}
}

// TestMissingWALDirIsRefused: a data dir whose raft.db records the WAL and
// a term, but whose wal directory is gone, does not start with an empty
// log (it could have acknowledged entries): New and CheckDataDir name the
// directory.
func TestMissingWALDirIsRefused(t *testing.T) {
	c := newTestCluster(t, 1, func(c *Config) { c.LogStore = LogStoreWAL }, testHooks{})
	c.apply("k", "v")
	tn := c.nodes[0]
	if err := tn.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	walDir := filepath.Join(tn.cfg.DataDir, WALDir)
	if err := os.RemoveAll(walDir); err != nil {
		t.Fatal(err)
	}
	_, err := New(tn.cfg, newTestFSM(), nil)
	if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), walDir) {
		t.Fatalf("New without the wal dir = %v, want ErrCorruptState naming %s", err, walDir)
	}
	if hasWALDir(t, tn.cfg.DataDir) {
		t.Errorf("New created an empty wal dir for a data dir that had a log")
	}
	rep, err := CheckDataDir(tn.cfg.DataDir, true, nil)
	if !errors.Is(err, ErrCorruptState) || len(rep.Problems) != 1 || rep.Problems[0].Path != walDir {
		t.Fatalf("CheckDataDir = %+v, %v; want one fatal problem naming %s", rep.Problems, err, walDir)
	}
}

// TestUnknownRecordedLogStoreIsRefused: a raft.db recording a log store
// this version does not know is refused, not guessed at.
func TestUnknownRecordedLogStoreIsRefused(t *testing.T) {
	c := newTestCluster(t, 1, nil, testHooks{})
	tn := c.nodes[0]
	if err := tn.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	db, err := openBolt(filepath.Join(tn.cfg.DataDir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(logStoreKey, []byte("leveldb")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = New(tn.cfg, newTestFSM(), nil)
	if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), `"leveldb"`) {
		t.Fatalf("New with an unknown recorded log store = %v, want ErrCorruptState naming it", err)
	}
}
