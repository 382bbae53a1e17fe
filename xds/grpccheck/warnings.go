package grpccheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/chainstore/chainstore/chain"
)

// Warnings lists what gRPC clients ignore or cannot match in chain c
// (§5.2): per route of a router start node, in route order, then per
// resolver node reachable from the start node, in key order. It reads only
// the chain (the instances' warnings come from xds.Build) and skips what
// it cannot read (a missing node or definition); xds.Build reports those
// problems as errors. A nil chain has no warnings.
func Warnings(c *chain.CompiledChain) []Warning {
	if c == nil {
		return nil
	}
	var out []Warning
	if n := c.Nodes[c.StartNode]; n != nil && n.Type == chain.NodeTypeRouter {
		for i, r := range n.Routes {
			if r != nil {
				out = append(out, routeWarnings(c.StartNode, i, r.Definition)...)
			}
		}
	}
	splitters, resolvers := reachableNodes(c)
	for _, key := range splitters {
		out = append(out, splitWarnings(key, c.Nodes[key])...)
	}
	for _, key := range resolvers {
		n := c.Nodes[key]
		if t := time.Duration(n.Resolver.ConnectTimeout); t > 0 && t != chain.DefaultConnectTimeout {
			out = append(out, Warning{
				Node: key, Route: -1, Feature: FeatureConnectTimeout,
				Detail: fmt.Sprintf("connect timeout %s is not used by gRPC clients (kept for Envoy)", t),
			})
		}
		out = append(out, loadBalancerWarnings(key, n.LoadBalancer)...)
	}
	return out
}

// splitWarnings lists the header modifiers of a splitter's legs, and legs
// whose modifiers are lost because an earlier leg reaches the same
// resolver (the xDS legs are merged per cluster).
func splitWarnings(key string, n *chain.GraphNode) []Warning {
	var out []Warning
	first := make(map[string]int, len(n.Splits))
	for j, s := range n.Splits {
		if s == nil {
			continue
		}
		if i, seen := first[s.NextNode]; seen {
			if !sameModifiers(n.Splits[i].Definition, s.Definition) {
				out = append(out, Warning{
					Node: key, Route: -1, Feature: FeatureHeaderModifiers,
					Detail: fmt.Sprintf("split %d reaches %s like split %d: its header modifiers are dropped, split %d's apply", j, s.NextNode, i, i),
				})
			}
			continue
		}
		first[s.NextNode] = j
		if d := s.Definition; d != nil && (!d.RequestHeaders.IsZero() || !d.ResponseHeaders.IsZero()) {
			out = append(out, Warning{
				Node: key, Route: -1, Feature: FeatureHeaderModifiers,
				Detail: fmt.Sprintf("split %d (to %s): header add/set/remove is ignored by gRPC clients (kept for Envoy)", j, s.NextNode),
			})
		}
	}
	return out
}

// sameModifiers reports whether two split definitions modify headers
// alike.
func sameModifiers(a, b *chain.ServiceSplit) bool {
	var ar, as, br, bs *chain.HTTPHeaderModifiers
	if a != nil {
		ar, as = a.RequestHeaders, a.ResponseHeaders
	}
	if b != nil {
		br, bs = b.RequestHeaders, b.ResponseHeaders
	}
	return sameModifier(ar, br) && sameModifier(as, bs)
}

func sameModifier(a, b *chain.HTTPHeaderModifiers) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return maps.Equal(a.Add, b.Add) && maps.Equal(a.Set, b.Set) && slices.Equal(a.Remove, b.Remove)
}

// loadBalancerWarnings lists what gRPC clients do not do of a resolver's
// LoadBalancer.
func loadBalancerWarnings(key string, lb *chain.LoadBalancer) []Warning {
	if lb == nil {
		return nil
	}
	var out []Warning
	add := func(f Feature, format string, args ...any) {
		out = append(out, Warning{Node: key, Route: -1, Feature: f, Detail: fmt.Sprintf(format, args...)})
	}
	switch lb.Policy {
	case chain.LBPolicyMaglev, chain.LBPolicyRandom:
		add(FeatureLoadBalancer, "gRPC clients NACK the %s policy: the cluster is published as round robin", lb.Policy)
		return out // no hashing happens, so the hash policies do not matter
	}
	if !lb.IsHashBased() {
		return out
	}
	header := false
	for i, hp := range lb.HashPolicies {
		switch {
		case hp.SourceIP:
			add(FeatureHashPolicy, "HashPolicies[%d] (source IP) is ignored by gRPC clients (kept for Envoy)", i)
		case hp.Field == chain.HashPolicyHeader:
			header = true
		default:
			add(FeatureHashPolicy, "HashPolicies[%d] (%s %q) is ignored by gRPC clients (kept for Envoy)", i, hp.Field, hp.FieldValue)
		}
	}
	if !header {
		add(FeatureHashPolicy, "no header hash policy: gRPC clients hash each call at random, so calls are not sticky")
	}
	return out
}

