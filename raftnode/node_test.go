package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/testutil"
)

func TestClusterElectsAndReplicates(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()

	// Exactly one leader, and everyone agrees on who it is.
	testutil.Poll(t, waitTimeout, "all nodes to know the leader", func() bool {
		for _, tn := range c.nodes {
			if id, addr := tn.node.Leader(); id != l.cfg.NodeID || addr != l.node.Addr() {
				return false
			}
		}
		return true
	})
	leaders := 0
	for _, tn := range c.nodes {
		if tn.node.IsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes report IsLeader, want 1", leaders)
	}

	// The leader announces itself once its barrier is done; followers don't.
	select {
	case v := <-l.node.LeadershipChanges():
		if !v {
			t.Fatalf("leader's first LeadershipChanges value = false, want true")
		}
	case <-time.After(waitTimeout):
		t.Fatalf("leader did not report leadership on LeadershipChanges")
	}
	for _, f := range c.followers(l) {
		select {
		case v := <-f.node.LeadershipChanges():
			t.Fatalf("follower %s reported leadership change %v", f.cfg.NodeID, v)
		default:
		}
	}

	var last uint64
	for i := range 50 {
		idx := c.apply(fmt.Sprintf("k%d", i%7), fmt.Sprintf("v%d", i))
		if idx <= last {
			t.Fatalf("apply %d got index %d, not above previous %d", i, idx, last)
		}
		last = idx
	}
	c.waitConverged(last)
	if v, _ := c.nodes[2].fsm.get("k0"); v != "v49" {
		t.Errorf("node 3 k0 = %q, want v49", v)
	}

	want := []Server{}
	for _, tn := range c.nodes {
		want = append(want, Server{ID: tn.cfg.NodeID, Address: tn.node.Addr(), Voter: true})
	}
	for _, tn := range c.nodes {
		got, err := tn.node.Servers()
		if err != nil {
			t.Fatalf("Servers on %s: %v", tn.cfg.NodeID, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Servers on %s (-want +got):\n%s", tn.cfg.NodeID, diff)
		}
	}

	st := l.node.Stats()
	if st.State != StateLeader || st.Term == 0 || st.CommitIndex < last || st.LastLogIndex < last ||
		st.LeaderID != l.cfg.NodeID || st.LastContact.IsZero() {
		t.Errorf("leader Stats = %+v, want Leader with commit and last index >= %d", st, last)
	}
	fst := c.followers(l)[0].node.Stats()
	if fst.State != StateFollower || fst.LeaderID != l.cfg.NodeID {
		t.Errorf("follower Stats = %+v, want Follower knowing leader %s", fst, l.cfg.NodeID)
	}
}

func TestApplyErrors(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()
	ctx := context.Background()

	t.Run("follower returns ErrNotLeader naming the leader", func(t *testing.T) {
		f := c.followers(l)[0]
		testutil.Poll(t, waitTimeout, "follower to know the leader", func() bool {
			id, _ := f.node.Leader()
			return id != ""
		})
		_, idx, err := f.node.Apply(ctx, setCmd("a", "b"))
		if !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("Apply on follower = %v, want ErrNotLeader only", err)
		}
		if idx != 0 {
			t.Errorf("Apply on follower index = %d, want 0", idx)
		}
		if !strings.Contains(err.Error(), l.cfg.NodeID) {
			t.Errorf("error %q does not name leader %s", err, l.cfg.NodeID)
		}
	})

	t.Run("fsm error arrives through the response", func(t *testing.T) {
		resp, idx, err := l.node.Apply(ctx, []byte("fail"))
		if !errors.Is(err, errTestFSM) {
			t.Fatalf("Apply(fail) error = %v, want errTestFSM", err)
		}
		if idx == 0 || resp == nil {
			t.Errorf("Apply(fail) = (%v, %d), want the response and a committed index", resp, idx)
		}
	})

	t.Run("done context gives ErrTimeout before enqueue", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err := l.node.Apply(cctx, setCmd("a", "b"))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Apply with canceled ctx = %v, want ErrTimeout", err)
		}
	})
}

