package xds

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
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
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// buildTestCase is one named Build case: a chain compiled from entries
// (service "web" in dc1 unless opts say otherwise) and the catalog's
// instances. Every case must pass Validate, be deterministic and match
// testdata/build-<name>.golden; check asserts what the case is about.
type buildTestCase struct {
	opts      compileOpts
	entries   []chain.Entry
	instances []*catalog.Stored
	check     func(t *testing.T, c *chain.CompiledChain, r *Resources)
}

func buildTestCases() map[string]buildTestCase {
	return map[string]buildTestCase{
		"DefaultChain":         testcaseDefaultChain(),
		"RouterMatches":        testcaseRouterMatches(),
		"Splitter9010":         testcaseSplitter9010(),
		"Splitter100To0":       testcaseSplitter100To0(),
		"SubsetFilter":         testcaseSubsetFilter(),
		"HealthMapping":        testcaseHealthMapping(),
		"TTLCriticalUnhealthy": testcaseTTLCriticalUnhealthy(),
		"FailoverAggregate":    testcaseFailoverAggregate(),
		"EmptyTarget":          testcaseEmptyTarget(),
		"IgnoredFeatures":      testcaseIgnoredFeatures(),
		"DuplicateAddress":     testcaseDuplicateAddress(),
		"CustomizedChain":      testcaseCustomizedChain(),
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	cases := buildTestCases()
	for name, tc := range laterBuildTestCases() {
		cases[name] = tc
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := compile(t, tc.opts, tc.entries...)
			got, err := Build(c, catalogOf(tc.instances...))
			if err != nil {
				t.Fatalf("Build(%s) = %v", name, err)
			}
			if err := Validate(got); err != nil {
				t.Fatalf("Validate(Build(%s)) = %v", name, err)
			}
			again, err := Build(c, catalogOf(tc.instances...))
			if err != nil {
				t.Fatalf("second Build(%s) = %v", name, err)
			}
			if diff := cmp.Diff(got, again, protocmp.Transform()); diff != "" {
				t.Errorf("Build(%s) is not deterministic (-first +second):\n%s", name, diff)
			}
			chainWarnings := grpccheck.Warnings(c)
			if len(got.Warnings) < len(chainWarnings) {
				t.Fatalf("Build(%s).Warnings = %v, want it to start with grpccheck.Warnings(chain) = %v", name, got.Warnings, chainWarnings)
			}
			if diff := cmp.Diff(chainWarnings, got.Warnings[:len(chainWarnings)], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Build(%s).Warnings do not start with grpccheck.Warnings(chain) (-want +got):\n%s", name, diff)
			}
			testutil.Golden(t, filepath.Join("testdata", "build-"+name+".golden"), resourcesJSON(t, got))
			if tc.check != nil {
				tc.check(t, c, got)
			}
		})
	}
}

// ---- cases ----

