package xds

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// Build cases for the entry fields later Consul versions added (header
// modifiers, retry conditions, idle and request timeouts, load balancers,
// failover targets). They run in TestBuild with the other cases.

func laterBuildTestCases() map[string]buildTestCase {
	return map[string]buildTestCase{
		"RingHashFailoverTargets": testcaseRingHashFailoverTargets(),
		"LeastRequest":            testcaseLeastRequest(),
		"MaglevFallsBack":         testcaseMaglevFallsBack(),
		"RouteLaterFeatures":      testcaseRouteLaterFeatures(),
		"SplitHeaderModifiers":    testcaseSplitHeaderModifiers(),
	}
}

func features(ws []Warning) []grpccheck.Feature {
	var out []grpccheck.Feature
	for _, w := range ws {
		out = append(out, w.Feature)
	}
	return out
}

func testcaseRingHashFailoverTargets() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"), grpcDefaults("web-backup"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) {
				r.RequestTimeout = chain.Duration(2 * time.Second)
				r.Failover = map[string]chain.ServiceResolverFailover{"*": {Targets: []chain.ServiceResolverFailoverTarget{
					{Service: "web-backup"}, {Datacenter: "dc2"},
				}}}
				r.LoadBalancer = &chain.LoadBalancer{
					Policy:         chain.LBPolicyRingHash,
					RingHashConfig: &chain.RingHashConfig{MinimumRingSize: 64, MaximumRingSize: 4096},
					HashPolicies: []chain.HashPolicy{
						{Field: chain.HashPolicyHeader, FieldValue: "X-User", Terminal: true},
						{Field: chain.HashPolicyCookie, FieldValue: "sid", CookieConfig: &chain.CookieConfig{TTL: chain.Duration(time.Hour), Path: "/"}},
					},
				}
			}),
		},
		instances: []*catalog.Stored{
			inst("web-1", "web", "10.0.0.1", 8080, ""),
			inst("backup-1", "web-backup", "10.0.2.1", 8080, ""),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			primary := targetName("web.default.dc1")
			wantNames := []string{FailoverChildName(0, primary), FailoverChildName(1, primary), FailoverChildName(2, primary), primary}
			if diff := cmp.Diff(wantNames, clusterNames(r)); diff != "" {
				t.Fatalf("cluster names (-want +got):\n%s", diff)
			}
			wantRH := &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_XX_HASH}
			wantRH.MinimumRingSize, wantRH.MaximumRingSize = wrapperspb.UInt64(64), wrapperspb.UInt64(4096)
			for _, c := range r.Clusters {
				if c.GetLbPolicy() != clusterv3.Cluster_RING_HASH {
					t.Errorf("cluster %s lb_policy = %v, want RING_HASH", c.GetName(), c.GetLbPolicy())
				}
				if diff := cmp.Diff(wantRH, c.GetRingHashLbConfig(), protocmp.Transform()); diff != "" {
					t.Errorf("cluster %s ring_hash_lb_config (-want +got):\n%s", c.GetName(), diff)
				}
			}
			action := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()[0].GetRoute()
			wantHash := []*routev3.RouteAction_HashPolicy{
				{Terminal: true, PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"}}},
				{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{
					Name: "sid", Ttl: durationpb.New(time.Hour), Path: "/"}}},
			}
			if diff := cmp.Diff(wantHash, action.GetHashPolicy(), protocmp.Transform()); diff != "" {
				t.Errorf("hash_policy (-want +got):\n%s", diff)
			}
			if got := action.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration(); got != 2*time.Second {
				t.Errorf("max_stream_duration = %v, want the resolver's RequestTimeout 2s", got)
			}
			if diff := cmp.Diff([]grpccheck.Feature{grpccheck.FeatureHashPolicy}, features(r.Warnings)); diff != "" {
				t.Errorf("warning features (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseLeastRequest() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) {
				r.LoadBalancer = &chain.LoadBalancer{Policy: chain.LBPolicyLeastRequest, LeastRequestConfig: &chain.LeastRequestConfig{ChoiceCount: 4}}
			}),
		},
		instances: []*catalog.Stored{inst("web-1", "web", "10.0.0.1", 8080, "")},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			c := r.Clusters[0]
			if c.GetLbPolicy() != clusterv3.Cluster_LEAST_REQUEST || c.GetLeastRequestLbConfig().GetChoiceCount().GetValue() != 4 {
				t.Errorf("cluster = %v, want LEAST_REQUEST with choice_count 4", c)
			}
			if len(r.Warnings) != 0 {
				t.Errorf("warnings = %v, want none (gRPC clients honour least_request)", r.Warnings)
			}
		},
	}
}

