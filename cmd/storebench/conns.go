package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chainstore/chainstore/api"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// pool is a set of client connections; client i uses conns[i % len].
type pool struct {
	conns []*api.Client
}

func (p *pool) get(i int) *api.Client { return p.conns[i%len(p.conns)] }

func (p *pool) close() {
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// errNoLeader: no server named a leader.
var errNoLeader = errors.New("no server knows a leader")

// findLeader asks each address for its Status and returns the leader's
// gRPC address.
func findLeader(ctx context.Context, addrs []string, timeout time.Duration, token string) (string, error) {
	var errs []error
	for _, a := range addrs {
		c, err := newClient([]string{a}, timeout, token)
		if err != nil {
			return "", err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := c.Status(cctx, &chainstorev1.StatusRequest{})
		cancel()
		_ = c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("status of %s: %w", a, err))
			continue
		}
		if st.GetIsLeader() {
			return a, nil
		}
		if la := st.GetLeaderGrpcAddr(); la != "" {
			return la, nil
		}
	}
	return "", errors.Join(append(errs, errNoLeader)...)
}

func newClient(addrs []string, timeout time.Duration, token string) (*api.Client, error) {
	cfg := api.DefaultClientConfig()
	cfg.Addrs = addrs
	cfg.CallTimeout = timeout
	cfg.Token = token
	return api.NewClient(cfg)
}

// dialPool opens n connections. With to == "leader" every connection
// prefers the leader (the others follow as fail-over addresses); with
// "any" connection i prefers server i % len(addrs); with "follower"
// connection i prefers follower i % (number of followers), so every
// write is forwarded to the leader.
func dialPool(ctx context.Context, o commonOpts, n int) (*pool, error) {
	addrs := api.SplitAddrs(o.addrs)
	if o.to == "follower" {
		followers, err := followerAddrs(ctx, addrs, o)
		if err != nil {
			return nil, err
		}
		return dialRotated(followers, o, n)
	}
	if o.to == "leader" {
		leader, err := findLeader(ctx, addrs, o.timeout, o.token)
		if err != nil {
			return nil, err
		}
		rest := []string{leader}
		for _, a := range addrs {
			if a != leader {
				rest = append(rest, a)
			}
		}
		addrs = rest
	}
	if o.to == "any" {
		return dialRotated(addrs, o, n)
	}
	p := &pool{}
	for i := 0; i < n; i++ {
		c, err := newClient(addrs, o.timeout, o.token)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

// dialRotated opens n connections; connection i prefers addrs[i %
// len(addrs)] and fails over to the others (only those in addrs).
func dialRotated(addrs []string, o commonOpts, n int) (*pool, error) {
	p := &pool{}
	for i := 0; i < n; i++ {
		k := i % len(addrs)
		rot := append(append([]string{}, addrs[k:]...), addrs[:k]...)
		c, err := newClient(rot, o.timeout, o.token)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

// errNoFollower: --to follower with no address but the leader's.
var errNoFollower = errors.New("no follower among the addresses (--to follower needs at least one)")

// followerAddrs returns the addresses in addrs that are not the leader's.
func followerAddrs(ctx context.Context, addrs []string, o commonOpts) ([]string, error) {
	leader, err := findLeader(ctx, addrs, o.timeout, o.token)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range addrs {
		if a != leader {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errNoFollower
	}
	return out, nil
}

// opFunc performs operation seq for client worker; it returns an error to
// count (its latency is not recorded) or nil.
type opFunc func(ctx context.Context, worker, seq int) error

// runOps runs total operations over clients concurrent workers and
// returns the latencies of the successful ones, the errors and the wall
// time.
func runOps(ctx context.Context, e *env, label string, clients, total int, fn opFunc) ([]time.Duration, errorCounter, time.Duration) {
	var next atomic.Int64
	lats := make([][]time.Duration, clients)
	errs := make([]errorCounter, clients)
	bar := newProgress(e.stderr, e.showProgress, label, total)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		errs[w] = errorCounter{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, total/clients+1)
			for ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				if seq >= total {
					break
				}
				t0 := time.Now()
				err := fn(ctx, w, seq)
				d := time.Since(t0)
				bar.add(1)
				if err != nil {
					errs[w].add(err)
					continue
				}
				local = append(local, d)
			}
			lats[w] = local
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	bar.stop()
	all := make([]time.Duration, 0, total)
	ec := errorCounter{}
	for w := range lats {
		all = append(all, lats[w]...)
		ec.merge(errs[w])
	}
	return all, ec, elapsed
}

// newResult builds a Result from runOps' output.
func newResult(name, test string, params map[string]any, lats []time.Duration, ec errorCounter, elapsed time.Duration) *Result {
	r := &Result{Name: name, Test: test, Params: params, Requests: len(lats) + ec.total(), Errors: ec.total(),
		Seconds: elapsed.Seconds(), Latency: summarize(lats)}
	if len(ec) > 0 {
		r.ErrorCodes = ec
	}
	if elapsed > 0 {
		r.RPS = float64(len(lats)) / elapsed.Seconds()
	}
	return r
}
