package main

// storebench watch --agents: every watcher is an api.ChainWatchClient, as
// storeagent runs it (its own connection, failover over every address,
// resume, and a liveness probe of its stream after each second of
// silence), so the idle cost of --hold is what a fleet of real agents
// costs the servers.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/api"
)

// startAgents starts one ChainWatchClient per watcher, agent i starting
// at server i % len(addrs); the returned group ends when ctx is done.
// Agent i's latencies are in lats[i] once the group is done.
func (wr *watchRun) startAgents(ctx context.Context, addrs []string, token string) (lats [][]time.Duration, wg *sync.WaitGroup, err error) {
	clients := make([]*api.ChainWatchClient, wr.o.watchers)
	for i := range clients {
		cfg := api.DefaultChainWatchConfig()
		cfg.Addrs = make([]string, 0, len(addrs))
		for j := range addrs {
			cfg.Addrs = append(cfg.Addrs, addrs[(i+j)%len(addrs)])
		}
		cfg.Chains = []api.WatchedChain{{Service: chainName(wr.o.prefix, i%wr.o.chains)}}
		cfg.Token = token
		c, err := api.NewChainWatchClient(cfg, hclog.NewNullLogger())
		if err != nil {
			return nil, nil, fmt.Errorf("agent %d: %w", i, err)
		}
		clients[i] = c
	}
	lats = make([][]time.Duration, wr.o.watchers)
	wg = &sync.WaitGroup{}
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := agentState{wr: wr, initial: "init-" + chainName(wr.o.prefix, i%wr.o.chains)}
			_ = c.Run(ctx, a.handle)
			lats[i] = a.lats
		}()
	}
	return lats, wg, nil
}

// agentState is one agent's view of the run; handle runs on the agent's
// own goroutine, one event at a time.
type agentState struct {
	wr      *watchRun
	initial string
	ready   bool
	last    string
	lats    []time.Duration
}

func (a *agentState) handle(ev api.ChainEvent) {
	now := time.Now()
	rev := revOf(ev.Chain)
	if rev == a.last {
		return
	}
	a.last = rev
	if !a.ready && rev == a.initial {
		a.ready = true
		if a.wr.ready.Add(1) == int64(a.wr.o.watchers) {
			close(a.wr.readyCh)
		}
		return
	}
	if pw := a.wr.lookup(rev); pw != nil {
		a.lats = append(a.lats, now.Sub(pw.sent))
		pw.delivered(now)
	}
}
