package chain

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Limits on the Meta map shared by every kind (docs/discovery-chain.md,
// Validation).
const (
	MetaMaxPairs       = 64
	MetaKeyMaxLength   = 128
	MetaValueMaxLength = 512
)

// WildcardName is the name that service-defaults may not use.
const WildcardName = "*"

// Mesh-gateway modes accepted in MeshGateway.Mode.
const (
	MeshGatewayModeDefault = ""
	MeshGatewayModeNone    = "none"
	MeshGatewayModeLocal   = "local"
	MeshGatewayModeRemote  = "remote"
)

// validHTTPMethods are the methods a route may match on.
var validHTTPMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true,
}

// validRetryConditions are the RetryOn values a route may use (later
// Consul's list: Envoy's HTTP and gRPC retry conditions).
var validRetryConditions = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "connect-failure": true,
	"envoy-ratelimited": true, "retriable-4xx": true, "refused-stream": true,
	"cancelled": true, "deadline-exceeded": true, "internal": true,
	"resource-exhausted": true, "unavailable": true,
}

// validLBPolicies are the LoadBalancer.Policy values ("" is the default).
var validLBPolicies = map[string]bool{
	"": true, LBPolicyRoundRobin: true, LBPolicyLeastRequest: true,
	LBPolicyRingHash: true, LBPolicyMaglev: true, LBPolicyRandom: true,
}

// validHashFields are the HashPolicy.Field values.
var validHashFields = map[string]bool{
	HashPolicyHeader: true, HashPolicyCookie: true, HashPolicyQueryParam: true,
}

// Bounds chainstore adds to RingHashConfig and LeastRequestConfig (Consul
// does not check them; Envoy and gRPC clients reject the resources
// otherwise): docs/discovery-chain.md, service-resolver.
const (
	MaxRingSize        = 8388608
	DefaultMinRingSize = 1024 // what Envoy and gRPC clients use when unset
	MinChoiceCount     = 2
)

// subsetNameRE is the DNS-label rule for subset names
// (docs/discovery-chain.md, service-resolver).
var subsetNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

const (
	subsetLengthReason = "must be non-empty and 63 characters or fewer"
	subsetCharsReason  = "must be 63 characters or fewer, begin or end with lower case alphanumeric characters, and contain lower case alphanumeric characters or '-' in between"
)

// vErr builds the *ValidationError for entry e.
func vErr(e Entry, format string, args ...any) error {
	return &ValidationError{Kind: e.GetKind(), Name: e.GetName(), Msg: fmt.Sprintf(format, args...)}
}

// validateMeta checks the Meta limits. Keys are visited in sorted order so
// the first error reported is deterministic.
func validateMeta(e Entry, meta map[string]string) error {
	if len(meta) > MetaMaxPairs {
		return vErr(e, "Meta exceeds maximum element count %d", MetaMaxPairs)
	}
	for _, k := range sortedMapKeys(meta) {
		if k == "" {
			return vErr(e, "Meta key cannot be blank")
		}
		if len(k) > MetaKeyMaxLength {
			return vErr(e, "Meta key %q exceeds maximum length %d", k, MetaKeyMaxLength)
		}
		if len(meta[k]) > MetaValueMaxLength {
			return vErr(e, "Meta value for key %q exceeds maximum length %d", k, MetaValueMaxLength)
		}
	}
	return nil
}

// validateMeshGateway checks MeshGateway.Mode.
func validateMeshGateway(e Entry, mg MeshGatewayConfig) error {
	switch mg.Mode {
	case MeshGatewayModeDefault, MeshGatewayModeNone, MeshGatewayModeLocal, MeshGatewayModeRemote:
		return nil
	}
	return vErr(e, `MeshGateway.Mode %q is invalid: must be one of "", "none", "local" or "remote"`, mg.Mode)
}

