package xds

import (
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// Extension names of the filter and cluster type Build emits.
const (
	routerFilterName     = "envoy.filters.http.router"
	aggregateClusterType = "envoy.clusters.aggregate"
)

// Build translates chain c and the instances of its targets into the xDS
// resources of the gRPC flavour (see the package documentation for the
// shapes). It returns an error wrapping ErrInvalidChain for a chain it
// cannot translate, or the error of a subset filter that cannot read an
// instance. Build neither modifies c nor keeps references to it or to
// the instances.
func Build(c *chain.CompiledChain, instances Instances) (*Resources, error) {
	if err := checkChain(c); err != nil {
		return nil, err
	}
	b := &builder{chain: c, instances: instances}
	return b.build()
}

// builder is single-use: Build fills the INPUT fields and build runs the
// pipeline once.
type builder struct {
	// INPUT
	chain     *chain.CompiledChain
	instances Instances

	// STATE: the resolver nodes the routes reach, by node key.
	resolvers map[string]*chain.GraphNode
}

// build runs the steps: routes (recording the resolver nodes they reach),
// listener and route configuration, clusters, endpoints, warnings.
func (b *builder) build() (*Resources, error) {
	b.resolvers = make(map[string]*chain.GraphNode)
	routes, err := b.routes()
	if err != nil {
		return nil, err
	}
	name := b.chain.ServiceName
	lis, err := buildListener(name)
	if err != nil {
		return nil, err
	}
	res := &Resources{
		Listener: lis,
		RouteConfig: &routev3.RouteConfiguration{
			Name: name,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    name,
				Domains: []string{"*"},
				Routes:  routes,
			}},
		},
	}
	keys := sortedKeys(b.resolvers)
	if warm := b.warmRoute(routes, keys); warm != nil {
		res.RouteConfig.VirtualHosts[0].Routes = append(routes, warm)
	}
	if res.Clusters, err = b.clusters(keys); err != nil {
		return nil, err
	}
	var instWarnings []Warning
	if res.Endpoints, instWarnings, err = b.endpoints(keys); err != nil {
		return nil, err
	}
	res.Warnings = append(grpccheck.Warnings(b.chain), instWarnings...)
	return res, nil
}

// warmRouteName names the route warmRoute adds.
const warmRouteName = "chainstore-warm-clusters"

// warmRoute returns a route that never matches (it follows the catch-all
// route) and names the cluster of every resolver the chain reaches that
// no route sends traffic to yet, such as the target of a split leg with
// weight 0; nil when there is none. grpc-go subscribes to every cluster
// named in the route configuration, matched or not, so a later version
// that shifts traffic to such a cluster finds it ready: without this the
// client fails RPCs with "unknown cluster selected for RPC" for a few
// milliseconds after the switch (docs/xds.md, §5.3).
func (b *builder) warmRoute(routes []*routev3.Route, keys []string) *routev3.Route {
	if len(routes) == 0 || !catchAll(routes[len(routes)-1].GetMatch()) {
		return nil
	}
	used := map[string]bool{}
	for _, r := range routes {
		a := r.GetRoute()
		if c := a.GetCluster(); c != "" {
			used[c] = true
		}
		for _, wc := range a.GetWeightedClusters().GetClusters() {
			used[wc.GetName()] = true
		}
	}
	var legs []*routev3.WeightedCluster_ClusterWeight
	for _, key := range keys {
		name := ClusterName(b.chain, b.chain.Targets[b.resolvers[key].Resolver.Target])
		if used[name] {
			continue
		}
		used[name] = true
		legs = append(legs, &routev3.WeightedCluster_ClusterWeight{Name: name, Weight: wrapperspb.UInt32(1)})
	}
	if len(legs) == 0 {
		return nil
	}
	return &routev3.Route{
		Name:  warmRouteName,
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: legs}},
		}},
	}
}

// catchAll reports whether m matches every RPC: prefix "/" and nothing
// else.
func catchAll(m *routev3.RouteMatch) bool {
	return m.GetPrefix() == "/" && len(m.GetHeaders()) == 0 && len(m.GetQueryParameters()) == 0 &&
		m.GetRuntimeFraction() == nil && m.GetGrpc() == nil
}

// checkChain checks what every step relies on: a service name and a start
// node that exists.
func checkChain(c *chain.CompiledChain) error {
	switch {
	case c == nil:
		return invalidf("no chain")
	case c.ServiceName == "":
		return invalidf("chain has no service name")
	case c.Nodes[c.StartNode] == nil:
		return invalidf("chain %q: start node %q does not exist", c.ServiceName, c.StartNode)
	}
	return nil
}

// adsSource is the config source of every RDS and EDS reference: the ADS
// stream the client already uses, API version 3 (§3.1, §3.3).
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// buildListener returns the API listener named name whose HTTP connection
// manager takes route configuration name over ADS (§3.1).
func buildListener(name string) (*listenerv3.Listener, error) {
	router, err := anypb.New(&routerv3.Router{})
	if err != nil {
		return nil, fmt.Errorf("encode router filter: %w", err)
	}
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: name,
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       routerFilterName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode http connection manager: %w", err)
	}
	return &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: hcm},
	}, nil
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
