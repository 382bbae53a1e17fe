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
