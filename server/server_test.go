package server_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/server"
)

// TestCluster runs the non-destructive cluster scenarios on one
// three-node cluster, in order.
func TestCluster(t *testing.T) {
	skipInShort(t)
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	fs := c.Followers()
	f1, f2 := fs[0], fs[1]
	all := c.Client(c.Running()...)
	viaF1, viaF2 := c.Client(f1), c.Client(f2)

	t.Run("election and replication", func(t *testing.T) {
		idx := apply(t, all, serviceDefaults("web", "http"))
		c.WaitConverged()
		for _, nd := range c.Running() {
			st, _, _ := nd.Server().FSM().Store().Get(keyOf("service-defaults", "web"))
			if st == nil || st.ModifyIndex != idx {
				t.Errorf("%s holds web = %v, want ModifyIndex %d", nd.Name(), st, idx)
			}
		}
	})

	t.Run("follower forwards writes and default reads to the leader", func(t *testing.T) {
		idx := apply(t, viaF1, serviceDefaults("api", "http"))
		resp, err := viaF1.Get(ctxFor(t, 10*time.Second), &chainstorev1.GetRequest{Kind: "service-defaults", Name: "api"})
		if err != nil || !resp.Found || resp.ModifyIndex != idx {
			t.Fatalf("Get via follower = %v, %v; want api at %d", resp, err, idx)
		}
		if resp.Meta.GetServedBy() != leader.Name() {
			t.Errorf("default read served by %q, want the leader %s", resp.Meta.GetServedBy(), leader.Name())
		}
	})

	t.Run("CAS through the API", func(t *testing.T) {
		ctx := ctxFor(t, 20*time.Second)
		put := func(c *api.Client, entry string, index uint64) (bool, uint64) {
			t.Helper()
			resp, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(entry), Cas: true, ModifyIndex: index})
			if err != nil {
				t.Fatalf("Apply cas: %v", err)
			}
			return resp.Applied, resp.Index
		}
		del := func(c *api.Client, index uint64) bool {
			t.Helper()
			resp, err := c.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "cas", Cas: true, ModifyIndex: index})
			if err != nil {
				t.Fatalf("Delete cas: %v", err)
			}
			return resp.Deleted
		}
		ok, created := put(viaF1, serviceDefaults("cas", "http"), 0)
		if !ok {
			t.Fatal("create-only CAS of a new entry failed")
		}
		if ok, _ := put(viaF2, serviceDefaults("cas", "grpc"), 0); ok {
			t.Error("create-only CAS of an existing entry succeeded")
		}
		ok, updated := put(viaF2, serviceDefaults("cas", "grpc"), created)
		if !ok {
			t.Error("CAS with the current ModifyIndex failed")
		}
		if ok, _ := put(all, serviceDefaults("cas", "tcp"), created); ok {
			t.Error("CAS with a stale ModifyIndex succeeded")
		}
		if del(viaF1, 0) || del(viaF1, created) {
			t.Error("delete-cas with index 0 or a stale index deleted the entry")
		}
		if !del(viaF2, updated) {
			t.Error("delete-cas with the current index failed")
		}
	})

	t.Run("linearizable read after a write on another node", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		for i := range 10 {
			proto := []string{"http", "grpc"}[i%2]
			idx := apply(t, viaF1, serviceDefaults("lin", proto))
			resp, err := viaF2.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "lin",
				Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_CONSISTENT}})
			if err != nil || resp.ModifyIndex != idx || !strings.Contains(string(resp.Entry), proto) {
				t.Fatalf("round %d: consistent Get via %s = %v, %v; want the write at %d (%s) made via %s", i, f2.Name(), resp, err, idx, proto, f1.Name())
			}
		}
	})

	t.Run("a graph-invalid write leaves every node unchanged", func(t *testing.T) {
		c.WaitConverged()
		before := map[string][]string{}
		for _, nd := range c.Running() {
			before[nd.Name()] = entries(nd)
		}
		// A splitter on a service whose protocol is tcp (the default).
		_, err := viaF1.Apply(ctxFor(t, 10*time.Second), &chainstorev1.ApplyRequest{
			Entry: []byte(`{"Kind":"service-splitter","Name":"main","Splits":[{"Weight":100}]}`)})
		if status.Code(err) != codes.InvalidArgument || api.ErrorReason(err) != api.ReasonGraphInvalid {
			t.Fatalf("Apply(invalid splitter) = %v, want InvalidArgument GRAPH_INVALID", err)
		}
		if !strings.Contains(api.ErrorText(err), "does not permit advanced routing or splitting behavior") {
			t.Errorf("error text %q does not name the protocol problem", api.ErrorText(err))
		}
		c.WaitConverged()
		for _, nd := range c.Running() {
			if diff := cmp.Diff(before[nd.Name()], entries(nd)); diff != "" {
				t.Errorf("%s entries changed (-before +after):\n%s", nd.Name(), diff)
			}
		}
	})

	t.Run("a blocking stale read on a follower wakes on a write", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		base := apply(t, all, serviceDefaults("watched", "http"))
		c.WaitConverged()
		got := make(chan *chainstorev1.GetResponse, 1)
		go func() {
			resp, err := viaF2.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "watched",
				Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE, MinIndex: base, Wait: durationpb.New(20 * time.Second)}})
			if err != nil {
				t.Errorf("blocking Get: %v", err)
			}
			got <- resp
		}()
		testutil.Poll(t, 10*time.Second, "the query to block", func() bool { return f2.Server().BlockedQueries() > 0 })
		idx := apply(t, all, serviceDefaults("watched", "grpc"))
		if resp := <-got; resp.GetModifyIndex() != idx || resp.GetMeta().GetServedBy() != f2.Name() {
			t.Errorf("blocking Get returned %v, want index %d served by %s", resp, idx, f2.Name())
		}
	})

	t.Run("status, peers and members", func(t *testing.T) {
		ctx := ctxFor(t, 10*time.Second)
		for _, nd := range c.Running() {
			st, err := c.Client(nd).Status(ctx, &chainstorev1.StatusRequest{})
			if err != nil {
				t.Fatalf("Status(%s): %v", nd.Name(), err)
			}
			if st.Node != nd.Name() || st.Leader != leader.Name() || st.IsLeader != (nd == leader) || st.AppliedIndex == 0 {
				t.Errorf("Status(%s) = %v, want leader %s", nd.Name(), st, leader.Name())
			}
		}
		peers, err := all.Peers(ctx, &chainstorev1.PeersRequest{})
		if err != nil {
			t.Fatalf("Peers: %v", err)
		}
		var got []string
		for _, p := range peers.Peers {
			got = append(got, fmt.Sprintf("%s voter=%v leader=%v", p.Name, p.Voter, p.Leader))
		}
		var want []string
		for _, name := range []string{"n1", "n2", "n3"} {
			want = append(want, fmt.Sprintf("%s voter=true leader=%v", name, name == leader.Name()))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Peers (-want +got):\n%s", diff)
		}
		members, err := all.Members(ctx, &chainstorev1.MembersRequest{})
		if err != nil || len(members.Members) != 3 {
			t.Fatalf("Members = %v, %v", members, err)
		}
		for _, m := range members.Members {
			if m.Status != "alive" || m.GrpcAddr == "" || m.RaftAddr == "" {
				t.Errorf("member %v, want alive with addresses", m)
			}
		}
	})
}

