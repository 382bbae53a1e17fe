package xds

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// grpcRetryOn are the retry conditions grpc-go honours (§3.2, §5.2).
var grpcRetryOn = map[string]bool{
	"cancelled": true, "deadline-exceeded": true, "internal": true, "resource-exhausted": true, "unavailable": true,
}

// Validate checks r before it is published (§6.4): ValidateAll() on every
// message (Anys unpacked); the shape rules grpc-go v1.85.0 enforces or
// that §3 and §5.2 require (API listener with RDS over ADS and only the
// router filter; no empty string matchers, invalid regexes, num_retries 0
// or non-gRPC retry conditions; a "*" virtual host; EDS over ADS or an
// aggregate with children; round robin, ring hash or least request only,
// no TLS; localities with a locality, weight >= 1 and contiguous
// priorities; no address twice in an assignment); and the references
// (listener → route configuration, route → cluster, EDS cluster →
// assignment, aggregate → children, no aggregate cycle). It returns nil or
// a *ValidationError listing every problem.
func Validate(r *Resources) error {
	v := &validator{}
	if r == nil {
		v.add("resources", "missing")
		return v.err()
	}
	rds := v.listener(r.Listener)
	routeRefs := v.routeConfig(r.RouteConfig)
	clusters := v.clusters(r.Clusters)
	assignments := v.endpoints(r.Endpoints)
	if r.Listener != nil && r.RouteConfig != nil && rds != r.RouteConfig.GetName() {
		v.add(fmt.Sprintf("listener %q", r.Listener.GetName()),
			"references route configuration %q, but the route configuration is named %q", rds, r.RouteConfig.GetName())
	}
	v.references(routeRefs, clusters, assignments)
	return v.err()
}

// validator collects problems; it never stops at the first one.
type validator struct {
	problems []Problem
}

func (v *validator) add(resource, format string, args ...any) {
	v.problems = append(v.problems, Problem{Resource: resource, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// validateAll runs the envoy module's generated validation of m.
func (v *validator) validateAll(resource string, m interface{ ValidateAll() error }) {
	if err := m.ValidateAll(); err != nil {
		v.add(resource, "%v", err)
	}
}

// unpack decodes a typed config into m, reporting a missing or foreign
// one.
func (v *validator) unpack(resource, what string, a *anypb.Any, m proto.Message) bool {
	if a == nil {
		v.add(resource, "%s is missing", what)
		return false
	}
	if err := a.UnmarshalTo(m); err != nil {
		v.add(resource, "%s is not a %s: %v", what, m.ProtoReflect().Descriptor().FullName(), err)
		return false
	}
	return true
}

// listener checks the API listener (§3.1) and returns the name of the
// route configuration it references.
func (v *validator) listener(l *listenerv3.Listener) string {
	if l == nil {
		v.add("listener", "missing")
		return ""
	}
	res := fmt.Sprintf("listener %q", l.GetName())
	if l.GetName() == "" {
		v.add(res, "has no name")
	}
	v.validateAll(res, l)
	if l.GetAddress() != nil || len(l.GetFilterChains()) > 0 || l.GetDefaultFilterChain() != nil {
		v.add(res, "must set only api_listener (no address, no filter chains)")
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if !v.unpack(res, "api_listener", l.GetApiListener().GetApiListener(), hcm) {
		return ""
	}
	v.validateAll(res+" http connection manager", hcm)
	if hcm.GetXffNumTrustedHops() != 0 || len(hcm.GetOriginalIpDetectionExtensions()) > 0 {
		v.add(res, "xff_num_trusted_hops and original_ip_detection_extensions must stay unset")
	}
	v.httpFilters(res, hcm.GetHttpFilters())
	rds := hcm.GetRds()
	if rds == nil {
		v.add(res, "must take its route configuration from RDS")
		return ""
	}
	v.configSource(res+" rds", rds.GetConfigSource())
	if rds.GetRouteConfigName() == "" {
		v.add(res, "rds.route_config_name is empty")
	}
	return rds.GetRouteConfigName()
}

// httpFilters requires exactly the router filter (terminal, gRFC A39).
func (v *validator) httpFilters(res string, filters []*hcmv3.HttpFilter) {
	if len(filters) != 1 {
		v.add(res, "has %d HTTP filters, want exactly one, the router", len(filters))
		if len(filters) == 0 {
			return
		}
	}
	last := filters[len(filters)-1]
	if last.GetName() != routerFilterName {
		v.add(res, "last HTTP filter is %q, want %q", last.GetName(), routerFilterName)
	}
	router := &routerv3.Router{}
	if v.unpack(res, "router filter typed_config", last.GetTypedConfig(), router) {
		v.validateAll(res+" router filter", router)
	}
}

// configSource requires ADS (or self) and API version 3.
func (v *validator) configSource(res string, cs *corev3.ConfigSource) {
	if cs.GetAds() == nil && cs.GetSelf() == nil {
		v.add(res, "config source must be ads or self")
	}
	if cs.GetResourceApiVersion() != corev3.ApiVersion_V3 {
		v.add(res, "config source resource_api_version must be V3")
	}
}

// routeConfig checks the route configuration (§3.2) and returns the
// clusters its routes use.
func (v *validator) routeConfig(rc *routev3.RouteConfiguration) []string {
	if rc == nil {
		v.add("route configuration", "missing")
		return nil
	}
	res := fmt.Sprintf("route configuration %q", rc.GetName())
	if rc.GetName() == "" {
		v.add(res, "has no name")
	}
	v.validateAll(res, rc)
	var refs []string
	wildcard := false
	for _, vh := range rc.GetVirtualHosts() {
		vres := fmt.Sprintf("%s virtual host %q", res, vh.GetName())
		if len(vh.GetDomains()) == 0 {
			v.add(vres, "has no domains")
		}
		for _, d := range vh.GetDomains() {
			wildcard = wildcard || d == "*"
		}
		if len(vh.GetRoutes()) == 0 {
			v.add(vres, "has no routes")
		}
		v.retryPolicy(vres, vh.GetRetryPolicy())
		for i, r := range vh.GetRoutes() {
			refs = append(refs, v.route(fmt.Sprintf("%s route %d", vres, i), r)...)
		}
	}
	if !wildcard {
		v.add(res, `has no virtual host with domain "*"`)
	}
	return refs
}

// route checks one route and returns the clusters it uses.
func (v *validator) route(res string, r *routev3.Route) []string {
	v.routeMatch(res, r.GetMatch())
	a := r.GetRoute()
	if a == nil {
		v.add(res, "action must be route (a RouteAction)")
		return nil
	}
	v.retryPolicy(res, a.GetRetryPolicy())
	switch cs := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		if cs.Cluster == "" {
			v.add(res, "cluster is empty")
			return nil
		}
		return []string{cs.Cluster}
	case *routev3.RouteAction_WeightedClusters:
		return v.weightedClusters(res, cs.WeightedClusters)
	}
	v.add(res, "must route to cluster or weighted_clusters")
	return nil
}

// routeMatch checks the path specifier and the header matchers.
func (v *validator) routeMatch(res string, m *routev3.RouteMatch) {
	if m == nil {
		v.add(res, "has no match")
		return
	}
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix, *routev3.RouteMatch_Path:
	case *routev3.RouteMatch_SafeRegex:
		v.regex(res+" safe_regex", ps.SafeRegex.GetRegex())
	default:
		v.add(res, "path specifier must be prefix, path or safe_regex")
	}
	for _, h := range m.GetHeaders() {
		hres := fmt.Sprintf("%s header %q", res, h.GetName())
		if h.GetName() == "" {
			v.add(hres, "has no name")
		}
		switch hs := h.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_StringMatch:
			v.stringMatcher(hres, hs.StringMatch)
		case *routev3.HeaderMatcher_PresentMatch, *routev3.HeaderMatcher_RangeMatch:
		case *routev3.HeaderMatcher_ExactMatch, *routev3.HeaderMatcher_PrefixMatch, *routev3.HeaderMatcher_SuffixMatch,
			*routev3.HeaderMatcher_ContainsMatch, *routev3.HeaderMatcher_SafeRegexMatch:
			v.add(hres, "uses a deprecated header matcher; use string_match")
		default:
			v.add(hres, "has no match")
		}
	}
}

// stringMatcher rejects what grpc-go's StringMatcherFromProto rejects.
func (v *validator) stringMatcher(res string, sm *matcherv3.StringMatcher) {
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
	case *matcherv3.StringMatcher_Prefix:
		v.nonEmpty(res, "prefix", p.Prefix)
	case *matcherv3.StringMatcher_Suffix:
		v.nonEmpty(res, "suffix", p.Suffix)
	case *matcherv3.StringMatcher_Contains:
		v.nonEmpty(res, "contains", p.Contains)
	case *matcherv3.StringMatcher_SafeRegex:
		v.regex(res, p.SafeRegex.GetRegex())
	default:
		v.add(res, "string matcher has no pattern")
	}
}

