package xds

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// routes returns the routes of the start node (§4.2) and records in
// b.resolvers the resolver nodes they reach.
func (b *builder) routes() ([]*routev3.Route, error) {
	key := b.chain.StartNode
	start := b.chain.Nodes[key]
	if start.Type == chain.NodeTypeRouter {
		return b.routerRoutes(key, start)
	}
	action, err := b.action(key)
	if err != nil {
		return nil, err
	}
	if err := b.applyNextNode(action, key, nil); err != nil {
		return nil, invalidf("%s: %v", key, err)
	}
	return []*routev3.Route{{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: action},
	}}, nil
}

// routerRoutes translates the routes of router node n, in order; the
// compiler's catch-all is the last of them.
func (b *builder) routerRoutes(key string, n *chain.GraphNode) ([]*routev3.Route, error) {
	if len(n.Routes) == 0 {
		return nil, invalidf("%s has no routes", key)
	}
	out := make([]*routev3.Route, 0, len(n.Routes))
	for i, r := range n.Routes {
		if r == nil {
			return nil, invalidf("%s route %d is nil", key, i)
		}
		match, err := routeMatch(r.Definition)
		if err != nil {
			return nil, invalidf("%s route %d: %v", key, i, err)
		}
		action, err := b.action(r.NextNode)
		if err != nil {
			return nil, err
		}
		route := &routev3.Route{Match: match, Action: &routev3.Route_Route{Route: action}}
		var dest *chain.ServiceRouteDestination
		if r.Definition != nil {
			dest = r.Definition.Destination
		}
		if err := applyDestination(route, action, dest); err != nil {
			return nil, invalidf("%s route %d: %v", key, i, err)
		}
		if err := b.applyNextNode(action, r.NextNode, dest); err != nil {
			return nil, invalidf("%s route %d: %v", key, i, err)
		}
		out = append(out, route)
	}
	return out, nil
}

// applyNextNode adds to a route action what its next node decides: the
// hash policies of a hash-based LoadBalancer (a resolver's own, or the one
// the compiler gave a splitter), and a resolver's RequestTimeout when the
// route sets none (later Consul's rules, §4.2).
func (b *builder) applyNextNode(a *routev3.RouteAction, key string, d *chain.ServiceRouteDestination) error {
	n := b.chain.Nodes[key]
	if n == nil {
		return nil // action already reported it
	}
	if lb := n.LoadBalancer; lb.IsHashBased() {
		hp, err := hashPolicies(lb.HashPolicies)
		if err != nil {
			return err
		}
		a.HashPolicy = hp
	}
	if n.Resolver != nil && (d == nil || d.RequestTimeout <= 0) {
		setRequestTimeout(a, time.Duration(n.Resolver.RequestTimeout))
	}
	return nil
}

// hashPolicies translates a LoadBalancer's hash policies in order: header
// (honoured by gRPC clients), cookie, query parameter and source IP
// (ignored by them, kept for Envoy; grpccheck warns).
func hashPolicies(in []chain.HashPolicy) ([]*routev3.RouteAction_HashPolicy, error) {
	out := make([]*routev3.RouteAction_HashPolicy, 0, len(in))
	for i, hp := range in {
		p := &routev3.RouteAction_HashPolicy{Terminal: hp.Terminal}
		if err := checkText("hash policy FieldValue", hp.FieldValue); err != nil {
			return nil, prefixErr("HashPolicy", i, err)
		}
		switch {
		case hp.SourceIP:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{
				ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
			}
		case hp.FieldValue == "":
			return nil, prefixErr("HashPolicy", i, errf("has no FieldValue"))
		case hp.Field == chain.HashPolicyHeader:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{
				Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: strings.ToLower(hp.FieldValue)},
			}
		case hp.Field == chain.HashPolicyCookie:
			c := &routev3.RouteAction_HashPolicy_Cookie{Name: hp.FieldValue}
			if cc := hp.CookieConfig; cc != nil {
				if err := checkText("cookie Path", cc.Path); err != nil {
					return nil, prefixErr("HashPolicy", i, err)
				}
				c.Path = cc.Path
				switch {
				case cc.Session:
					c.Ttl = durationpb.New(0) // a session cookie
				case cc.TTL > 0:
					c.Ttl = durationpb.New(time.Duration(cc.TTL))
				}
			}
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: c}
		case hp.Field == chain.HashPolicyQueryParam:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_QueryParameter_{
				QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: hp.FieldValue},
			}
		default:
			return nil, prefixErr("HashPolicy", i, errf("has unknown Field %q", hp.Field))
		}
		out = append(out, p)
	}
	return out, nil
}