func TestLeaderKillReelectsAndWritesContinue(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	before := c.apply("before", "1")
	old := c.waitReadyLeader()
	oldTerm := old.node.Stats().Term

	start := time.Now()
	if err := old.node.shutdown(false); err != nil { // a crash: no transfer
		t.Fatalf("kill leader: %v", err)
	}
	nl := c.waitReadyLeader()
	elected := time.Since(start)
	after := c.apply("after", "2")
	t.Logf("leader %s killed; %s ready after %s; first write after kill %s", old.cfg.NodeID, nl.cfg.NodeID, elected, time.Since(start))
	if nl == old || nl.node.Stats().Term <= oldTerm {
		t.Fatalf("new leader %s term %d, want another node with term > %d", nl.cfg.NodeID, nl.node.Stats().Term, oldTerm)
	}
	if after <= before {
		t.Fatalf("index after failover %d <= before %d", after, before)
	}

	// The killed node comes back from its data dir and catches up.
	for i, tn := range c.nodes {
		if tn == old {
			c.restart(i)
		}
	}
	c.waitConverged(after)
	for _, tn := range c.nodes {
		if v, _ := tn.fsm.get("after"); v != "2" {
			t.Errorf("%s after = %q, want 2", tn.cfg.NodeID, v)
		}
	}
}

func TestGracefulShutdownTransfersLeadership(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()
	c.apply("k", "v")
	changes := l.node.LeadershipChanges()
	if v := <-changes; !v {
		t.Fatalf("first leadership change = false, want true")
	}

	start := time.Now()
	if err := l.node.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	nl := c.waitReadyLeader()
	t.Logf("leadership moved %s -> %s in %s", l.cfg.NodeID, nl.cfg.NodeID, time.Since(start))
	select {
	case v := <-changes:
		if v {
			t.Errorf("second leadership change = true, want false")
		}
	default:
		t.Errorf("no false on LeadershipChanges after transfer + shutdown")
	}

	// Idempotent, concurrent-safe, and everything reports ErrShutdown.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := l.node.Shutdown(); err != nil {
				t.Errorf("second Shutdown = %v, want nil", err)
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	if _, _, err := l.node.Apply(ctx, setCmd("x", "y")); !errors.Is(err, ErrShutdown) {
		t.Errorf("Apply after Shutdown = %v, want ErrShutdown", err)
	}
	if _, err := l.node.ReadIndex(ctx); !errors.Is(err, ErrShutdown) {
		t.Errorf("ReadIndex after Shutdown = %v, want ErrShutdown", err)
	}
	if err := l.node.AddVoter("x", "127.0.0.1:1"); !errors.Is(err, ErrShutdown) {
		t.Errorf("AddVoter after Shutdown = %v, want ErrShutdown", err)
	}
	if n := l.node.waiters.count(); n != 0 {
		t.Errorf("%d future waiters still running after Shutdown", n)
	}
	c.apply("k2", "v2")
}

func TestRestartResumesFromDataDir(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	for i := range 20 {
		c.apply(fmt.Sprintf("k%d", i), "a")
	}
	l := c.waitReadyLeader()
	f := c.followers(l)[0]
	idx := c.apply("last-before", "x")
	c.waitConverged(idx)
	fi := 0
	for i, tn := range c.nodes {
		if tn == f {
			fi = i
		}
	}
	lastLog := f.node.Stats().LastLogIndex
	if err := f.node.shutdown(false); err != nil {
		t.Fatalf("kill follower: %v", err)
	}
	var while uint64
	for i := range 10 {
		while = c.apply(fmt.Sprintf("while-down-%d", i), "y")
	}

	r := c.restart(fi)
	if !r.node.HasExistingState() {
		t.Fatalf("restarted node has no existing state")
	}
	// Its own log is there before it hears from the leader (it may already
	// have more, never less).
	if got := r.node.Stats().LastLogIndex; got < lastLog {
		t.Fatalf("restarted LastLogIndex = %d, want >= %d (log persisted)", got, lastLog)
	}
	// Re-bootstrapping a node with state is a no-op.
	if err := r.node.BootstrapCluster(c.servers()); err != nil {
		t.Fatalf("BootstrapCluster on restarted node = %v, want nil", err)
	}
	c.waitConverged(while)
	if v, ok := r.fsm.get("while-down-9"); !ok || v != "y" {
		t.Errorf("restarted node while-down-9 = %q, %v; want y", v, ok)
	}
}

func TestFullClusterRestart(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	var idx uint64
	for i := range 10 {
		idx = c.apply(fmt.Sprintf("k%d", i), "v")
	}
	c.waitConverged(idx)
	for _, tn := range c.nodes {
		if err := tn.node.shutdown(false); err != nil {
			t.Fatalf("kill %s: %v", tn.cfg.NodeID, err)
		}
	}
	for i := range c.nodes {
		c.restart(i)
	}
	l := c.waitReadyLeader()
	ri, err := l.node.ReadIndex(context.Background())
	if err != nil {
		t.Fatalf("ReadIndex after full restart: %v", err)
	}
	if ri < idx {
		t.Fatalf("ReadIndex after full restart = %d, want >= %d", ri, idx)
	}
	testutil.Poll(t, waitTimeout, "leader FSM to apply the read index", func() bool { return l.fsm.appliedIndex() >= ri })
	if v, ok := l.fsm.get("k9"); !ok || v != "v" {
		t.Fatalf("k9 after full restart = %q, %v; want v", v, ok)
	}
}