// Validate implements Entry (docs/discovery-chain.md, service-defaults:
// name required, no wildcard name; plus Meta and mesh-gateway mode).
func (e *ServiceConfigEntry) Validate() error {
	if e == nil {
		return errNilEntry(KindServiceDefaults)
	}
	if e.Name == "" {
		// Consul 1.6 did not validate service-defaults; the write failed
		// when the chain of "" was compiled, with this text.
		return vErr(e, "serviceName is required")
	}
	if e.Name == WildcardName {
		return vErr(e, "service-defaults name must be the name of a service, and not a wildcard")
	}
	if err := validateMeta(e, e.Meta); err != nil {
		return err
	}
	return validateMeshGateway(e, e.MeshGateway)
}

// Validate implements Entry (docs/discovery-chain.md, proxy-defaults): the
// name must be "global".
func (e *ProxyConfigEntry) Validate() error {
	if e == nil {
		return errNilEntry(KindProxyDefaults)
	}
	if e.Name == "" {
		return vErr(e, "Name is required")
	}
	if e.Name != ProxyDefaultsName {
		return proxyNameError(e.Name)
	}
	if err := validateMeta(e, e.Meta); err != nil {
		return err
	}
	return validateMeshGateway(e, e.MeshGateway)
}

// Validate implements Entry (docs/discovery-chain.md, service-router),
// returning the first failure in the documented order.
func (e *ServiceRouterConfigEntry) Validate() error {
	if e == nil {
		return errNilEntry(KindServiceRouter)
	}
	if e.Name == "" {
		return vErr(e, "Name is required")
	}
	if err := validateMeta(e, e.Meta); err != nil {
		return err
	}
	for i, route := range e.Routes {
		prefixRewriteOK := false
		if route.Match != nil && route.Match.HTTP != nil {
			ok, err := e.validateHTTPMatch(i, route.Match.HTTP)
			if err != nil {
				return err
			}
			prefixRewriteOK = ok
		}
		if d := route.Destination; d != nil {
			if d.PrefixRewrite != "" && !prefixRewriteOK {
				return vErr(e, "Route[%d] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix", i)
			}
			for _, r := range d.RetryOn {
				if !validRetryConditions[r] {
					return vErr(e, "Route[%d] contains an invalid retry condition: %q", i, r)
				}
			}
		}
	}
	return nil
}

// validateHTTPMatch checks route i's HTTP match. It reports whether the
// match allows a PrefixRewrite (PathExact or PathPrefix set).
func (e *ServiceRouterConfigEntry) validateHTTPMatch(i int, m *ServiceRouteHTTPMatch) (bool, error) {
	pathParts := 0
	if m.PathExact != "" {
		pathParts++
		if !strings.HasPrefix(m.PathExact, "/") {
			return false, vErr(e, "Route[%d] PathExact doesn't start with '/': %q", i, m.PathExact)
		}
	}
	if m.PathPrefix != "" {
		pathParts++
		if !strings.HasPrefix(m.PathPrefix, "/") {
			return false, vErr(e, "Route[%d] PathPrefix doesn't start with '/': %q", i, m.PathPrefix)
		}
	}
	if m.PathRegex != "" {
		pathParts++
	}
	if pathParts > 1 {
		return false, vErr(e, "Route[%d] should only contain at most one of PathExact, PathPrefix, or PathRegex", i)
	}
	for j, h := range m.Header {
		if h.Name == "" {
			return false, vErr(e, "Route[%d] Header[%d] missing required Name field", i, j)
		}
		if countSet(h.Present, h.Exact != "", h.Prefix != "", h.Suffix != "", h.Regex != "") != 1 {
			return false, vErr(e, "Route[%d] Header[%d] should only contain one of Present, Exact, Prefix, Suffix, or Regex", i, j)
		}
	}
	for j, q := range m.QueryParam {
		if q.Name == "" {
			return false, vErr(e, "Route[%d] QueryParam[%d] missing required Name field", i, j)
		}
		if countSet(q.Present, q.Exact != "", q.Regex != "") != 1 {
			return false, vErr(e, "Route[%d] QueryParam[%d] should only contain one of Present, Exact, or Regex", i, j)
		}
	}
	seen := make(map[string]bool, len(m.Methods))
	for _, method := range m.Methods {
		if !validHTTPMethods[method] {
			return false, vErr(e, "Route[%d] Methods contains an invalid method %q", i, method)
		}
		if seen[method] {
			return false, vErr(e, "Route[%d] Methods contains %q more than once", i, method)
		}
		seen[method] = true
	}
	return m.PathExact != "" || m.PathPrefix != "", nil
}

