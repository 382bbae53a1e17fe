package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/raftnode"
)

// converge bounds every wait for gossip to settle. Generous: with -race on a
// shared 2-core machine, memberlist's awareness back-off can stretch failure
// detection with two peers down to ~10s. Passing runs never wait this long.
const converge = 30 * time.Second

// startTrio starts n1 (with r1) and n2, n3 joining it.
func startTrio(t *testing.T, mod func(*Config), r1, r2, r3 *fakeRaft) (n1, n2, n3 *testNode) {
	t.Helper()
	cfg1 := testConfig(t, "n1")
	mod(&cfg1)
	n1 = startNode(t, cfg1, r1)
	cfg2 := testConfig(t, "n2", n1.c.GossipAddr())
	mod(&cfg2)
	n2 = startNode(t, cfg2, r2)
	cfg3 := testConfig(t, "n3", n1.c.GossipAddr())
	mod(&cfg3)
	n3 = startNode(t, cfg3, r3)
	for _, n := range []*testNode{n1, n2, n3} {
		testutil.Poll(t, converge, n.name+" to see all three alive", func() bool { return n.sees(StatusAlive, "n1", "n2", "n3") })
	}
	return n1, n2, n3
}

func TestBootstrapThreeNodes(t *testing.T) {
	t.Parallel()
	expect3 := func(c *Config) { c.BootstrapExpect = 3 }
	n1, n2, n3 := startTrio(t, expect3, newFakeRaft(), newFakeRaft(), newFakeRaft())
	nodes := []*testNode{n1, n2, n3}
	for _, n := range nodes {
		testutil.Poll(t, converge, n.name+" to bootstrap", func() bool { return len(n.raft.bootstrapCalls()) > 0 })
	}

	wantMembers := []Member{}
	for _, name := range []string{"n1", "n2", "n3"} {
		wantMembers = append(wantMembers, Member{Name: name, ID: nodeID(name), Datacenter: "dc1",
			RaftAddr: raftAddr(name), GRPCAddr: grpcAddr(name), Status: StatusAlive, HasRaftState: true})
	}
	testutil.Poll(t, converge, "n1 to see everyone's raft state", func() bool {
		ms := n1.c.Members()
		return len(ms) == 3 && ms[0].HasRaftState && ms[1].HasRaftState && ms[2].HasRaftState
	})
	got := n1.c.Members()
	for i := range got {
		if got[i].GossipAddr == "" {
			t.Errorf("Members()[%d].GossipAddr is empty", i)
		}
		got[i].GossipAddr = ""
	}
	if diff := cmp.Diff(wantMembers, got); diff != "" {
		t.Errorf("n1.Members() mismatch (-want +got):\n%s", diff)
	}
	if addr, ok := n1.c.GRPCAddrOf(nodeID("n3")); !ok || addr != grpcAddr("n3") {
		t.Errorf("GRPCAddrOf(id-n3) = %q, %v; want %q, true", addr, ok, grpcAddr("n3"))
	}
	if addr, ok := n1.c.GRPCAddrOf("nope"); ok {
		t.Errorf("GRPCAddrOf(nope) = %q, true; want false", addr)
	}

	// Stop everything so no further call can happen, then count.
	for _, n := range nodes {
		n.stop(t)
	}
	want := []raftnode.Server{voter("n1"), voter("n2"), voter("n3")}
	for _, n := range nodes {
		calls := n.raft.bootstrapCalls()
		if len(calls) != 1 {
			t.Errorf("%s: BootstrapCluster called %d times, want 1: %v", n.name, len(calls), calls)
			continue
		}
		if diff := cmp.Diff(want, calls[0]); diff != "" {
			t.Errorf("%s: bootstrap configuration mismatch (-want +got):\n%s", n.name, diff)
		}
	}
}

func TestNoBootstrapWhenAPeerHasState(t *testing.T) {
	t.Parallel()
	expect3 := func(c *Config) { c.BootstrapExpect = 3 }
	withState := newFakeRaft().withConfig(voter("n1"))
	n1, n2, n3 := startTrio(t, expect3, withState, newFakeRaft(), newFakeRaft())

	want := map[string]bootstrapDecision{"n1": bootstrapLocalState, "n2": bootstrapPeerState, "n3": bootstrapPeerState}
	for _, n := range []*testNode{n1, n2, n3} {
		testutil.Poll(t, converge, n.name+" to decide", func() bool { return n.events.lastBootstrap().final() })
		if got := n.events.lastBootstrap(); got != want[n.name] {
			t.Errorf("%s: bootstrap decision = %v, want %v", n.name, got, want[n.name])
		}
		if calls := n.raft.bootstrapCalls(); len(calls) != 0 {
			t.Errorf("%s: BootstrapCluster called: %v", n.name, calls)
		}
	}
}