// TestLeaderCrashAndRestart crashes the leader, checks that a new leader
// takes writes, then restarts the old leader from its data directory.
func TestLeaderCrashAndRestart(t *testing.T) {
	skipInShort(t)
	c := servertest.NewCluster(t, 3, nil)
	old := c.Leader()
	oldID := old.Server().NodeID()
	// The client lists the leader first: it must fail over.
	var order []*servertest.Node
	order = append(order, old)
	order = append(order, c.Followers()...)
	cl := c.Client(order...)
	for i := range 5 {
		apply(t, cl, serviceDefaults(fmt.Sprintf("before-%d", i), "http"))
	}

	t.Run("a new leader is elected and writes continue", func(t *testing.T) {
		start := time.Now()
		c.Crash(old)
		applyIdempotent(t, cl, serviceDefaults("after-crash", "http"))
		t.Logf("leader crash to next successful write: %s", time.Since(start).Round(time.Millisecond))
		if nl := c.Leader(); nl == old {
			t.Fatalf("leader is still %s", old.Name())
		}
		for i := range 5 {
			apply(t, cl, serviceDefaults(fmt.Sprintf("after-%d", i), "http"))
		}
		c.WaitConverged()
	})

	t.Run("the old leader restarts from its data and catches up", func(t *testing.T) {
		start := time.Now()
		c.Start(old)
		if old.Server().NodeID() != oldID {
			t.Errorf("node ID after restart = %s, want %s (persisted)", old.Server().NodeID(), oldID)
		}
		c.WaitStable(3)
		c.WaitConverged()
		t.Logf("restart to caught up: %s", time.Since(start).Round(time.Millisecond))
		got := entries(old)
		if len(got) != 11 {
			t.Errorf("restarted node holds %d entries, want 11: %v", len(got), got)
		}
	})

	t.Run("a follower stopped gracefully keeps its voter slot and rejoins", func(t *testing.T) {
		f := c.Followers()[0]
		fID := f.Server().NodeID()
		c.Stop(f)
		// The leader sees the leave, and keeps the server as a voter
		// (it is removed only after the dead-server timeout, 30 s here).
		leader := c.Leader()
		viaLeader := c.Client(leader)
		testutil.Poll(t, 10*time.Second, "the leader to see the leave", func() bool {
			resp, err := viaLeader.Members(ctxFor(t, 5*time.Second), &chainstorev1.MembersRequest{})
			for _, m := range resp.GetMembers() {
				if err == nil && m.GetId() == fID {
					return m.GetStatus() == "left"
				}
			}
			return false
		})
		apply(t, cl, serviceDefaults("while-away", "http"))
		servers, err := leader.Server().Raft().Servers()
		if err != nil || len(servers) != 3 {
			t.Fatalf("Raft configuration while %s is away = %v, %v; want 3 voters", f.Name(), servers, err)
		}
		for _, s := range servers {
			if !s.Voter {
				t.Errorf("server %s is not a voter while %s is away", s.ID, f.Name())
			}
		}
		c.Start(f)
		c.WaitStable(3)
		c.WaitConverged()
		if got := entries(f); len(got) != 12 {
			t.Errorf("rejoined node holds %d entries, want 12", len(got))
		}
	})
}

