package xds

import (
	"errors"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// Instances returns the catalog's instances of one service (any
// datacenter, any health); Build selects each target's instances from
// them. A nil Instances means no instances at all.
type Instances func(service string) []*catalog.Stored

// Resources are the xDS resources of one chain for gRPC clients.
type Resources struct {
	// Listener is named after the chain's service.
	Listener *listenerv3.Listener
	// RouteConfig is named after the chain's service.
	RouteConfig *routev3.RouteConfiguration
	// Clusters are sorted by name.
	Clusters []*clusterv3.Cluster
	// Endpoints are the assignments of the targets the clusters use,
	// sorted by cluster_name (the target's Name).
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Warnings lists what gRPC clients ignore or cannot match: the
	// chain's (grpccheck.Warnings) then the instances'.
	Warnings []Warning
}

// Typed is the resources of one xDS type.
type Typed struct {
	// TypeURL is the type's URL (resourcev3.ClusterType, ...).
	TypeURL string
	// Resources maps each resource's name to it.
	Resources map[string]proto.Message
}

// ByType groups the resources by xDS type, in the order a publisher
// applies them (§6.4): clusters, endpoints, listeners, route
// configurations. A nil resource is left out.
func (r *Resources) ByType() []Typed {
	clusters := make(map[string]proto.Message, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = c
	}
	endpoints := make(map[string]proto.Message, len(r.Endpoints))
	for _, e := range r.Endpoints {
		endpoints[e.GetClusterName()] = e
	}
	listeners := make(map[string]proto.Message, 1)
	if r.Listener != nil {
		listeners[r.Listener.GetName()] = r.Listener
	}
	routes := make(map[string]proto.Message, 1)
	if r.RouteConfig != nil {
		routes[r.RouteConfig.GetName()] = r.RouteConfig
	}
	return []Typed{
		{TypeURL: resourcev3.ClusterType, Resources: clusters},
		{TypeURL: resourcev3.EndpointType, Resources: endpoints},
		{TypeURL: resourcev3.ListenerType, Resources: listeners},
		{TypeURL: resourcev3.RouteType, Resources: routes},
	}
}

// Warning is one feature of a chain (or of its instances) that gRPC
// clients ignore or cannot match; see grpccheck.Warning.
type Warning = grpccheck.Warning

// Feature names a chain feature a gRPC client ignores or cannot match; the
// constants (grpccheck.FeaturePrefixRewrite, ...) are in package grpccheck.
type Feature = grpccheck.Feature

// ErrInvalidChain is wrapped by the errors Build returns for a chain it
// cannot translate faithfully.
var ErrInvalidChain = errors.New("chain cannot be translated to xDS")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidChain, fmt.Sprintf(format, args...))
}

// Problem is one broken rule found by Validate.
type Problem struct {
	// Resource names the resource: `listener "web"`, `cluster "..."`.
	Resource string
	// Msg says what is wrong.
	Msg string
}

// ValidationError lists every problem Validate found, in the order it
// checks: listener, route configuration, clusters, endpoints, references.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid xDS resources (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteByte('s')
	}
	b.WriteString(")")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "; %s: %s", p.Resource, p.Msg)
	}
	return b.String()
}

// ClusterName is the name of the cluster of target t in chain c: the
// target's Name, prefixed by "<CustomizationHash>~" for a customised
// chain (§4.1).
func ClusterName(c *chain.CompiledChain, t *chain.Target) string {
	if c.CustomizationHash != "" {
		return c.CustomizationHash + "~" + t.Name
	}
	return t.Name
}

// FailoverChildName is the name of the n-th child (0 = the primary) of the
// aggregate cluster named primary (§3.5).
func FailoverChildName(n int, primary string) string {
	return fmt.Sprintf("failover-target~%d~%s", n, primary)
}
