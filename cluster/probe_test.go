package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/raftnode"
)

// fakeProber answers for the server IDs marked up, and records calls.
type fakeProber struct {
	mu      sync.Mutex
	up      map[string]bool
	calls   map[string]int
	answers map[string]time.Time // last answer per ID
	addrs   map[string]string    // last address probed per ID
}

func newFakeProber() *fakeProber {
	return &fakeProber{up: map[string]bool{}, calls: map[string]int{}, answers: map[string]time.Time{}, addrs: map[string]string{}}
}

func (f *fakeProber) Probe(_ context.Context, id, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[id]++
	f.addrs[id] = addr
	if !f.up[id] {
		return errors.New("fake probe: connection refused")
	}
	f.answers[id] = time.Now()
	return nil
}

func (f *fakeProber) setUp(id string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up[id] = up
}

func (f *fakeProber) callCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeProber) lastAnswer(id string) (time.Time, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answers[id], f.addrs[id]
}

// TestPlanReconcileAnswered: a probe answer restarts the dead timer and
// counts as alive for the quorum guard.
func TestPlanReconcileAnswered(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Second
	now := t0.Add(time.Hour)
	failed := func(name string, ago time.Duration) memberState { return mem(name, StatusFailed, now.Add(-ago)) }
	tests := map[string]struct {
		members  []memberState
		answered map[string]time.Time
		want     plan
	}{
		"failed long ago but answered recently: kept until timeout after the answer": {
			members:  []memberState{mem("n1", StatusAlive, t0), mem("n2", StatusAlive, t0), failed("n3", time.Hour)},
			answered: map[string]time.Time{nodeID("n3"): now.Add(-10 * time.Second)},
			want:     plan{nextDue: now.Add(20 * time.Second)},
		},
		"answered longer ago than the timeout: removed": {
			members:  []memberState{mem("n1", StatusAlive, t0), mem("n2", StatusAlive, t0), failed("n3", time.Hour)},
			answered: map[string]time.Time{nodeID("n3"): now.Add(-timeout)},
			want: plan{removeDead: []removal{
				{ID: nodeID("n3"), Voter: true, Reason: reasonFailed, Since: now.Add(-time.Hour)},
			}},
		},
		"an answering server counts as alive for the guard": {
			// n2 is failed in gossip but answered 5s ago; n3 is really
			// dead: 2 of 3 voters are alive, so n3 may go.
			members:  []memberState{mem("n1", StatusAlive, t0), failed("n2", time.Hour), failed("n3", time.Hour)},
			answered: map[string]time.Time{nodeID("n2"): now.Add(-5 * time.Second)},
			want: plan{
				removeDead: []removal{{ID: nodeID("n3"), Voter: true, Reason: reasonFailed, Since: now.Add(-time.Hour)}},
				nextDue:    now.Add(25 * time.Second),
			},
		},
		"without the answer both are blocked": {
			members: []memberState{mem("n1", StatusAlive, t0), failed("n2", time.Hour), failed("n3", time.Hour)},
			want: plan{blocked: []removal{
				{ID: nodeID("n2"), Voter: true, Reason: reasonFailed, Since: now.Add(-time.Hour)},
				{ID: nodeID("n3"), Voter: true, Reason: reasonFailed, Since: now.Add(-time.Hour)},
			}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := planReconcile(planInput{
				selfID:            nodeID("n1"),
				datacenter:        "dc1",
				servers:           voters("n1", "n2", "n3"),
				members:           tc.members,
				now:               now,
				deadServerTimeout: timeout,
				answered:          tc.answered,
			})
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(plan{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("planReconcile() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFailedServerThatAnswersIsKept: gossip reports n3 failed, but while
// the prober reaches it the leader keeps it past DeadServerTimeout, again
// and again; once it stops answering it is removed, no sooner than
// DeadServerTimeout after its last answer.
func TestFailedServerThatAnswersIsKept(t *testing.T) {
	t.Parallel()
	const timeout = 700 * time.Millisecond
	probe := newFakeProber()
	probe.setUp(nodeID("n3"), true)
	leader := newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")).setLeader(true)
	r := func() *fakeRaft { return newFakeRaft().withConfig(voter("n1"), voter("n2"), voter("n3")) }
	n1, _, n3 := startTrio(t, func(c *Config) { c.DeadServerTimeout = timeout; c.Prober = probe }, leader, r(), r())

	n3.stop(t) // its gossip stops; the fake prober still reaches it
	testutil.Poll(t, converge, "n1 to see n3 failed", func() bool { return n1.status("n3") == StatusFailed })
	// Three probes mean three passes at which n3 was due and answered.
	testutil.Poll(t, converge, "n3 to be probed 3 times", func() bool { return probe.callCount(nodeID("n3")) >= 3 })
	if !leader.hasServer(nodeID("n3"), raftAddr("n3")) {
		t.Fatalf("n3 was removed although it answered; changes %+v", leader.changeCalls())
	}
	if _, addr := probe.lastAnswer(nodeID("n3")); addr != grpcAddr("n3") {
		t.Errorf("probed n3 at %q, want its gossiped gRPC address %q", addr, grpcAddr("n3"))
	}
	if n := probe.callCount(nodeID("n2")); n != 0 {
		t.Errorf("n2 (alive) was probed %d times, want 0", n)
	}

	probe.setUp(nodeID("n3"), false)
	testutil.Poll(t, converge, "n3 to be removed once unreachable", func() bool { return !leader.hasServer(nodeID("n3"), "") })
	last, _ := probe.lastAnswer(nodeID("n3"))
	for _, ch := range leader.changeCalls() {
		if ch.Op == "remove" && ch.ID == nodeID("n3") && ch.At.Sub(last) < timeout {
			t.Errorf("n3 removed %v after its last answer, want >= %v", ch.At.Sub(last), timeout)
		}
	}
	if !leader.hasServer(nodeID("n2"), raftAddr("n2")) {
		t.Error("n2 was removed too")
	}
}

// TestPruneAnswered: answers are forgotten for servers gone from Raft or
// live in gossip again.
func TestPruneAnswered(t *testing.T) {
	t.Parallel()
	answered := map[string]time.Time{nodeID("n2"): t0, nodeID("n3"): t0, nodeID("n4"): t0}
	byID := indexMembers([]memberState{mem("n2", StatusAlive, t0), mem("n3", StatusFailed, t0)}, "dc1")
	pruneAnswered(answered, []raftnode.Server{voter("n1"), voter("n2"), voter("n3")}, byID)
	want := map[string]time.Time{nodeID("n3"): t0}
	if diff := cmp.Diff(want, answered); diff != "" {
		t.Errorf("pruneAnswered() mismatch (-want +got):\n%s", diff)
	}
}
