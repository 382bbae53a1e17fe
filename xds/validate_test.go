package xds

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/chainstore/chainstore/chain"
)

// validBase builds resources that pass Validate and use every shape: a
// router with a header match and a retry policy, a splitter leg, and a
// resolver with failover (an aggregate cluster).
func validBase(t *testing.T) *Resources {
	t.Helper()
	c := compile(t, compileOpts{},
		grpcDefaults("web"), grpcDefaults("web-backup"),
		resolver("web", func(r *chain.ServiceResolverConfigEntry) {
			r.Subsets = versionSubsets("v1", "v2")
			r.Failover = map[string]chain.ServiceResolverFailover{"*": {Service: "web-backup"}}
		}),
		splitter("web", chain.ServiceSplit{Weight: 50, ServiceSubset: "v1"}, chain.ServiceSplit{Weight: 50, ServiceSubset: "v2"}),
		router("web", chain.ServiceRoute{
			Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.", Header: []chain.ServiceRouteHTTPMatchHeader{{Name: "x-canary", Prefix: "y"}}}),
			Destination: &chain.ServiceRouteDestination{
				ServiceSubset: "v2", NumRetries: 2, RetryOnStatusCodes: []uint32{503}, RequestTimeout: chain.Duration(time.Second),
			},
		}),
	)
	r, err := Build(c, catalogOf(
		inst("web-1", "web", "10.0.0.1", 8080, "v1"),
		inst("web-2", "web", "10.0.0.2", 8080, "v2"),
		inst("backup-1", "web-backup", "10.0.2.1", 8080, ""),
	))
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	if err := Validate(r); err != nil {
		t.Fatalf("Validate(base) = %v", err)
	}
	return r
}

// rejectCase is one broken rule: mutate breaks resources that passed
// Validate, and Validate must then report a problem containing wantMsg.
type rejectCase struct {
	mutate  func(t *testing.T, r *Resources)
	wantMsg string
}

// routeRejectCases break the listener and the route configuration.
func routeRejectCases() map[string]rejectCase {
	return map[string]rejectCase{
		"MissingListener": {func(_ *testing.T, r *Resources) {
			r.Listener = nil
		}, "missing"},
		"ListenerWrongRouteConfig": {func(t *testing.T, r *Resources) {
			t.Helper()
			setHCM(t, r, func(h *hcmv3.HttpConnectionManager) { h.GetRds().RouteConfigName = "other" })
		}, `references route configuration "other"`},
		"NoRouterFilter": {func(t *testing.T, r *Resources) {
			t.Helper()
			setHCM(t, r, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = nil })
		}, "has 0 HTTP filters"},
		"NoWildcardDomain": {func(_ *testing.T, r *Resources) {
			r.RouteConfig.GetVirtualHosts()[0].Domains = []string{"web"}
		}, `has no virtual host with domain "*"`},
		"RouteToMissingCluster": {func(_ *testing.T, r *Resources) {
			firstRoute(r).GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "nope"}
		}, `routes to cluster "nope", which does not exist`},
		"EmptyPrefixMatcher": {func(_ *testing.T, r *Resources) {
			firstRoute(r).GetMatch().GetHeaders()[0].HeaderMatchSpecifier = stringMatch(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{}})
		}, "empty prefix is not allowed in a string matcher"},
		"InvalidRegex": {func(_ *testing.T, r *Resources) {
			firstRoute(r).GetMatch().PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(x"}}
		}, `regex "(x" is not valid RE2`},
		"NumRetriesZero": {func(_ *testing.T, r *Resources) {
			firstRoute(r).GetRoute().GetRetryPolicy().NumRetries = wrapperspb.UInt32(0)
		}, "num_retries must be unset or at least 1"},
		"EnvoyRetryCondition": {func(_ *testing.T, r *Resources) {
			firstRoute(r).GetRoute().GetRetryPolicy().RetryOn = "unavailable,connect-failure"
		}, `retry_on "connect-failure" is not a gRPC status name`},
		"TotalWeight": {func(_ *testing.T, r *Resources) {
			wc := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()[1].GetRoute().GetWeightedClusters()
			wc.TotalWeight = wrapperspb.UInt32(10000) //nolint:staticcheck // deprecated field set on purpose
		}, "total_weight must stay unset"},
	}
}