// TestSnapshotTruncationAndCatchUpFromSnapshot: once the leader has
// snapshotted and dropped the head of its log, a new node catches up
// through InstallSnapshot and then the log, with the leader's log on either
// store. raft-wal deletes whole segment files only (and still serves the
// older entries of a segment it keeps), so its segments are made small here
// and the values large, so that index 1 is really gone. n4 is on the
// default store (the WAL) in both cases: it installs the snapshot into an
// empty monotonic log.
func TestSnapshotTruncationAndCatchUpFromSnapshot(t *testing.T) {
	small := func(c *Config) {
		c.SnapshotThreshold = 32
		c.TrailingLogs = 8
		c.SnapshotInterval = 20 * time.Millisecond
		c.WALSegmentSize = minWALSegmentSize
	}
	value := strings.Repeat("v", 600)
	for _, store := range []LogStoreKind{LogStoreBoltDB, LogStoreWAL} {
		t.Run("leader="+string(store), func(t *testing.T) {
			c := newTestCluster(t, 3, func(c *Config) { small(c); c.LogStore = store }, testHooks{})
			var idx uint64
			for i := range 120 {
				idx = c.apply(fmt.Sprintf("k%d", i%30), fmt.Sprintf("%s%d", value, i))
			}
			l := c.waitReadyLeader()
			testutil.Poll(t, waitTimeout, "a snapshot and index 1 gone from the leader's log", func() bool {
				if l.node.Stats().LastSnapshotIndex == 0 {
					c.apply("more", value) // the next snapshot check needs new entries
					return false
				}
				return l.node.log.store.GetLog(1, &raft.Log{}) != nil
			})
			idx = max(idx, c.apply("last-before-join", "x"))

			// A new, empty node can only catch up through InstallSnapshot now.
			cfg := testConfig(t, "n4")
			small(&cfg)
			n4 := c.startNode(cfg, testHooks{})
			c.nodes = append(c.nodes, n4)
			if err := l.node.AddVoter(cfg.NodeID, n4.node.Addr()); err != nil {
				t.Fatalf("AddVoter(n4): %v", err)
			}
			c.waitConverged(idx)
			if n4.fsm.restoreCount() == 0 {
				t.Errorf("n4 caught up without restoring a snapshot")
			}
			if v, _ := n4.fsm.get("k29"); v != value+"119" {
				t.Errorf("n4 k29 = %.10q..., want the value written last", v)
			}
			servers, err := l.node.Servers()
			if err != nil {
				t.Fatalf("Servers: %v", err)
			}
			if diff := cmp.Diff([]string{"n1", "n2", "n3", "n4"}, ids(servers)); diff != "" {
				t.Errorf("servers after AddVoter (-want +got):\n%s", diff)
			}
			// And it keeps replicating.
			last := c.apply("after-join", "z")
			c.waitConverged(last)
		})
	}
}

