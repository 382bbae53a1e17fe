package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/testutil"
)

// snapshotsOf lists a stopped node's snapshots, newest first.
func snapshotsOf(t *testing.T, dir string) []*raft.SnapshotMeta {
	t.Helper()
	store, err := raft.NewFileSnapshotStore(dir, 10, os.Stderr)
	if err != nil {
		t.Fatalf("open snapshot store: %v", err)
	}
	metas, err := store.List()
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}
	return metas
}

// flipBytes inverts n bytes in the middle of path.
func flipBytes(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < n {
		t.Fatalf("%s has %d bytes, want at least %d", path, len(b), n)
	}
	mid := (len(b) - n) / 2
	for i := mid; i < mid+n; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedNewestSnapshotAfterCompaction reproduces issue 14, item 1: the
// newest snapshot of a stopped follower is damaged and its log was compacted
// past the older snapshot, so hashicorp/raft's fallback panicked with "log
// not found" on every start. Now the node starts with its ID, quarantines
// the snapshot, discards the log, stays out of elections until it has caught
// up, and converges.
func TestDamagedNewestSnapshotAfterCompaction(t *testing.T) {
	small := func(c *Config) {
		c.SnapshotThreshold = 16
		c.TrailingLogs = 4
		c.SnapshotInterval = 20 * time.Millisecond
		c.SnapshotRetain = 2
	}
	c := newTestCluster(t, 3, small, testHooks{})
	l := c.waitReadyLeader()
	f := c.followers(l)[0]
	fi := -1
	for i, tn := range c.nodes {
		if tn == f {
			fi = i
		}
	}
	// Two snapshots on the follower, its log compacted past the older one.
	var idx uint64
	testutil.Poll(t, 3*waitTimeout, "two snapshots on the follower with a log gap after the older one", func() bool {
		idx = c.apply(fmt.Sprintf("k%d", idx%20), fmt.Sprintf("v%d", idx))
		snaps, err := f.node.snaps.List()
		if err != nil || len(snaps) < 2 {
			return false
		}
		first, err := f.node.log.store.FirstIndex()
		return err == nil && first > snaps[1].Index+1
	})
	for i := range 5 { // a little more, after the last snapshot
		idx = c.apply(fmt.Sprintf("after%d", i), "x")
	}
	c.waitConverged(idx)
	if err := f.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	dir := f.cfg.DataDir
	snaps := snapshotsOf(t, dir)
	flipBytes(t, filepath.Join(dir, SnapshotsDir, snaps[0].ID, "state.bin"), 16)

	rep, err := CheckDataDir(dir, false, nil)
	if !errors.Is(err, ErrCorruptState) {
		t.Fatalf("CheckDataDir(report only) = %v, want ErrCorruptState", err)
	}
	for _, p := range rep.Problems {
		t.Logf("found: %s", p)
	}
	if len(rep.Problems) != 2 || !strings.Contains(rep.Problems[0].What, "damaged") ||
		!strings.Contains(rep.Problems[1].What, "log not found") {
		t.Fatalf("problems = %v, want the damaged snapshot and the log gap", rep.Problems)
	}

	nf := c.startNode(f.cfg, testHooks{}) // panicked here before the fix
	c.nodes[fi] = nf
	if !nf.node.VoteFenced() {
		t.Errorf("restarted node is not vote-fenced after discarding its log")
	}
	if nf.node.ID() != f.cfg.NodeID {
		t.Errorf("ID = %s, want %s", nf.node.ID(), f.cfg.NodeID)
	}
	idx = c.apply("after-restart", "y")
	c.waitConverged(idx)
	testutil.Poll(t, waitTimeout, "the vote fence lifted after catching up", func() bool {
		return !nf.node.VoteFenced()
	})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var quarantined []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "quarantine-") {
			sub, _ := os.ReadDir(filepath.Join(dir, e.Name()))
			for _, s := range sub {
				quarantined = append(quarantined, s.Name())
			}
		}
	}
	if len(quarantined) != 2 {
		t.Errorf("quarantine holds %v, want the damaged snapshot and a copy of raft.db", quarantined)
	}
	// The fence is cleared in the stable store too: a restart is not fenced.
	nf = c.restart(fi)
	if nf.node.VoteFenced() {
		t.Errorf("fence came back after a restart")
	}
}

