package server_test

import (
	"testing"
	"time"

	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/server"
)

// TestGossipOnlyPartitionKeepsVoter: a follower whose gossip traffic alone
// is cut (Raft and gRPC still up) is seen failed by the leader's gossip for
// several DeadServerTimeouts but stays a voter, because the leader's probe
// reaches it over gRPC; a follower that really crashes meanwhile is still
// removed; once gossip is restored the partitioned server is alive again.
func TestGossipOnlyPartitionKeepsVoter(t *testing.T) {
	skipInShort(t)
	const deadTimeout = time.Second
	c := servertest.NewCluster(t, 3, func(cfg *server.Config) {
		cfg.Cluster.DeadServerTimeout = deadTimeout
	})
	leader := c.Leader()
	followers := c.Followers()
	cut, crashed := followers[0], followers[1]
	cutID, crashedID := cut.Server().NodeID(), crashed.Server().NodeID()

	inConfig := func(id string) (voter, ok bool) {
		servers, err := leader.Server().Raft().Servers()
		if err != nil {
			return false, false
		}
		for _, s := range servers {
			if s.ID == id {
				return s.Voter, true
			}
		}
		return false, false
	}
	statusOf := func(name string) cluster.Status {
		for _, m := range leader.Server().Members() {
			if m.Name == name {
				return m.Status
			}
		}
		return 0
	}

	cut.CutGossip(true)
	testutil.Poll(t, 30*time.Second, cut.Name()+" failed in the leader's gossip", func() bool {
		return statusOf(cut.Name()) == cluster.StatusFailed
	})
	failedAt := time.Now()
	// For three dead-server timeouts (each one a removal without the
	// probe), the partitioned voter must stay a voter.
	testutil.Poll(t, 30*time.Second, "three dead-server timeouts with "+cut.Name()+" kept", func() bool {
		if voter, ok := inConfig(cutID); !ok || !voter {
			t.Fatalf("%s (gossip cut, Raft and gRPC up) left the voters after %v (in config %v, voter %v)",
				cut.Name(), time.Since(failedAt).Round(time.Millisecond), ok, voter)
		}
		return time.Since(failedAt) > 3*deadTimeout
	})
	if s := statusOf(cut.Name()); s != cluster.StatusFailed {
		t.Fatalf("the leader sees %s %v, want failed (the gossip cut did not hold)", cut.Name(), s)
	}
	// Writes still commit with the partitioned voter in the quorum.
	apply(t, c.Client(leader), serviceDefaults("during-gossip-cut", "http"))

	t.Run("a crashed server is still removed", func(t *testing.T) {
		c.Crash(crashed)
		testutil.Poll(t, 30*time.Second, crashed.Name()+" removed", func() bool {
			_, ok := inConfig(crashedID)
			return !ok
		})
		if voter, ok := inConfig(cutID); !ok || !voter {
			t.Errorf("%s removed along with the crashed server (in config %v, voter %v)", cut.Name(), ok, voter)
		}
	})

	t.Run("gossip heals", func(t *testing.T) {
		cut.CutGossip(false)
		testutil.Poll(t, 30*time.Second, cut.Name()+" alive in the leader's gossip", func() bool {
			return statusOf(cut.Name()) == cluster.StatusAlive
		})
		if voter, ok := inConfig(cutID); !ok || !voter {
			t.Errorf("%s not a voter after the heal (in config %v, voter %v)", cut.Name(), ok, voter)
		}
	})
}
