package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/rpc/configpb"
)

type watchOpts struct {
	watchers, chains, writes int
	perConn                  int
	writeTimeout             time.Duration
	readyTimeout             time.Duration
	prefix                   string
}

func (o *watchOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.watchers, "watchers", 1000, "number of watchers (one stream with one subscription each), spread over every server")
	fs.IntVar(&o.chains, "chains", 10, "number of distinct chains watched (watcher i watches chain i % chains)")
	fs.IntVar(&o.writes, "writes", 100, "number of writes; each changes one chain and waits until all its watchers have the new version")
	fs.IntVar(&o.perConn, "streams-per-conn", 500, "watch streams per gRPC connection")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 30*time.Second, "how long a write waits for all its watchers")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long to wait for every watcher to be subscribed")
	fs.StringVar(&o.prefix, "prefix", "bench", "name prefix of the chains (service-resolver entries <prefix>-chain-N)")
}

func (o *watchOpts) validate() error {
	switch {
	case o.watchers < 1 || o.chains < 1 || o.writes < 1 || o.perConn < 1:
		return errors.New("--watchers, --chains, --writes and --streams-per-conn must be at least 1")
	case o.chains > o.watchers:
		return fmt.Errorf("--chains (%d) must not exceed --watchers (%d)", o.chains, o.watchers)
	case o.writeTimeout <= 0 || o.readyTimeout <= 0:
		return errors.New("--write-timeout and --ready-timeout must be positive")
	case o.prefix == "":
		return errors.New("--prefix must not be empty")
	}
	return nil
}

func watchFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o watchOpts
	o.register(fs)
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(); err != nil {
			return nil, err
		}
		r, err := benchWatch(ctx, e, o, "")
		if r == nil {
			return nil, err
		}
		return []*Result{r}, err
	}
}

func chainName(prefix string, c int) string { return fmt.Sprintf("%s-chain-%d", prefix, c) }

// resolverEntry is a resolver whose compiled chain carries rev in a
// subset filter, so each write yields a new chain version naming it.
func resolverEntry(name, rev string) []byte {
	return fmt.Appendf(nil, `{"Kind":"service-resolver","Name":%q,"DefaultSubset":"v","Subsets":{"v":{"Filter":"Service.Meta.rev == \"%s\""}}}`, name, rev)
}

var revMarker = []byte(`rev == \"`)

// revOf extracts the rev from a compiled chain's JSON ("" if absent).
func revOf(chainJSON []byte) string {
	i := bytes.Index(chainJSON, revMarker)
	if i < 0 {
		return ""
	}
	rest := chainJSON[i+len(revMarker):]
	j := bytes.Index(rest, []byte(`\"`))
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// pendingWrite is one write whose arrival the watchers of its chain record.
type pendingWrite struct {
	sent      time.Time
	remaining atomic.Int64
	done      chan struct{}
	lastNanos atomic.Int64 // arrival time of the latest delivery (UnixNano)
}

// watchRun is the shared state of one watch benchmark.
type watchRun struct {
	o       watchOpts
	mu      sync.Mutex // protects pending
	pending map[string]*pendingWrite
	ready   atomic.Int64 // watchers that have the initial version
	readyCh chan struct{}
	errs    errorCounter // guarded by mu
	resets  atomic.Int64
}

func (wr *watchRun) lookup(rev string) *pendingWrite {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return wr.pending[rev]
}

func (wr *watchRun) addErr(err error) {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	wr.errs.add(err)
}

// watcher runs one stream with one subscription until ctx ends. It
// records the latency of every version that belongs to a pending write.
func (wr *watchRun) watcher(ctx context.Context, c *rpc.Client, idx int, opened func()) []time.Duration {
	name := chainName(wr.o.prefix, idx%wr.o.chains)
	initial := "init-" + name
	var lats []time.Duration
	stream, err := configpb.NewChainServiceClient(c.Conn()).Watch(ctx)
	opened()
	if err != nil {
		wr.addErr(err)
		return nil
	}
	err = stream.Send(&configpb.WatchRequest{Request: &configpb.WatchRequest_Subscribe{
		Subscribe: &configpb.WatchSubscribe{Id: 1, Chain: &configpb.ChainRef{Service: name}},
	}})
	if err != nil {
		wr.addErr(err)
		return nil
	}
	isReady := false
	last := ""
	for {
		msg, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil {
				wr.addErr(err)
			}
			return lats
		}
		if msg.GetSubscriptionReset() != nil {
			wr.resets.Add(1)
			continue
		}
		if u := msg.GetUnsubscribed(); u != nil && u.GetError() != "" {
			wr.addErr(fmt.Errorf("subscription refused: %s", u.GetError()))
			return lats
		}
		up := msg.GetUpdate()
		if up == nil {
			continue
		}
		now := time.Now()
		rev := revOf(up.GetVersion().GetChain())
		if rev == last {
			continue
		}
		last = rev
		if !isReady && rev == initial {
			isReady = true
			if wr.ready.Add(1) == int64(wr.o.watchers) {
				close(wr.readyCh)
			}
			continue
		}
		if pw := wr.lookup(rev); pw != nil {
			lats = append(lats, now.Sub(pw.sent))
			for {
				cur := pw.lastNanos.Load()
				if now.UnixNano() <= cur || pw.lastNanos.CompareAndSwap(cur, now.UnixNano()) {
					break
				}
			}
			if pw.remaining.Add(-1) == 0 {
				close(pw.done)
			}
		}
	}
}