func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// Validate implements Entry (docs/discovery-chain.md, service-splitter):
// splits present, no duplicate
// destination, weights summing to exactly 100.00.
func (e *ServiceSplitterConfigEntry) Validate() error {
	if e == nil {
		return errNilEntry(KindServiceSplitter)
	}
	if e.Name == "" {
		return vErr(e, "Name is required")
	}
	if len(e.Splits) == 0 {
		return vErr(e, "no splits configured")
	}
	if err := validateMeta(e, e.Meta); err != nil {
		return err
	}
	type dest struct{ service, subset, namespace string }
	seen := make(map[dest]bool, len(e.Splits))
	for _, s := range e.Splits {
		d := dest{s.Service, s.ServiceSubset, s.Namespace}
		if d.service == "" {
			d.service = e.Name
		}
		if seen[d] {
			return vErr(e, "split destination occurs more than once: service=%q, subset=%q, namespace=%q",
				d.service, d.subset, d.namespace)
		}
		seen[d] = true
	}
	if ok, sum := splitSum(e.Splits); !ok {
		return vErr(e, "the sum of all split weights must be 100, not %f", sum)
	}
	return nil
}

// splitSum adds the weights in exact 0.01 units. It reports whether they
// total exactly 10000 units, and the total in percent for the message.
// Integer arithmetic is exact for any finite float32, so no combination of
// huge weights can cancel out by rounding.
func splitSum(splits []ServiceSplit) (bool, float32) {
	total := new(big.Int)
	var f float64
	finite := true
	for _, s := range splits {
		w := scaledWeight(s.Weight)
		f += w
		if math.IsNaN(w) || math.IsInf(w, 0) {
			finite = false
			continue
		}
		bf := new(big.Float).SetFloat64(w)
		wi, _ := bf.Int(nil)
		total.Add(total, wi)
	}
	if finite {
		ok := total.Cmp(big.NewInt(10000)) == 0
		tf, _ := new(big.Float).SetInt(total).Float64()
		return ok, float32(tf / 100)
	}
	return false, float32(f / 100)
}

// isSubset reports whether name is a subset defined by the resolver.
func (e *ServiceResolverConfigEntry) isSubset(name string) bool {
	_, ok := e.Subsets[name]
	return ok
}

// Validate implements Entry (docs/discovery-chain.md, service-resolver), in
// the documented order. Map keys are visited in sorted order so the
// reported error is deterministic.
func (e *ServiceResolverConfigEntry) Validate() error {
	if e == nil {
		return errNilEntry(KindServiceResolver)
	}
	if e.Name == "" {
		return vErr(e, "Name is required")
	}
	if err := validateMeta(e, e.Meta); err != nil {
		return err
	}
	for _, name := range sortedMapKeys(e.Subsets) {
		if name == "" {
			return vErr(e, "Subset defined with empty name")
		}
		if reason := subsetNameProblem(name); reason != "" {
			return vErr(e, "Subset %q is invalid: %s", name, reason)
		}
		if f := e.Subsets[name].Filter; f != "" {
			if _, err := ParseFilter(f); err != nil {
				return vErr(e, "Filter for subset %q is not a valid expression: %v", name, err)
			}
		}
	}
	if e.DefaultSubset != "" && !e.isSubset(e.DefaultSubset) {
		return vErr(e, "DefaultSubset %q is not a valid subset", e.DefaultSubset)
	}
	if err := e.validateRedirect(); err != nil {
		return err
	}
	if err := e.validateFailover(); err != nil {
		return err
	}
	if e.ConnectTimeout < 0 {
		return vErr(e, "Bad ConnectTimeout '%s', must be >= 0", time.Duration(e.ConnectTimeout))
	}
	if e.RequestTimeout < 0 {
		return vErr(e, "Bad RequestTimeout '%s', must be >= 0", time.Duration(e.RequestTimeout))
	}
	return e.validateLoadBalancer()
}

