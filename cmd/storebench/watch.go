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

	"github.com/chainstore/chainstore/api"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

type watchOpts struct {
	watchers, chains, writes int
	perConn                  int
	writeTimeout             time.Duration
	readyTimeout             time.Duration
	hold                     time.Duration
	agents                   bool
	prefix                   string
}

func (o *watchOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.watchers, "watchers", 1000, "number of watchers (one stream with one subscription each), spread over every server")
	fs.IntVar(&o.chains, "chains", 10, "number of distinct chains watched (watcher i watches chain i % chains)")
	fs.IntVar(&o.writes, "writes", 100, "number of writes; each changes one chain and waits until all its watchers have the new version")
	fs.IntVar(&o.perConn, "streams-per-conn", 500, "watch streams per gRPC connection")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 30*time.Second, "how long a write waits for all its watchers")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long to wait for every watcher to be subscribed")
	fs.DurationVar(&o.hold, "hold", 0, "after the writes, keep every watcher connected this long with no writes and report each server's CPU-seconds per second (idle cost; scraped like put's server cost)")
	fs.BoolVar(&o.agents, "agents", false, "run each watcher as a real agent (api.ChainWatchClient: its own connection, failover, and a liveness probe of its idle stream every second) instead of a raw stream on a shared connection")
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
	case o.hold < 0:
		return errors.New("--hold must not be negative")
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

// subscribe opens a Watch stream subscribed to the chain of service name;
// opened is called once the stream is open (or failed to open).
func subscribe(ctx context.Context, c *api.Client, name string, opened func()) (chainstorev1.ChainService_WatchClient, error) {
	stream, err := chainstorev1.NewChainServiceClient(c.Conn()).Watch(ctx)
	opened()
	if err != nil {
		return nil, err
	}
	err = stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{
		Subscribe: &chainstorev1.WatchSubscribe{Id: 1, Chain: &chainstorev1.ChainRef{Service: name}},
	}})
	if err != nil {
		return nil, err
	}
	return stream, nil
}

// watcher runs one stream with one subscription until ctx ends. It
// records the latency of every version that belongs to a pending write.
func (wr *watchRun) watcher(ctx context.Context, c *api.Client, idx int, opened func()) []time.Duration {
	name := chainName(wr.o.prefix, idx%wr.o.chains)
	initial := "init-" + name
	var lats []time.Duration
	stream, err := subscribe(ctx, c, name, opened)
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
			pw.delivered(now)
		}
	}
}

// delivered records that one more watcher received pw's version at now.
func (pw *pendingWrite) delivered(now time.Time) {
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

// benchWatch: o.watchers watchers over every server; then o.writes writes,
// one chain at a time, each waiting until every watcher of that chain has
// the new version. Latency is per delivery, from the moment the write was
// sent; "fanout" is per write, from its acknowledgement to the last
// watcher's delivery.
func benchWatch(ctx context.Context, e *env, o watchOpts, name string) (*Result, error) {
	addrs := api.SplitAddrs(e.opts.addrs)
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
	if err := writeInitialChains(ctx, writer.get(0), o); err != nil {
		return nil, err
	}

	wr := &watchRun{o: o, pending: make(map[string]*pendingWrite), readyCh: make(chan struct{}), errs: errorCounter{}}
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	readyStart := time.Now()
	bar := newProgress(e.stderr, e.showProgress, "subscribe", o.watchers)
	var lats [][]time.Duration
	var wg *sync.WaitGroup
	if o.agents {
		lats, wg, err = wr.startAgents(wctx, addrs, e.opts.token)
		if err != nil {
			bar.stop()
			return nil, err
		}
	} else {
		lats, wg = wr.startWatchers(wctx, watchPool)
	}
	err = wr.waitReady(ctx, bar)
	bar.stop()
	if err != nil {
		stopWatchers()
		wg.Wait()
		return nil, err
	}
	subscribeTime := time.Since(readyStart)

	wbar := newProgress(e.stderr, e.showProgress, "watch", o.writes)
	start := time.Now()
	ws := wr.runWrites(ctx, writer.get(0), wbar)
	elapsed := time.Since(start)
	wbar.stop()
	var idle *idleCost
	if o.hold > 0 && ctx.Err() == nil {
		idle = measureIdle(ctx, e, o.hold)
	}
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
	if o.agents {
		params["agents"], params["conns"] = true, o.watchers
	}
	r := newResult(name, "watch", params, all, wr.errs, elapsed)
	r.Requests = len(all)
	r.Extra = ws.extra(wr, subscribeTime)
	idle.addTo(r.Extra)
	return r, ctx.Err()
}

// writeInitialChains writes the initial version of every chain.
func writeInitialChains(ctx context.Context, c *api.Client, o watchOpts) error {
	for i := 0; i < o.chains; i++ {
		n := chainName(o.prefix, i)
		if _, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: resolverEntry(n, "init-"+n)}); err != nil {
			return fmt.Errorf("write initial %s: %w", n, err)
		}
	}
	return nil
}