// setRequestTimeout caps the whole call at t (both max_stream_duration
// fields, which gRPC clients honour); t <= 0 sets nothing.
func setRequestTimeout(a *routev3.RouteAction, t time.Duration) {
	if t <= 0 {
		return
	}
	a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{
		MaxStreamDuration:    durationpb.New(t),
		GrpcTimeoutHeaderMax: durationpb.New(t),
	}
}

// action returns the route action that sends traffic to node key: one
// cluster for a resolver, weighted clusters for a splitter.
func (b *builder) action(key string) (*routev3.RouteAction, error) {
	n := b.chain.Nodes[key]
	if n == nil {
		return nil, invalidf("node %q does not exist", key)
	}
	switch n.Type {
	case chain.NodeTypeResolver:
		name, err := b.useResolver(key, n)
		if err != nil {
			return nil, err
		}
		return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}, nil
	case chain.NodeTypeSplitter:
		wc, err := b.weightedClusters(key, n)
		if err != nil {
			return nil, err
		}
		return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}}, nil
	}
	return nil, invalidf("node %q of type %q cannot be a route's destination", key, n.Type)
}

// useResolver checks resolver node n (its target and failover targets
// exist), records it and returns the name of its cluster.
func (b *builder) useResolver(key string, n *chain.GraphNode) (string, error) {
	if n.Resolver == nil {
		return "", invalidf("resolver node %q has no resolver", key)
	}
	t := b.chain.Targets[n.Resolver.Target]
	if t == nil || t.Name == "" {
		return "", invalidf("resolver node %q: target %q does not exist or has no name", key, n.Resolver.Target)
	}
	if n.Resolver.Failover != nil {
		for _, id := range n.Resolver.Failover.Targets {
			if ft := b.chain.Targets[id]; ft == nil || ft.Name == "" {
				return "", invalidf("resolver node %q: failover target %q does not exist or has no name", key, id)
			}
		}
	}
	b.resolvers[key] = n
	return ClusterName(b.chain, t), nil
}

// weightedClusters translates splitter node n (already flattened: every
// leg leads to a resolver). Weights are percent × 100; zero legs are left
// out and legs reaching the same cluster are merged (§3.2).
func (b *builder) weightedClusters(key string, n *chain.GraphNode) (*routev3.WeightedCluster, error) {
	var legs []*routev3.WeightedCluster_ClusterWeight
	index := make(map[string]int, len(n.Splits))
	var total uint64
	for j, s := range n.Splits {
		if s == nil {
			return nil, invalidf("%s split %d is nil", key, j)
		}
		next := b.chain.Nodes[s.NextNode]
		if next == nil || next.Type != chain.NodeTypeResolver {
			return nil, invalidf("%s split %d leads to %q, not to a resolver node", key, j, s.NextNode)
		}
		name, err := b.useResolver(s.NextNode, next)
		if err != nil {
			return nil, err
		}
		w := math.Round(float64(s.Weight) * 100)
		if !(w >= 0 && w <= math.MaxUint32) { // also rejects NaN
			return nil, invalidf("%s split %d has weight %v, want 0 to 100", key, j, s.Weight)
		}
		if w == 0 {
			continue
		}
		total += uint64(w)
		if i, ok := index[name]; ok {
			// Merged legs keep the first leg's header modifiers
			// (grpccheck warns when a later leg's differ).
			legs[i].Weight = wrapperspb.UInt32(legs[i].GetWeight().GetValue() + uint32(w))
			continue
		}
		index[name] = len(legs)
		leg := &routev3.WeightedCluster_ClusterWeight{Name: name, Weight: wrapperspb.UInt32(uint32(w))}
		if d := s.Definition; d != nil {
			h, err := headerModifiers(d.RequestHeaders, d.ResponseHeaders)
			if err != nil {
				return nil, invalidf("%s split %d: %v", key, j, err)
			}
			leg.RequestHeadersToAdd, leg.RequestHeadersToRemove = h.reqAdd, h.reqRemove
			leg.ResponseHeadersToAdd, leg.ResponseHeadersToRemove = h.respAdd, h.respRemove
		}
		legs = append(legs, leg)
	}
	if total == 0 || total > math.MaxUint32 {
		return nil, invalidf("%s: the split weights × 100 add up to %d, want 1 to %d", key, total, uint64(math.MaxUint32))
	}
	return &routev3.WeightedCluster{Clusters: legs}, nil
}