// routeWarnings lists the ignored features of route i of router node.
func routeWarnings(node string, i int, def *chain.ServiceRoute) []Warning {
	if def == nil {
		return nil
	}
	var out []Warning
	add := func(f Feature, format string, args ...any) {
		out = append(out, Warning{
			Node: node, Route: i, Match: describeMatch(def), Feature: f, Detail: fmt.Sprintf(format, args...),
		})
	}
	if def.Match != nil && def.Match.HTTP != nil {
		h := def.Match.HTTP
		for _, hd := range h.Header {
			if invisibleHeader(hd.Name) {
				add(FeatureHeader, "%q is a pseudo-, transport or binary header: gRPC route matching does not see it "+
					"as sent, so this match does not work as written", strings.ToLower(hd.Name))
			}
		}
		if len(h.QueryParam) > 0 {
			add(FeatureQueryParam, "gRPC clients skip a route with query-parameter matches: this route never fires")
		}
		if len(h.Methods) > 0 {
			add(FeatureMethods, "gRPC route matching cannot see :method (every gRPC call is a POST): this route never fires")
		}
	}
	d := def.Destination
	if d == nil {
		return out
	}
	if d.PrefixRewrite != "" {
		add(FeaturePrefixRewrite, "ignored by gRPC clients: the backend sees the original method path")
	}
	if t := time.Duration(d.IdleTimeout); t > 0 {
		add(FeatureIdleTimeout, "idle timeout %s is ignored by gRPC clients (kept for Envoy)", t)
	}
	if !d.RequestHeaders.IsZero() || !d.ResponseHeaders.IsZero() {
		add(FeatureHeaderModifiers, "header add/set/remove is ignored by gRPC clients (kept for Envoy)")
	}
	if d.RetryOnConnectFailure {
		add(FeatureRetryOnConnectFailure, "an Envoy retry condition: gRPC clients do not retry on connection failures")
	}
	var envoyOnly []string
	for _, on := range d.RetryOn {
		if !IsGRPCRetryCondition(on) && !slices.Contains(envoyOnly, on) {
			envoyOnly = append(envoyOnly, on)
		}
	}
	if len(envoyOnly) > 0 {
		add(FeatureRetryOn, "%s: Envoy retry conditions without a gRPC status name, not retried on "+
			"(gRPC clients retry on cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)",
			strings.Join(envoyOnly, ","))
	}
	var other []uint32
	for _, code := range d.RetryOnStatusCodes {
		if code != HTTPUnavailable {
			other = append(other, code)
		}
	}
	if len(other) > 0 {
		add(FeatureRetryOnStatusCodes, "HTTP status %v has no gRPC status name: not retried on (only 503 maps, to %q)",
			other, GRPCUnavailable)
	}
	if d.NumRetries > 0 && len(RetryConditions(d)) == 0 {
		add(FeatureNumRetries, "%d retries without a condition gRPC clients honour (RetryOnStatusCodes 503): no retries",
			d.NumRetries)
	}
	return out
}

// invisibleHeader reports whether gRPC route matching cannot match header
// name as written: pseudo-headers, transport headers (measured for
// content-type and user-agent, §5), reserved grpc-* headers and binary
// (-bin) headers, which grpc-go removes before matching.
func invisibleHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "content-type", "user-agent", "te", "host", "connection":
		return true
	}
	return strings.HasPrefix(n, ":") || strings.HasPrefix(n, "grpc-") || strings.HasSuffix(n, "-bin")
}

// describeMatch summarises a route's match for a warning:
// `PathPrefix "/admin" + 1 header`.
func describeMatch(def *chain.ServiceRoute) string {
	if def == nil || def.Match == nil || def.Match.HTTP == nil {
		return `PathPrefix "/"`
	}
	h := def.Match.HTTP
	var b strings.Builder
	switch {
	case h.PathExact != "":
		fmt.Fprintf(&b, "PathExact %q", h.PathExact)
	case h.PathPrefix != "":
		fmt.Fprintf(&b, "PathPrefix %q", h.PathPrefix)
	case h.PathRegex != "":
		fmt.Fprintf(&b, "PathRegex %q", h.PathRegex)
	default:
		b.WriteString(`PathPrefix "/"`)
	}
	plural := func(n int, what string) {
		if n > 0 {
			fmt.Fprintf(&b, " + %d %s", n, what)
			if n > 1 {
				b.WriteByte('s')
			}
		}
	}
	plural(len(h.Header), "header")
	plural(len(h.QueryParam), "query param")
	if len(h.Methods) > 0 {
		fmt.Fprintf(&b, " + Methods %s", strings.Join(h.Methods, ","))
	}
	return b.String()
}

// reachableNodes returns the keys of the splitter nodes and of the
// resolver nodes (with resolver info) reachable from the start node
// through routes and splits, each sorted.
func reachableNodes(c *chain.CompiledChain) (splitters, resolvers []string) {
	seen := make(map[string]bool, len(c.Nodes))
	var out []string
	var walk func(key string)
	walk = func(key string) {
		n := c.Nodes[key]
		if seen[key] || n == nil {
			return
		}
		seen[key] = true
		switch {
		case n.Type == chain.NodeTypeResolver && n.Resolver != nil:
			out = append(out, key)
		case n.Type == chain.NodeTypeSplitter:
			splitters = append(splitters, key)
		}
		for _, r := range n.Routes {
			if r != nil {
				walk(r.NextNode)
			}
		}
		for _, s := range n.Splits {
			if s != nil {
				walk(s.NextNode)
			}
		}
	}
	walk(c.StartNode)
	slices.Sort(out)
	slices.Sort(splitters)
	return splitters, out
}
