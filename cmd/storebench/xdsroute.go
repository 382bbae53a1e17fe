package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcxds "google.golang.org/grpc/xds" // also registers the xds resolver and balancers

	"github.com/chainstore/chainstore/api"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// xdsRouteOpts are the xds-route flags (--clients is the number of
// stock grpc-go xDS clients).
type xdsRouteOpts struct {
	flips        int
	perVersion   int
	mode         string
	bucket       time.Duration
	frac         float64
	settle       time.Duration
	flipTimeout  time.Duration
	readyTimeout time.Duration
	prefix       string
}

func (o *xdsRouteOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.flips, "flips", 10, "number of route flips (v1 -> v2 -> v1 ...)")
	fs.IntVar(&o.perVersion, "backends", 1, "gRPC backends per version (v1 and v2)")
	fs.StringVar(&o.mode, "mode", "router", "router: a service-router sends the Health service to v2 or not (both clusters stay referenced); "+
		"splitter: a service-splitter flips 100/0 <-> 0/100 (the zero leg is left out of the route)")
	fs.DurationVar(&o.bucket, "bucket", 5*time.Millisecond, "time bucket of the switch computation")
	fs.Float64Var(&o.frac, "fraction", 0.95, "share of the calls that must reach the new version")
	fs.DurationVar(&o.settle, "settle", 500*time.Millisecond, "time the calls go on after every client reached the new version, before the next flip")
	fs.DurationVar(&o.flipTimeout, "flip-timeout", 15*time.Second, "how long a flip waits for every client to reach the new version")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long to wait for every client's first successful call")
	fs.StringVar(&o.prefix, "prefix", "bench", "name prefix (service <prefix>-xds-route)")
}

func (o *xdsRouteOpts) validate() error {
	switch {
	case o.flips < 1 || o.perVersion < 1:
		return errors.New("--flips and --backends must be at least 1")
	case o.mode != "router" && o.mode != "splitter":
		return fmt.Errorf("--mode must be router or splitter, got %q", o.mode)
	case o.bucket <= 0 || o.settle < 0 || o.flipTimeout <= 0 || o.readyTimeout <= 0:
		return errors.New("--bucket, --flip-timeout and --ready-timeout must be positive, --settle not negative")
	case o.frac <= 0 || o.frac > 1:
		return fmt.Errorf("--fraction must be in (0, 1], got %g", o.frac)
	case o.prefix == "":
		return errors.New("--prefix must not be empty")
	}
	return nil
}

// setDefault changes the default (and value) of an already registered flag.
func setDefault(fs *flag.FlagSet, name, value string) {
	if f := fs.Lookup(name); f != nil {
		_ = f.Value.Set(value)
		f.DefValue = value
	}
}

func xdsRouteFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o xdsRouteOpts
	o.register(fs)
	setDefault(fs, "clients", "100")
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(); err != nil {
			return nil, err
		}
		r, err := benchXDSRoute(ctx, e, o, "")
		if r == nil {
			return nil, err
		}
		return []*Result{r}, err
	}
}

// routeEntry returns the entry that sends the calls of service svc to
// version v (1 or 2).
func routeEntry(mode, svc string, v int) string {
	if mode == "splitter" {
		w1, w2 := 100, 0
		if v == 2 {
			w1, w2 = 0, 100
		}
		return fmt.Sprintf(`{"Kind":"service-splitter","Name":%q,"Splits":[{"Weight":%d,"ServiceSubset":"v1"},{"Weight":%d,"ServiceSubset":"v2"}]}`, svc, w1, w2)
	}
	// The default route (the compiler's catch-all) goes to the default
	// subset v1; both tables keep a route to v2 so that both clusters
	// stay known to the client.
	prefix := "/other.Service/"
	if v == 2 {
		prefix = "/grpc.health.v1.Health/"
	}
	return fmt.Sprintf(`{"Kind":"service-router","Name":%q,"Routes":[{"Match":{"HTTP":{"PathPrefix":%q}},"Destination":{"ServiceSubset":"v2"}}]}`, svc, prefix)
}

// xdsCaller is one stock grpc-go client calling continuously.
type xdsCaller struct {
	conn  *grpc.ClientConn
	calls []callRec
	errs  errorCounter
	// last packs the latest finished call: start<<8 | version.
	last atomic.Int64
}