// applyDestination adds a route's timeouts, retry policy, prefix rewrite
// and header modifiers to the route and its action (§5.2).
func applyDestination(r *routev3.Route, a *routev3.RouteAction, d *chain.ServiceRouteDestination) error {
	if d == nil {
		return nil
	}
	if d.PrefixRewrite != "" {
		if err := checkText("PrefixRewrite", d.PrefixRewrite); err != nil {
			return err
		}
		a.PrefixRewrite = d.PrefixRewrite
	}
	setRequestTimeout(a, time.Duration(d.RequestTimeout))
	if t := time.Duration(d.IdleTimeout); t > 0 {
		a.IdleTimeout = durationpb.New(t) // ignored by gRPC clients, kept for Envoy
	}
	if on := grpccheck.RetryConditions(d); len(on) > 0 {
		a.RetryPolicy = &routev3.RetryPolicy{RetryOn: strings.Join(on, ",")}
		if d.NumRetries > 0 {
			a.RetryPolicy.NumRetries = wrapperspb.UInt32(d.NumRetries)
		}
	}
	h, err := headerModifiers(d.RequestHeaders, d.ResponseHeaders)
	if err != nil {
		return err
	}
	r.RequestHeadersToAdd, r.RequestHeadersToRemove = h.reqAdd, h.reqRemove
	r.ResponseHeadersToAdd, r.ResponseHeadersToRemove = h.respAdd, h.respRemove
	return nil
}

// headerOptions is a pair of header modifiers in xDS form.
type headerOptions struct {
	reqAdd, respAdd       []*corev3.HeaderValueOption
	reqRemove, respRemove []string
}

// headerModifiers translates request and response modifiers (ignored by
// gRPC clients, kept for Envoy): Add appends (APPEND_IF_EXISTS_OR_ADD),
// Set overwrites (OVERWRITE_IF_EXISTS_OR_ADD), each sorted by name, Add
// first; Remove in order.
func headerModifiers(req, resp *chain.HTTPHeaderModifiers) (headerOptions, error) {
	var h headerOptions
	var err error
	if h.reqAdd, h.reqRemove, err = modifierOptions("RequestHeaders", req); err != nil {
		return h, err
	}
	h.respAdd, h.respRemove, err = modifierOptions("ResponseHeaders", resp)
	return h, err
}

func modifierOptions(field string, m *chain.HTTPHeaderModifiers) ([]*corev3.HeaderValueOption, []string, error) {
	if m.IsZero() {
		return nil, nil, nil
	}
	var add []*corev3.HeaderValueOption
	for _, set := range []struct {
		what   string
		values map[string]string
		action corev3.HeaderValueOption_HeaderAppendAction
	}{
		{"Add", m.Add, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
		{"Set", m.Set, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
	} {
		for _, k := range sortedKeys(set.values) {
			if err := checkHeaderName(field+"."+set.what, k); err != nil {
				return nil, nil, err
			}
			if err := checkText(field+"."+set.what+" value", set.values[k]); err != nil {
				return nil, nil, err
			}
			add = append(add, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: k, Value: set.values[k]},
				AppendAction: set.action,
			})
		}
	}
	for _, k := range m.Remove {
		if err := checkHeaderName(field+".Remove", k); err != nil {
			return nil, nil, err
		}
	}
	return add, slices.Clone(m.Remove), nil
}

// checkHeaderName rejects what Envoy's header-name rule rejects: an empty
// name or one with NUL, CR or LF.
func checkHeaderName(field, name string) error {
	if name == "" {
		return errf("%s has an empty header name", field)
	}
	return checkText(field, name)
}

// routeMatch translates a route's match (§4.2); no match is the catch-all
// prefix "/".
func routeMatch(def *chain.ServiceRoute) (*routev3.RouteMatch, error) {
	m := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	var h *chain.ServiceRouteHTTPMatch
	if def != nil && def.Match != nil {
		h = def.Match.HTTP
	}
	if h == nil {
		return m, nil
	}
	if err := setPath(m, h); err != nil {
		return nil, err
	}
	for j := range h.Header {
		hm, err := headerMatcher(&h.Header[j])
		if err != nil {
			return nil, prefixErr("Header", j, err)
		}
		m.Headers = append(m.Headers, hm)
	}
	for j := range h.QueryParam {
		qm, err := queryMatcher(&h.QueryParam[j])
		if err != nil {
			return nil, prefixErr("QueryParam", j, err)
		}
		m.QueryParameters = append(m.QueryParameters, qm)
	}
	if len(h.Methods) > 0 {
		quoted := make([]string, len(h.Methods))
		for i, meth := range h.Methods {
			quoted[i] = regexp.QuoteMeta(meth)
		}
		m.Headers = append(m.Headers, &routev3.HeaderMatcher{
			Name:                 ":method",
			HeaderMatchSpecifier: stringMatch(safeRegex(strings.Join(quoted, "|"))),
		})
	}
	return m, nil
}