// TestTruncatedRaftDBIsAReadableError: a truncated raft.db used to end in a
// bbolt fault and a goroutine dump.
func TestTruncatedRaftDBIsAReadableError(t *testing.T) {
	c := newTestCluster(t, 1, nil, testHooks{})
	for i := range 300 {
		c.apply(fmt.Sprintf("k%d", i), strings.Repeat("v", 200))
	}
	tn := c.nodes[0]
	if err := tn.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(tn.cfg.DataDir, DBFile)
	info, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, info.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err = New(tn.cfg, newTestFSM(), nil)
	if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("New on a truncated raft.db = %v, want ErrCorruptState naming %s as truncated", err, db)
	}
	t.Logf("error: %v", err)
}

// TestDataDirPermissions: the data dir and its directories are 0700 and
// every file 0600, including snapshots, and a wider existing dir is
// tightened at start.
func TestDataDirPermissions(t *testing.T) {
	small := func(c *Config) {
		c.SnapshotThreshold = 8
		c.TrailingLogs = 4
		c.SnapshotInterval = 20 * time.Millisecond
	}
	c := newTestCluster(t, 1, small, testHooks{})
	tn := c.nodes[0]
	testutil.Poll(t, waitTimeout, "a snapshot", func() bool {
		c.apply("k", "v")
		return tn.node.Stats().LastSnapshotIndex > 0
	})
	checkModes := func() {
		t.Helper()
		// Raft keeps snapshotting while this walks: what disappears
		// mid-walk is skipped, and so is a snapshot still being written
		// (a .tmp dir inside the 0700 snapshots dir, and its files).
		err := filepath.WalkDir(tn.cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if strings.Contains(path, ".tmp") {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			want := fileMode
			if d.IsDir() {
				want = dirMode
			}
			if info.Mode().Perm() != want {
				t.Errorf("%s mode = %v, want %v", path, info.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkModes()
	// Widen everything, as an older version left it; a restart tightens it.
	if err := tn.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(tn.cfg.DataDir, func(path string, d fs.DirEntry, _ error) error {
		if d.IsDir() {
			return os.Chmod(path, 0o755)
		}
		return os.Chmod(path, 0o644)
	})
	c.restart(0)
	checkModes()
}

// TestPeersJSONRecoversALostQuorum: two of three servers are gone for good;
// the survivor cannot elect itself. With peers.json naming only itself it
// starts as a one-server cluster with its data and takes writes.
func TestPeersJSONRecoversALostQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	var idx uint64
	for i := range 20 {
		idx = c.apply(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	c.waitConverged(idx)
	survivor := c.nodes[0]
	for _, tn := range c.nodes[1:] {
		if err := tn.node.shutdown(false); err != nil {
			t.Fatal(err)
		}
	}
	// No quorum: writes fail.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _, err := survivor.node.Apply(ctx, setCmd("lost", "x"))
	cancel()
	if err == nil {
		t.Fatalf("Apply without quorum succeeded")
	}
	if err := survivor.node.shutdown(false); err != nil {
		t.Fatal(err)
	}
	peers := fmt.Sprintf(`[{"id": %q, "address": %q, "non_voter": false}]`, survivor.cfg.NodeID, survivor.cfg.BindAddr)
	if err := os.WriteFile(filepath.Join(survivor.cfg.DataDir, PeersFile), []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	c.nodes = c.nodes[:1]
	c.nodes[0] = c.startNode(survivor.cfg, testHooks{})
	l := c.waitReadyLeader()
	if v, ok := l.fsm.get("k19"); !ok || v != "v19" {
		t.Errorf("k19 after recovery = %q, %v; want v19", v, ok)
	}
	c.apply("after-recovery", "y")
	servers, err := l.node.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != survivor.cfg.NodeID {
		t.Errorf("servers after recovery = %v, %v; want only %s", servers, err, survivor.cfg.NodeID)
	}
	if _, err := os.Stat(filepath.Join(survivor.cfg.DataDir, PeersFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("peers.json still there after use: %v", err)
	}
}
