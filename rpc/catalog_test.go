package rpc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// ---- catalog helpers ----

// inst is an instance of service with a fixed address; mutate adjusts it.
func inst(id, service string, mutate ...func(*chainstorev1.Instance)) *chainstorev1.Instance {
	in := &chainstorev1.Instance{Id: id, Service: service, Address: "10.0.0.1", Port: 8080}
	for _, m := range mutate {
		m(in)
	}
	return in
}

func withTTL(d time.Duration) func(*chainstorev1.Instance) {
	return func(in *chainstorev1.Instance) { in.Ttl = durationpb.New(d) }
}

// stored is the InstanceHealth the catalog answers for a registration of
// in (datacenter dc1 filled in) with status, output and indexes.
func stored(in *chainstorev1.Instance, h chainstorev1.HealthStatus, output string, create, modify uint64) *chainstorev1.InstanceHealth {
	p := proto.Clone(in).(*chainstorev1.Instance)
	if p.Datacenter == "" {
		p.Datacenter = "dc1"
	}
	return &chainstorev1.InstanceHealth{Instance: p, Status: h, Output: output, CreateIndex: create, ModifyIndex: modify}
}

const (
	passing  = chainstorev1.HealthStatus_HEALTH_STATUS_PASSING
	warning  = chainstorev1.HealthStatus_HEALTH_STATUS_WARNING
	critical = chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL
)

func register(ctx context.Context, t *testing.T, c *api.Client, in *chainstorev1.Instance) uint64 {
	t.Helper()
	resp, err := c.Register(ctx, &chainstorev1.RegisterRequest{Instance: in})
	if err != nil {
		t.Fatalf("Register(%s): %v", in.GetId(), err)
	}
	return resp.GetIndex()
}

func updateCheck(ctx context.Context, t *testing.T, c *api.Client, id string, h chainstorev1.HealthStatus, note string) uint64 {
	t.Helper()
	resp, err := c.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: id, Status: h, Note: note})
	if err != nil {
		t.Fatalf("UpdateCheck(%s, %s): %v", id, h, err)
	}
	return resp.GetIndex()
}

func instancesOf(ctx context.Context, t *testing.T, c *api.Client, req *chainstorev1.InstancesRequest) *chainstorev1.InstancesResponse {
	t.Helper()
	resp, err := c.Instances(ctx, req)
	if err != nil {
		t.Fatalf("Instances(%s): %v", req.GetService(), err)
	}
	return resp
}

func servicesOf(ctx context.Context, t *testing.T, c *api.Client) *chainstorev1.ServicesResponse {
	t.Helper()
	resp, err := c.Services(ctx, &chainstorev1.ServicesRequest{})
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	return resp
}

// wantInstances checks the instances of a response (not its meta).
func wantInstances(t *testing.T, what string, resp *chainstorev1.InstancesResponse, want ...*chainstorev1.InstanceHealth) {
	t.Helper()
	if diff := cmp.Diff(want, resp.GetInstances(), protocmp.Transform()); diff != "" {
		t.Errorf("%s: instances (-want +got):\n%s", what, diff)
	}
}

// wantServices checks the services of a response (not its meta).
func wantServices(t *testing.T, what string, resp *chainstorev1.ServicesResponse, want ...*chainstorev1.ServiceSummary) {
	t.Helper()
	if diff := cmp.Diff(want, resp.GetServices(), protocmp.Transform()); diff != "" {
		t.Errorf("%s: services (-want +got):\n%s", what, diff)
	}
}

func summary(name string, instances, passing uint32) *chainstorev1.ServiceSummary {
	return &chainstorev1.ServiceSummary{Name: name, Instances: instances, Passing: passing}
}

// ---- tests ----

