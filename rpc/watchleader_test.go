package rpc

import (
	"context"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// TestLeaderWatchIsSharedByStreams: every stream gets a progress message
// at start and another, saying no_leader, when the server loses its
// leader; one check loop serves them all and stops once the last stream
// has ended (no per-stream timer is left behind).
func TestLeaderWatchIsSharedByStreams(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true, chainCfg: func(c *ChainServerConfig) {
		c.LeaderCheckInterval = 20 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	nextProgress := func(s chainstorev1.ChainService_WatchClient) *chainstorev1.WatchProgress {
		t.Helper()
		for {
			resp, err := s.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if p := resp.GetProgress(); p != nil {
				return p
			}
		}
	}
	var streams []chainstorev1.ChainService_WatchClient
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	for range 3 {
		s, err := n.chains.Watch(sctx)
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if p := nextProgress(s); p.GetNoLeader() {
			t.Fatalf("first progress = %v, want a leader", p)
		}
		streams = append(streams, s)
	}
	n.cs.leaderWatch.mu.Lock()
	registered := len(n.cs.leaderWatch.watchers)
	n.cs.leaderWatch.mu.Unlock()
	if registered != 3 {
		t.Fatalf("leader watch has %d streams registered, want 3", registered)
	}

	n.raft.set(func(r *esRaft) { r.leader, r.leaderID = false, "" })
	for i, s := range streams {
		if p := nextProgress(s); !p.GetNoLeader() {
			t.Fatalf("stream %d: progress after losing the leader = %v, want no_leader", i, p)
		}
	}

	stopStreams()
	testutil.Poll(t, 10*time.Second, "the leader check loop to stop after the last stream", func() bool {
		n.cs.leaderWatch.mu.Lock()
		defer n.cs.leaderWatch.mu.Unlock()
		return len(n.cs.leaderWatch.watchers) == 0 && n.cs.leaderWatch.stop == nil
	})

	// A new stream starts the loop again and hears about the next change.
	s, err := n.chains.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if p := nextProgress(s); !p.GetNoLeader() {
		t.Fatalf("first progress of a new stream = %v, want no_leader", p)
	}
	n.raft.set(func(r *esRaft) { r.leader = true })
	if p := nextProgress(s); p.GetNoLeader() {
		t.Fatalf("progress after regaining the leader = %v, want a leader", p)
	}
}
