package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// catalogTTL is the TTL of the test instances: short, but long enough
// for refreshes every catalogTTL/3 on a loaded, race-enabled machine.
const catalogTTL = time.Second

// expiryJournal records, per node, the TTL expiries its FSM applied.
type expiryJournal struct {
	mu  sync.Mutex
	got map[string][]uint64 // "node/instance" -> indexes
}

func (j *expiryJournal) hook(node string) fsm.ApplyJournal {
	return func(index, _ uint64, cmd fsm.Command, res fsm.ApplyResult) {
		if cmd.Op != fsm.OpCheckExpire || !res.Applied {
			return
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		k := node + "/" + cmd.InstanceID
		j.got[k] = append(j.got[k], index)
	}
}

// of returns the expiries of instance id applied by each node.
func (j *expiryJournal) of(id string) map[string][]uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string][]uint64{}
	for k, v := range j.got {
		if node, inst, _ := strings.Cut(k, "/"); inst == id {
			out[node] = append([]uint64(nil), v...)
		}
	}
	return out
}

// staleInstance returns what nd itself holds for instance id of service
// (a stale read through its gRPC API), or nil.
func staleInstance(ctx context.Context, t *testing.T, c *api.Client, service, id string) *chainstorev1.InstanceHealth {
	t.Helper()
	resp, err := c.Instances(ctx, &chainstorev1.InstancesRequest{Service: service,
		Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}})
	if err != nil {
		t.Fatalf("stale Instances(%s): %v", service, err)
	}
	for _, ih := range resp.GetInstances() {
		if ih.GetInstance().GetId() == id {
			return ih
		}
	}
	return nil
}

// pollEveryNode polls until cond holds for id on every given node's own
// state.
func pollEveryNode(t *testing.T, c *servertest.Cluster, nodes []*servertest.Node, id, what string, cond func(*chainstorev1.InstanceHealth) bool) {
	t.Helper()
	ctx := ctxFor(t, 20*time.Second)
	for _, nd := range nodes {
		cl := c.Client(nd)
		testutil.Poll(t, 10*time.Second, fmt.Sprintf("%s %s on %s", id, what, nd.Name()), func() bool {
			return cond(staleInstance(ctx, t, cl, "web", id))
		})
	}
}

func isPassing(ih *chainstorev1.InstanceHealth) bool {
	return ih.GetStatus() == chainstorev1.HealthStatus_HEALTH_STATUS_PASSING
}

// refresher updates an instance's check every period, like an agent:
// one update at a time, each bounded, errors tolerated.
type refresher struct {
	ok   atomic.Int64 // successful updates
	stop chan struct{}
	wg   sync.WaitGroup
}

func startRefresher(t *testing.T, c *api.Client, id string, period time.Duration) *refresher {
	t.Helper()
	r := &refresher{stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), catalogTTL)
			_, err := c.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: id,
				Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING, Note: "refreshed"})
			cancel()
			if err != nil {
				t.Logf("refresh of %s: %v", id, err)
			} else {
				r.ok.Add(1)
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(r.halt)
	return r
}

// halt stops the refresher and waits for it; it is idempotent.
func (r *refresher) halt() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// waitRefreshes polls until n more updates succeeded.
func (r *refresher) waitRefreshes(t *testing.T, n int64, what string) {
	t.Helper()
	want := r.ok.Load() + n
	testutil.Poll(t, 20*time.Second, what, func() bool { return r.ok.Load() >= want })
}

