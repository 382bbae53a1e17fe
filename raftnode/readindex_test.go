package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/testutil"
)

func TestReadIndexRejectsFollowers(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()
	for _, f := range c.followers(l) {
		testutil.Poll(t, waitTimeout, "follower to know the leader", func() bool {
			id, _ := f.node.Leader()
			return id != ""
		})
		if _, err := f.node.ReadIndex(context.Background()); !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) {
			t.Errorf("ReadIndex on follower %s = %v, want ErrNotLeader", f.cfg.NodeID, err)
		}
	}
	if got := c.followers(l)[0].node.Stats().ReadIndexRounds; got != 0 {
		t.Errorf("follower ran %d VerifyLeader rounds, want 0", got)
	}
}

func TestReadIndexCoversAcknowledgedWrites(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	ctx := context.Background()
	for i := range 30 {
		idx := c.apply(fmt.Sprintf("k%d", i), "v")
		l := c.waitReadyLeader()
		ri, err := l.node.ReadIndex(ctx)
		if err != nil {
			t.Fatalf("ReadIndex after write %d: %v", i, err)
		}
		if ri < idx {
			t.Fatalf("ReadIndex = %d after a write acknowledged at %d", ri, idx)
		}
		testutil.Poll(t, waitTimeout, "leader FSM to reach the read index", func() bool {
			return l.fsm.appliedIndex() >= ri
		})
		if v, ok := l.fsm.get(fmt.Sprintf("k%d", i)); !ok || v != "v" {
			t.Fatalf("read after ReadIndex misses k%d", i)
		}
	}
}

// A fresh term ends its log with a no-op and our barrier, which never reach
// the FSM: ReadIndex must still return an index the FSM reaches.
func TestReadIndexAfterElectionIsReachable(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	idx := c.apply("k", "v")
	old := c.waitReadyLeader()
	if err := old.node.shutdown(false); err != nil {
		t.Fatalf("kill leader: %v", err)
	}
	l := c.waitReadyLeader()
	ri, err := l.node.ReadIndex(context.Background())
	if err != nil {
		t.Fatalf("ReadIndex: %v", err)
	}
	if commit := l.node.Stats().CommitIndex; ri >= commit {
		t.Errorf("ReadIndex = %d, commit index %d: expected the trailing no-op/barrier to be skipped", ri, commit)
	}
	if ri < idx {
		t.Fatalf("ReadIndex = %d, want >= %d", ri, idx)
	}
	testutil.Poll(t, waitTimeout, "FSM to reach the read index with no further writes", func() bool {
		return l.fsm.appliedIndex() >= ri
	})
}

func TestReadIndexNotReadyUntilBarrier(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	hooks := testHooks{beforeBarrier: func() { <-release }}
	c := &testCluster{tb: t}
	for i := range 3 {
		c.nodes = append(c.nodes, c.startNode(testConfig(t, fmt.Sprintf("n%d", i+1)), hooks))
	}
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before the nodes' shutdown
	for _, tn := range c.nodes {
		if err := tn.node.BootstrapCluster(c.servers()); err != nil {
			t.Fatalf("BootstrapCluster: %v", err)
		}
	}
	var l *testNode
	testutil.Poll(t, waitTimeout, "a leader", func() bool {
		for _, tn := range c.nodes {
			if tn.node.IsLeader() {
				l = tn
				return true
			}
		}
		return false
	})
	if _, err := l.node.ReadIndex(context.Background()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("ReadIndex before the barrier = %v, want ErrNotReady", err)
	}
	select {
	case v := <-l.node.LeadershipChanges():
		t.Fatalf("LeadershipChanges delivered %v before the barrier", v)
	default:
	}
	// Writes do not wait for the barrier.
	if _, _, err := l.node.Apply(context.Background(), setCmd("a", "b")); err != nil {
		t.Fatalf("Apply before the barrier: %v", err)
	}

	once.Do(func() { close(release) })
	l = c.waitReadyLeader()
	if _, err := l.node.ReadIndex(context.Background()); err != nil {
		t.Fatalf("ReadIndex after the barrier: %v", err)
	}
}

