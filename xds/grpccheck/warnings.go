package grpccheck

import (
	"fmt"
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
	for _, key := range reachableResolvers(c) {
		info := c.Nodes[key].Resolver
		if t := time.Duration(info.ConnectTimeout); t > 0 && t != chain.DefaultConnectTimeout {
			out = append(out, Warning{
				Node: key, Route: -1, Feature: FeatureConnectTimeout,
				Detail: fmt.Sprintf("connect timeout %s is not used by gRPC clients (kept for Envoy)", t),
			})
		}
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
	if d.RetryOnConnectFailure {
		add(FeatureRetryOnConnectFailure, "an Envoy retry condition: gRPC clients do not retry on connection failures")
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
	if d.NumRetries > 0 && !slices.Contains(d.RetryOnStatusCodes, HTTPUnavailable) {
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

// reachableResolvers returns the keys of the resolver nodes (with
// resolver info) reachable from the start node through routes and splits,
// sorted.
func reachableResolvers(c *chain.CompiledChain) []string {
	seen := make(map[string]bool, len(c.Nodes))
	var out []string
	var walk func(key string)
	walk = func(key string) {
		n := c.Nodes[key]
		if seen[key] || n == nil {
			return
		}
		seen[key] = true
		if n.Type == chain.NodeTypeResolver && n.Resolver != nil {
			out = append(out, key)
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
	return out
}
