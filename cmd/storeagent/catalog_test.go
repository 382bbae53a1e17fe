package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// fakeCatalogClient records the registrar's calls ("register web-1",
// "check web-1", "deregister web-1") and fails them as told.
type fakeCatalogClient struct {
	chainstorev1.CatalogServiceClient // the reads; not called

	mu    sync.Mutex
	calls []string
	// fail returns the error for a call ("register web-1") given how
	// many such calls came before it, or nil.
	fail func(call string, n int) error
}

func (f *fakeCatalogClient) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.countLocked(call)
	f.calls = append(f.calls, call)
	if f.fail != nil {
		return f.fail(call, n)
	}
	return nil
}

func (f *fakeCatalogClient) countLocked(call string) int {
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

// count returns how many times call was made.
func (f *fakeCatalogClient) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.countLocked(call)
}

func (f *fakeCatalogClient) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCatalogClient) Register(_ context.Context, r *chainstorev1.RegisterRequest, _ ...grpc.CallOption) (*chainstorev1.RegisterResponse, error) {
	if err := f.record("register " + r.GetInstance().GetId()); err != nil {
		return nil, err
	}
	return &chainstorev1.RegisterResponse{Index: 1}, nil
}

func (f *fakeCatalogClient) UpdateCheck(_ context.Context, r *chainstorev1.UpdateCheckRequest, _ ...grpc.CallOption) (*chainstorev1.UpdateCheckResponse, error) {
	if r.GetStatus() != chainstorev1.HealthStatus_HEALTH_STATUS_PASSING || r.GetNote() != checkNote {
		return nil, fmt.Errorf("unexpected check update %v", r)
	}
	if err := f.record("check " + r.GetId()); err != nil {
		return nil, err
	}
	return &chainstorev1.UpdateCheckResponse{Index: 1}, nil
}

func (f *fakeCatalogClient) Deregister(_ context.Context, r *chainstorev1.DeregisterRequest, _ ...grpc.CallOption) (*chainstorev1.DeregisterResponse, error) {
	if err := f.record("deregister " + r.GetId()); err != nil {
		return nil, err
	}
	return &chainstorev1.DeregisterResponse{Index: 1, Existed: true}, nil
}

var errUnavailable = status.Error(codes.Unavailable, "no cluster leader")

// testRegistrar returns a registrar with short backoffs over f, logging
// into the returned buffer.
func testRegistrar(f *fakeCatalogClient, instances ...catalog.Instance) (*registrar, *syncBuffer) {
	logs := &syncBuffer{}
	cfg := Config{DeregisterTimeout: 500 * time.Millisecond}
	cfg.Watch.MinBackoff, cfg.Watch.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	return newRegistrar(f, instances, cfg, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})), logs
}

