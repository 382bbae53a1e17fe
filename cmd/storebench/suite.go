package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// suiteItem is one benchmark of the standard set.
type suiteItem struct {
	id  string
	run func(ctx context.Context, e *env, scale float64) (*Result, error)
}

func scaled(n int, scale float64) int { return max(1, int(float64(n)*scale)) }

// withClients returns a copy of e with other client/connection settings.
func withClients(e *env, clients, conns int, to string) *env {
	c := *e
	c.opts.clients, c.opts.conns, c.opts.to = clients, conns, to
	return &c
}

// standardSet is what `make bench` runs: write, read, CAS, watch
// fan-out, catalog write and xDS route-flip figures (docs/benchmarks.md, and the figures issue 5 asks for).
func standardSet() []suiteItem {
	put := func(id string, clients, conns, total, size int) suiteItem {
		return suiteItem{id: id, run: func(ctx context.Context, e *env, s float64) (*Result, error) {
			o := kvOpts{total: scaled(total, s), keys: 1000, entrySize: size, prefix: "bench"}
			return benchPut(ctx, withClients(e, clients, conns, "leader"), o, fmt.Sprintf("put, %d client(s), %d B", clients, size))
		}}
	}
	get := func(id, mode, to string, clients, conns, total int) suiteItem {
		return suiteItem{id: id, run: func(ctx context.Context, e *env, s float64) (*Result, error) {
			o := kvOpts{total: scaled(total, s), keys: 1000, entrySize: 256, prefix: "bench", consistency: mode}
			return benchGet(ctx, withClients(e, clients, conns, to), o, fmt.Sprintf("get %s, %d client(s) to %s", mode, clients, to))
		}}
	}
	// watch runs watchers streams over conns connections; hold > 0 then
	// keeps them connected with no writes and reports the idle cost.
	watch := func(id string, watchers, chains, writes, conns int, hold time.Duration) suiteItem {
		return suiteItem{id: id, run: func(ctx context.Context, e *env, s float64) (*Result, error) {
			o := watchOpts{watchers: watchers, chains: chains, writes: scaled(writes, s), perConn: 500,
				writeTimeout: defaultWatchWriteTimeout, readyTimeout: defaultWatchReadyTimeout, prefix: "bench",
				hold: time.Duration(float64(hold) * s)}
			return benchWatch(ctx, withClients(e, e.opts.clients, conns, e.opts.to), o, fmt.Sprintf("watch delivery, %d watchers / %d chains", watchers, chains))
		}}
	}
	return []suiteItem{
		put("put-1", 1, 1, 2000, 256),
		put("put-64", 64, 8, 20000, 256),
		put("put-100", 100, 10, 20000, 256),
		// The sizes issue 12's aims are stated in (scripts/bench-compare.sh
		// runs these).
		put("put-1-512", 1, 1, 2000, 512),
		put("put-100-512", 100, 10, 20000, 512),
		put("put-100-4k", 100, 10, 10000, 4096),
		get("get-consistent-1", "consistent", "leader", 1, 1, 3000),
		get("get-consistent-64", "consistent", "leader", 64, 8, 30000),
		get("get-stale-64", "stale", "any", 64, 8, 30000),
		{id: "cas-16", run: func(ctx context.Context, e *env, s float64) (*Result, error) {
			o := kvOpts{total: scaled(3000, s), keys: 1, entrySize: 256, prefix: "bench-cas"}
			return benchCAS(ctx, withClients(e, 16, 4, "leader"), o, "cas, 16 clients on 1 entry")
		}},
		// Issue 12's watch aims: 1,000 watchers on 12 connections over
		// the 3 servers, then 30 s idle.
		watch("watch-1k", 1000, 10, 50, 12, 30*time.Second),
		watch("watch-10k", 10000, 10, 30, 1, 0),
		{id: "catalog-64", run: func(ctx context.Context, e *env, s float64) (*Result, error) {
			o := catalogOpts{duration: time.Duration(float64(10*time.Second) * s), instances: 1000, op: "register", prefix: "bench"}
			return benchCatalog(ctx, withClients(e, 64, 8, "leader"), o, "catalog register, 64 clients, 960 instances")
		}},
		{id: "xds-route-100", run: func(ctx context.Context, e *env, s float64) (*Result, error) {
			o := xdsRouteOpts{flips: scaled(10, s), perVersion: 1, mode: "router", bucket: 5 * time.Millisecond, frac: 0.95,
				settle: 500 * time.Millisecond, flipTimeout: 15 * time.Second, readyTimeout: 2 * time.Minute, prefix: "bench"}
			return benchXDSRoute(ctx, withClients(e, 100, 1, "leader"), o, "xds route flip to 95 % of calls, 100 grpc-go clients")
		}},
	}
}

const (
	defaultWatchWriteTimeout = 30 * time.Second
	defaultWatchReadyTimeout = 3 * time.Minute
)

func suiteFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var only string
	var scale float64
	var ids []string
	for _, it := range standardSet() {
		ids = append(ids, it.id)
	}
	fs.StringVar(&only, "only", "", "comma-separated subset of: "+strings.Join(ids, ","))
	fs.Float64Var(&scale, "scale", 1, "multiply every request count by this factor")
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if scale <= 0 {
			return nil, fmt.Errorf("--scale must be positive, got %g", scale)
		}
		want := map[string]bool{}
		for _, id := range strings.Split(only, ",") {
			if id = strings.TrimSpace(id); id != "" {
				want[id] = true
			}
		}
		var results []*Result
		var errs []error
		for _, it := range standardSet() {
			if len(want) > 0 && !want[it.id] {
				continue
			}
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(e.stderr, "storebench: running %s\n", it.id)
			r, err := it.run(ctx, e, scale)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", it.id, err))
			}
			if r != nil {
				results = append(results, r)
			}
		}
		return results, errors.Join(errs...)
	}
}