// startWatchers starts one goroutine per watcher, on the connections of
// p in turn; the returned group ends when ctx is done. Watcher i's
// latencies are in lats[i] once the group is done. Streams are opened 64
// at a time: a burst of thousands of new streams is a reconnect storm,
// not what this benchmark measures.
func (wr *watchRun) startWatchers(ctx context.Context, p *pool) (lats [][]time.Duration, wg *sync.WaitGroup) {
	lats = make([][]time.Duration, wr.o.watchers)
	wg = &sync.WaitGroup{}
	opening := make(chan struct{}, 64)
	for i := 0; i < wr.o.watchers; i++ {
		opening <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats[i] = wr.watcher(ctx, p.get(i), i, func() { <-opening })
		}()
	}
	return lats, wg
}

// waitReady waits until every watcher has the initial version of its
// chain, showing the count on bar, for at most o.readyTimeout.
func (wr *watchRun) waitReady(ctx context.Context, bar *progress) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(wr.o.readyTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-wr.readyCh:
			return nil
		case <-tick.C:
			bar.done.Store(wr.ready.Load())
		case <-timeout.C:
			return fmt.Errorf("only %d of %d watchers subscribed within %s", wr.ready.Load(), wr.o.watchers, wr.o.readyTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeStats are the per-write figures of a watch run.
type writeStats struct {
	// fanout: from a write's acknowledgement to its last watcher's
	// delivery; putToLast: from sending the write to that delivery.
	fanout, writeLat, putToLast []time.Duration
	missed                      int64
}

// runWrites sends o.writes writes, one chain at a time in turn, each
// waiting (at most o.writeTimeout) until every watcher of its chain has
// the new version.
func (wr *watchRun) runWrites(ctx context.Context, c *api.Client, bar *progress) writeStats {
	o := wr.o
	perChain := make([]int, o.chains)
	for i := 0; i < o.watchers; i++ {
		perChain[i%o.chains]++
	}
	var ws writeStats
	for i := 0; i < o.writes && ctx.Err() == nil; i++ {
		ch := i % o.chains
		rev := fmt.Sprintf("w%d", i)
		pw := &pendingWrite{done: make(chan struct{})}
		pw.remaining.Store(int64(perChain[ch]))
		wr.mu.Lock()
		wr.pending[rev] = pw
		wr.mu.Unlock()
		pw.sent = time.Now()
		_, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: resolverEntry(chainName(o.prefix, ch), rev)})
		acked := time.Now()
		bar.add(1)
		if err != nil {
			wr.addErr(err)
			ws.missed += int64(perChain[ch])
			continue
		}
		ws.writeLat = append(ws.writeLat, acked.Sub(pw.sent))
		ws.awaitDeliveries(ctx, pw, pw.sent, acked, o.writeTimeout)
	}
	return ws
}

// awaitDeliveries waits until every watcher has pw's version, then
// records the fan-out time; after timeout the watchers still waiting
// count as missed deliveries.
func (ws *writeStats) awaitDeliveries(ctx context.Context, pw *pendingWrite, sent, acked time.Time, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-pw.done:
		last := time.Unix(0, pw.lastNanos.Load())
		ws.fanout = append(ws.fanout, max(last.Sub(acked), 0))
		ws.putToLast = append(ws.putToLast, max(last.Sub(sent), 0))
	case <-t.C:
		ws.missed += pw.remaining.Load()
	case <-ctx.Done():
	}
}

// extra returns the watch-specific figures of the Result.
func (ws writeStats) extra(wr *watchRun, subscribeTime time.Duration) map[string]any {
	f := summarize(ws.fanout)
	wl := summarize(ws.writeLat)
	pl := summarize(ws.putToLast)
	o := wr.o
	return map[string]any{
		"missed_deliveries":   ws.missed,
		"resets":              wr.resets.Load(),
		"subscribe_all_secs":  subscribeTime.Seconds(),
		"fanout_p50_ms":       f.P50,
		"fanout_p99_ms":       f.P99,
		"fanout_max_ms":       f.Max,
		"put_to_last_p50_ms":  pl.P50,
		"put_to_last_p99_ms":  pl.P99,
		"write_p50_ms":        wl.P50,
		"deliveries_expected": int64(o.writes) * int64(o.watchers) / int64(o.chains),
	}
}