// benchWatch: o.watchers watchers over every server; then o.writes writes,
// one chain at a time, each waiting until every watcher of that chain has
// the new version. Latency is per delivery, from the moment the write was
// sent; "fanout" is per write, from its acknowledgement to the last
// watcher's delivery.
func benchWatch(ctx context.Context, e *env, o watchOpts, name string) (*Result, error) {
	addrs := rpc.SplitAddrs(e.opts.addrs)
	nconns := max(len(addrs), (o.watchers+o.perConn-1)/o.perConn, e.opts.conns)
	spread := e.opts
	spread.to = "any"
	watchPool, err := dialPool(ctx, spread, nconns)
	if err != nil {
		return nil, err
	}
	defer watchPool.close()
	writeOpts := e.opts
	writeOpts.to = "leader"
	writer, err := dialPool(ctx, writeOpts, 1)
	if err != nil {
		return nil, err
	}
	defer writer.close()

	// The initial version of every chain.
	for c := 0; c < o.chains; c++ {
		n := chainName(o.prefix, c)
		if _, err := writer.get(0).Apply(ctx, &configpb.ApplyRequest{Entry: resolverEntry(n, "init-"+n)}); err != nil {
			return nil, fmt.Errorf("write initial %s: %w", n, err)
		}
	}

	wr := &watchRun{o: o, pending: make(map[string]*pendingWrite), readyCh: make(chan struct{}), errs: errorCounter{}}
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	lats := make([][]time.Duration, o.watchers)
	var wg sync.WaitGroup
	readyStart := time.Now()
	// Open streams 64 at a time: a burst of thousands of new streams is a
	// reconnect storm, not what this benchmark measures.
	opening := make(chan struct{}, 64)
	bar := newProgress(e.stderr, e.showProgress, "subscribe", o.watchers)
	for i := 0; i < o.watchers; i++ {
		opening <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats[i] = wr.watcher(wctx, watchPool.get(i), i, func() { <-opening })
		}()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	timeout := time.NewTimer(o.readyTimeout)
	waitReady := func() error {
		defer tick.Stop()
		defer timeout.Stop()
		for {
			select {
			case <-wr.readyCh:
				return nil
			case <-tick.C:
				bar.done.Store(wr.ready.Load())
			case <-timeout.C:
				return fmt.Errorf("only %d of %d watchers subscribed within %s", wr.ready.Load(), o.watchers, o.readyTimeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := waitReady(); err != nil {
		bar.stop()
		stopWatchers()
		wg.Wait()
		return nil, err
	}
	bar.stop()
	subscribeTime := time.Since(readyStart)

	perChain := make([]int, o.chains)
	for i := 0; i < o.watchers; i++ {
		perChain[i%o.chains]++
	}
	var fanout, writeLat []time.Duration
	var missed int64
	wbar := newProgress(e.stderr, e.showProgress, "watch", o.writes)
	start := time.Now()
	for i := 0; i < o.writes && ctx.Err() == nil; i++ {
		c := i % o.chains
		rev := fmt.Sprintf("w%d", i)
		pw := &pendingWrite{done: make(chan struct{})}
		pw.remaining.Store(int64(perChain[c]))
		wr.mu.Lock()
		wr.pending[rev] = pw
		wr.mu.Unlock()
		pw.sent = time.Now()
		_, err := writer.get(0).Apply(ctx, &configpb.ApplyRequest{Entry: resolverEntry(chainName(o.prefix, c), rev)})
		acked := time.Now()
		wbar.add(1)
		if err != nil {
			wr.addErr(err)
			missed += int64(perChain[c])
			continue
		}
		writeLat = append(writeLat, acked.Sub(pw.sent))
		t := time.NewTimer(o.writeTimeout)
		select {
		case <-pw.done:
			fanout = append(fanout, max(time.Unix(0, pw.lastNanos.Load()).Sub(acked), 0))
		case <-t.C:
			missed += pw.remaining.Load()
		case <-ctx.Done():
		}
		t.Stop()
	}
	elapsed := time.Since(start)
	wbar.stop()
	stopWatchers()
	wg.Wait()

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if name == "" {
		name = fmt.Sprintf("watch %d watchers %d chains", o.watchers, o.chains)
	}
	params := map[string]any{"watchers": o.watchers, "chains": o.chains, "writes": o.writes, "conns": nconns, "servers": len(addrs)}
	r := newResult(name, "watch", params, all, wr.errs, elapsed)
	r.Requests = len(all)
	f := summarize(fanout)
	wl := summarize(writeLat)
	r.Extra = map[string]any{
		"missed_deliveries":   missed,
		"resets":              wr.resets.Load(),
		"subscribe_all_secs":  subscribeTime.Seconds(),
		"fanout_p50_ms":       f.P50,
		"fanout_p99_ms":       f.P99,
		"fanout_max_ms":       f.Max,
		"write_p50_ms":        wl.P50,
		"deliveries_expected": int64(o.writes) * int64(o.watchers) / int64(o.chains),
	}
	return r, ctx.Err()
}
