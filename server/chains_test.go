package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
)

// chainAgent is a chain watch client (what storeagent runs) recording
// every version it receives.
type chainAgent struct {
	name   string
	client *api.ChainWatchClient

	mu     sync.Mutex
	events []api.ChainEvent
}

// startChainAgent watches services, trying addrs in order, until the test
// ends.
func startChainAgent(t *testing.T, name string, addrs []string, services ...string) *chainAgent {
	t.Helper()
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = addrs
	for _, s := range services {
		cfg.Chains = append(cfg.Chains, api.WatchedChain{Service: s})
	}
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	cfg.ConnectTimeout = 500 * time.Millisecond
	client, err := api.NewChainWatchClient(cfg, nil)
	if err != nil {
		t.Fatalf("NewChainWatchClient: %v", err)
	}
	a := &chainAgent{name: name, client: client}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- client.Run(ctx, func(e api.ChainEvent) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.events = append(a.events, e)
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: Run: %v", name, err)
		}
	})
	return a
}

// of returns the versions of service received so far.
func (a *chainAgent) of(service string) []api.ChainEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []api.ChainEvent
	for _, e := range a.events {
		if e.Service == service {
			out = append(out, e)
		}
	}
	return out
}

// waitIndex waits until the agent's newest version of service has index
// idx, and returns it.
func (a *chainAgent) waitIndex(t *testing.T, service string, idx uint64) api.ChainEvent {
	t.Helper()
	var last api.ChainEvent
	testutil.Poll(t, 20*time.Second, fmt.Sprintf("agent %s to get %s at index %d", a.name, service, idx), func() bool {
		evs := a.of(service)
		if len(evs) == 0 {
			return false
		}
		last = evs[len(evs)-1]
		return last.Index >= idx
	})
	if last.Index != idx {
		t.Fatalf("agent %s: %s at index %d, want %d", a.name, service, last.Index, idx)
	}
	return last
}

// checkMonotonic fails if the agent ever received a version of service
// that was older than (or the same as) the one before it.
func (a *chainAgent) checkMonotonic(t *testing.T, service string) {
	t.Helper()
	evs := a.of(service)
	for i := 1; i < len(evs); i++ {
		if evs[i].Index < evs[i-1].Index || evs[i].Hash == evs[i-1].Hash {
			t.Errorf("agent %s: %s version %d (index %d from %s) after index %d from %s: went backwards or repeated",
				a.name, service, i, evs[i].Index, evs[i].Server, evs[i-1].Index, evs[i-1].Server)
		}
	}
}

func resolverEntry(name string, timeout time.Duration) string {
	return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":%q}`, name, timeout.String())
}

// TestChainWatchAcrossCluster: a write on a follower reaches the agents of
// all three servers; the agents of a crashed server resume on another one
// without missing the final version or going backwards.
func TestChainWatchAcrossCluster(t *testing.T) {
	c := servertest.NewCluster(t, 3, nil)
	nodes := c.Running()
	// Each agent prefers its own server, then the others.
	agents := make([]*chainAgent, len(nodes))
	for i, nd := range nodes {
		addrs := []string{nd.GRPCAddr()}
		for j, other := range nodes {
			if j != i {
				addrs = append(addrs, other.GRPCAddr())
			}
		}
		agents[i] = startChainAgent(t, nd.Name(), addrs, "web", "api")
	}
	for _, a := range agents {
		a.waitIndex(t, "web", 0)
	}

	follower := c.Followers()[0]
	idx := apply(t, c.Client(follower), resolverEntry("web", 7*time.Second))
	for i, a := range agents {
		if e := a.waitIndex(t, "web", idx); e.Server != nodes[i].GRPCAddr() {
			t.Errorf("agent %s got index %d from %s, want from its own server %s", a.name, idx, e.Server, nodes[i].GRPCAddr())
		}
	}

	// Crash the leader; its agent must move to another server.
	leader := c.Leader()
	var moved *chainAgent
	for i, nd := range nodes {
		if nd == leader {
			moved = agents[i]
		}
	}
	c.Crash(leader)
	survivors := c.Running()
	cl := c.Client(survivors...)
	var final uint64
	for i := 1; i <= 3; i++ {
		final = applyIdempotent(t, cl, resolverEntry("web", time.Duration(7+i)*time.Second))
	}
	apiIdx := applyIdempotent(t, cl, resolverEntry("api", 2*time.Second))
	for _, a := range agents {
		a.waitIndex(t, "web", final)
		a.waitIndex(t, "api", apiIdx)
		a.checkMonotonic(t, "web")
		a.checkMonotonic(t, "api")
	}
	if e := moved.of("web"); e[len(e)-1].Server == leader.GRPCAddr() {
		t.Errorf("agent %s got the final version from the crashed server", moved.name)
	}
}