func testcaseDefaultChain() buildTestCase {
	return buildTestCase{
		instances: []*catalog.Stored{
			inst("web-2", "web", "10.0.0.2", 8080, ""),
			inst("web-1", "web", "10.0.0.1", 8080, ""),
			inst("api-1", "api", "10.0.1.1", 8080, ""),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			web := targetName("web.default.dc1")
			checkListener(t, r, "web")
			wantRC := &routev3.RouteConfiguration{
				Name: "web",
				VirtualHosts: []*routev3.VirtualHost{{
					Name: "web", Domains: []string{"*"},
					Routes: []*routev3.Route{{Match: prefixMatch("/"), Action: toCluster(web)}},
				}},
			}
			if diff := cmp.Diff(wantRC, r.RouteConfig, protocmp.Transform()); diff != "" {
				t.Errorf("RouteConfig (-want +got):\n%s", diff)
			}
			wantCluster := &clusterv3.Cluster{
				Name:                 web,
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: web},
				ConnectTimeout:       durationpb.New(5 * time.Second),
			}
			if diff := cmp.Diff([]*clusterv3.Cluster{wantCluster}, r.Clusters, protocmp.Transform()); diff != "" {
				t.Errorf("Clusters (-want +got):\n%s", diff)
			}
			wantCLA := &endpointv3.ClusterLoadAssignment{
				ClusterName: web,
				Endpoints: []*endpointv3.LocalityLbEndpoints{{
					Locality:            &corev3.Locality{Region: "dc1"},
					LoadBalancingWeight: wrapperspb.UInt32(1),
					LbEndpoints: []*endpointv3.LbEndpoint{
						lbe("10.0.0.1", 8080, corev3.HealthStatus_HEALTHY),
						lbe("10.0.0.2", 8080, corev3.HealthStatus_HEALTHY),
					},
				}},
			}
			if diff := cmp.Diff([]*endpointv3.ClusterLoadAssignment{wantCLA}, r.Endpoints, protocmp.Transform()); diff != "" {
				t.Errorf("Endpoints (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseRouterMatches() buildTestCase {
	hdr := func(h ...chain.ServiceRouteHTTPMatchHeader) []chain.ServiceRouteHTTPMatchHeader { return h }
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) { r.Subsets = versionSubsets("v1", "v2") }),
			router("web",
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathExact: "/demo.Echo/Ping"}), Destination: toSubset("v2")},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.Admin/"}), Destination: toSubset("v2")},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathRegex: `/demo\.Echo/(Get|List).*`}), Destination: toSubset("v1")},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{Header: hdr(chain.ServiceRouteHTTPMatchHeader{Name: "X-Canary", Exact: "1"})}), Destination: toSubset("v2")},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{Header: hdr(chain.ServiceRouteHTTPMatchHeader{Name: "x-debug", Present: true, Invert: true})}), Destination: toSubset("v1")},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.", Header: hdr(
					chain.ServiceRouteHTTPMatchHeader{Name: "x-user", Prefix: "adm"},
					chain.ServiceRouteHTTPMatchHeader{Name: "x-env", Suffix: "prod"},
					chain.ServiceRouteHTTPMatchHeader{Name: "x-id", Regex: "[0-9]+", Invert: true},
				)}), Destination: toSubset("v2")},
			),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			str := func(m *matcherv3.StringMatcher) *routev3.HeaderMatcher_StringMatch { return stringMatch(m) }
			wantMatches := []*routev3.RouteMatch{
				{PathSpecifier: &routev3.RouteMatch_Path{Path: "/demo.Echo/Ping"}},
				prefixMatch("/demo.Admin/"),
				{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `/demo\.Echo/(Get|List).*`}}},
				{PathSpecifier: prefix("/"), Headers: []*routev3.HeaderMatcher{
					{Name: "x-canary", HeaderMatchSpecifier: str(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "1"}})},
				}},
				{PathSpecifier: prefix("/"), Headers: []*routev3.HeaderMatcher{
					{Name: "x-debug", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true},
				}},
				{PathSpecifier: prefix("/demo."), Headers: []*routev3.HeaderMatcher{
					{Name: "x-user", HeaderMatchSpecifier: str(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "adm"}})},
					{Name: "x-env", HeaderMatchSpecifier: str(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: "prod"}})},
					{Name: "x-id", HeaderMatchSpecifier: str(safeRegex("[0-9]+")), InvertMatch: true},
				}},
				prefixMatch("/"), // the compiler's catch-all
			}
			routes := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()
			var gotMatches []*routev3.RouteMatch
			var gotClusters []string
			for _, rt := range routes {
				gotMatches = append(gotMatches, rt.GetMatch())
				gotClusters = append(gotClusters, rt.GetRoute().GetCluster())
			}
			if diff := cmp.Diff(wantMatches, gotMatches, protocmp.Transform()); diff != "" {
				t.Errorf("route matches (-want +got):\n%s", diff)
			}
			v1, v2, web := targetName("v1.web.default.dc1"), targetName("v2.web.default.dc1"), targetName("web.default.dc1")
			if diff := cmp.Diff([]string{v2, v2, v1, v2, v1, v2, web}, gotClusters); diff != "" {
				t.Errorf("route clusters (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{v1, v2, web}, clusterNames(r)); diff != "" {
				t.Errorf("cluster names (-want +got):\n%s", diff)
			}
			if len(r.Warnings) != 0 {
				t.Errorf("Warnings = %v, want none", r.Warnings)
			}
		},
	}
}