func versionOf(hdr metadata.MD) int8 {
	if v := hdr.Get(versionHeader); len(v) == 1 {
		switch v[0] {
		case "v1":
			return 1
		case "v2":
			return 2
		}
	}
	return 0
}

func (c *xdsCaller) run(ctx context.Context, epoch time.Time, timeout time.Duration, errsFrom *atomic.Int64) {
	hc := healthpb.NewHealthClient(c.conn)
	for ctx.Err() == nil {
		start := time.Since(epoch)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		var hdr metadata.MD
		_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr))
		cancel()
		if ctx.Err() != nil {
			return
		}
		v := int8(0)
		if err == nil {
			v = versionOf(hdr)
		} else if int64(start) >= errsFrom.Load() {
			c.errs.add(err)
		}
		c.calls = append(c.calls, callRec{start: int64(start), ver: v})
		c.last.Store(int64(start)<<8 | int64(v))
		if err != nil {
			time.Sleep(time.Millisecond) // a failing client must not spin
		}
	}
}

// waitAll polls until every caller's latest call started at or after
// from and was answered by version want, or timeout; it returns whether
// they all did.
func waitAll(ctx context.Context, callers []*xdsCaller, from time.Duration, want int8, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, c := range callers {
			l := c.last.Load()
			if l>>8 < int64(from) || int8(l&0xff) != want {
				all = false
				break
			}
		}
		if all {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// benchXDSRoute: see docs/benchmarks.md, "xDS".
func benchXDSRoute(ctx context.Context, e *env, o xdsRouteOpts, name string) (*Result, error) {
	nofile, err := raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	addrs := api.SplitAddrs(e.opts.addrs)
	p, err := dialPool(ctx, commonOpts{addrs: e.opts.addrs, to: "leader", timeout: e.opts.timeout, token: e.opts.token}, 1)
	if err != nil {
		return nil, err
	}
	defer p.close()
	cl := p.get(0)
	svc := o.prefix + "-xds-route"

	var backends []*backend
	defer func() {
		for _, b := range backends {
			b.stop()
		}
	}()
	for _, ver := range []string{"v1", "v2"} {
		for j := range o.perVersion {
			b, err := startBackend(fmt.Sprintf("%s-%s-%d", svc, ver, j), ver)
			if err != nil {
				return nil, err
			}
			backends = append(backends, b)
		}
	}
	if err := applyEntries(ctx, cl, e.opts.timeout,
		fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":"grpc"}`, svc),
		fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"DefaultSubset":"v1","Subsets":{"v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`, svc),
		routeEntry(o.mode, svc, 1)); err != nil {
		return nil, err
	}
	routeKind := "service-" + o.mode
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, b := range backends {
			_, _ = cl.Deregister(cctx, &chainstorev1.DeregisterRequest{Id: b.id})
		}
		_ = deleteEntries(cctx, cl, e.opts.timeout, [2]string{routeKind, svc}, [2]string{"service-resolver", svc}, [2]string{"service-defaults", svc})
	}()
	for _, b := range backends {
		cctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
		_, err := cl.Register(cctx, &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{
			Id: b.id, Service: svc, Address: "127.0.0.1", Port: uint32(b.port), Meta: map[string]string{"version": b.version}}})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", b.id, err)
		}
	}

	// The clients: each its own xDS client (own bootstrap and node ID),
	// spread over the servers.
	callers := make([]*xdsCaller, e.opts.clients)
	defer func() {
		for _, c := range callers {
			if c != nil {
				_ = c.conn.Close()
			}
		}
	}()
	for i := range callers {
		rb, err := grpcxds.NewXDSResolverWithConfigForTesting(xdsBootstrap(addrs[i%len(addrs)], fmt.Sprintf("storebench-%s-%d", svc, i)))
		if err != nil {
			return nil, fmt.Errorf("xds resolver: %w", err)
		}
		conn, err := grpc.NewClient("xds:///"+svc, grpc.WithResolvers(rb), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("dial xds:///%s: %w", svc, err)
		}
		callers[i] = &xdsCaller{conn: conn, errs: errorCounter{}}
	}
	epoch := time.Now()
	var errsFrom atomic.Int64
	errsFrom.Store(int64(24 * time.Hour)) // errors counted from the first flip on
	callCtx, stopCalls := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(callCtx, epoch, e.opts.timeout, &errsFrom)
		}()
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopCalls()
			wg.Wait()
		}
	}
	defer stop()

	fmt.Fprintf(e.stderr, "storebench: %d xDS clients of %s (%s mode), %d backends, RLIMIT_NOFILE %d; waiting for every client to reach v1\n",
		len(callers), svc, o.mode, len(backends), nofile)
	if !waitAll(ctx, callers, 0, 1, o.readyTimeout) {
		return nil, fmt.Errorf("not every client reached v1 within %s", o.readyTimeout)
	}
	readyIn := time.Since(epoch)

	type flip struct {
		applyStart, applied time.Duration
		want                int8
		allIn               bool
	}
	var flips []flip
	phaseStart := time.Since(epoch)
	errsFrom.Store(int64(phaseStart))
	for i := range o.flips {
		if ctx.Err() != nil {
			break
		}
		want := int8(2 - i%2)
		f := flip{applyStart: time.Since(epoch), want: want}
		if err := applyEntries(ctx, cl, e.opts.timeout, routeEntry(o.mode, svc, int(want))); err != nil {
			return nil, err
		}
		f.applied = time.Since(epoch)
		f.allIn = waitAll(ctx, callers, f.applied, want, o.flipTimeout)
		flips = append(flips, f)
		fmt.Fprintf(e.stderr, "storebench: flip %d to v%d: every client followed within %s (all: %v)\n",
			i+1, want, (time.Since(epoch) - f.applied).Round(time.Millisecond), f.allIn)
		select {
		case <-ctx.Done():
		case <-time.After(o.settle):
		}
	}
	end := time.Since(epoch)
	stop()

	var all []callRec
	ec := errorCounter{}
	for _, c := range callers {
		all = append(all, c.calls...)
		ec.merge(c.errs)
	}
	var delays, lastOld, applyLat []time.Duration
	var calls, failed, notSwitched int
	for i, f := range flips {
		until := end
		if i+1 < len(flips) {
			until = flips[i+1].applyStart
		}
		out := analyzeFlip(all, int64(f.applied), int64(until), f.want, o.bucket, o.frac)
		delays = append(delays, out.Delay)
		lastOld = append(lastOld, out.LastOld)
		applyLat = append(applyLat, f.applied-f.applyStart)
		calls += out.Calls
		failed += out.Failed
		if !out.Switched {
			notSwitched++
		}
	}
	// Calls between the first Apply and the end.
	phaseCalls := 0
	for _, c := range all {
		if c.start >= int64(phaseStart) {
			phaseCalls++
		}
	}
	if name == "" {
		name = fmt.Sprintf("xds route flip (%s), %d clients", o.mode, len(callers))
	}
	elapsed := end - phaseStart
	r := &Result{Name: name, Test: "xds-route", Requests: phaseCalls, Errors: ec.total(), Seconds: elapsed.Seconds(),
		Params: map[string]any{"clients": len(callers), "flips": o.flips, "backends_per_version": o.perVersion, "mode": o.mode,
			"bucket_ms": ms(o.bucket), "fraction": o.frac, "servers": len(addrs)},
		Latency: summarize(append([]time.Duration(nil), delays...)),
	}
	if len(ec) > 0 {
		r.ErrorCodes = ec
	}
	if elapsed > 0 {
		r.RPS = float64(phaseCalls-ec.total()) / elapsed.Seconds()
	}
	lo := summarize(append([]time.Duration(nil), lastOld...))
	al := summarize(append([]time.Duration(nil), applyLat...))
	r.Extra = map[string]any{
		"latency_is":       fmt.Sprintf("per flip: Apply returned -> %g%% of the calls started after it reach the new version (%s buckets)", o.frac*100, o.bucket),
		"switch_ms":        durationsMS(delays),
		"last_old_call_ms": fmt.Sprintf("p50 %.1f  max %.1f", lo.P50, lo.Max),
		"apply_ms":         fmt.Sprintf("p50 %.1f  max %.1f", al.P50, al.Max),
		"not_switched":     notSwitched,
		"flip_calls":       calls,
		"flip_failed":      failed,
		"ready_s":          float64(readyIn.Round(10*time.Millisecond)) / 1e9,
	}
	return r, ctx.Err()
}