// runRegistrar runs r until the returned stop is called; stop joins it.
func runRegistrar(r *registrar) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func TestRegistrarKeepsChecksPassingAndDeregisters(t *testing.T) {
	t.Parallel()
	// The first registration of web-1 and two check updates fail as
	// during a leader election: all are retried.
	f := &fakeCatalogClient{fail: func(call string, n int) error {
		switch {
		case call == "register web-1" && n == 0, call == "check web-1" && (n == 1 || n == 2):
			return errUnavailable
		}
		return nil
	}}
	ttl := 300 * time.Millisecond
	r, logs := testRegistrar(f,
		catalog.Instance{ID: "web-1", Service: "web", Address: "h", Port: 1, TTL: ttl},
		catalog.Instance{ID: "db-1", Service: "db", Address: "h", Port: 2})
	start := time.Now()
	stop := runRegistrar(r)
	testutil.Poll(t, 10*time.Second, "six check updates of web-1", func() bool { return f.count("check web-1") >= 6 })
	elapsed := time.Since(start)
	stop()
	// Four successful updates, each at most ttl/3 after the previous one
	// (the first at once), plus quick retries.
	if limit := 4*ttl/3 + time.Second; elapsed > limit {
		t.Errorf("six updates took %s, want under %s", elapsed, limit)
	}
	if !r.deregisterAll(context.Background()) {
		t.Errorf("deregisterAll failed; logs:\n%s", logs.String())
	}
	calls := f.log()
	if n := f.count("register web-1"); n != 2 {
		t.Errorf("web-1 registered %d times, want 2 (one failure); calls %q", n, calls)
	}
	if f.count("register db-1") != 1 || f.count("check db-1") != 0 {
		t.Errorf("db-1 (no TTL): calls %q, want one registration and no check update", calls)
	}
	if i, j := slices.Index(calls, "register web-1"), slices.Index(calls, "check web-1"); j < i {
		t.Errorf("check update before the registration: %q", calls)
	}
	// Deregistered last, each once.
	tail := calls[len(calls)-2:]
	slices.Sort(tail)
	if !slices.Equal(tail, []string{"deregister db-1", "deregister web-1"}) {
		t.Errorf("calls end with %q, want both deregistrations", calls[len(calls)-2:])
	}
	for _, want := range []string{"cannot register the instance; retrying", "cannot update the TTL check; retrying", "TTL check updated again", "instance deregistered"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestRegistrarRegistersAgainWhenGone(t *testing.T) {
	t.Parallel()
	f := &fakeCatalogClient{fail: func(call string, n int) error {
		if call == "check web-1" && n == 1 {
			return status.Error(codes.NotFound, `instance "web-1" not found`)
		}
		return nil
	}}
	r, logs := testRegistrar(f, catalog.Instance{ID: "web-1", Service: "web", Address: "h", Port: 1, TTL: 150 * time.Millisecond})
	stop := runRegistrar(r)
	testutil.Poll(t, 10*time.Second, "a check update after the second registration", func() bool {
		calls := f.log()
		i := slices.Index(calls, "register web-1")
		return f.count("register web-1") == 2 && slices.Contains(calls[i+1:], "check web-1") && calls[len(calls)-1] == "check web-1"
	})
	stop()
	if !strings.Contains(logs.String(), "instance is no longer in the catalog; registering it again") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestRegistrarRefusedInstance(t *testing.T) {
	t.Parallel()
	refused := status.Error(codes.InvalidArgument, `instance "web-1": Datacenter: "dc2" is not this cluster's datacenter "dc1"`)
	f := &fakeCatalogClient{fail: func(call string, _ int) error {
		if call == "register web-1" {
			return refused
		}
		return nil
	}}
	r, logs := testRegistrar(f,
		catalog.Instance{ID: "web-1", Service: "web", Address: "h", Port: 1, Datacenter: "dc2", TTL: time.Second},
		catalog.Instance{ID: "db-1", Service: "db", Address: "h", Port: 2, TTL: 150 * time.Millisecond})
	stop := runRegistrar(r)
	testutil.Poll(t, 10*time.Second, "db-1 kept passing", func() bool { return f.count("check db-1") >= 3 })
	stop()
	if !r.deregisterAll(context.Background()) {
		t.Error("deregisterAll failed")
	}
	// web-1: one attempt, no check update, no deregistration.
	if n := f.count("register web-1") + f.count("check web-1") + f.count("deregister web-1"); n != 1 {
		t.Errorf("calls for the refused instance: %q", f.log())
	}
	if f.count("deregister db-1") != 1 {
		t.Errorf("db-1 not deregistered: %q", f.log())
	}
	if !strings.Contains(logs.String(), "the server refused the instance; not retrying") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestDeregisterAllGivesUp(t *testing.T) {
	t.Parallel()
	f := &fakeCatalogClient{fail: func(call string, _ int) error {
		if strings.HasPrefix(call, "deregister") {
			return errUnavailable
		}
		return nil
	}}
	r, logs := testRegistrar(f, catalog.Instance{ID: "web-1", Service: "web", Address: "h", Port: 1})
	stop := runRegistrar(r)
	testutil.Poll(t, 10*time.Second, "the registration", func() bool { return f.count("register web-1") == 1 })
	stop()
	start := time.Now()
	if r.deregisterAll(context.Background()) {
		t.Error("deregisterAll succeeded against a server that refuses every call")
	}
	if took := time.Since(start); took > r.deregisterTimeout+time.Second {
		t.Errorf("deregisterAll took %s, want about %s", took, r.deregisterTimeout)
	}
	if f.count("deregister web-1") < 2 {
		t.Errorf("deregistration not retried: %q", f.log())
	}
	if !strings.Contains(logs.String(), "cannot deregister the instance; it stays in the catalog") {
		t.Errorf("logs:\n%s", logs.String())
	}

	// Stopped before anything was sent: nothing to deregister.
	f2 := &fakeCatalogClient{}
	r2, _ := testRegistrar(f2, catalog.Instance{ID: "web-1", Service: "web", Address: "h", Port: 1})
	if !r2.deregisterAll(context.Background()) || len(f2.log()) != 0 {
		t.Errorf("deregisterAll of a registrar that never ran: calls %q", f2.log())
	}
}
