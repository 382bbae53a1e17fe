package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chainstore/chainstore/api"
)

// xdsClientsOpts are the xds-clients flags.
type xdsClientsOpts struct {
	streams       int
	perConn       int
	changes       int
	serverPID     int
	readyTimeout  time.Duration
	changeTimeout time.Duration
	prefix        string
}

func (o *xdsClientsOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.streams, "streams", 5000, "raw ADS streams, all on the first --addr server, each following the same chain")
	fs.IntVar(&o.perConn, "streams-per-conn", 500, "ADS streams per gRPC connection")
	fs.IntVar(&o.changes, "changes", 3, "number of changes (one Apply each) whose push to every stream is timed")
	fs.IntVar(&o.serverPID, "server-pid", 0, "PID of the server (first --addr) whose VmRSS to report (0: client side only)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 3*time.Minute, "how long to wait for every stream to have all four resource types")
	fs.DurationVar(&o.changeTimeout, "change-timeout", time.Minute, "how long a change waits for every stream")
	fs.StringVar(&o.prefix, "prefix", "bench", "name prefix (service <prefix>-xds-clients)")
}

func (o *xdsClientsOpts) validate() error {
	switch {
	case o.streams < 1 || o.perConn < 1 || o.changes < 1:
		return errors.New("--streams, --streams-per-conn and --changes must be at least 1")
	case o.serverPID < 0:
		return errors.New("--server-pid must not be negative")
	case o.readyTimeout <= 0 || o.changeTimeout <= 0:
		return errors.New("--ready-timeout and --change-timeout must be positive")
	case o.prefix == "":
		return errors.New("--prefix must not be empty")
	}
	return nil
}

func xdsClientsFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o xdsClientsOpts
	o.register(fs)
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(); err != nil {
			return nil, err
		}
		r, err := benchXDSClients(ctx, e, o, "")
		if r == nil {
			return nil, err
		}
		return []*Result{r}, err
	}
}

// pushRound is one timed change.
type pushRound struct {
	sent     time.Time
	got      atomic.Int64
	lats     []time.Duration // per stream, written once by its stream
	lastNano atomic.Int64
	done     chan struct{}
	total    int64
}

func (pr *pushRound) record(i int, now time.Time) {
	pr.lats[i] = now.Sub(pr.sent)
	for {
		l := pr.lastNano.Load()
		if now.UnixNano() <= l || pr.lastNano.CompareAndSwap(l, now.UnixNano()) {
			break
		}
	}
	if pr.got.Add(1) == pr.total {
		close(pr.done)
	}
}

// adsRun is the shared state of the raw streams.
type adsRun struct {
	svc      string
	ready    atomic.Int64
	readyCh  chan struct{}
	total    int64
	round    atomic.Pointer[pushRound]
	failed   atomic.Int64
	mu       sync.Mutex
	errs     errorCounter
	lastErr  error
	nacks    atomic.Int64
	received atomic.Int64
}

func (ar *adsRun) fail(err error) {
	ar.failed.Add(1)
	ar.mu.Lock()
	ar.errs.add(err)
	ar.lastErr = err
	ar.mu.Unlock()
}

// clustersOfRoutes returns the clusters a route configuration names.
func clustersOfRoutes(rc *routev3.RouteConfiguration) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			ra := r.GetRoute()
			add(ra.GetCluster())
			for _, wc := range ra.GetWeightedClusters().GetClusters() {
				add(wc.GetName())
			}
		}
	}
	return out
}

