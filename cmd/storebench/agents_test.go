package main

import (
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
)

// TestAgentStateHandle: an agent counts itself ready on its chain's
// initial version, records a pending write's delivery once, and ignores
// repeats.
func TestAgentStateHandle(t *testing.T) {
	wr := &watchRun{o: watchOpts{watchers: 1, chains: 1, prefix: "p"}, pending: map[string]*pendingWrite{}, readyCh: make(chan struct{})}
	a := agentState{wr: wr, initial: "init-" + chainName("p", 0)}
	chainOf := func(rev string) []byte {
		return []byte(`{"Resolver":{"Subsets":{"v":{"Filter":"Service.Meta.rev == \"` + rev + `\""}}}}`)
	}
	a.handle(api.ChainEvent{Chain: chainOf(a.initial)})
	select {
	case <-wr.readyCh:
	default:
		t.Fatal("agent not counted ready after its chain's initial version")
	}
	pw := &pendingWrite{done: make(chan struct{}), sent: time.Now()}
	pw.remaining.Store(1)
	wr.pending["w1"] = pw
	a.handle(api.ChainEvent{Chain: chainOf("w1")})
	a.handle(api.ChainEvent{Chain: chainOf("w1")})
	select {
	case <-pw.done:
	default:
		t.Fatal("write w1 not marked delivered")
	}
	if len(a.lats) != 1 {
		t.Fatalf("agent recorded %d latencies for one delivery (sent twice), want 1", len(a.lats))
	}
}