// validateLoadBalancer checks LoadBalancer with later Consul's rules and
// texts, then chainstore's ring-size and choice-count bounds.
func (e *ServiceResolverConfigEntry) validateLoadBalancer() error {
	lb := e.LoadBalancer
	if lb == nil {
		return nil
	}
	if !validLBPolicies[lb.Policy] {
		return vErr(e, "Bad LoadBalancer policy: %q is not supported", lb.Policy)
	}
	if lb.Policy != LBPolicyRingHash && lb.RingHashConfig != nil {
		return vErr(e, "Bad LoadBalancer configuration. RingHashConfig specified for incompatible load balancing policy %q", lb.Policy)
	}
	if lb.Policy != LBPolicyLeastRequest && lb.LeastRequestConfig != nil {
		return vErr(e, "Bad LoadBalancer configuration. LeastRequestConfig specified for incompatible load balancing policy %q", lb.Policy)
	}
	if !lb.IsHashBased() && len(lb.HashPolicies) > 0 {
		return vErr(e, "Bad LoadBalancer configuration: HashPolicies specified for non-hash-based Policy: %q", lb.Policy)
	}
	for i, hp := range lb.HashPolicies {
		if hp.Field != "" && !validHashFields[hp.Field] {
			return vErr(e, "Bad LoadBalancer HashPolicy[%d]: %q is not a supported field", i, hp.Field)
		}
		if hp.SourceIP && hp.Field != "" {
			return vErr(e, "Bad LoadBalancer HashPolicy[%d]: A single hash policy cannot hash both a source address and a %q", i, hp.Field)
		}
		if hp.SourceIP && hp.FieldValue != "" {
			return vErr(e, "Bad LoadBalancer HashPolicy[%d]: A FieldValue cannot be specified when hashing SourceIP", i)
		}
		if hp.Field != "" && hp.FieldValue == "" {
			return vErr(e, "Bad LoadBalancer HashPolicy[%d]: Field %q was specified without a FieldValue", i, hp.Field)
		}
		if hp.FieldValue != "" && hp.Field == "" {
			return vErr(e, "Bad LoadBalancer HashPolicy[%d]: FieldValue requires a Field to apply to", i)
		}
		if hp.CookieConfig != nil {
			if hp.Field != HashPolicyCookie {
				return vErr(e, "Bad LoadBalancer HashPolicy[%d]: cookie_config provided for %q", i, hp.Field)
			}
			if hp.CookieConfig.Session && hp.CookieConfig.TTL != 0 {
				return vErr(e, "Bad LoadBalancer HashPolicy[%d]: a session cookie cannot have an associated TTL", i)
			}
			if hp.CookieConfig.TTL < 0 {
				return vErr(e, "Bad LoadBalancer HashPolicy[%d]: CookieConfig.TTL '%s' must be >= 0", i, time.Duration(hp.CookieConfig.TTL))
			}
		}
	}
	if rh := lb.RingHashConfig; rh != nil {
		if rh.MinimumRingSize > MaxRingSize || rh.MaximumRingSize > MaxRingSize {
			return vErr(e, "Bad LoadBalancer RingHashConfig: ring sizes must be at most %d", MaxRingSize)
		}
		minSize := rh.MinimumRingSize
		if minSize == 0 {
			minSize = DefaultMinRingSize
		}
		if rh.MaximumRingSize != 0 && minSize > rh.MaximumRingSize {
			return vErr(e, "Bad LoadBalancer RingHashConfig: MinimumRingSize %d (%d when unset) is greater than MaximumRingSize %d",
				rh.MinimumRingSize, DefaultMinRingSize, rh.MaximumRingSize)
		}
	}
	if lr := lb.LeastRequestConfig; lr != nil && lr.ChoiceCount != 0 && lr.ChoiceCount < MinChoiceCount {
		return vErr(e, "Bad LoadBalancer LeastRequestConfig: ChoiceCount must be 0 (the default) or at least %d", MinChoiceCount)
	}
	return nil
}