// TestSnapshotJoinAndFailedServerRemoval: after a snapshot truncated the
// log, a new server joining by gossip becomes a voter and catches up from
// the snapshot; when it then crashes, the leader removes it after the
// dead-server timeout.
func TestSnapshotJoinAndFailedServerRemoval(t *testing.T) {
	skipInShort(t)
	c := servertest.NewCluster(t, 3, func(cfg *server.Config) {
		cfg.Raft.SnapshotThreshold = 16
		cfg.Raft.TrailingLogs = 4
		cfg.Raft.SnapshotInterval = 100 * time.Millisecond
		cfg.Cluster.DeadServerTimeout = time.Second
	})
	cl := c.Client(c.Running()...)
	for i := range 40 {
		apply(t, cl, serviceDefaults(fmt.Sprintf("svc-%02d", i), "http"))
	}
	leader := c.Leader()
	testutil.Poll(t, 20*time.Second, "a snapshot on the leader", func() bool {
		return leader.Server().Raft().Stats().LastSnapshotIndex >= 20
	})
	snapIndex := leader.Server().Raft().Stats().LastSnapshotIndex

	n4 := c.AddNode("n4", 0)
	t.Run("the joining server is a non-voter first, then a voter", func(t *testing.T) {
		n4ID := n4.Server().NodeID()
		testutil.Poll(t, 20*time.Second, "n4 in the configuration", func() bool {
			servers, err := c.Leader().Server().Raft().Servers()
			for _, s := range servers {
				if err == nil && s.ID == n4ID {
					if s.Voter {
						t.Errorf("n4 entered the configuration as a voter")
					}
					return true
				}
			}
			return false
		})
		c.WaitStable(4)
	})
	t.Run("it catches up from the snapshot", func(t *testing.T) {
		c.WaitConverged()
		if got := len(entries(n4)); got != 40 {
			t.Errorf("n4 holds %d entries, want 40", got)
		}
		if si := n4.Server().Raft().Stats().LastSnapshotIndex; si < snapIndex {
			t.Errorf("n4's last snapshot index = %d, want >= %d (installed from the leader)", si, snapIndex)
		}
	})
	t.Run("a crashed server is removed after the timeout", func(t *testing.T) {
		if c.Leader() == n4 {
			t.Skip("n4 became the leader; removal of a crashed leader is covered by TestLeaderCrashAndRestart")
		}
		c.Crash(n4)
		c.WaitStable(3)
	})
}

