package xds

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/xdsserver"
)

// Entry documents of the tests. %[1]s is the service.
const (
	grpcDefaults = `{"Kind":"service-defaults","Name":%q,"Protocol":"grpc"}`
	// Subsets v1 and v2 by Service.Meta.version; v1 is the default.
	versionResolver = `{"Kind":"service-resolver","Name":%[1]q,"DefaultSubset":"v1","Subsets":{
	  "v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`
)

func put(tb testing.TB, srv *servertest.Single, format string, args ...any) {
	tb.Helper()
	srv.Put(fmt.Sprintf(format, args...))
}

// TestGRPCClients runs stock grpc-go xDS clients against one server, one
// service per case.
func TestGRPCClients(t *testing.T) {
	srv := servertest.StartSingle(t)
	cl := servertest.NewClient(t, srv.Addr())
	xs := srv.Server().XDS()

	t.Run("DefaultChainRoundRobin", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			register(t, cl, instance{id: fmt.Sprintf("rr-%d", i), service: "rr"})
		}
		conn := dialXDS(t, srv.Addr(), "rr-client", "rr")
		waitOnly(t, conn, "all three rr instances to answer", []string{"rr-1", "rr-2", "rr-3"})
		got := tally(conn, 300)
		t.Logf("300 calls: %v", got)
		for i := 1; i <= 3; i++ {
			if n := got[fmt.Sprintf("rr-%d", i)]; n != 100 {
				t.Errorf("rr-%d answered %d of 300 calls, want exactly 100 (round robin): %v", i, n, got)
			}
		}
	})

	t.Run("Splitter90_10", func(t *testing.T) {
		put(t, srv, grpcDefaults, "split")
		put(t, srv, versionResolver, "split")
		put(t, srv, `{"Kind":"service-splitter","Name":"split","Splits":[
		  {"Weight":90,"ServiceSubset":"v1"},{"Weight":10,"ServiceSubset":"v2"}]}`)
		register(t, cl, instance{id: "split-v1-a", service: "split", version: "v1"})
		register(t, cl, instance{id: "split-v1-b", service: "split", version: "v1"})
		register(t, cl, instance{id: "split-v2", service: "split", version: "v2"})
		conn := dialXDS(t, srv.Addr(), "split-client", "split")
		testutil.Poll(t, 20*time.Second, "both legs of the split to answer", func() bool {
			got := tally(conn, 100)
			return got["split-v2"] > 0 && got["split-v1-a"] > 0 && got["split-v1-b"] > 0 &&
				got["split-v2"]+got["split-v1-a"]+got["split-v1-b"] == 100
		})
		const n = 2000
		got := tally(conn, n)
		v2, v1 := got["split-v2"], got["split-v1-a"]+got["split-v1-b"]
		t.Logf("%d calls: %v (v2 %.1f%%)", n, got, 100*float64(v2)/n)
		// Binomial(2000, 0.1): mean 200, sigma 13.4; ±60 is 4.5 sigma.
		if v2 < 140 || v2 > 260 || v1+v2 != n {
			t.Errorf("v2 answered %d and v1 %d of %d calls, want 200±60 on v2 and no failure: %v", v2, v1, n, got)
		}
	})

	t.Run("HeaderRoute", func(t *testing.T) {
		put(t, srv, grpcDefaults, "hdr")
		put(t, srv, versionResolver, "hdr")
		put(t, srv, `{"Kind":"service-router","Name":"hdr","Routes":[
		  {"Match":{"HTTP":{"Header":[{"Name":"x-canary","Exact":"1"}]}},"Destination":{"ServiceSubset":"v2"}}]}`)
		register(t, cl, instance{id: "hdr-v1", service: "hdr", version: "v1"})
		register(t, cl, instance{id: "hdr-v2", service: "hdr", version: "v2"})
		conn := dialXDS(t, srv.Addr(), "hdr-client", "hdr")
		waitOnly(t, conn, "x-canary: 1 to reach v2", []string{"hdr-v2"}, "x-canary", "1")
		for _, tc := range []struct {
			meta []string
			want string
		}{
			{[]string{"x-canary", "1"}, "hdr-v2"},
			{nil, "hdr-v1"},
			{[]string{"x-canary", "2"}, "hdr-v1"},
		} {
			if got := tally(conn, 100, tc.meta...); got[tc.want] != 100 {
				t.Errorf("metadata %v: %v, want all 100 calls on %s", tc.meta, got, tc.want)
			}
		}
	})

	t.Run("FailedCheckDrains", func(t *testing.T) {
		register(t, cl, instance{id: "ttl-1", service: "ttl", ttl: time.Hour})
		register(t, cl, instance{id: "ttl-2", service: "ttl", ttl: time.Hour})
		conn := dialXDS(t, srv.Addr(), "ttl-client", "ttl")
		waitOnly(t, conn, "both ttl instances to answer", []string{"ttl-1", "ttl-2"})
		before := sentVersions(t, xs, "ttl-client")

		start := time.Now()
		setHealth(t, cl, "ttl-2", chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL)
		waitOnly(t, conn, "the critical instance to be drained", []string{"ttl-1"})
		t.Logf("drained within %s (sampling included)", time.Since(start).Round(time.Millisecond))
		if got := tally(conn, 200); got["ttl-1"] != 200 {
			t.Errorf("after ttl-2 failed its check: %v, want all 200 calls on ttl-1", got)
		}
		// A health change is an endpoint change only.
		after := sentVersions(t, xs, "ttl-client")
		for _, typ := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType} {
			if before[typ] != after[typ] {
				t.Errorf("%s: version %q before the health change, %q after; want it unchanged (EDS only)", typ, before[typ], after[typ])
			}
		}
		if before[resourcev3.EndpointType] == after[resourcev3.EndpointType] {
			t.Errorf("endpoints: version %q unchanged after the health change", after[resourcev3.EndpointType])
		}

		setHealth(t, cl, "ttl-2", chainstorev1.HealthStatus_HEALTH_STATUS_PASSING)
		waitOnly(t, conn, "ttl-2 to get traffic again", []string{"ttl-1", "ttl-2"})
	})

	t.Run("FailoverToAnotherService", func(t *testing.T) {
		put(t, srv, grpcDefaults, "fo")
		put(t, srv, grpcDefaults, "fo-backup")
		put(t, srv, `{"Kind":"service-resolver","Name":"fo","DefaultSubset":"v1",
		  "Subsets":{"v1":{"Filter":"Service.Meta.version == v1","OnlyPassing":true}},
		  "Failover":{"v1":{"Service":"fo-backup"}}}`)
		register(t, cl, instance{id: "fo-v1-a", service: "fo", version: "v1", ttl: time.Hour})
		register(t, cl, instance{id: "fo-v1-b", service: "fo", version: "v1", ttl: time.Hour})
		register(t, cl, instance{id: "fo-backup-1", service: "fo-backup"})
		conn := dialXDS(t, srv.Addr(), "fo-client", "fo")
		waitOnly(t, conn, "the primary subset to answer", []string{"fo-v1-a", "fo-v1-b"})

		setHealth(t, cl, "fo-v1-a", chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL)
		waitOnly(t, conn, "the healthy primary instance to take all traffic", []string{"fo-v1-b"})
		start := time.Now()
		setHealth(t, cl, "fo-v1-b", chainstorev1.HealthStatus_HEALTH_STATUS_WARNING) // OnlyPassing: not healthy
		waitOnly(t, conn, "traffic to fail over to fo-backup", []string{"fo-backup-1"})
		t.Logf("failed over within %s (sampling included)", time.Since(start).Round(time.Millisecond))
		if got := tally(conn, 200); got["fo-backup-1"] != 200 {
			t.Errorf("with no passing v1 instance: %v, want all 200 calls on fo-backup-1", got)
		}

		start = time.Now()
		setHealth(t, cl, "fo-v1-a", chainstorev1.HealthStatus_HEALTH_STATUS_PASSING)
		waitOnly(t, conn, "traffic to come back to the primary", []string{"fo-v1-a"})
		t.Logf("came back within %s (sampling included)", time.Since(start).Round(time.Millisecond))
	})

	t.Run("RouteChangeOnSameConnection", func(t *testing.T) {
		put(t, srv, grpcDefaults, "flip")
		put(t, srv, versionResolver, "flip")
		register(t, cl, instance{id: "flip-v1", service: "flip", version: "v1"})
		register(t, cl, instance{id: "flip-v2", service: "flip", version: "v2"})
		conn := dialXDS(t, srv.Addr(), "flip-client", "flip")
		waitOnly(t, conn, "v1 (the default subset) to answer", []string{"flip-v1"})
		stream := onlyStream(t, xs, "flip-client")

		// Calls keep going while the routes change.
		bg := startCaller(conn)
		toV2 := `{"Kind":"service-router","Name":"flip","Routes":[
		  {"Match":{"HTTP":{"PathPrefix":"/grpc.health.v1.Health/"}},"Destination":{"ServiceSubset":"v2"}}]}`
		// Still names the v2 cluster (for another service's methods).
		toV1 := `{"Kind":"service-router","Name":"flip","Routes":[
		  {"Match":{"HTTP":{"PathPrefix":"/other.Service/"}},"Destination":{"ServiceSubset":"v2"}}]}`

		// The first route to v2 introduces a cluster the channel has never
		// had. grpc-go v1.85.0 installs the new route table (config
		// selector) before its cluster manager has a child for the new
		// cluster (clientconn.go applies the selector, then updates the
		// balancer), so RPCs picking v2 in that window fail UNAVAILABLE
		// "unknown cluster selected for RPC". A client race, not a server
		// fault: count the failures and accept only that one.
		start := time.Now()
		srv.Put(toV2)
		waitOnly(t, conn, "the first route to v2 to take effect", []string{"flip-v2"})
		t.Logf("first route to v2 followed within %s", time.Since(start).Round(time.Millisecond))
		calls, failures, window := bg.take()
		t.Logf("new cluster: %d background calls, %d failed within %s (grpc-go's new-cluster race)", calls, len(failures), window)
		for _, f := range failures {
			if !strings.Contains(f, "unknown cluster selected for RPC") {
				t.Errorf("call failed while the first route to v2 was applied: %s", f)
			}
		}

		// Between known clusters, route changes fail no call.
		for i := range 3 {
			start := time.Now()
			srv.Put(toV1)
			waitOnly(t, conn, fmt.Sprintf("flip %d: the route back to v1 to take effect", i), []string{"flip-v1"})
			t.Logf("flip %d to v1 followed within %s", i, time.Since(start).Round(time.Millisecond))
			start = time.Now()
			srv.Put(toV2)
			waitOnly(t, conn, fmt.Sprintf("flip %d: the route to v2 to take effect", i), []string{"flip-v2"})
			t.Logf("flip %d to v2 followed within %s", i, time.Since(start).Round(time.Millisecond))
		}
		bg.stop()
		calls, failures, _ = bg.take()
		t.Logf("%d background calls during 6 route changes, %d failed", calls, len(failures))
		if len(failures) > 0 {
			t.Errorf("%d of %d calls failed during route changes, first: %s", len(failures), calls, failures[0])
		}
		after := onlyStream(t, xs, "flip-client")
		if after.StreamID != stream.StreamID || !after.ConnectedSince.Equal(stream.ConnectedSince) {
			t.Errorf("ADS stream changed: before %d since %s, after %d since %s; want one stream throughout",
				stream.StreamID, stream.ConnectedSince, after.StreamID, after.ConnectedSince)
		}
		testutil.Poll(t, 5*time.Second, "the client to ACK every type", func() bool {
			st := onlyStream(t, xs, "flip-client")
			for _, ts := range st.Types {
				if ts.Acked == "" || ts.Acked != ts.Sent || ts.NACKs != 0 {
					return false
				}
			}
			return len(st.Types) == 4
		})
		st := onlyStream(t, xs, "flip-client")
		if !strings.HasPrefix(st.UserAgent, "gRPC Go") {
			t.Errorf("user agent %q, want gRPC Go", st.UserAgent)
		}
	})

	t.Run("NACKNotResent", nackNotResent(srv, xs))
	t.Run("Delta", delta(srv, xs))

	for _, c := range xs.Chains() {
		if c.Error != "" || c.PublishedHash == "" {
			t.Errorf("chain %s: published %q, error %q", c.Name, c.PublishedHash, c.Error)
		}
	}
}