// clusterRejectCases break clusters, assignments and references.
func clusterRejectCases() map[string]rejectCase {
	return map[string]rejectCase{
		"DuplicateAddress": {func(_ *testing.T, r *Resources) {
			l := r.Endpoints[len(r.Endpoints)-1].GetEndpoints()[0]
			l.LbEndpoints = append(l.LbEndpoints, lbe("10.0.0.1", 8080, corev3.HealthStatus_HEALTHY), lbe("10.0.0.1", 8080, corev3.HealthStatus_UNHEALTHY))
		}, "duplicate endpoint with the same address 10.0.0.1:8080"},
		"DuplicateAddressAcrossPriorities": {func(_ *testing.T, r *Resources) {
			cla := assignmentOf(r, "v1.web.default.dc1")
			cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
				Locality: &corev3.Locality{Region: "dc1"}, LoadBalancingWeight: wrapperspb.UInt32(1), Priority: 1,
				LbEndpoints: []*endpointv3.LbEndpoint{lbe("10.0.0.1", 8080, corev3.HealthStatus_HEALTHY)},
			})
		}, "duplicate endpoint with the same address 10.0.0.1:8080"},
		"LocalityWeightZero": {func(_ *testing.T, r *Resources) {
			r.Endpoints[0].GetEndpoints()[0].LoadBalancingWeight = nil
		}, "load_balancing_weight must be at least 1"},
		"MissingLocality": {func(_ *testing.T, r *Resources) {
			r.Endpoints[0].GetEndpoints()[0].Locality = nil
		}, "has no locality"},
		"PriorityGap": {func(_ *testing.T, r *Resources) {
			r.Endpoints[0].GetEndpoints()[0].Priority = 1
		}, "priority 0 is missing"},
		"MissingAssignment": {func(_ *testing.T, r *Resources) {
			r.Endpoints = r.Endpoints[1:]
		}, "which does not exist"},
		"AggregateMissingChild": {func(t *testing.T, r *Resources) {
			t.Helper()
			setAggregateChildren(t, r, "failover-target~0~"+targetName("v2.web.default.dc1"), "nope")
		}, `has child cluster "nope", which does not exist`},
		"AggregateEmpty": {func(t *testing.T, r *Resources) {
			t.Helper()
			setAggregateChildren(t, r)
		}, "aggregate cluster has no children"},
		"AggregateCycle": {func(t *testing.T, r *Resources) {
			t.Helper()
			setAggregateChildren(t, r, aggregateOf(t, r).GetName())
		}, "is its own descendant"},
		"ClusterProvided": {func(_ *testing.T, r *Resources) {
			r.Clusters[0].LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
		}, "lb_policy CLUSTER_PROVIDED is NACKed"},
		"TLS": {func(_ *testing.T, r *Resources) {
			r.Clusters[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls"}
		}, "must be plaintext"},
		"ValidateAllConnectTimeout": {func(_ *testing.T, r *Resources) {
			r.Clusters[0].ConnectTimeout = durationpb.New(0)
		}, "ConnectTimeout"},
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := routeRejectCases()
	maps.Copy(tests, clusterRejectCases())
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := validBase(t)
			tc.mutate(t, r)
			err := Validate(r)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate(%s) = %v, want a *ValidationError", name, err)
			}
			t.Logf("Validate(%s) = %v", name, err)
			for _, p := range ve.Problems {
				if strings.Contains(p.Msg, tc.wantMsg) {
					return
				}
			}
			t.Errorf("Validate(%s) = %v, want a problem containing %q", name, err, tc.wantMsg)
		})
	}
}

func TestValidateNil(t *testing.T) {
	t.Parallel()
	var ve *ValidationError
	if err := Validate(nil); !errors.As(err, &ve) {
		t.Errorf("Validate(nil) = %v, want a *ValidationError", err)
	}
}

func TestValidationErrorText(t *testing.T) {
	t.Parallel()
	err := &ValidationError{Problems: []Problem{{Resource: `cluster "a"`, Msg: "x"}, {Resource: "listener", Msg: "missing"}}}
	want := `invalid xDS resources (2 problems); cluster "a": x; listener: missing`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// ---- helpers ----

func firstRoute(r *Resources) *routev3.Route {
	return r.RouteConfig.GetVirtualHosts()[0].GetRoutes()[0]
}

func assignmentOf(r *Resources, targetID string) *endpointv3.ClusterLoadAssignment {
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() == targetName(targetID) {
			return cla
		}
	}
	return nil
}

// aggregateOf returns the aggregate cluster of validBase (v2 fails over).
func aggregateOf(t *testing.T, r *Resources) *clusterv3.Cluster {
	t.Helper()
	for _, c := range r.Clusters {
		if c.GetClusterType() != nil {
			return c
		}
	}
	t.Fatal("no aggregate cluster")
	return nil
}

func setAggregateChildren(t *testing.T, r *Resources, children ...string) {
	t.Helper()
	cfg, err := anypb.New(&aggregatev3.ClusterConfig{Clusters: children})
	if err != nil {
		t.Fatal(err)
	}
	aggregateOf(t, r).GetClusterType().TypedConfig = cfg
}

func setHCM(t *testing.T, r *Resources, mod func(*hcmv3.HttpConnectionManager)) {
	t.Helper()
	hcm := &hcmv3.HttpConnectionManager{}
	if err := r.Listener.GetApiListener().GetApiListener().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	mod(hcm)
	a, err := anypb.New(hcm)
	if err != nil {
		t.Fatal(err)
	}
	r.Listener.GetApiListener().ApiListener = a
}