func TestCatalogRoundTrip(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	c := n.client

	web1 := inst("web-1", "web", withTTL(10*time.Second), func(in *chainstorev1.Instance) {
		in.Meta = map[string]string{"version": "v1"}
		in.Tags = []string{"b", "a", "b"}
	})
	web2 := inst("web-2", "web", func(in *chainstorev1.Instance) { in.Datacenter = "dc1"; in.Port = 9090 })
	api1 := inst("api-1", "api")
	i1, i2, i3 := register(ctx, t, c, web1), register(ctx, t, c, web2), register(ctx, t, c, api1)
	if i1 != 1 || i2 != 2 || i3 != 3 {
		t.Fatalf("Register indexes = %d, %d, %d; want 1, 2, 3", i1, i2, i3)
	}
	// Tags are stored sorted and without duplicates; a TTL check starts
	// critical, an instance without a check is passing.
	web1Stored := func(h chainstorev1.HealthStatus, output string, create, modify uint64) *chainstorev1.InstanceHealth {
		st := stored(web1, h, output, create, modify)
		st.Instance.Tags = []string{"a", "b"}
		return st
	}
	web2Stored := stored(web2, passing, "", i2, i2)

	resp := instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"})
	wantInstances(t, "after registration", resp, web1Stored(critical, "TTL check not yet updated", i1, i1), web2Stored)
	if resp.GetMeta().GetIndex() != i2 || resp.GetMeta().GetServedBy() != "node-a" {
		t.Errorf("Instances meta = %v, want index %d (the service's own) served by node-a", resp.GetMeta(), i2)
	}
	wantInstances(t, "passing only", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web", PassingOnly: true}), web2Stored)
	wantInstances(t, "unknown service", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "nope"}))
	svcs := servicesOf(ctx, t, c)
	wantServices(t, "after registration", svcs, summary("api", 1, 1), summary("web", 2, 1))
	if svcs.GetMeta().GetIndex() != i3 {
		t.Errorf("Services index = %d, want %d", svcs.GetMeta().GetIndex(), i3)
	}

	// The agent passes the check, then warns.
	i4 := updateCheck(ctx, t, c, "web-1", passing, "all good")
	wantInstances(t, "passing", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web", PassingOnly: true}),
		web1Stored(passing, "all good", i1, i4), web2Stored)
	wantServices(t, "passing", servicesOf(ctx, t, c), summary("api", 1, 1), summary("web", 2, 2))
	i5 := updateCheck(ctx, t, c, "web-1", warning, "slow disk")
	wantInstances(t, "warning, passing only", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web", PassingOnly: true}), web2Stored)
	wantInstances(t, "warning", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"}),
		web1Stored(warning, "slow disk", i1, i5), web2Stored)
	wantServices(t, "warning", servicesOf(ctx, t, c), summary("api", 1, 1), summary("web", 2, 1))

	// Re-registration with the same check keeps its health and CreateIndex;
	// with another TTL it starts over.
	web1.Port = 8081
	i6 := register(ctx, t, c, web1)
	wantInstances(t, "re-registered, same check", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"}),
		web1Stored(warning, "slow disk", i1, i6), web2Stored)
	web1.Ttl = durationpb.New(20 * time.Second)
	i7 := register(ctx, t, c, web1)
	wantInstances(t, "re-registered, new TTL", instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"}),
		web1Stored(critical, "TTL check not yet updated", i1, i7), web2Stored)

	// Deregistration; an unknown ID succeeds and says so.
	d, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "web-1"})
	if err != nil || !d.GetExisted() || d.GetIndex() != i7+1 {
		t.Fatalf("Deregister(web-1) = %v, %v; want existed at %d", d, err, i7+1)
	}
	d, err = c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "web-1"})
	if err != nil || d.GetExisted() {
		t.Fatalf("second Deregister(web-1) = %v, %v; want success, not existed", d, err)
	}
	resp = instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"})
	wantInstances(t, "deregistered", resp, web2Stored)
	if resp.GetMeta().GetIndex() != i7+1 {
		t.Errorf("Instances index after deregistration = %d, want %d", resp.GetMeta().GetIndex(), i7+1)
	}
	if _, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "api-1"}); err != nil {
		t.Fatalf("Deregister(api-1): %v", err)
	}
	wantServices(t, "api gone", servicesOf(ctx, t, c), summary("web", 1, 1))
}