// caller makes calls in the background and records the failures.
type caller struct {
	done     chan struct{}
	finished chan struct{}
	mu       sync.Mutex
	calls    int
	failures []string
	// first and last failure since the last take.
	first, last time.Time
}

func startCaller(conn *grpc.ClientConn) *caller {
	c := &caller{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(c.finished)
		for {
			select {
			case <-c.done:
				return
			default:
			}
			_, err := who(conn)
			c.mu.Lock()
			c.calls++
			if err != nil {
				c.failures = append(c.failures, err.Error())
				c.last = time.Now()
				if c.first.IsZero() {
					c.first = c.last
				}
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// take returns the calls, the failures and how long they went on since
// the last take.
func (c *caller) take() (int, []string, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, f, d := c.calls, c.failures, c.last.Sub(c.first)
	c.calls, c.failures, c.first, c.last = 0, nil, time.Time{}, time.Time{}
	return n, f, d
}

// stop ends the calls and waits for the last one.
func (c *caller) stop() {
	close(c.done)
	<-c.finished
}

// onlyStream returns the single ADS stream of node, failing if there is
// not exactly one.
func onlyStream(tb testing.TB, xs *xdsserver.Server, node string) xdsserver.ClientStatus {
	tb.Helper()
	var found []xdsserver.ClientStatus
	for _, c := range xs.Clients() {
		if c.NodeID == node {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("node %s has %d streams, want 1: %+v", node, len(found), found)
	}
	return found[0]
}

// sentVersions returns the last version sent to node per type.
func sentVersions(tb testing.TB, xs *xdsserver.Server, node string) map[string]string {
	tb.Helper()
	out := make(map[string]string)
	for _, ts := range onlyStream(tb, xs, node).Types {
		out[ts.TypeURL] = ts.Sent
	}
	return out
}

// adsStream opens a raw ADS stream (state of the world) to addr.
func adsStream(tb testing.TB, addr string) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		tb.Fatalf("open ADS stream: %v", err)
	}
	return st
}

func send(tb testing.TB, st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, req *discoveryv3.DiscoveryRequest) {
	tb.Helper()
	if err := st.Send(req); err != nil {
		tb.Fatalf("send %s: %v", req.GetTypeUrl(), err)
	}
}

func recv(tb testing.TB, st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) *discoveryv3.DiscoveryResponse {
	tb.Helper()
	resp, err := st.Recv()
	if err != nil {
		tb.Fatalf("receive: %v", err)
	}
	return resp
}

// nackNotResent NACKs a first response (no version accepted yet) and
// a later update (an older version accepted) on a raw stream, and checks
// that the server sends neither rejected version again and records both
// NACKs.
func nackNotResent(srv *servertest.Single, xs *xdsserver.Server) func(*testing.T) {
	return func(t *testing.T) {
		put(t, srv, grpcDefaults, "nack")
		put(t, srv, versionResolver, "nack")
		router := `{"Kind":"service-router","Name":"nack","Routes":[{"Match":{"HTTP":{"PathPrefix":%q}},"Destination":{"ServiceSubset":"v2"}}]}`
		put(t, srv, router, "/a/")
		// A first stream makes the server publish the chain (the server may
		// answer before it has, with no listener: ACK that and wait).
		warm := adsStream(t, srv.Addr())
		req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "raw-warm"}, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"nack"}}
		for {
			send(t, warm, req)
			resp := recv(t, warm)
			if len(resp.GetResources()) == 1 {
				break
			}
			req = &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"nack"},
				VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		}

		// 1. NACK the first listener response of a new stream: its
		// version_info is "" (nothing accepted yet).
		st := adsStream(t, srv.Addr())
		node := &corev3.Node{Id: "raw-nack", UserAgentName: "raw test client"}
		send(t, st, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"nack"}})
		lds := recv(t, st)
		if lds.GetTypeUrl() != resourcev3.ListenerType || len(lds.GetResources()) != 1 || !strings.HasPrefix(lds.GetVersionInfo(), xs.VersionPrefix()) {
			t.Fatalf("first response: type %s, %d resources, version %q (prefix %q)", lds.GetTypeUrl(), len(lds.GetResources()), lds.GetVersionInfo(), xs.VersionPrefix())
		}
		send(t, st, &discoveryv3.DiscoveryRequest{
			TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"nack"}, ResponseNonce: lds.GetNonce(),
			ErrorDetail: &statuspb.Status{Code: 3, Message: "listener rejected by the test"},
		})
		// The server handles a stream's requests in order and queues its
		// responses in order: a re-sent listener would come before this.
		send(t, st, &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"nack"}})
		rds := recv(t, st)
		if rds.GetTypeUrl() != resourcev3.RouteType {
			t.Fatalf("after the NACK of %s: got %s version %q, want the route configuration (the rejected listener was re-sent)",
				lds.GetVersionInfo(), rds.GetTypeUrl(), rds.GetVersionInfo())
		}

		// 2. ACK the routes, NACK the next route update, then change the
		// routes again: the next response is the newer version, not the
		// rejected one again.
		send(t, st, &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"nack"},
			VersionInfo: rds.GetVersionInfo(), ResponseNonce: rds.GetNonce()})
		put(t, srv, router, "/b/")
		bad := recv(t, st)
		if bad.GetTypeUrl() != resourcev3.RouteType || bad.GetVersionInfo() == rds.GetVersionInfo() {
			t.Fatalf("after a route change: got %s version %q, want a new route configuration", bad.GetTypeUrl(), bad.GetVersionInfo())
		}
		send(t, st, &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"nack"},
			VersionInfo: rds.GetVersionInfo(), ResponseNonce: bad.GetNonce(),
			ErrorDetail: &statuspb.Status{Code: 3, Message: "routes rejected by the test"}})
		testutil.Poll(t, 5*time.Second, "the route NACK to be recorded", func() bool {
			for _, ts := range onlyStream(t, xs, "raw-nack").Types {
				if ts.TypeURL == resourcev3.RouteType {
					return ts.NACKs == 1
				}
			}
			return false
		})
		put(t, srv, router, "/c/")
		next := recv(t, st)
		if next.GetTypeUrl() != resourcev3.RouteType || next.GetVersionInfo() == bad.GetVersionInfo() || next.GetVersionInfo() == rds.GetVersionInfo() {
			t.Fatalf("after the NACK of %s and another change: got %s version %q, want a newer route configuration",
				bad.GetVersionInfo(), next.GetTypeUrl(), next.GetVersionInfo())
		}

		status := onlyStream(t, xs, "raw-nack")
		if status.UserAgent != "raw test client" {
			t.Errorf("user agent %q", status.UserAgent)
		}
		for _, ts := range status.Types {
			switch ts.TypeURL {
			case resourcev3.ListenerType:
				if ts.NACKs != 1 || ts.LastNACK != "listener rejected by the test" || ts.LastNACKVersion != lds.GetVersionInfo() || ts.Acked != "" {
					t.Errorf("listener status %+v, want 1 NACK of %s and nothing ACKed", ts, lds.GetVersionInfo())
				}
			case resourcev3.RouteType:
				if ts.NACKs != 1 || ts.LastNACK != "routes rejected by the test" || ts.LastNACKVersion != bad.GetVersionInfo() ||
					ts.Acked != rds.GetVersionInfo() || ts.Sent != next.GetVersionInfo() {
					t.Errorf("route status %+v, want 1 NACK of %s, %s ACKed, %s sent", ts, bad.GetVersionInfo(), rds.GetVersionInfo(), next.GetVersionInfo())
				}
			}
		}
	}
}

// delta subscribes to a listener over the delta protocol and ACKs it.
func delta(srv *servertest.Single, xs *xdsserver.Server) func(*testing.T) {
	return func(t *testing.T) {
		conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatalf("open delta stream: %v", err)
		}
		node := &corev3.Node{Id: "raw-delta", UserAgentName: "envoy"}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: []string{"delta"}}); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetName() != "delta" {
			t.Fatalf("delta response %v, want listener delta", resp)
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatalf("send ACK: %v", err)
		}
		testutil.Poll(t, 5*time.Second, "the delta ACK to be recorded", func() bool {
			c := onlyStream(t, xs, "raw-delta")
			return c.Delta && len(c.Types) == 1 && c.Types[0].Acked != "" && c.Types[0].Acked == c.Types[0].Sent &&
				c.Types[0].Sent == resp.GetSystemVersionInfo()
		})
	}
}