func testcaseSplitter9010() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) { r.Subsets = versionSubsets("v1", "v2") }),
			splitter("web", chain.ServiceSplit{Weight: 90, ServiceSubset: "v1"}, chain.ServiceSplit{Weight: 10, ServiceSubset: "v2"}),
		},
		instances: []*catalog.Stored{
			inst("web-1", "web", "10.0.0.1", 8080, "v1"),
			inst("web-2", "web", "10.0.0.2", 8080, "v2"),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			routes := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()
			if len(routes) != 1 {
				t.Fatalf("%d routes, want 1 catch-all", len(routes))
			}
			want := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{
					{Name: targetName("v1.web.default.dc1"), Weight: wrapperspb.UInt32(9000)},
					{Name: targetName("v2.web.default.dc1"), Weight: wrapperspb.UInt32(1000)},
				},
			}}}
			if diff := cmp.Diff(want, routes[0].GetRoute(), protocmp.Transform()); diff != "" {
				t.Errorf("splitter action (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(prefixMatch("/"), routes[0].GetMatch(), protocmp.Transform()); diff != "" {
				t.Errorf("splitter match (-want +got):\n%s", diff)
			}
		},
	}
}

// testcaseSplitter100To0: the v2 leg has weight 0, so no route sends
// traffic to v2's cluster; a never-matching route after the catch-all
// still names it, so clients hold that cluster before a later version
// shifts traffic to it.
func testcaseSplitter100To0() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) { r.Subsets = versionSubsets("v1", "v2") }),
			splitter("web", chain.ServiceSplit{Weight: 100, ServiceSubset: "v1"}, chain.ServiceSplit{Weight: 0, ServiceSubset: "v2"}),
		},
		instances: []*catalog.Stored{
			inst("web-1", "web", "10.0.0.1", 8080, "v1"),
			inst("web-2", "web", "10.0.0.2", 8080, "v2"),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			routes := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()
			if len(routes) != 2 {
				t.Fatalf("%d routes, want the catch-all and the warm-cluster route", len(routes))
			}
			first := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: targetName("v1.web.default.dc1"), Weight: wrapperspb.UInt32(10000)}},
			}}}
			if diff := cmp.Diff(first, routes[0].GetRoute(), protocmp.Transform()); diff != "" {
				t.Errorf("catch-all action (-want +got):\n%s", diff)
			}
			warm := routes[1]
			if warm.GetName() != warmRouteName || !catchAll(routes[0].GetMatch()) {
				t.Fatalf("second route %q after match %v, want %q after a catch-all", warm.GetName(), routes[0].GetMatch(), warmRouteName)
			}
			legs := warm.GetRoute().GetWeightedClusters().GetClusters()
			if len(legs) != 1 || legs[0].GetName() != targetName("v2.web.default.dc1") {
				t.Errorf("warm route names %v, want only v2's cluster", legs)
			}
			if !slices.ContainsFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == targetName("v2.web.default.dc1") }) {
				t.Errorf("v2's cluster is not published")
			}
		},
	}
}

