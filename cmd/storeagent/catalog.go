package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/catalog"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// checkNote is the note of the agent's check updates (the check's output).
const checkNote = "TTL check updated by storeagent"

// registrar keeps the --services instances in the catalog while the agent
// runs: it registers each one, keeps the TTL check of those with a TTL
// passing, and deregisters them all when the agent stops. A failed call
// is logged and retried with backoff, so a server going away or a leader
// election only delays it.
type registrar struct {
	client    chainstorev1.CatalogServiceClient
	instances []catalog.Instance
	logger    hclog.Logger

	minBackoff, maxBackoff time.Duration
	// deregisterTimeout bounds deregisterAll.
	deregisterTimeout time.Duration
	// jitter returns a random duration in [0, d); tests may replace it.
	jitter func(d time.Duration) time.Duration

	// sent[i] records that a registration of instances[i] was sent
	// (applied or not); rejected[i] that the server refused it for good.
	// Each is written by the instance's goroutine only, and read after
	// run has joined them.
	sent, rejected []bool
}

func newRegistrar(client chainstorev1.CatalogServiceClient, instances []catalog.Instance, cfg Config, logger hclog.Logger) *registrar {
	return &registrar{
		client: client, instances: instances, logger: logger,
		minBackoff: cfg.Watch.MinBackoff, maxBackoff: cfg.Watch.MaxBackoff,
		deregisterTimeout: cfg.DeregisterTimeout,
		jitter:            randomJitter,
		sent:              make([]bool, len(instances)),
		rejected:          make([]bool, len(instances)),
	}
}

// randomJitter returns a random duration in [0, d).
func randomJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// run registers every instance and keeps their checks passing until ctx
// is done; it runs one goroutine per instance and returns once all have
// ended. Call deregisterAll after it.
func (r *registrar) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range r.instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.keep(ctx, i)
		}()
	}
	wg.Wait()
}

// backoff is a jittered exponential backoff between minBackoff and
// maxBackoff.
type backoff struct {
	r    *registrar
	next time.Duration
}

func (r *registrar) newBackoff() *backoff { return &backoff{r: r, next: r.minBackoff} }

// delay returns the next wait: half the current step plus a random part
// of the other half; the step doubles up to maxBackoff.
func (b *backoff) delay() time.Duration {
	d := b.next/2 + b.r.jitter(b.next/2+1)
	b.next = min(2*b.next, b.r.maxBackoff)
	return d
}

func (b *backoff) reset() { b.next = b.r.minBackoff }

// sleep waits for d or until ctx is done; it reports whether ctx is
// still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// permanent reports whether a catalog call failed in a way a retry cannot
// cure: the server refused the request itself (an invalid instance, for
// example a datacenter other than the cluster's).
func permanent(err error) bool {
	return status.Code(err) == codes.InvalidArgument
}

// keep runs instance i: register it, then, if it has a TTL, set its check
// passing at once and again every TTL/3 (jittered: 80-100% of it). Should
// an update find the instance gone (deregistered by someone else), it
// registers it again.
func (r *registrar) keep(ctx context.Context, i int) {
	in := &r.instances[i]
	log := r.logger.With("id", in.ID, "service", in.Service)
	if !r.register(ctx, i, log) || in.TTL == 0 {
		return
	}
	interval := in.TTL / 3
	callTimeout := min(max(interval, time.Second), 10*time.Second)
	b := r.newBackoff()
	var wait time.Duration // the first update goes out at once
	failing := false
	for sleep(ctx, wait) {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := r.client.UpdateCheck(callCtx, &chainstorev1.UpdateCheckRequest{
			Id: in.ID, Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING, Note: checkNote,
		})
		cancel()
		switch {
		case err == nil:
			if failing {
				log.Info("TTL check updated again")
			} else {
				log.Debug("TTL check updated")
			}
			failing = false
			b.reset()
			wait = interval - r.jitter(interval/5)
		case ctx.Err() != nil:
			return
		case status.Code(err) == codes.NotFound:
			log.Warn("instance is no longer in the catalog; registering it again")
			if !r.register(ctx, i, log) {
				return
			}
			b.reset()
			wait = 0
		default:
			// Retry sooner than the interval, so the check does not
			// expire while a new leader is being elected.
			wait = min(b.delay(), interval)
			failing = true
			log.Warn("cannot update the TTL check; retrying", "error", api.ErrorText(err), "in", wait)
		}
	}
}

// register registers instance i, retrying until it is applied; it
// reports false when ctx ended first or the server refused the instance
// (which is logged as an error and not retried).
func (r *registrar) register(ctx context.Context, i int, log hclog.Logger) bool {
	in := &r.instances[i]
	req := &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{
		Id: in.ID, Service: in.Service, Address: in.Address, Port: uint32(in.Port), // Validate bounds the port to 1-65535
		Meta: in.Meta, Tags: in.Tags, Datacenter: in.Datacenter,
	}}
	if in.TTL != 0 {
		req.Instance.Ttl = durationpb.New(in.TTL)
	}
	b := r.newBackoff()
	for {
		r.sent[i] = true
		resp, err := r.client.Register(ctx, req)
		switch {
		case err == nil:
			log.Info("instance registered", "index", resp.GetIndex(), "ttl", in.TTL)
			return true
		case ctx.Err() != nil:
			return false
		case permanent(err):
			log.Error("the server refused the instance; not retrying", "error", api.ErrorText(err))
			r.rejected[i] = true
			return false
		}
		wait := b.delay()
		log.Warn("cannot register the instance; retrying", "error", api.ErrorText(err), "in", wait)
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// deregisterAll removes every instance whose registration was sent and not
// refused, all at once, retrying failed calls, for at most
// deregisterTimeout. ctx's cancellation is ignored (it is usually what
// stopped the agent); its values are kept. It reports whether every one of
// them was removed; the others are logged (an instance with a TTL then
// goes critical when its TTL runs out).
func (r *registrar) deregisterAll(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.deregisterTimeout)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		allOK  = true
		failed = func() { mu.Lock(); allOK = false; mu.Unlock() }
	)
	for i := range r.instances {
		if !r.sent[i] || r.rejected[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !r.deregister(ctx, &r.instances[i]) {
				failed()
			}
		}()
	}
	wg.Wait()
	return allOK
}

// deregister removes one instance, retrying until ctx ends.
func (r *registrar) deregister(ctx context.Context, in *catalog.Instance) bool {
	log := r.logger.With("id", in.ID, "service", in.Service)
	b := r.newBackoff()
	for {
		_, err := r.client.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: in.ID})
		if err == nil {
			log.Info("instance deregistered")
			return true
		}
		if !permanent(err) && ctx.Err() == nil {
			wait := b.delay()
			log.Warn("cannot deregister the instance; retrying", "error", api.ErrorText(err), "in", wait)
			if sleep(ctx, wait) {
				continue
			}
		}
		log.Error("cannot deregister the instance; it stays in the catalog", "error", api.ErrorText(err))
		return false
	}
}
