package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// catalogOpts are the catalog-register flags.
type catalogOpts struct {
	duration  time.Duration
	instances int
	op        string
	prefix    string
	keep      bool
}

func (o *catalogOpts) register(fs *flag.FlagSet) {
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long the clients write")
	fs.IntVar(&o.instances, "instances", 1000, "distinct instance IDs, split evenly over the clients (each client owns its own)")
	fs.StringVar(&o.op, "op", "register", "register: every request is a Register (the first per ID creates the instance, the next ones update its Meta); "+
		"check: the instances are registered with a TTL check first, then every request is an UpdateCheck alternating passing/warning")
	fs.StringVar(&o.prefix, "prefix", "bench", "prefix of the service (<prefix>-catalog) and of the instance IDs")
	fs.BoolVar(&o.keep, "keep", false, "leave the instances registered (default: deregister them at the end)")
}

func (o *catalogOpts) validate(clients int) error {
	switch {
	case o.duration <= 0:
		return fmt.Errorf("--duration must be positive, got %s", o.duration)
	case o.instances < clients:
		return fmt.Errorf("--instances (%d) must be at least --clients (%d): every client owns its IDs", o.instances, clients)
	case o.op != "register" && o.op != "check":
		return fmt.Errorf("--op must be register or check, got %q", o.op)
	case o.prefix == "":
		return errors.New("--prefix must not be empty")
	}
	return nil
}

func catalogFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o catalogOpts
	o.register(fs)
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(e.opts.clients); err != nil {
			return nil, err
		}
		r, err := benchCatalog(ctx, e, o, "")
		if r == nil {
			return nil, err
		}
		return []*Result{r}, err
	}
}

// catalogID is the ID of the k-th instance of client w; client w owns the
// IDs k*clients+w, so the clients never write the same instance.
func catalogID(prefix string, clients, w, k int) string {
	return prefix + "-inst-" + strconv.Itoa(k*clients+w)
}

// benchCatalog runs e.opts.clients writers for o.duration.
func benchCatalog(ctx context.Context, e *env, o catalogOpts, name string) (*Result, error) {
	p, err := dialPool(ctx, e.opts, e.opts.conns)
	if err != nil {
		return nil, err
	}
	defer p.close()
	clients := e.opts.clients
	perClient := o.instances / clients
	service := o.prefix + "-catalog"
	instance := func(w, k, seq int, ttl bool) *chainstorev1.Instance {
		in := &chainstorev1.Instance{
			Id: catalogID(o.prefix, clients, w, k), Service: service, Address: "127.0.0.1",
			Port: uint32(20000 + (k*clients+w)%40000), Meta: map[string]string{"version": "v1", "seq": strconv.Itoa(seq)},
		}
		if ttl {
			in.Ttl = durationpb.New(time.Hour)
		}
		return in
	}
	if o.op == "check" {
		// Register every instance first (not measured).
		_, ec, _ := runOps(ctx, &env{stderr: e.stderr}, "register", min(16, clients), perClient*clients, func(ctx context.Context, _, seq int) error {
			w, k := seq%clients, seq/clients
			_, err := p.get(w).Register(ctx, &chainstorev1.RegisterRequest{Instance: instance(w, k, 0, true)})
			return err
		})
		if n := ec.total(); n > 0 {
			return nil, fmt.Errorf("registering the instances: %d failed (%v)", n, map[string]int(ec))
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	lats := make([][]time.Duration, clients)
	errs := make([]errorCounter, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		errs[w] = errorCounter{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := p.get(w)
			var local []time.Duration
			for seq := 0; runCtx.Err() == nil; seq++ {
				k := seq % perClient
				t0 := time.Now()
				var err error
				if o.op == "check" {
					st := chainstorev1.HealthStatus_HEALTH_STATUS_PASSING
					if (seq/perClient)%2 == 0 {
						st = chainstorev1.HealthStatus_HEALTH_STATUS_WARNING
					}
					_, err = c.UpdateCheck(runCtx, &chainstorev1.UpdateCheckRequest{Id: catalogID(o.prefix, clients, w, k), Status: st, Note: "storebench"})
				} else {
					_, err = c.Register(runCtx, &chainstorev1.RegisterRequest{Instance: instance(w, k, seq, false)})
				}
				d := time.Since(t0)
				if err != nil {
					if runCtx.Err() != nil {
						break // the end of the run, not a failure
					}
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
	var all []time.Duration
	ec := errorCounter{}
	for w := range lats {
		all = append(all, lats[w]...)
		ec.merge(errs[w])
	}
	if name == "" {
		name = fmt.Sprintf("catalog %s, %d client(s), %d instances", o.op, clients, perClient*clients)
	}
	r := newResult(name, "catalog-register", map[string]any{"clients": clients, "conns": e.opts.conns, "to": e.opts.to,
		"duration_s": o.duration.Seconds(), "instances": perClient * clients, "op": o.op}, all, ec, elapsed)

	if !o.keep && ctx.Err() == nil {
		_, dec, _ := runOps(ctx, &env{stderr: e.stderr}, "deregister", min(16, clients), perClient*clients, func(ctx context.Context, _, seq int) error {
			w, k := seq%clients, seq/clients
			_, err := p.get(w).Deregister(ctx, &chainstorev1.DeregisterRequest{Id: catalogID(o.prefix, clients, w, k)})
			return err
		})
		if n := dec.total(); n > 0 {
			r.Extra = map[string]any{"deregister_errors": n}
		}
	}
	return r, ctx.Err()
}