func testcaseSubsetFilter() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			resolver("web", func(r *chain.ServiceResolverConfigEntry) {
				r.Subsets = versionSubsets("v1", "v2")
				r.DefaultSubset = "v1"
			}),
		},
		instances: []*catalog.Stored{
			inst("web-1", "web", "10.0.0.1", 8080, "v1"),
			inst("web-2", "web", "10.0.0.2", 8080, "v2"),
			inst("web-3", "web", "10.0.0.3", 8080, "v1"),
			inst("web-4", "web", "10.0.0.4", 8080, ""),
			inst("web-5", "web", "10.0.0.5", 8080, "v1"),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			v1 := targetName("v1.web.default.dc1")
			if diff := cmp.Diff([]string{v1}, clusterNames(r)); diff != "" {
				t.Errorf("cluster names (-want +got):\n%s", diff)
			}
			want := map[string]corev3.HealthStatus{
				"10.0.0.1:8080": corev3.HealthStatus_HEALTHY,
				"10.0.0.3:8080": corev3.HealthStatus_HEALTHY,
				"10.0.0.5:8080": corev3.HealthStatus_HEALTHY,
			}
			if diff := cmp.Diff(want, endpointHealth(t, r, v1)); diff != "" {
				t.Errorf("v1 endpoints (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseHealthMapping() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) {
				r.Subsets = map[string]chain.ServiceResolverSubset{
					"strict":  {Filter: "Service.Meta.version == strict", OnlyPassing: true},
					"relaxed": {Filter: "Service.Meta.version == relaxed"},
				}
			}),
			splitter("web", chain.ServiceSplit{Weight: 50, ServiceSubset: "strict"}, chain.ServiceSplit{Weight: 50, ServiceSubset: "relaxed"}),
		},
		instances: []*catalog.Stored{
			withStatus(inst("s-pass", "web", "10.0.0.1", 8080, "strict"), catalog.Passing),
			withStatus(inst("s-warn", "web", "10.0.0.2", 8080, "strict"), catalog.Warning),
			withStatus(inst("s-crit", "web", "10.0.0.3", 8080, "strict"), catalog.Critical),
			withStatus(inst("r-pass", "web", "10.0.1.1", 8080, "relaxed"), catalog.Passing),
			withStatus(inst("r-warn", "web", "10.0.1.2", 8080, "relaxed"), catalog.Warning),
			withStatus(inst("r-crit", "web", "10.0.1.3", 8080, "relaxed"), catalog.Critical),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			strict := map[string]corev3.HealthStatus{
				"10.0.0.1:8080": corev3.HealthStatus_HEALTHY,
				"10.0.0.2:8080": corev3.HealthStatus_UNHEALTHY, // warning, OnlyPassing
				"10.0.0.3:8080": corev3.HealthStatus_UNHEALTHY,
			}
			relaxed := map[string]corev3.HealthStatus{
				"10.0.1.1:8080": corev3.HealthStatus_HEALTHY,
				"10.0.1.2:8080": corev3.HealthStatus_HEALTHY, // warning counts as healthy
				"10.0.1.3:8080": corev3.HealthStatus_UNHEALTHY,
			}
			if diff := cmp.Diff(strict, endpointHealth(t, r, targetName("strict.web.default.dc1"))); diff != "" {
				t.Errorf("OnlyPassing subset (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(relaxed, endpointHealth(t, r, targetName("relaxed.web.default.dc1"))); diff != "" {
				t.Errorf("subset without OnlyPassing (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseTTLCriticalUnhealthy() buildTestCase {
	ttl := inst("web-ttl", "web", "10.0.0.9", 9090, "")
	ttl.TTL = 5 * time.Second
	ttl.Status, ttl.Output = ttl.InitialStatus() // a TTL check not yet passed
	return buildTestCase{
		instances: []*catalog.Stored{ttl, inst("web-1", "web", "10.0.0.1", 8080, "")},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			want := map[string]corev3.HealthStatus{
				"10.0.0.1:8080": corev3.HealthStatus_HEALTHY,
				"10.0.0.9:9090": corev3.HealthStatus_UNHEALTHY,
			}
			if diff := cmp.Diff(want, endpointHealth(t, r, targetName("web.default.dc1"))); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseFailoverAggregate() buildTestCase {
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			grpcDefaults("web-backup"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) {
				r.Failover = map[string]chain.ServiceResolverFailover{"*": {Service: "web-backup", Datacenters: []string{"dc1", "dc2"}}}
			}),
		},
		instances: []*catalog.Stored{
			inst("web-1", "web", "10.0.0.1", 8080, ""),
			inst("backup-1", "web-backup", "10.0.2.1", 8080, ""),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			primary := targetName("web.default.dc1")
			child := func(n int) string { return FailoverChildName(n, primary) }
			if diff := cmp.Diff([]string{child(0), child(1), child(2), primary}, clusterNames(r)); diff != "" {
				t.Fatalf("cluster names (-want +got):\n%s", diff)
			}
			agg := r.Clusters[3]
			if agg.GetClusterType().GetName() != "envoy.clusters.aggregate" || agg.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
				t.Errorf("primary cluster = %v, want a round-robin aggregate", agg)
			}
			cfg := &aggregatev3.ClusterConfig{}
			if err := agg.GetClusterType().GetTypedConfig().UnmarshalTo(cfg); err != nil {
				t.Fatalf("aggregate config: %v", err)
			}
			if diff := cmp.Diff([]string{child(0), child(1), child(2)}, cfg.GetClusters()); diff != "" {
				t.Errorf("aggregate children (-want +got):\n%s", diff)
			}
			wantEDS := []string{primary, targetName("web-backup.default.dc1"), "web-backup.default.dc2.internal." + testTrustDomain}
			for i, want := range wantEDS {
				if got := r.Clusters[i].GetEdsClusterConfig().GetServiceName(); got != want {
					t.Errorf("child %d service_name = %q, want %q", i, got, want)
				}
			}
			var names []string
			for _, e := range r.Endpoints {
				names = append(names, e.GetClusterName())
			}
			if diff := cmp.Diff([]string{wantEDS[1], wantEDS[2], primary}, names); diff != "" {
				t.Errorf("assignment names (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseEmptyTarget() buildTestCase {
	return buildTestCase{
		instances: []*catalog.Stored{inst("api-1", "api", "10.0.1.1", 8080, "")},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			want := []*endpointv3.ClusterLoadAssignment{{
				ClusterName: targetName("web.default.dc1"),
				Endpoints: []*endpointv3.LocalityLbEndpoints{{
					Locality:            &corev3.Locality{Region: "dc1"},
					LoadBalancingWeight: wrapperspb.UInt32(1),
				}},
			}}
			if diff := cmp.Diff(want, r.Endpoints, protocmp.Transform()); diff != "" {
				t.Errorf("Endpoints (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseIgnoredFeatures() buildTestCase {
	dest := &chain.ServiceRouteDestination{
		PrefixRewrite:         "/v2.Echo/",
		RequestTimeout:        chain.Duration(2 * time.Second),
		NumRetries:            3,
		RetryOnConnectFailure: true,
		RetryOnStatusCodes:    []uint32{503, 500},
	}
	return buildTestCase{
		entries: []chain.Entry{
			grpcDefaults("web"),
			resolver("web", func(r *chain.ServiceResolverConfigEntry) { r.ConnectTimeout = chain.Duration(3 * time.Second) }),
			router("web",
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.Echo/"}), Destination: dest},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{Header: []chain.ServiceRouteHTTPMatchHeader{{Name: ":authority", Exact: "web"}}})},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{QueryParam: []chain.ServiceRouteHTTPMatchQueryParam{{Name: "canary", Present: true}}})},
				chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathExact: "/demo.Echo/Ping", Methods: []string{"get", "POST"}})},
				chain.ServiceRoute{Destination: &chain.ServiceRouteDestination{NumRetries: 2}},
			),
		},
		check: checkIgnoredFeatures,
	}
}

// checkIgnoredFeatures checks that the features gRPC ignores are still
// translated for Envoy; the warnings themselves are checked by package
// grpccheck (TestWarnings, the same entries), and TestBuild checks that
// r.Warnings starts with them.
func checkIgnoredFeatures(t *testing.T, c *chain.CompiledChain, r *Resources) {
	t.Helper()
	features := make([]Feature, 0, len(r.Warnings))
	for _, w := range r.Warnings {
		features = append(features, w.Feature)
	}
	wantFeatures := []Feature{
		grpccheck.FeaturePrefixRewrite, grpccheck.FeatureRetryOnConnectFailure, grpccheck.FeatureRetryOnStatusCodes,
		grpccheck.FeatureHeader, grpccheck.FeatureQueryParam, grpccheck.FeatureMethods, grpccheck.FeatureNumRetries,
		grpccheck.FeatureConnectTimeout,
	}
	if diff := cmp.Diff(wantFeatures, features); diff != "" {
		t.Errorf("Build(IgnoredFeatures).Warnings features (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(grpccheck.Warnings(c), r.Warnings); diff != "" {
		t.Errorf("Build(IgnoredFeatures).Warnings (-grpccheck.Warnings +got):\n%s", diff)
	}
	routes := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()
	web := targetName("web.default.dc1")
	wantAction := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: web},
		PrefixRewrite:    "/v2.Echo/",
		MaxStreamDuration: &routev3.RouteAction_MaxStreamDuration{
			MaxStreamDuration: durationpb.New(2 * time.Second), GrpcTimeoutHeaderMax: durationpb.New(2 * time.Second),
		},
		RetryPolicy: &routev3.RetryPolicy{RetryOn: "unavailable", NumRetries: wrapperspb.UInt32(3)},
	}
	if diff := cmp.Diff(wantAction, routes[0].GetRoute(), protocmp.Transform()); diff != "" {
		t.Errorf("route 0 action (-want +got):\n%s", diff)
	}
	if rp := routes[4].GetRoute().GetRetryPolicy(); rp != nil {
		t.Errorf("route 4 retry policy = %v, want none (no gRPC condition)", rp)
	}
	wantMethods := &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: stringMatch(safeRegex("GET|POST"))}
	if diff := cmp.Diff([]*routev3.HeaderMatcher{wantMethods}, routes[3].GetMatch().GetHeaders(), protocmp.Transform()); diff != "" {
		t.Errorf("route 3 Methods header (-want +got):\n%s", diff)
	}
	if got := clusterByName(t, r, web).GetConnectTimeout().AsDuration(); got != 3*time.Second {
		t.Errorf("connect_timeout = %s, want 3s", got)
	}
}

func testcaseDuplicateAddress() buildTestCase {
	return buildTestCase{
		instances: []*catalog.Stored{
			withStatus(inst("web-a", "web", "10.0.0.1", 8080, ""), catalog.Critical),
			withStatus(inst("web-b", "web", "10.0.0.1", 8080, ""), catalog.Passing),
			inst("web-c", "web", "10.0.0.1", 8081, ""),
		},
		check: func(t *testing.T, _ *chain.CompiledChain, r *Resources) {
			t.Helper()
			want := map[string]corev3.HealthStatus{
				"10.0.0.1:8080": corev3.HealthStatus_HEALTHY, // web-b kept, not the critical web-a
				"10.0.0.1:8081": corev3.HealthStatus_HEALTHY,
			}
			if diff := cmp.Diff(want, endpointHealth(t, r, targetName("web.default.dc1"))); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			wantW := []Warning{{
				Node: "target:web.default.dc1", Route: -1, Feature: grpccheck.FeatureDuplicateAddress,
				Detail: `instances "web-b" and "web-a" both use 10.0.0.1:8080: only "web-b" is listed`,
			}}
			if diff := cmp.Diff(wantW, r.Warnings); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		},
	}
}

func testcaseCustomizedChain() buildTestCase {
	return buildTestCase{
		opts: compileOpts{overrideConnectTimeout: time.Second},
		check: func(t *testing.T, c *chain.CompiledChain, r *Resources) {
			t.Helper()
			if c.CustomizationHash == "" {
				t.Fatal("chain has no CustomizationHash")
			}
			web := targetName("web.default.dc1")
			want := c.CustomizationHash + "~" + web
			if diff := cmp.Diff([]string{want}, clusterNames(r)); diff != "" {
				t.Fatalf("cluster names (-want +got):\n%s", diff)
			}
			cl := r.Clusters[0]
			if cl.GetEdsClusterConfig().GetServiceName() != web || cl.GetConnectTimeout().AsDuration() != time.Second {
				t.Errorf("cluster = %v, want service_name %q and connect_timeout 1s", cl, web)
			}
			if got := r.RouteConfig.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster(); got != want {
				t.Errorf("route cluster = %q, want %q", got, want)
			}
		},
	}
}

// ---- Build errors ----

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	compiled := func(t *testing.T, entries ...chain.Entry) *chain.CompiledChain {
		t.Helper()
		return compile(t, compileOpts{}, entries...)
	}
	tests := map[string]struct {
		chain   func(t *testing.T) *chain.CompiledChain
		wantMsg string
	}{
		"NilChain": {func(*testing.T) *chain.CompiledChain { return nil }, "no chain"},
		"MissingStartNode": {func(t *testing.T) *chain.CompiledChain {
			t.Helper()
			c := compiled(t)
			c.StartNode = "resolver:nope"
			return c
		}, `start node "resolver:nope" does not exist`},
		"InvalidPathRegex": {func(t *testing.T) *chain.CompiledChain {
			t.Helper()
			return compiled(t, grpcDefaults("web"), router("web", chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathRegex: "(unclosed"})}))
		}, `router:web route 0: PathRegex "(unclosed" is not a valid RE2 expression`},
		"NegativeSplitWeight": {func(t *testing.T) *chain.CompiledChain {
			t.Helper()
			return compiled(t, grpcDefaults("web"), grpcDefaults("api"),
				splitter("web", chain.ServiceSplit{Weight: 120}, chain.ServiceSplit{Weight: -20, Service: "api"}))
		}, "splitter:web split 1 has weight -20, want 0 to 100"},
		"HeaderWithoutCondition": {func(t *testing.T) *chain.CompiledChain {
			t.Helper()
			c := compiled(t, grpcDefaults("web"), router("web", chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{
				Header: []chain.ServiceRouteHTTPMatchHeader{{Name: "x", Exact: "1"}},
			})}))
			c.Nodes["router:web"].Routes[0].Definition.Match.HTTP.Header[0].Exact = ""
			return c
		}, "router:web route 0: Header[0] sets 0 of Present, Exact, Prefix, Suffix and Regex, want exactly one"},
		"MissingTarget": {func(t *testing.T) *chain.CompiledChain {
			t.Helper()
			c := compiled(t)
			delete(c.Targets, "web.default.dc1")
			return c
		}, `target "web.default.dc1" does not exist`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res, err := Build(tc.chain(t), nil)
			if err == nil {
				t.Fatalf("Build(%s) = %v, want an error", name, res)
			}
			if !errors.Is(err, ErrInvalidChain) {
				t.Errorf("Build(%s) error %v does not wrap ErrInvalidChain", name, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Build(%s) error = %q, want it to contain %q", name, err, tc.wantMsg)
			}
		})
	}
}