func TestMembershipChanges(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()

	confIndex := func() uint64 {
		t.Helper()
		_, idx, err := l.node.configuration()
		if err != nil {
			t.Fatalf("configuration: %v", err)
		}
		return idx
	}
	serverSet := func() map[string]string {
		t.Helper()
		servers, err := l.node.Servers()
		if err != nil {
			t.Fatalf("Servers: %v", err)
		}
		m := map[string]string{}
		for _, s := range servers {
			m[s.ID] = s.Address
		}
		return m
	}

	// A ghost voter (nothing listens there); one ghost keeps quorum at 3/4.
	if err := l.node.AddVoter("ghost", "127.0.0.1:1"); err != nil {
		t.Fatalf("AddVoter(ghost): %v", err)
	}
	idx := confIndex()
	if err := l.node.AddVoter("ghost", "127.0.0.1:1"); err != nil {
		t.Fatalf("repeat AddVoter(ghost): %v", err)
	}
	if got := confIndex(); got != idx {
		t.Errorf("repeat AddVoter changed the configuration index %d -> %d, want a no-op", idx, got)
	}

	cases := []struct {
		name     string
		id, addr string
		want     map[string]string // ghost entries expected afterwards
	}{
		{name: "same ID new address replaces", id: "ghost", addr: "127.0.0.1:2", want: map[string]string{"ghost": "127.0.0.1:2"}},
		{name: "new ID same address replaces", id: "ghost2", addr: "127.0.0.1:2", want: map[string]string{"ghost2": "127.0.0.1:2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.node.AddVoter(tc.id, tc.addr); err != nil {
				t.Fatalf("AddVoter(%s, %s): %v", tc.id, tc.addr, err)
			}
			got := serverSet()
			for _, tn := range c.nodes {
				delete(got, tn.cfg.NodeID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ghost servers (-want +got):\n%s", diff)
			}
		})
	}

	if err := l.node.RemoveServer("ghost2"); err != nil {
		t.Fatalf("RemoveServer(ghost2): %v", err)
	}
	idx = confIndex()
	if err := l.node.RemoveServer("never-there"); err != nil {
		t.Fatalf("RemoveServer(absent) = %v, want nil", err)
	}
	if got := confIndex(); got != idx {
		t.Errorf("RemoveServer(absent) changed the configuration")
	}
	if got := len(serverSet()); got != 3 {
		t.Errorf("%d servers after removing the ghost, want 3", got)
	}

	f := c.followers(l)[0]
	if err := f.node.AddVoter("x", "127.0.0.1:3"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("AddVoter on follower = %v, want ErrNotLeader", err)
	}
	if err := l.node.AddVoter("imposter", l.node.Addr()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("AddVoter at the leader's own address = %v, want ErrInvalidArgument", err)
	}
	if err := l.node.AddVoter("", "127.0.0.1:3"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("AddVoter with empty ID = %v, want ErrInvalidArgument", err)
	}
	c.apply("still", "works")
}

func TestBootstrapCluster(t *testing.T) {
	cfg := testConfig(t, "solo")
	c := &testCluster{tb: t}
	tn := c.startNode(cfg, testHooks{})
	c.nodes = append(c.nodes, tn)
	self := Server{ID: "solo", Address: tn.node.Addr(), Voter: true}

	bad := []struct {
		name    string
		servers []Server
	}{
		{name: "empty list", servers: nil},
		{name: "self missing", servers: []Server{{ID: "other", Address: "127.0.0.1:9", Voter: true}}},
		{name: "self not voter", servers: []Server{{ID: "solo", Address: tn.node.Addr()}}},
		{name: "duplicate ID", servers: []Server{self, {ID: "solo", Address: "127.0.0.1:9", Voter: true}}},
		{name: "duplicate address", servers: []Server{self, {ID: "b", Address: tn.node.Addr(), Voter: true}}},
		{name: "empty address", servers: []Server{self, {ID: "b", Voter: true}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := tn.node.BootstrapCluster(tc.servers); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("BootstrapCluster(%v) = %v, want ErrInvalidArgument", tc.servers, err)
			}
		})
	}
	if tn.node.HasExistingState() {
		t.Fatalf("fresh node reports existing state")
	}
	if err := tn.node.BootstrapCluster([]Server{self}); err != nil {
		t.Fatalf("BootstrapCluster: %v", err)
	}
	if !tn.node.HasExistingState() {
		t.Fatalf("no existing state after bootstrap")
	}
	if err := tn.node.BootstrapCluster([]Server{self}); err != nil {
		t.Fatalf("second BootstrapCluster = %v, want nil (no-op)", err)
	}
	l := c.waitReadyLeader()
	if l != tn {
		t.Fatalf("single node is not the leader")
	}
	if _, _, err := tn.node.Apply(context.Background(), setCmd("a", "1")); err != nil {
		t.Fatalf("Apply on single node: %v", err)
	}
	// Shutdown with transfer on a single node (nobody to transfer to) still works.
	if err := tn.node.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	cfg := testConfig(t, "x")
	cfg.MaxAppendEntries = 0
	if _, err := New(cfg, newTestFSM(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with bad config = %v, want ErrInvalidConfig", err)
	}
	if _, err := New(testConfig(t, "x"), nil, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("New with nil FSM = %v, want ErrInvalidArgument", err)
	}

	// A second node on the same data dir fails (bbolt lock) instead of hanging.
	cfg = testConfig(t, "x")
	c := &testCluster{tb: t}
	c.startNode(cfg, testHooks{})
	start := time.Now()
	if _, err := New(cfg, newTestFSM(), nil); err == nil {
		t.Errorf("New on a data dir in use succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New on a locked data dir took %s", d)
	}
}