func TestReadIndexBatchesConcurrentCallers(t *testing.T) {
	const callers = 20
	// The first round waits on gate1 before taking the queue, so every
	// caller queues first; after its capture it waits on gate2 so that a
	// late caller arrives mid-round and must be served by the next round.
	gate1, gate2 := make(chan struct{}), make(chan struct{})
	var hookOnce1, hookOnce2 sync.Once
	var armed sync.Mutex
	armedFlag := false
	isArmed := func() bool { armed.Lock(); defer armed.Unlock(); return armedFlag }
	hooks := testHooks{
		beforeReadRound: func() {
			if isArmed() {
				hookOnce1.Do(func() { <-gate1 })
			}
		},
		afterReadIndexRead: func() {
			if isArmed() {
				hookOnce2.Do(func() { <-gate2 })
			}
		},
	}
	c := newTestCluster(t, 3, nil, hooks)
	t.Cleanup(func() {
		select {
		case <-gate1:
		default:
			close(gate1)
		}
		select {
		case <-gate2:
		default:
			close(gate2)
		}
	})
	l := c.waitReadyLeader()
	idx := c.apply("k", "v")
	armed.Lock()
	armedFlag = true
	armed.Unlock()

	rounds0, requests0 := l.node.reads.rounds.Load(), l.node.reads.requests.Load()
	results := make(chan readResult, callers+1)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { results <- l.node.readIndex(context.Background()) })
	}
	pending := func() int {
		l.node.reads.mu.Lock()
		defer l.node.reads.mu.Unlock()
		return len(l.node.reads.pending)
	}
	testutil.Poll(t, waitTimeout, "all callers to queue", func() bool { return pending() == callers })
	close(gate1)
	testutil.Poll(t, waitTimeout, "the round to take the queue", func() bool { return pending() == 0 })
	wg.Go(func() { results <- l.node.readIndex(context.Background()) }) // the late caller
	testutil.Poll(t, waitTimeout, "the late caller to queue", func() bool { return pending() == 1 })
	close(gate2)
	wg.Wait()
	close(results)

	byRound := map[uint64]int{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("readIndex: %v", r.err)
		}
		if r.index < idx {
			t.Errorf("read index %d < acknowledged write %d", r.index, idx)
		}
		byRound[r.round]++
	}
	first := rounds0 + 1
	if byRound[first] != callers || byRound[first+1] != 1 || len(byRound) != 2 {
		t.Errorf("callers per round = %v, want %d in round %d and the late caller alone in round %d", byRound, callers, first, first+1)
	}
	if got := l.node.reads.requests.Load() - requests0; got != callers+1 {
		t.Errorf("requests counted = %d, want %d", got, callers+1)
	}
	if got := l.node.reads.rounds.Load() - rounds0; got != 2 {
		t.Errorf("VerifyLeader rounds = %d for %d callers, want 2", got, callers+1)
	}
}

// Without hooks: many concurrent readers and writers; rounds stay below
// requests and every read covers the writes acknowledged before it started.
func TestReadIndexConcurrentWithWrites(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()
	ctx := context.Background()
	st0 := l.node.Stats()

	var mu sync.Mutex
	var acked uint64 // highest acknowledged write index
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 25 {
				_, idx, err := l.node.Apply(ctx, setCmd(fmt.Sprintf("w%d", w), fmt.Sprint(i)))
				if err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				mu.Lock()
				acked = max(acked, idx)
				mu.Unlock()
			}
		})
	}
	for range 8 {
		wg.Go(func() {
			for range 25 {
				mu.Lock()
				floor := acked
				mu.Unlock()
				ri, err := l.node.ReadIndex(ctx)
				if err != nil {
					t.Errorf("ReadIndex: %v", err)
					return
				}
				if ri < floor {
					t.Errorf("ReadIndex = %d after a write acknowledged at %d", ri, floor)
				}
			}
		})
	}
	wg.Wait()
	st := l.node.Stats()
	requests, rounds := st.ReadIndexRequests-st0.ReadIndexRequests, st.ReadIndexRounds-st0.ReadIndexRounds
	t.Logf("%d ReadIndex calls served by %d VerifyLeader rounds", requests, rounds)
	if requests != 200 || rounds == 0 || rounds > requests {
		t.Errorf("requests = %d, rounds = %d; want 200 requests and 1..200 rounds", requests, rounds)
	}
}

func TestReadIndexTimeoutAndContext(t *testing.T) {
	block := make(chan struct{})
	var armed sync.Mutex
	armedFlag := false
	hooks := testHooks{beforeReadRound: func() {
		armed.Lock()
		a := armedFlag
		armed.Unlock()
		if a {
			<-block
		}
	}}
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.ReadIndexTimeout = 50 * time.Millisecond }, hooks)
	t.Cleanup(func() { close(block) })
	l := c.waitReadyLeader()
	armed.Lock()
	armedFlag = true
	armed.Unlock()

	if _, err := l.node.ReadIndex(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Errorf("ReadIndex with a stuck round = %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := l.node.ReadIndex(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReadIndex with a short ctx = %v, want context.DeadlineExceeded", err)
	}
}

func TestLastCommandAtOrBelow(t *testing.T) {
	c := newTestCluster(t, 1, nil, testHooks{})
	l := c.waitReadyLeader()
	idx := c.apply("k", "v")
	// Append two barriers: commit moves past idx but the last command stays.
	for range 2 {
		if err := l.node.raft.Barrier(time.Second).Error(); err != nil {
			t.Fatalf("Barrier: %v", err)
		}
	}
	commit := l.node.raft.CommitIndex()
	if commit < idx+2 {
		t.Fatalf("commit %d, want >= %d", commit, idx+2)
	}
	var lg raft.Log
	if err := l.node.logs.GetLog(commit, &lg); err != nil || lg.Type != raft.LogBarrier {
		t.Fatalf("log at commit %d = %v (%v), want a barrier", commit, lg.Type, err)
	}
	cases := []struct {
		name   string
		commit uint64
		want   uint64
	}{
		{name: "at the command", commit: idx, want: idx},
		{name: "past trailing barriers", commit: commit, want: idx},
		{name: "memoised, again", commit: commit, want: idx},
		{name: "below the memo restarts", commit: idx, want: idx},
	}
	for _, tc := range cases {
		if got := l.node.lastCommandAtOrBelow(tc.commit); got != tc.want {
			t.Errorf("%s: lastCommandAtOrBelow(%d) = %d, want %d", tc.name, tc.commit, got, tc.want)
		}
	}
}