// ---- helpers ----

func prefix(p string) *routev3.RouteMatch_Prefix { return &routev3.RouteMatch_Prefix{Prefix: p} }

func prefixMatch(p string) *routev3.RouteMatch { return &routev3.RouteMatch{PathSpecifier: prefix(p)} }

func toCluster(name string) *routev3.Route_Route {
	return &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}}
}

func lbe(addr string, port uint32, h corev3.HealthStatus) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
			}}},
		}},
		HealthStatus: h,
	}
}

func clusterNames(r *Resources) []string {
	var out []string
	for _, c := range r.Clusters {
		out = append(out, c.GetName())
	}
	return out
}

func clusterByName(t *testing.T, r *Resources, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range r.Clusters {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %q in %v", name, clusterNames(r))
	return nil
}

// endpointHealth maps "address:port" to health for assignment name.
func endpointHealth(t *testing.T, r *Resources, name string) map[string]corev3.HealthStatus {
	t.Helper()
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() != name {
			continue
		}
		out := make(map[string]corev3.HealthStatus)
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				out[sa.GetAddress()+":"+strconv.FormatUint(uint64(sa.GetPortValue()), 10)] = e.GetHealthStatus()
			}
		}
		return out
	}
	t.Fatalf("no assignment %q", name)
	return nil
}

