package chain

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

// Golden files live in testdata/*.golden. `go test ./chain/ -update` (the
// flag of internal/testutil) rewrites them from the current output.
//
// NOTE: review every golden diff (git diff chain/testdata) before committing
// it: the golden files are the specification of the compiled JSON shape.

// mustJSON renders v as indented JSON with a trailing newline.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return append(b, '\n')
}

const testTrustDomain = "trustdomain.consul"

var hashRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

// ---- entry builders ----

func serviceDefaults(name, protocol string) *ServiceConfigEntry {
	return &ServiceConfigEntry{Kind: KindServiceDefaults, Name: name, Protocol: protocol}
}

func proxyDefaults(protocol string) *ProxyConfigEntry {
	p := &ProxyConfigEntry{Kind: KindProxyDefaults, Name: ProxyDefaultsName}
	if protocol != "" {
		p.Config = map[string]any{"protocol": protocol}
	}
	return p
}

func router(name string, routes ...ServiceRoute) *ServiceRouterConfigEntry {
	return &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: name, Routes: routes}
}

func splitter(name string, splits ...ServiceSplit) *ServiceSplitterConfigEntry {
	return &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: name, Splits: splits}
}

func resolver(name string, mod func(r *ServiceResolverConfigEntry)) *ServiceResolverConfigEntry {
	r := &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: name}
	if mod != nil {
		mod(r)
	}
	return r
}

func subsets(names ...string) map[string]ServiceResolverSubset {
	m := make(map[string]ServiceResolverSubset, len(names))
	for _, n := range names {
		m[n] = ServiceResolverSubset{Filter: "Service.Meta.version == " + n}
	}
	return m
}

func pathPrefixRoute(prefix string, dest *ServiceRouteDestination) ServiceRoute {
	return ServiceRoute{
		Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: prefix}},
		Destination: dest,
	}
}

// ---- expectation builders ----

// expTarget is the expected target for (service, subset, namespace, dc)
// with SNI and Name written out in full.
func expTarget(service, subset, namespace, dc string, mods ...func(*Target)) *Target {
	id := service + "." + namespace + "." + dc
	if subset != "" {
		id = subset + "." + id
	}
	t := &Target{
		ID:            id,
		Service:       service,
		ServiceSubset: subset,
		Namespace:     namespace,
		Datacenter:    dc,
		SNI:           id + ".internal." + testTrustDomain,
		Name:          id + ".internal." + testTrustDomain,
	}
	if subset != "" {
		t.Subset = ServiceResolverSubset{Filter: "Service.Meta.version == " + subset}
	}
	for _, m := range mods {
		m(t)
	}
	return t
}

func expResolver(targetID string, timeout time.Duration, isDefault bool, failover ...string) *GraphNode {
	n := &GraphNode{
		Type: NodeTypeResolver,
		Name: targetID,
		Resolver: &ResolverNodeInfo{
			Default:        isDefault,
			ConnectTimeout: Duration(timeout),
			Target:         targetID,
		},
	}
	if len(failover) > 0 {
		n.Resolver.Failover = &FailoverInfo{Targets: failover}
	}
	return n
}

func expSplitter(name string, splits ...*Split) *GraphNode {
	return &GraphNode{Type: NodeTypeSplitter, Name: name, Splits: splits}
}

func expRouter(name string, routes ...*Route) *GraphNode {
	return &GraphNode{Type: NodeTypeRouter, Name: name, Routes: routes}
}

func catchAll(service, next string) *Route {
	return &Route{
		Definition: &ServiceRoute{
			Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/"}},
			Destination: &ServiceRouteDestination{Service: service},
		},
		NextNode: next,
	}
}

func expRoute(def ServiceRoute, next string) *Route {
	return &Route{Definition: &def, NextNode: next}
}

func split(weight float32, next string) *Split { return &Split{Weight: weight, NextNode: next} }

// expChain assembles a CompiledChain from its nodes and targets.
func expChain(service, dc, protocol, start string, nodes []*GraphNode, targets ...*Target) *CompiledChain {
	c := &CompiledChain{
		ServiceName: service,
		Namespace:   "default",
		Datacenter:  dc,
		Protocol:    protocol,
		StartNode:   start,
		Nodes:       make(map[string]*GraphNode, len(nodes)),
		Targets:     make(map[string]*Target, len(targets)),
	}
	for _, n := range nodes {
		c.Nodes[n.Type+":"+n.Name] = n
	}
	for _, t := range targets {
		c.Targets[t.ID] = t
	}
	return c
}

func nodes(n ...*GraphNode) []*GraphNode { return n }

// keys builds a []Key from "kind/name" pairs.
func keys(kindName ...string) []Key {
	out := make([]Key, 0, len(kindName)/2)
	for i := 0; i+1 < len(kindName); i += 2 {
		out = append(out, KeyOf(Kind(kindName[i]), kindName[i+1]))
	}
	return out
}