func (v *validator) nonEmpty(res, field, s string) {
	if s == "" {
		v.add(res, "empty %s is not allowed in a string matcher", field)
	}
}

func (v *validator) regex(res, re string) {
	if _, err := regexp.Compile(re); err != nil {
		v.add(res, "regex %q is not valid RE2: %v", re, err)
	}
}

// weightedClusters checks the legs (§3.2) and returns their clusters.
func (v *validator) weightedClusters(res string, wc *routev3.WeightedCluster) []string {
	if wc.GetTotalWeight() != nil { //nolint:staticcheck // deprecated field: the check keeps it unset (§3.2)
		v.add(res, "weighted_clusters.total_weight must stay unset")
	}
	var refs []string
	var total uint64
	for _, c := range wc.GetClusters() {
		if c.GetName() == "" {
			v.add(res, "weighted cluster leg has no name")
			continue
		}
		refs = append(refs, c.GetName())
		total += uint64(c.GetWeight().GetValue())
	}
	if total == 0 || total > math.MaxUint32 {
		v.add(res, "weighted cluster weights add up to %d, want 1 to %d", total, uint64(math.MaxUint32))
	}
	return refs
}

// retryPolicy accepts gRPC status names only and num_retries unset or >= 1.
func (v *validator) retryPolicy(res string, rp *routev3.RetryPolicy) {
	if rp == nil {
		return
	}
	if n := rp.GetNumRetries(); n != nil && n.GetValue() < 1 {
		v.add(res, "retry_policy.num_retries must be unset or at least 1")
	}
	if strings.TrimSpace(rp.GetRetryOn()) == "" {
		v.add(res, "retry_policy.retry_on names no condition")
	}
	for _, on := range strings.Split(rp.GetRetryOn(), ",") {
		if on = strings.TrimSpace(on); on != "" && !grpcRetryOn[on] {
			v.add(res, "retry_policy.retry_on %q is not a gRPC status name", on)
		}
	}
	if bo := rp.GetRetryBackOff(); bo != nil {
		if bo.GetBaseInterval().AsDuration() <= 0 || (bo.GetMaxInterval() != nil && bo.GetMaxInterval().AsDuration() <= 0) {
			v.add(res, "retry_policy.retry_back_off intervals must be positive")
		}
	}
}