// checkListener checks the API listener of §3.1 for service.
func checkListener(t *testing.T, r *Resources, service string) {
	t.Helper()
	if r.Listener.GetName() != service || r.Listener.GetAddress() != nil {
		t.Errorf("listener = %v, want an API listener named %q", r.Listener, service)
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := r.Listener.GetApiListener().GetApiListener().UnmarshalTo(hcm); err != nil {
		t.Fatalf("api_listener: %v", err)
	}
	want := &hcmv3.Rds{ConfigSource: adsSource(), RouteConfigName: service}
	if diff := cmp.Diff(want, hcm.GetRds(), protocmp.Transform()); diff != "" {
		t.Errorf("rds (-want +got):\n%s", diff)
	}
	if f := hcm.GetHttpFilters(); len(f) != 1 || f[0].GetName() != "envoy.filters.http.router" {
		t.Errorf("http_filters = %v, want only the router", f)
	}
}

func TestByType(t *testing.T) {
	t.Parallel()
	c := compile(t, compileOpts{}, grpcDefaults("web"), grpcDefaults("web-backup"),
		resolver("web", func(r *chain.ServiceResolverConfigEntry) {
			r.Failover = map[string]chain.ServiceResolverFailover{"*": {Service: "web-backup"}}
		}))
	r, err := Build(c, nil)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	type typed struct {
		TypeURL string
		Names   []string
	}
	var got []typed
	for _, tr := range r.ByType() {
		got = append(got, typed{tr.TypeURL, sortedKeys(tr.Resources)})
	}
	web, backup := targetName("web.default.dc1"), targetName("web-backup.default.dc1")
	const prefix = "type.googleapis.com/envoy.config."
	want := []typed{
		{prefix + "cluster.v3.Cluster", []string{FailoverChildName(0, web), FailoverChildName(1, web), web}},
		{prefix + "endpoint.v3.ClusterLoadAssignment", []string{backup, web}},
		{prefix + "listener.v3.Listener", []string{"web"}},
		{prefix + "route.v3.RouteConfiguration", []string{"web"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ByType (-want +got):\n%s", diff)
	}
}