// TestLeaderDiskStallFailsTheServer: a leader whose Raft log write stalls
// fences itself off and reports a Raft failure (Run then exits the
// process); the other two elect a leader and take writes; once the disk is
// healthy the server restarts from its data and catches up.
func TestLeaderDiskStallFailsTheServer(t *testing.T) {
	skipInShort(t)
	var target atomic.Value // name of the node whose disk stalls
	release := make(chan struct{})
	var once sync.Once
	heal := func() { once.Do(func() { close(release) }) }
	c := servertest.NewCluster(t, 3, func(cfg *server.Config) {
		name := cfg.NodeName
		cfg.Raft.DiskStallTimeout = time.Second
		cfg.Raft.LogWriteHook = func() error {
			if v, _ := target.Load().(string); v == name {
				<-release
			}
			return nil
		}
	})
	t.Cleanup(heal) // runs before the cluster's shutdown: Raft is stuck in the write
	old := c.Leader()
	others := c.Followers()
	apply(t, c.Client(old), serviceDefaults("before", "http"))

	start := time.Now()
	target.Store(old.Name())
	// A write to the stalled leader: it must not hang past the failure.
	stalled := make(chan error, 1)
	go func() {
		_, err := c.Client(old).Apply(ctxFor(t, 30*time.Second), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults("stalled", "http"))})
		stalled <- err
	}()
	select {
	case err := <-old.Server().Errors():
		var rf *server.RaftFailure
		if !errors.As(err, &rf) || !errors.Is(err, raftnode.ErrDiskStalled) {
			t.Fatalf("server error = %v, want a raft failure wrapping ErrDiskStalled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server with a stalled disk reported no failure")
	}
	select {
	case err := <-stalled:
		if api.ErrorReason(err) != api.ReasonUnknownOutcome {
			t.Errorf("write to the stalled leader = %v, want an unknown outcome", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the write to the stalled leader still hangs after the failure")
	}

	applyIdempotent(t, c.Client(others...), serviceDefaults("after-stall", "http"))
	t.Logf("leader disk stall to the next successful write: %s", time.Since(start).Round(time.Millisecond))

	heal()
	c.Crash(old) // what Run does after the failure: stop without leaving
	c.Start(old)
	c.WaitStable(3)
	c.WaitConverged()
	if got := entries(old); !slices.ContainsFunc(got, func(e string) bool { return strings.HasPrefix(e, "service-defaults/after-stall@") }) {
		t.Errorf("restarted server holds %v, want after-stall", got)
	}
}