func TestLeaderAddsJoinedServer(t *testing.T) {
	t.Parallel()
	leader := newFakeRaft().withConfig(voter("n1")).setLeader(true)
	n1 := startNode(t, testConfig(t, "n1"), leader)
	startNode(t, testConfig(t, "n2", n1.c.GossipAddr()), newFakeRaft())

	testutil.Poll(t, converge, "n2 to be added as a voter", func() bool { return leader.hasServer(nodeID("n2"), raftAddr("n2")) })
	// Several more passes must treat it as present: no further AddVoter.
	passes := len(n1.events.all())
	testutil.Poll(t, converge, "three more passes", func() bool { return len(n1.events.all()) >= passes+3 })
	var adds []change
	for _, ch := range leader.changeCalls() {
		ch.At = time.Time{}
		adds = append(adds, ch)
	}
	// A non-voter first, promoted once it was alive for the
	// stabilization time.
	want := []change{{Op: "add-nonvoter", ID: nodeID("n2"), Addr: raftAddr("n2")}, {Op: "add", ID: nodeID("n2"), Addr: raftAddr("n2")}}
	if diff := cmp.Diff(want, adds); diff != "" {
		t.Errorf("raft changes mismatch (-want +got):\n%s", diff)
	}
	calls := leader.changeCalls()
	if len(calls) == 2 {
		m, _ := n1.c.table.get("n2")
		if stable := calls[1].At.Sub(m.since); stable < 500*time.Millisecond {
			t.Errorf("n2 promoted %v after it was alive, want >= the 500ms stabilization time", stable)
		}
	}
}

// TestLeftServerKeepsItsSlot: a server that leaves gracefully stays a
// voter for DeadServerTimeout (a restart finds its slot), then is removed.
func TestLeftServerKeepsItsSlot(t *testing.T) {
	t.Parallel()
	const timeout = 1500 * time.Millisecond
	leader := newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")).setLeader(true)
	r := func() *fakeRaft { return newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")) }
	n1, _, n3 := startTrio(t, func(c *Config) { c.DeadServerTimeout = timeout }, leader, r(), r())

	if err := n3.c.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave() = %v", err)
	}
	testutil.Poll(t, converge, "n1 to see n3 leave", func() bool { return n1.status("n3") == StatusLeft })
	m, _ := n1.c.table.get("n3")
	testutil.Poll(t, converge, "n3 to be removed", func() bool { return !leader.hasServer(nodeID("n3"), "") })
	for _, ch := range leader.changeCalls() {
		if ch.Op == "remove" && ch.ID == nodeID("n3") && ch.At.Sub(m.since) < timeout {
			t.Errorf("n3 removed %v after it left, want >= %v", ch.At.Sub(m.since), timeout)
		}
	}
	if !leader.hasServer(nodeID("n2"), raftAddr("n2")) {
		t.Error("n2 was removed too")
	}
	if err := n3.c.Leave(time.Second); err == nil {
		t.Error("second Leave() = nil, want ErrShutdown")
	}
}

func TestFailedServerRemovedAfterTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 1500 * time.Millisecond
	leader := newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")).setLeader(true)
	r := func() *fakeRaft { return newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")) }
	n1, _, n3 := startTrio(t, func(c *Config) { c.DeadServerTimeout = timeout }, leader, r(), r())

	stoppedAt := time.Now()
	n3.stop(t) // no leave: a failure
	testutil.Poll(t, converge, "n3 to be removed", func() bool { return !leader.hasServer(nodeID("n3"), "") })

	m, _ := n1.c.table.get("n3")
	if m.status != StatusFailed {
		t.Errorf("n1 sees n3 as %v, want failed", m.status)
	}
	var removedAt time.Time
	for _, ch := range leader.changeCalls() {
		if ch.Op == "remove" && ch.ID == nodeID("n3") {
			removedAt = ch.At
		}
	}
	if early := removedAt.Sub(m.since); early < timeout {
		t.Errorf("n3 removed %v after it was declared failed, want >= %v", early, timeout)
	}
	if early := removedAt.Sub(stoppedAt); early < timeout {
		t.Errorf("n3 removed %v after it stopped, want >= %v", early, timeout)
	}
	if !leader.hasServer(nodeID("n2"), raftAddr("n2")) {
		t.Error("n2 was removed too")
	}
}

