package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/chainstore/chainstore/raftnode"
)

// This file holds the leader's second opinion before it removes a server.
// Gossip is one network path (memberlist's UDP and TCP on the gossip
// port); a partition can cut it while Raft and gRPC still work, and gossip
// then reports a healthy server failed. Before a removal the leader probes
// the server over another path (Config.Prober, a gRPC status call wired
// by the server package): a server that answers is kept and its dead
// timer restarts from the answer, as Consul's autopilot judges server
// health by its own RPC view rather than by gossip alone.

// probeTimeout bounds one probe. Probes of one pass run in parallel.
const probeTimeout = 5 * time.Second

// Prober checks a server outside gossip.
type Prober interface {
	// Probe returns nil if the server with Raft ID id answers at gRPC
	// address grpcAddr (and proves it is id) before ctx ends, and an
	// error saying why not otherwise. It must be safe for concurrent use.
	Probe(ctx context.Context, id, grpcAddr string) error
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context, id, grpcAddr string) error

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context, id, grpcAddr string) error {
	return f(ctx, id, grpcAddr)
}

// probeDue probes every server p would remove or keeps only for the
// quorum guard, and records in l.answered those that answer. It returns
// true if any answered (the caller plans again). Without a Prober it does
// nothing.
func (l *loop) probeDue(ctx context.Context, p plan, byID map[string]memberState) bool {
	prober := l.c.cfg.Prober
	due := append(append([]removal(nil), p.removeDead...), p.blocked...)
	if prober == nil || len(due) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	errs := make([]error, len(due))
	var wg sync.WaitGroup
	for i, r := range due {
		addr := byID[r.ID].meta.GRPCAddr
		if addr == "" {
			errs[i] = errNoGRPCAddr
			continue
		}
		wg.Go(func() { errs[i] = prober.Probe(ctx, r.ID, addr) })
	}
	wg.Wait()
	now := l.c.now()
	anyAnswered := false
	for i, r := range due {
		if errs[i] != nil {
			l.c.logger.Info("server does not answer outside gossip either; it may be removed",
				"id", r.ID, "reason", r.Reason.String(), "since", r.Since, "error", errs[i])
			continue
		}
		anyAnswered = true
		_, again := l.answered[r.ID]
		l.answered[r.ID] = now
		// Warn once per episode (until it is live in gossip again or
		// leaves the configuration); the repeats every
		// DeadServerTimeout go to the debug log.
		log := l.c.logger.Warn
		if again {
			log = l.c.logger.Debug
		}
		log("not removing server: gossip reports it "+r.Reason.String()+" but it answers over the network (gossip partition?); its dead timer restarts",
			"id", r.ID, "since", r.Since, "grpc_addr", byID[r.ID].meta.GRPCAddr)
	}
	return anyAnswered
}

// pruneAnswered forgets the probe answers of servers that are no longer
// in the Raft configuration or are live in gossip again.
func pruneAnswered(answered map[string]time.Time, servers []raftnode.Server, byID map[string]memberState) {
	in := make(map[string]bool, len(servers))
	for _, s := range servers {
		in[s.ID] = true
	}
	for id := range answered {
		if m, ok := byID[id]; !in[id] || ok && m.live() {
			delete(answered, id)
		}
	}
}