func testcaseMaglevFallsBack() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) {
				r.LoadBalancer = &chain.LoadBalancer{Policy: chain.LBPolicyMaglev, HashPolicies: []chain.HashPolicy{{SourceIP: true}}}
			}),
		},
		instances: []*catalog.Stored{inst("web-1", "web", "10.0.0.1", 8080, "")},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			if c := r.Clusters[0]; c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN || c.GetLbConfig() != nil {
				t.Errorf("cluster = %v, want the default round robin (gRPC clients NACK maglev)", c)
			}
			// The hash policy is still translated (source IP is valid xDS).
			if hp := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetHashPolicy(); len(hp) != 1 || !hp[0].GetConnectionProperties().GetSourceIp() {
				t.Errorf("hash_policy = %v, want one source-IP policy", hp)
			}
			if diff := cmp.Diff([]grpccheck.Feature{grpccheck.FeatureLoadBalancer}, features(r.Warnings)); diff != "" {
				t.Errorf("warning features (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseRouteLaterFeatures() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"), grpcDefaults("admin"),
			resolver("admin", func(r *chain.ServiceResolverConfigEntry) { r.RequestTimeout = chain.Duration(9 * time.Second) }),
			router("web",
				chain.ServiceRoute{
					Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.Admin/"}),
					Destination: &chain.ServiceRouteDestination{
						Service: "admin", RequestTimeout: chain.Duration(time.Second), IdleTimeout: chain.Duration(30 * time.Second),
						NumRetries: 3, RetryOn: []string{"cancelled", "5xx", "unavailable"}, RetryOnStatusCodes: []uint32{503},
						RequestHeaders:  &chain.HTTPHeaderModifiers{Add: map[string]string{"x-b": "2", "x-a": "1"}, Set: map[string]string{"x-mode": "admin"}, Remove: []string{"x-debug"}},
						ResponseHeaders: &chain.HTTPHeaderModifiers{Remove: []string{"x-internal"}},
					},
				},
				chain.ServiceRoute{
					Match:       httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.Slow/"}),
					Destination: &chain.ServiceRouteDestination{Service: "admin"},
				}),
		},
		instances: []*catalog.Stored{inst("web-1", "web", "10.0.0.1", 8080, ""), inst("admin-1", "admin", "10.0.3.1", 8080, "")},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			routes := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()
			first, a := routes[0], routes[0].GetRoute()
			if got := a.GetRetryPolicy().GetRetryOn(); got != "cancelled,unavailable" {
				t.Errorf("retry_on = %q, want %q (the gRPC status names, 503 folded into unavailable)", got, "cancelled,unavailable")
			}
			if got := a.GetRetryPolicy().GetNumRetries().GetValue(); got != 3 {
				t.Errorf("num_retries = %d, want 3", got)
			}
			if got := a.GetIdleTimeout().AsDuration(); got != 30*time.Second {
				t.Errorf("idle_timeout = %v, want 30s", got)
			}
			if got := a.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration(); got != time.Second {
				t.Errorf("max_stream_duration = %v, want the route's 1s over the resolver's 9s", got)
			}
			wantAdd := []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-a", Value: "1"}, AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
				{Header: &corev3.HeaderValue{Key: "x-b", Value: "2"}, AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
				{Header: &corev3.HeaderValue{Key: "x-mode", Value: "admin"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
			}
			if diff := cmp.Diff(wantAdd, first.GetRequestHeadersToAdd(), protocmp.Transform()); diff != "" {
				t.Errorf("request_headers_to_add (-want +got):\n%s", diff)
			}
			if !cmp.Equal(first.GetRequestHeadersToRemove(), []string{"x-debug"}) || !cmp.Equal(first.GetResponseHeadersToRemove(), []string{"x-internal"}) {
				t.Errorf("headers to remove = %v / %v", first.GetRequestHeadersToRemove(), first.GetResponseHeadersToRemove())
			}
			if got := routes[1].GetRoute().GetMaxStreamDuration().GetMaxStreamDuration().AsDuration(); got != 9*time.Second {
				t.Errorf("second route max_stream_duration = %v, want the resolver's RequestTimeout 9s", got)
			}
			want := []grpccheck.Feature{grpccheck.FeatureIdleTimeout, grpccheck.FeatureHeaderModifiers, grpccheck.FeatureRetryOn}
			if diff := cmp.Diff(want, features(r.Warnings)); diff != "" {
				t.Errorf("warning features (-want +got):\n%s", diff)
			}
			if !strings.Contains(r.Warnings[2].Detail, "5xx") {
				t.Errorf("RetryOn warning %q does not name 5xx", r.Warnings[2].Detail)
			}
		},
	}
}

func testcaseSplitHeaderModifiers() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) { r.Subsets = versionSubsets("v1", "v2") }),
			splitter("web",
				chain.ServiceSplit{Weight: 90, ServiceSubset: "v1", RequestHeaders: &chain.HTTPHeaderModifiers{Set: map[string]string{"x-leg": "v1"}}},
				chain.ServiceSplit{Weight: 10, ServiceSubset: "v2", ResponseHeaders: &chain.HTTPHeaderModifiers{Add: map[string]string{"x-canary": "yes"}}}),
		},
		instances: []*catalog.Stored{inst("web-1", "web", "10.0.0.1", 8080, "v1"), inst("web-2", "web", "10.0.0.2", 8080, "v2")},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			legs := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetWeightedClusters().GetClusters()
			if len(legs) != 2 {
				t.Fatalf("legs = %v, want 2", legs)
			}
			if h := legs[0].GetRequestHeadersToAdd(); len(h) != 1 || h[0].GetHeader().GetKey() != "x-leg" ||
				h[0].GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("leg 0 request_headers_to_add = %v, want x-leg overwritten", h)
			}
			if h := legs[1].GetResponseHeadersToAdd(); len(h) != 1 || h[0].GetHeader().GetKey() != "x-canary" {
				t.Errorf("leg 1 response_headers_to_add = %v, want x-canary", h)
			}
			want := []grpccheck.Feature{grpccheck.FeatureHeaderModifiers, grpccheck.FeatureHeaderModifiers}
			if diff := cmp.Diff(want, features(r.Warnings)); diff != "" {
				t.Errorf("warning features (-want +got):\n%s", diff)
			}
		},
	}
}