func TestNeverRemovesAMajority(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	leader := newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")).setLeader(true)
	r := func() *fakeRaft { return newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")) }
	n1, n2, n3 := startTrio(t, func(c *Config) { c.DeadServerTimeout = timeout }, leader, r(), r())

	n2.stop(t)
	n3.stop(t)
	// Wait for a pass that found both due for removal and kept them.
	testutil.Poll(t, converge, "a pass blocking both removals", func() bool {
		for _, ev := range n1.events.all() {
			if len(ev.plan.blocked) == 2 {
				return true
			}
		}
		return false
	})
	for _, ev := range n1.events.all() {
		if len(ev.plan.removeDead) != 0 {
			t.Errorf("pass at %v planned removals %v", ev.at, ev.plan.removeDead)
		}
	}
	if calls := leader.changeCalls(); len(calls) != 0 {
		t.Errorf("raft changes = %v, want none", calls)
	}
}

func TestFollowerNeverChangesVoters(t *testing.T) {
	t.Parallel()
	follower := newFakeRaft().withConfig(voter("n1"), voter("n3"))
	cfg1 := testConfig(t, "n1")
	cfg1.DeadServerTimeout = time.Second // n3's leave is acted on after it
	n1 := startNode(t, cfg1, follower)
	startNode(t, testConfig(t, "n2", n1.c.GossipAddr()), newFakeRaft())
	n3 := startNode(t, testConfig(t, "n3", n1.c.GossipAddr()), newFakeRaft())
	// n3 must know its peers before leaving, or nobody hears the leave.
	testutil.Poll(t, converge, "n1 and n3 to see everyone", func() bool {
		return n1.sees(StatusAlive, "n2", "n3") && n3.sees(StatusAlive, "n1", "n2")
	})
	if err := n3.c.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave() = %v", err)
	}
	testutil.Poll(t, converge, "n1 to see n3 leave", func() bool { return n1.sees(StatusLeft, "n3") })
	passes := len(n1.events.all())
	testutil.Poll(t, converge, "three more passes", func() bool { return len(n1.events.all()) >= passes+3 })
	if calls := follower.changeCalls(); len(calls) != 0 {
		t.Fatalf("follower made raft changes: %v", calls)
	}

	// Gaining leadership triggers a full reconcile.
	follower.setLeader(true)
	testutil.Poll(t, converge, "n2 added and n3 removed", func() bool {
		return follower.hasServer(nodeID("n2"), raftAddr("n2")) && !follower.hasServer(nodeID("n3"), "")
	})
}

func TestJoinRetriesUntilPeerStarts(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	n1 := startNode(t, testConfig(t, "n1", "127.0.0.1:"+itoa(port)), newFakeRaft())
	// n1 is already retrying; start its join target afterwards.
	testutil.Poll(t, converge, "n1 to fail two join attempts", func() bool { return n1.c.joinFailures.Load() >= 2 })
	cfg2 := testConfig(t, "n2")
	cfg2.BindPort = port
	n2 := startNode(t, cfg2, newFakeRaft())
	testutil.Poll(t, converge, "n1 and n2 to see each other", func() bool {
		return n1.sees(StatusAlive, "n1", "n2") && n2.sees(StatusAlive, "n1", "n2")
	})
}

func TestRunOnceAndAfterShutdown(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "n1"), newFakeRaft())
	testutil.Poll(t, converge, "Run to start", func() bool { return len(n.events.all()) > 0 })
	if err := n.c.Run(t.Context()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run() = %v, want ErrAlreadyRunning", err)
	}
	n.stop(t)
	if err := n.c.Run(t.Context()); !errors.Is(err, ErrShutdown) {
		t.Errorf("Run() after Shutdown = %v, want ErrShutdown", err)
	}
	if err := n.c.Shutdown(); err != nil {
		t.Errorf("second Shutdown() = %v", err)
	}
}