// TestCatalogRejectsBadInput sends what an attacker or a careless client
// would: every request is refused with InvalidArgument / INVALID_INSTANCE
// (NotFound for an unknown ID) naming the field, and nothing is written.
func TestCatalogRejectsBadInput(t *testing.T) { //nolint:tparallel // the subtests share one node; the checks after them (nothing changed) must run after them, which parallel subtests would not
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	c := n.client
	register(ctx, t, c, inst("web-1", "web", withTTL(time.Second)))
	register(ctx, t, c, inst("web-2", "web"))
	beforeSvcs := servicesOf(ctx, t, c)
	beforeWeb := instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"})

	reg := func(in *chainstorev1.Instance) func() error {
		return func() error {
			_, err := c.Register(ctx, &chainstorev1.RegisterRequest{Instance: in})
			return err
		}
	}
	check := func(req *chainstorev1.UpdateCheckRequest) func() error {
		return func() error {
			_, err := c.UpdateCheck(ctx, req)
			return err
		}
	}
	manyTags := make([]string, 65)
	for i := range manyTags {
		manyTags[i] = fmt.Sprint("t", i)
	}
	cases := map[string]struct {
		call     func() error
		wantCode codes.Code // InvalidArgument unless set
		wantID   string     // metadata "id"
		wantText string     // the exact error text (metadata "error")
		// prefixOnly: wantText is a prefix of the text.
		prefixOnly bool
	}{
		"register without instance": {call: reg(nil), wantText: "instance: Instance: must be set"},
		"empty ID":                  {call: reg(inst("", "web")), wantText: "instance: ID: must be set"},
		"ID with white space": {call: reg(inst("web 3", "web")), wantID: "web 3",
			wantText: `instance "web 3": ID: contains white space or a control character`},
		"ID with a control character": {call: reg(inst("web\x00", "web")), wantID: "web\x00",
			wantText: `instance "web\x00": ID: contains white space or a control character`},
		"ID too long": {call: reg(inst(strings.Repeat("x", 257), "web")), wantID: strings.Repeat("x", 257),
			wantText: fmt.Sprintf("instance %q: ID: longer than 256 bytes", strings.Repeat("x", 257))},
		"empty service": {call: reg(inst("web-3", "")), wantID: "web-3", wantText: `instance "web-3": Service: must be set`},
		"no address": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Address = "" })), wantID: "web-3",
			wantText: `instance "web-3": Address: must be set`},
		"port 0": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Port = 0 })), wantID: "web-3",
			wantText: `instance "web-3": Port: 0 is out of range 1-65535`},
		"port 70000": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Port = 70000 })), wantID: "web-3",
			wantText: `instance "web-3": Port: 70000 is out of range 1-65535`},
		"port 2^32-1": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Port = 1<<32 - 1 })), wantID: "web-3",
			wantText: `instance "web-3": Port: 4294967295 is out of range 1-65535`},
		"other datacenter": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Datacenter = "dc2" })), wantID: "web-3",
			wantText: `instance "web-3": Datacenter: "dc2" is not this cluster's datacenter "dc1"`},
		"TTL too short": {call: reg(inst("web-3", "web", withTTL(time.Millisecond))), wantID: "web-3",
			wantText: `instance "web-3": TTL: 1ms is out of range 100ms-24h0m0s`},
		"negative TTL": {call: reg(inst("web-3", "web", withTTL(-time.Second))), wantID: "web-3",
			wantText: `instance "web-3": TTL: -1s is out of range 100ms-24h0m0s`},
		"malformed TTL": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) {
			in.Ttl = &durationpb.Duration{Seconds: 1, Nanos: -1}
		})), wantID: "web-3", wantText: `instance "web-3": TTL: `, prefixOnly: true}, // protobuf's own text is deliberately unstable
		"too many tags": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Tags = manyTags })), wantID: "web-3",
			wantText: `instance "web-3": Tags: 65 tags, at most 64`},
		"bad meta key": {call: reg(inst("web-3", "web", func(in *chainstorev1.Instance) { in.Meta = map[string]string{"a b": "x"} })), wantID: "web-3",
			wantText: `instance "web-3": Meta: key "a b": contains white space or a control character`},
		"ID of another service": {call: reg(inst("web-1", "api")), wantID: "web-1",
			wantText: `instance "web-1": ID: already registered for service "web"; deregister it first`},
		"check without ID": {call: check(&chainstorev1.UpdateCheckRequest{Status: passing}), wantText: "instance: ID: must be set"},
		"unspecified status": {call: check(&chainstorev1.UpdateCheckRequest{Id: "web-1"}), wantID: "web-1",
			wantText: `instance "web-1": Status: unknown health status "HEALTH_STATUS_UNSPECIFIED": want PASSING, WARNING or CRITICAL`},
		"unknown status": {call: check(&chainstorev1.UpdateCheckRequest{Id: "web-1", Status: 42}), wantID: "web-1",
			wantText: `instance "web-1": Status: unknown health status "42": want PASSING, WARNING or CRITICAL`},
		"note too long": {call: check(&chainstorev1.UpdateCheckRequest{Id: "web-1", Status: passing, Note: strings.Repeat("n", 4097)}), wantID: "web-1",
			wantText: `instance "web-1": Note: longer than 4096 bytes`},
		"check of an instance without TTL": {call: check(&chainstorev1.UpdateCheckRequest{Id: "web-2", Status: passing}), wantID: "web-2",
			wantText: `instance "web-2": TTL: the instance has no TTL check to update`},
		"check of an unknown ID": {call: check(&chainstorev1.UpdateCheckRequest{Id: "web-9", Status: passing}), wantCode: codes.NotFound},
		"deregister without ID": {call: func() error {
			_, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{})
			return err
		}, wantText: "instance: ID: must be set"},
		"instances without service": {call: func() error {
			_, err := c.Instances(ctx, &chainstorev1.InstancesRequest{})
			return err
		}, wantText: "instance: Service: must be set"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if tc.wantCode == codes.NotFound {
				if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"web-9"`) {
					t.Fatalf("error = %v, want NotFound naming web-9", err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || api.ErrorReason(err) != api.ReasonInvalidInstance {
				t.Fatalf("error = %v (reason %q), want InvalidArgument with reason %s", err, api.ErrorReason(err), api.ReasonInvalidInstance)
			}
			md := api.ErrorInfo(err).GetMetadata()
			if tc.prefixOnly && strings.HasPrefix(md[api.MetaError], tc.wantText) {
				tc.wantText = md[api.MetaError]
			}
			wantMD := map[string]string{api.MetaError: tc.wantText}
			if tc.wantID != "" {
				wantMD[api.MetaID] = tc.wantID
			}
			if diff := cmp.Diff(wantMD, md); diff != "" {
				t.Errorf("ErrorInfo metadata (-want +got):\n%s", diff)
			}
			if msg := status.Convert(err).Message(); msg != tc.wantText {
				t.Errorf("status message = %q, want %q", msg, tc.wantText)
			}
		})
	}
	// Nothing was half-applied.
	if diff := cmp.Diff(beforeSvcs, servicesOf(ctx, t, c), protocmp.Transform()); diff != "" {
		t.Errorf("Services changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeWeb, instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"}), protocmp.Transform()); diff != "" {
		t.Errorf("Instances(web) changed (-before +after):\n%s", diff)
	}
	if st := n.fsm.Store().Instance("web-3"); st != nil {
		t.Errorf("web-3 was stored: %+v", st)
	}
}

func TestCatalogBlockingInstances(t *testing.T) { //nolint:tparallel // the subtests share one node and run in order: each blocks on the index the ones before left
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	c := n.client
	base := register(ctx, t, c, inst("web-1", "web", withTTL(time.Minute)))

	type result struct {
		resp *chainstorev1.InstancesResponse
		err  error
	}
	instancesAsync := func(minIndex uint64, wait time.Duration) <-chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := c.Instances(ctx, &chainstorev1.InstancesRequest{Service: "web",
				Options: &chainstorev1.QueryOptions{MinIndex: minIndex, Wait: durationpb.New(wait)}})
			ch <- result{resp, err}
		}()
		return ch
	}

	writes := []struct {
		name  string
		write func(t *testing.T) uint64
		want  []string // the IDs of web's instances after the write
	}{
		{"register", func(t *testing.T) uint64 {
			t.Helper()
			return register(ctx, t, c, inst("web-2", "web"))
		}, []string{"web-1", "web-2"}},
		{"check update", func(t *testing.T) uint64 {
			t.Helper()
			return updateCheck(ctx, t, c, "web-1", passing, "")
		}, []string{"web-1", "web-2"}},
		{"deregister", func(t *testing.T) uint64 {
			t.Helper()
			d, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "web-2"})
			if err != nil {
				t.Fatalf("Deregister: %v", err)
			}
			return d.GetIndex()
		}, []string{"web-1"}},
	}
	for _, w := range writes {
		t.Run("wakes on "+w.name, func(t *testing.T) {
			ch := instancesAsync(base, time.Minute)
			waitBlocked(t, n.srv, 1)
			idx := w.write(t)
			r := <-ch
			if r.err != nil || r.resp.GetMeta().GetIndex() != idx {
				t.Fatalf("blocking Instances = %v, %v; want index %d", r.resp, r.err, idx)
			}
			var ids []string
			for _, ih := range r.resp.GetInstances() {
				ids = append(ids, ih.GetInstance().GetId())
			}
			if !cmp.Equal(ids, w.want) {
				t.Errorf("instances = %v, want %v", ids, w.want)
			}
			base = idx
		})
	}

	t.Run("ignores other services until the wait ends", func(t *testing.T) {
		const wait = 300 * time.Millisecond
		start := time.Now()
		ch := instancesAsync(base, wait)
		waitBlocked(t, n.srv, 1)
		register(ctx, t, c, inst("api-2", "api"))
		if _, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "api-1"}); err != nil {
			t.Fatalf("Deregister: %v", err)
		}
		r := <-ch
		if elapsed := time.Since(start); r.err != nil || elapsed < wait || r.resp.GetMeta().GetIndex() != base {
			t.Errorf("Instances = %v, %v after %s; want index %d after >= %s", r.resp.GetMeta(), r.err, elapsed, base, wait)
		}
	})

	t.Run("Services wakes on any service", func(t *testing.T) {
		minIndex := servicesOf(ctx, t, c).GetMeta().GetIndex()
		ch := make(chan *chainstorev1.ServicesResponse, 1)
		go func() {
			resp, err := c.Services(ctx, &chainstorev1.ServicesRequest{
				Options: &chainstorev1.QueryOptions{MinIndex: minIndex, Wait: durationpb.New(time.Minute)}})
			if err != nil {
				t.Errorf("blocking Services: %v", err)
			}
			ch <- resp
		}()
		waitBlocked(t, n.srv, 1)
		idx := register(ctx, t, c, inst("db-1", "db"))
		if resp := <-ch; resp.GetMeta().GetIndex() != idx {
			t.Errorf("blocking Services returned index %d, want %d", resp.GetMeta().GetIndex(), idx)
		}
	})
}

func TestCatalogFollowerForwardsToLeader(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	leader := startESNode(t, "L", true, cl, nil)
	follower := startESNode(t, "F", false, cl, nil)
	follower.raft.set(func(r *esRaft) { r.leaderID = "L" })
	ctx := testCtx(t)
	c := follower.client

	web1 := inst("web-1", "web", withTTL(time.Minute))
	i1 := register(ctx, t, c, web1)
	i2 := updateCheck(ctx, t, c, "web-1", passing, "ok")
	if applies, _ := leader.raft.counts(); applies != 2 || i1 != 1 || i2 != 2 {
		t.Fatalf("writes through the follower: indexes %d, %d, leader applies %d; want 1, 2 and 2", i1, i2, applies)
	}
	if st := leader.fsm.Store().Instance("web-1"); st == nil || st.ModifyIndex != i2 {
		t.Fatalf("leader holds web-1 = %+v, want it at %d", st, i2)
	}

	// Default reads go to the leader; a stale read answers from the
	// follower's own (empty) state.
	resp := instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web"})
	wantInstances(t, "default read via follower", resp, stored(web1, passing, "ok", i1, i2))
	if resp.GetMeta().GetServedBy() != "node-L" {
		t.Errorf("default read served by %q, want node-L", resp.GetMeta().GetServedBy())
	}
	stale := instancesOf(ctx, t, c, &chainstorev1.InstancesRequest{Service: "web",
		Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}})
	if len(stale.GetInstances()) != 0 || stale.GetMeta().GetServedBy() != "node-F" {
		t.Errorf("stale read via follower = %v, want F's empty catalog", stale)
	}
	wantServices(t, "Services via follower", servicesOf(ctx, t, c), summary("web", 1, 1))

	// Errors come back as the leader sent them.
	_, err := c.Register(ctx, &chainstorev1.RegisterRequest{Instance: inst("web-1", "api")})
	if api.ErrorReason(err) != api.ReasonInvalidInstance || api.ErrorInfo(err).GetMetadata()[api.MetaID] != "web-1" {
		t.Errorf("duplicate ID via follower = %v, want INVALID_INSTANCE for web-1", err)
	}
	if _, err := c.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: "web-9", Status: passing}); status.Code(err) != codes.NotFound {
		t.Errorf("check of an unknown ID via follower = %v, want NotFound", err)
	}
	// Invalid input is refused by the follower itself.
	before, _ := leader.raft.counts()
	if _, err := c.Register(ctx, &chainstorev1.RegisterRequest{Instance: inst("web-2", "web", func(in *chainstorev1.Instance) { in.Port = 0 })}); api.ErrorReason(err) != api.ReasonInvalidInstance {
		t.Errorf("port 0 via follower = %v, want INVALID_INSTANCE", err)
	}
	if after, _ := leader.raft.counts(); after != before {
		t.Errorf("leader applies %d -> %d: an invalid registration reached Raft", before, after)
	}

	d, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "web-1"})
	if err != nil || !d.GetExisted() {
		t.Fatalf("Deregister via follower = %v, %v; want existed (the leader's state)", d, err)
	}
	if st := leader.fsm.Store().Instance("web-1"); st != nil {
		t.Errorf("leader still holds web-1 after deregistration: %+v", st)
	}

	// A write another server already forwarded is not forwarded again.
	fctx := metadata.AppendToOutgoingContext(ctx, forwardedHeader, "other")
	_, err = c.Register(fctx, &chainstorev1.RegisterRequest{Instance: web1})
	if info := api.ErrorInfo(err); status.Code(err) != codes.FailedPrecondition || info.GetReason() != api.ReasonNotLeader ||
		info.GetMetadata()[api.MetaLeaderAddr] != leader.addr {
		t.Errorf("forwarded Register on follower = %v (%v), want FailedPrecondition NOT_LEADER naming %s", err, info, leader.addr)
	}
}

// TestCatalogWritesAreAdmittedAsWrites: catalog writes take the write
// slots of the admission control; catalog reads do not.
func TestCatalogWritesAreAdmittedAsWrites(t *testing.T) {
	t.Parallel()
	const limit = 1
	n := startLimNode(t, func(c *ServerConfig) { c.MaxConcurrentWrites = limit })
	ctx := testCtx(t)
	c := n.client
	register(ctx, t, c, inst("web-1", "web", withTTL(time.Minute)))
	n.raft.hold()

	var wg sync.WaitGroup
	wg.Add(1)
	var inFlightErr error
	go func() {
		defer wg.Done()
		_, inFlightErr = c.Register(ctx, &chainstorev1.RegisterRequest{Instance: inst("web-2", "web")})
	}()
	testutil.Poll(t, 10*time.Second, "the registration in raft", func() bool { return n.raft.active.Load() == 1 })

	calls := map[string]func() error{
		"Register": func() error {
			_, err := c.Register(ctx, &chainstorev1.RegisterRequest{Instance: inst("web-3", "web")})
			return err
		},
		"UpdateCheck": func() error {
			_, err := c.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: "web-1", Status: passing})
			return err
		},
		"Deregister": func() error {
			_, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "web-1"})
			return err
		},
	}
	for name, call := range calls {
		t.Logf("%s at the cap", name)
		wantOverloaded(t, call(), classWrite, limit)
	}
	if _, err := c.Instances(ctx, &chainstorev1.InstancesRequest{Service: "web"}); err != nil {
		t.Errorf("Instances while writes are at the cap: %v", err)
	}
	n.raft.release()
	wg.Wait()
	if inFlightErr != nil {
		t.Errorf("admitted Register: %v", inFlightErr)
	}
}