func (e *ServiceResolverConfigEntry) validateRedirect() error {
	r := e.Redirect
	if r == nil {
		return nil
	}
	if len(e.Failover) > 0 {
		return vErr(e, "Redirect and Failover cannot both be set")
	}
	if *r == (ServiceResolverRedirect{}) {
		return vErr(e, "Redirect is empty")
	}
	switch r.Service {
	case "":
		if r.ServiceSubset != "" {
			return vErr(e, "Redirect.ServiceSubset defined without Redirect.Service")
		}
		if r.Namespace != "" {
			return vErr(e, "Redirect.Namespace defined without Redirect.Service")
		}
	case e.Name:
		if r.ServiceSubset != "" && !e.isSubset(r.ServiceSubset) {
			return vErr(e, "Redirect.ServiceSubset %q is not a valid subset of %q", r.ServiceSubset, r.Service)
		}
	}
	return nil
}

func (e *ServiceResolverConfigEntry) validateFailover() error {
	for _, k := range sortedMapKeys(e.Failover) {
		f := e.Failover[k]
		if k != "*" && !e.isSubset(k) {
			return vErr(e, "Bad Failover[%q]: not a valid subset", k)
		}
		if f.Service == "" && f.ServiceSubset == "" && f.Namespace == "" && len(f.Datacenters) == 0 && len(f.Targets) == 0 {
			return vErr(e, "Bad Failover[%q] one of Service, ServiceSubset, Namespace, or Datacenters is required", k)
		}
		if f.ServiceSubset != "" && (f.Service == "" || f.Service == e.Name) && !e.isSubset(f.ServiceSubset) {
			return vErr(e, "Bad Failover[%q].ServiceSubset %q is not a valid subset of %q", k, f.ServiceSubset, f.Service)
		}
		if len(f.Targets) > 0 {
			switch {
			case len(f.Datacenters) > 0:
				return vErr(e, "Bad Failover[%q]: Targets cannot be set with Datacenters", k)
			case f.ServiceSubset != "":
				return vErr(e, "Bad Failover[%q]: Targets cannot be set with ServiceSubset", k)
			case f.Service != "":
				return vErr(e, "Bad Failover[%q]: Targets cannot be set with Service", k)
			}
		}
		for i, t := range f.Targets {
			if t.ServiceSubset != "" && (t.Service == "" || t.Service == e.Name) && !e.isSubset(t.ServiceSubset) {
				return vErr(e, "Bad Failover[%q].Targets[%d]: ServiceSubset %q is not a valid subset of %q", k, i, t.ServiceSubset, e.Name)
			}
		}
		for _, dc := range f.Datacenters {
			if dc == "" {
				return vErr(e, "Bad Failover[%q].Datacenters: found empty datacenter", k)
			}
		}
	}
	return nil
}

// subsetNameProblem returns why name is not a valid subset name, or "".
func subsetNameProblem(name string) string {
	if len(name) < 1 || len(name) > 63 {
		return subsetLengthReason
	}
	if !subsetNameRE.MatchString(name) {
		return subsetCharsReason
	}
	return ""
}

// ValidSubsetName reports whether name is a valid subset name: a
// lower-case DNS label of 1-63 characters.
func ValidSubsetName(name string) bool { return subsetNameProblem(name) == "" }

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