// setPath sets the path specifier of m from at most one of PathExact,
// PathPrefix and PathRegex (none: prefix "/").
func setPath(m *routev3.RouteMatch, h *chain.ServiceRouteHTTPMatch) error {
	if count(h.PathExact != "", h.PathPrefix != "", h.PathRegex != "") > 1 {
		return errf("sets more than one of PathExact, PathPrefix and PathRegex")
	}
	switch {
	case h.PathExact != "":
		m.PathSpecifier = &routev3.RouteMatch_Path{Path: h.PathExact}
		return checkText("PathExact", h.PathExact)
	case h.PathPrefix != "":
		m.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: h.PathPrefix}
		return checkText("PathPrefix", h.PathPrefix)
	case h.PathRegex != "":
		m.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: h.PathRegex}}
		return checkRegex("PathRegex", h.PathRegex)
	}
	return nil
}

// headerMatcher translates one header match: exactly one of Present,
// Exact, Prefix, Suffix and Regex, optionally inverted. The name is
// lower-cased (gRPC metadata keys are).
func headerMatcher(h *chain.ServiceRouteHTTPMatchHeader) (*routev3.HeaderMatcher, error) {
	if h.Name == "" {
		return nil, errf("has no Name")
	}
	if n := count(h.Present, h.Exact != "", h.Prefix != "", h.Suffix != "", h.Regex != ""); n != 1 {
		return nil, errf("sets %d of Present, Exact, Prefix, Suffix and Regex, want exactly one", n)
	}
	out := &routev3.HeaderMatcher{Name: strings.ToLower(h.Name), InvertMatch: h.Invert}
	var err error
	switch {
	case h.Present:
		out.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	case h.Exact != "":
		out.HeaderMatchSpecifier = stringMatch(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Exact}})
		err = checkText("Exact", h.Exact)
	case h.Prefix != "":
		out.HeaderMatchSpecifier = stringMatch(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: h.Prefix}})
		err = checkText("Prefix", h.Prefix)
	case h.Suffix != "":
		out.HeaderMatchSpecifier = stringMatch(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: h.Suffix}})
		err = checkText("Suffix", h.Suffix)
	default:
		out.HeaderMatchSpecifier = stringMatch(safeRegex(h.Regex))
		err = checkRegex("Regex", h.Regex)
	}
	if err != nil {
		return nil, err
	}
	return out, checkText("Name", h.Name)
}

// queryMatcher translates one query-parameter match: exactly one of
// Present, Exact and Regex.
func queryMatcher(q *chain.ServiceRouteHTTPMatchQueryParam) (*routev3.QueryParameterMatcher, error) {
	if q.Name == "" {
		return nil, errf("has no Name")
	}
	if n := count(q.Present, q.Exact != "", q.Regex != ""); n != 1 {
		return nil, errf("sets %d of Present, Exact and Regex, want exactly one", n)
	}
	out := &routev3.QueryParameterMatcher{Name: q.Name}
	var err error
	switch {
	case q.Present:
		out.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
	case q.Exact != "":
		out.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: q.Exact}},
		}
		err = checkText("Exact", q.Exact)
	default:
		out.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: safeRegex(q.Regex)}
		err = checkRegex("Regex", q.Regex)
	}
	if err != nil {
		return nil, err
	}
	return out, checkText("Name", q.Name)
}

func stringMatch(m *matcherv3.StringMatcher) *routev3.HeaderMatcher_StringMatch {
	return &routev3.HeaderMatcher_StringMatch{StringMatch: m}
}

func safeRegex(re string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
		SafeRegex: &matcherv3.RegexMatcher{Regex: re},
	}}
}

// count returns how many of conds are true.
func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// errf returns a plain error; Build wraps it with ErrInvalidChain and the
// route it comes from.
func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// prefixErr names the list element an error comes from: "Header[1] has no Name".
func prefixErr(list string, j int, err error) error { return fmt.Errorf("%s[%d] %w", list, j, err) }

// checkText rejects the characters no xDS string field may hold (Envoy's
// header-name and header-value rules).
func checkText(field, s string) error {
	if strings.ContainsAny(s, "\x00\r\n") {
		return errf("%s %q contains a NUL, CR or LF character", field, s)
	}
	return nil
}

// checkRegex rejects an expression grpc-go's RE2 compiler would reject
// (which NACKs the whole route configuration).
func checkRegex(field, re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("%s %q is not a valid RE2 expression: %w", field, re, err)
	}
	return checkText(field, re)
}