// stream runs raw ADS stream i (state of the world): it requests the
// listener of ar.svc, then the route configuration, clusters and
// endpoints it names, ACKs every response, and records the first
// response with a new version after each timed change.
func (ar *adsRun) stream(ctx context.Context, conn *grpc.ClientConn, i int) {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		ar.fail(err)
		return
	}
	names := map[string][]string{resourcev3.ListenerType: {ar.svc}}
	versions := map[string]string{}
	requested := map[string]bool{resourcev3.ListenerType: true}
	node := &corev3.Node{Id: "storebench-ads-" + strconv.Itoa(i), UserAgentName: "storebench raw ADS"}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: names[resourcev3.ListenerType]}); err != nil {
		ar.fail(err)
		return
	}
	isReady := false
	lastRound := (*pushRound)(nil)
	for {
		resp, err := st.Recv()
		if err != nil {
			if ctx.Err() == nil {
				ar.fail(err)
			}
			return
		}
		now := time.Now()
		ar.received.Add(1)
		typ := resp.GetTypeUrl()
		changed := resp.GetVersionInfo() != versions[typ]
		// Learn what to request next.
		var next []string
		var nextType string
		var nack error
		switch typ {
		case resourcev3.RouteType:
			nextType = resourcev3.ClusterType
			for _, a := range resp.GetResources() {
				var rc routev3.RouteConfiguration
				if err := a.UnmarshalTo(&rc); err != nil {
					nack = err
					break
				}
				next = append(next, clustersOfRoutes(&rc)...)
			}
		case resourcev3.ClusterType:
			nextType = resourcev3.EndpointType
			for _, a := range resp.GetResources() {
				var c clusterv3.Cluster
				if err := a.UnmarshalTo(&c); err != nil {
					nack = err
					break
				}
				n := c.GetEdsClusterConfig().GetServiceName()
				if n == "" {
					n = c.GetName()
				}
				next = append(next, n)
			}
		case resourcev3.ListenerType:
			if len(resp.GetResources()) > 0 {
				nextType, next = resourcev3.RouteType, []string{ar.svc}
			}
		}
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: names[typ], ResponseNonce: resp.GetNonce(), VersionInfo: resp.GetVersionInfo()}
		if nack != nil {
			ar.nacks.Add(1)
			req.VersionInfo = versions[typ]
		} else {
			versions[typ] = resp.GetVersionInfo()
		}
		if err := st.Send(req); err != nil {
			ar.fail(err)
			return
		}
		if nextType != "" && len(next) > 0 && (!requested[nextType] || !equalStrings(names[nextType], next)) {
			requested[nextType] = true
			names[nextType] = next
			if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: nextType, ResourceNames: next, VersionInfo: versions[nextType]}); err != nil {
				ar.fail(err)
				return
			}
		}
		if !isReady && typ == resourcev3.EndpointType && len(resp.GetResources()) > 0 {
			isReady = true
			if ar.ready.Add(1) == ar.total {
				close(ar.readyCh)
			}
			continue
		}
		if pr := ar.round.Load(); isReady && changed && pr != nil && pr != lastRound {
			lastRound = pr
			pr.record(i, now)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// benchXDSClients: see docs/benchmarks.md, "xDS".
func benchXDSClients(ctx context.Context, e *env, o xdsClientsOpts, name string) (*Result, error) {
	nofile, err := raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	addrs := api.SplitAddrs(e.opts.addrs)
	target := addrs[0]
	p, err := dialPool(ctx, commonOpts{addrs: e.opts.addrs, to: "leader", timeout: e.opts.timeout, token: e.opts.token}, 1)
	if err != nil {
		return nil, err
	}
	defer p.close()
	cl := p.get(0)
	svc := o.prefix + "-xds-clients"
	resolver := func(ms int) string {
		return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":"%dms"}`, svc, ms)
	}
	if err := applyEntries(ctx, cl, e.opts.timeout, fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":"grpc"}`, svc), resolver(5000)); err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = deleteEntries(cctx, cl, e.opts.timeout, [2]string{"service-resolver", svc}, [2]string{"service-defaults", svc})
	}()

	pidStr := strconv.Itoa(o.serverPID)
	readRSS := func() (server, self int64) {
		if o.serverPID > 0 {
			server, _ = vmRSS(pidStr)
		}
		runtime.GC()
		self, _ = vmRSS("self")
		return server, self
	}
	srv0, self0 := readRSS()

	nConns := (o.streams + o.perConn - 1) / o.perConn
	conns := make([]*grpc.ClientConn, 0, nConns)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range nConns {
		c, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	ar := &adsRun{svc: svc, readyCh: make(chan struct{}), total: int64(o.streams), errs: errorCounter{}}
	sctx, stopStreams := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopStreams()
			wg.Wait()
		}
	}
	defer stop()
	fmt.Fprintf(e.stderr, "storebench: opening %d ADS streams over %d connections to %s (RLIMIT_NOFILE %d)\n", o.streams, nConns, target, nofile)
	start := time.Now()
	for i := range o.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ar.stream(sctx, conns[i/o.perConn], i)
		}()
		if i%500 == 499 {
			time.Sleep(10 * time.Millisecond) // let the server keep up with the opening
		}
	}
	select {
	case <-ar.readyCh:
	case <-time.After(o.readyTimeout):
		ar.mu.Lock()
		last := "none"
		if ar.lastErr != nil {
			last = ar.lastErr.Error()
		}
		ar.mu.Unlock()
		return nil, fmt.Errorf("%d of %d streams had all four types after %s (%d failed, last error: %s)",
			ar.ready.Load(), o.streams, o.readyTimeout, ar.failed.Load(), last)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	readyIn := time.Since(start)
	time.Sleep(time.Second) // let the last ACKs land before reading memory
	srv1, self1 := readRSS()
	fmt.Fprintf(e.stderr, "storebench: %d streams ready in %s\n", o.streams, readyIn.Round(time.Millisecond))

	var lats, fanout, applyLat []time.Duration
	missed := 0
	phase := time.Now()
	for c := range o.changes {
		if ctx.Err() != nil {
			break
		}
		pr := &pushRound{lats: make([]time.Duration, o.streams), done: make(chan struct{}), total: int64(o.streams)}
		pr.sent = time.Now()
		ar.round.Store(pr)
		if err := applyEntries(ctx, cl, e.opts.timeout, resolver(5001+c)); err != nil {
			return nil, err
		}
		applyLat = append(applyLat, time.Since(pr.sent))
		select {
		case <-pr.done:
		case <-time.After(o.changeTimeout):
		case <-ctx.Done():
		}
		got := pr.got.Load()
		missed += o.streams - int(got)
		for _, l := range pr.lats {
			if l > 0 {
				lats = append(lats, l)
			}
		}
		if last := pr.lastNano.Load(); last > 0 {
			fanout = append(fanout, time.Unix(0, last).Sub(pr.sent))
		}
		fmt.Fprintf(e.stderr, "storebench: change %d: %d of %d streams got the push, the last %s after the Apply was sent\n",
			c+1, got, o.streams, (time.Unix(0, pr.lastNano.Load()).Sub(pr.sent)).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
	}
	phaseTime := time.Since(phase)
	stop()

	if name == "" {
		name = fmt.Sprintf("xds push, %d ADS streams on 1 server", o.streams)
	}
	deliveries := len(lats)
	r := newResult(name, "xds-clients", map[string]any{"streams": o.streams, "conns": nConns, "changes": o.changes, "server": target},
		lats, errorCounter{}, phaseTime)
	r.Requests, r.Errors = deliveries+missed, missed
	ar.mu.Lock()
	if len(ar.errs) > 0 {
		r.ErrorCodes = ar.errs
	}
	ar.mu.Unlock()
	fo := summarize(append([]time.Duration(nil), fanout...))
	al := summarize(append([]time.Duration(nil), applyLat...))
	r.Extra = map[string]any{
		"latency_is":      "per stream and change: Apply sent -> first response with a new version",
		"all_streams_ms":  durationsMS(fanout),
		"all_streams_max": fo.Max,
		"apply_ms":        fmt.Sprintf("p50 %.1f  max %.1f", al.P50, al.Max),
		"ready_s":         float64(readyIn.Round(10*time.Millisecond)) / 1e9,
		"stream_failures": ar.failed.Load(),
		"nacks":           ar.nacks.Load(),
		"bench_rss_mb":    fmt.Sprintf("%.1f -> %.1f (%.1f KiB per stream)", float64(self0)/1024, float64(self1)/1024, float64(self1-self0)/float64(o.streams)),
	}
	if o.serverPID > 0 {
		r.Extra["server_rss_mb"] = fmt.Sprintf("%.1f -> %.1f", float64(srv0)/1024, float64(srv1)/1024)
		r.Extra["server_rss_per_stream_kib"] = float64(int(float64(srv1-srv0)/float64(o.streams)*10)) / 10
	}
	return r, ctx.Err()
}