// TestCatalogTTLAcrossCluster: a TTL check registered through a follower
// is passing on every server once updated, and turns critical everywhere
// (one expiry, proposed by the leader) when the updates stop; an instance
// whose agent keeps refreshing it stays passing while the leader crashes,
// a new one is elected and the old one restarts from its snapshot.
func TestCatalogTTLAcrossCluster(t *testing.T) {
	skipInShort(t)
	journal := &expiryJournal{got: map[string][]uint64{}}
	c := servertest.NewCluster(t, 3, func(cfg *server.Config) {
		cfg.FSMOptions = append(cfg.FSMOptions, fsm.WithApplyJournal(journal.hook(cfg.NodeName)))
		// Snapshots soon, so the restarted server restores the catalog
		// from one.
		cfg.Raft.SnapshotThreshold = 16
		cfg.Raft.TrailingLogs = 4
		cfg.Raft.SnapshotInterval = 100 * time.Millisecond
	})
	nodes := c.Running()
	oldLeader := c.Leader()
	followers := c.Followers()
	viaFollower := c.Client(followers[0])
	register := func(t *testing.T, id string) uint64 {
		t.Helper()
		resp, err := viaFollower.Register(ctxFor(t, 20*time.Second), &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{
			Id: id, Service: "web", Address: "10.0.0.1", Port: 8080, Ttl: durationpb.New(catalogTTL)}})
		if err != nil {
			t.Fatalf("Register(%s) via follower: %v", id, err)
		}
		return resp.GetIndex()
	}

	t.Run("an instance whose updates stop expires on every server", func(t *testing.T) {
		register(t, "web-1")
		pollEveryNode(t, c, nodes, "web-1", "registered as critical", func(ih *chainstorev1.InstanceHealth) bool {
			return ih.GetStatus() == chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL && ih.GetOutput() == "TTL check not yet updated"
		})
		start := time.Now()
		resp, err := viaFollower.UpdateCheck(ctxFor(t, 20*time.Second), &chainstorev1.UpdateCheckRequest{Id: "web-1",
			Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING, Note: "up"})
		if err != nil {
			t.Fatalf("UpdateCheck via follower: %v", err)
		}
		passIndex := resp.GetIndex()
		pollEveryNode(t, c, nodes, "web-1", "passing", func(ih *chainstorev1.InstanceHealth) bool {
			return isPassing(ih) && ih.GetModifyIndex() == passIndex
		})
		wantOutput := fmt.Sprintf("TTL expired: no check update within %s", catalogTTL)
		pollEveryNode(t, c, nodes, "web-1", "expired", func(ih *chainstorev1.InstanceHealth) bool {
			return ih.GetStatus() == chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL && ih.GetOutput() == wantOutput
		})
		if d := time.Since(start); d < catalogTTL {
			t.Errorf("web-1 expired %s after its update, before its TTL %s", d, catalogTTL)
		}
		// One expiry, at one index, applied by every server.
		c.WaitConverged()
		got := journal.of("web-1")
		var index uint64
		for _, nd := range nodes {
			idx := got[nd.Name()]
			if len(idx) != 1 || (index != 0 && idx[0] != index) || idx[0] <= passIndex {
				t.Errorf("expiries of web-1 applied per node = %v; want one per node, at one index after %d", got, passIndex)
				break
			}
			index = idx[0]
		}
	})

	t.Run("a refreshed instance stays passing across a leader crash", func(t *testing.T) {
		regIndex := register(t, "web-2")
		// The agent talks to the two servers that survive.
		r := startRefresher(t, c.Client(followers...), "web-2", catalogTTL/3)
		pollEveryNode(t, c, nodes, "web-2", "passing", isPassing)
		r.waitRefreshes(t, 2, "refreshes before the crash")
		// Enough writes for a snapshot on the leader that holds web-2.
		for i := range 16 {
			_, err := viaFollower.Register(ctxFor(t, 20*time.Second), &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{
				Id: fmt.Sprintf("filler-%02d", i), Service: "filler", Address: "10.0.0.2", Port: 80}})
			if err != nil {
				t.Fatalf("Register(filler-%02d): %v", i, err)
			}
		}
		testutil.Poll(t, 20*time.Second, "a snapshot on the leader", func() bool {
			return oldLeader.Server().Raft().Stats().LastSnapshotIndex > regIndex
		})

		crashed := time.Now()
		c.Crash(oldLeader)
		newLeader := c.Leader()
		t.Logf("new leader %s after %s", newLeader.Name(), time.Since(crashed).Round(time.Millisecond))
		// Refreshes continue for ~2.3 s: past the new leader's grace plus a TTL.
		r.waitRefreshes(t, 7, "refreshes after the election")

		c.Start(oldLeader)
		if si := oldLeader.Server().Raft().Stats().LastSnapshotIndex; si <= regIndex {
			t.Errorf("restarted %s: last snapshot index %d, want > %d (restored from the snapshot holding web-2)", oldLeader.Name(), si, regIndex)
		}
		c.WaitStable(3)
		r.waitRefreshes(t, 2, "refreshes after the restart")
		// The checks run while the agent still refreshes: once it stops,
		// web-2 rightly expires a TTL later.
		c.WaitConverged()
		if got := journal.of("web-2"); len(got) != 0 {
			t.Errorf("web-2 expired while refreshed: applied expiries per node %v", got)
		}
		leader := c.Leader()
		resp, err := c.Client(leader).Instances(ctxFor(t, 20*time.Second), &chainstorev1.InstancesRequest{Service: "web"})
		if err != nil {
			t.Fatalf("Instances on the leader: %v", err)
		}
		states := map[string]chainstorev1.HealthStatus{}
		for _, ih := range resp.GetInstances() {
			states[ih.GetInstance().GetId()] = ih.GetStatus()
		}
		want := map[string]chainstorev1.HealthStatus{
			"web-1": chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL,
			"web-2": chainstorev1.HealthStatus_HEALTH_STATUS_PASSING,
		}
		if diff := cmp.Diff(want, states); diff != "" {
			t.Errorf("instances on the leader %s (-want +got):\n%s", leader.Name(), diff)
		}
		// The restarted server rebuilt the same catalog (WaitConverged
		// compared the store hashes, catalog included); check it directly.
		if st := oldLeader.Server().FSM().Store().Instance("web-2"); st == nil || st.Status != catalog.Passing {
			t.Errorf("restarted %s holds web-2 = %+v, want passing", oldLeader.Name(), st)
		}
		if sum, _, _ := oldLeader.Server().FSM().Store().Services(); len(sum) != 2 || sum[0].Instances != 16 {
			t.Errorf("restarted %s holds services %+v, want filler (16) and web", oldLeader.Name(), sum)
		}
	})
}
