package chain

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind is a config-entry kind.
type Kind string

// The five config-entry kinds chainstore stores.
const (
	KindServiceDefaults Kind = "service-defaults"
	KindProxyDefaults   Kind = "proxy-defaults"
	KindServiceRouter   Kind = "service-router"
	KindServiceSplitter Kind = "service-splitter"
	KindServiceResolver Kind = "service-resolver"
)

// Kinds lists every supported kind in a fixed order.
var Kinds = []Kind{KindServiceDefaults, KindProxyDefaults, KindServiceRouter, KindServiceSplitter, KindServiceResolver}

// ProxyDefaultsName is the only allowed name of a proxy-defaults entry.
const ProxyDefaultsName = "global"

// ParseKind returns the Kind named by s, or an error
// `invalid config entry kind: <s>`.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", &DecodeError{Msg: fmt.Sprintf("invalid config entry kind: %s", s)}
}

// String implements fmt.Stringer.
func (k Kind) String() string { return string(k) }

// Key identifies an entry in the store. Both parts are lower-cased, so
// "Web" and "web" are the same key (docs/discovery-chain.md, Kinds and
// identity).
type Key struct {
	Kind Kind
	Name string
}

// KeyOf returns the normalized key of (kind, name).
func KeyOf(kind Kind, name string) Key {
	return Key{Kind: Kind(strings.ToLower(string(kind))), Name: strings.ToLower(name)}
}

// String renders the key as "kind/name".
func (k Key) String() string { return string(k.Kind) + "/" + k.Name }

// Entry is one config entry of any kind. Implementations are the pointer
// types *ServiceConfigEntry, *ProxyConfigEntry, *ServiceRouterConfigEntry,
// *ServiceSplitterConfigEntry and *ServiceResolverConfigEntry.
//
// Entries carry no Raft indexes; the store keeps those beside them.
type Entry interface {
	GetKind() Kind
	GetName() string
	// Normalize canonicalizes the entry in place (lower-cases protocols,
	// upper-cases methods, rounds split weights, ...).
	Normalize() error
	// Validate checks the entry on its own (docs/discovery-chain.md,
	// Validation). It returns a
	// *ValidationError. Call Normalize first.
	Validate() error
	// References lists the other services this entry refers to
	// (Consul's ListRelatedServices), sorted, without its own name.
	References() []string
}

// Duration is a time.Duration that encodes to JSON as a Go duration string
// ("15s") and decodes from either a string or a number of nanoseconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case float64:
		*d = Duration(time.Duration(t))
	case string:
		p, err := time.ParseDuration(t)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", t, err)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("invalid duration %s", string(b))
	}
	return nil
}

// MeshGatewayConfig selects the mesh-gateway mode: "", "none", "local" or "remote".
type MeshGatewayConfig struct {
	Mode string `json:",omitempty"`
}

// ExposeConfig holds sidecar expose settings. Stored, not used by the chain.
type ExposeConfig struct {
	Checks bool         `json:",omitempty"`
	Paths  []ExposePath `json:",omitempty"`
}

// ExposePath is one exposed HTTP path.
type ExposePath struct {
	Path          string `json:",omitempty"`
	LocalPathPort int    `json:",omitempty"`
	ListenerPort  int    `json:",omitempty"`
	Protocol      string `json:",omitempty"`
}

// ServiceConfigEntry is a service-defaults entry.
type ServiceConfigEntry struct {
	Kind        Kind
	Name        string
	Protocol    string            `json:",omitempty"`
	MeshGateway MeshGatewayConfig `json:",omitempty"`
	ExternalSNI string            `json:",omitempty"`
	Expose      ExposeConfig      `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
}

// ProxyConfigEntry is a proxy-defaults entry; its name is always "global".
type ProxyConfigEntry struct {
	Kind        Kind
	Name        string
	Config      map[string]any    `json:",omitempty"`
	MeshGateway MeshGatewayConfig `json:",omitempty"`
	Expose      ExposeConfig      `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
}

// ServiceRouterConfigEntry is a service-router entry.
type ServiceRouterConfigEntry struct {
	Kind   Kind
	Name   string
	Routes []ServiceRoute    `json:",omitempty"`
	Meta   map[string]string `json:",omitempty"`
}

// ServiceRoute is one route of a router; the first matching route wins.
type ServiceRoute struct {
	Match       *ServiceRouteMatch       `json:",omitempty"`
	Destination *ServiceRouteDestination `json:",omitempty"`
}

// ServiceRouteMatch holds the match criteria of a route.
type ServiceRouteMatch struct {
	HTTP *ServiceRouteHTTPMatch `json:",omitempty"`
}

// ServiceRouteHTTPMatch matches an HTTP request.
type ServiceRouteHTTPMatch struct {
	PathExact  string                            `json:",omitempty"`
	PathPrefix string                            `json:",omitempty"`
	PathRegex  string                            `json:",omitempty"`
	Header     []ServiceRouteHTTPMatchHeader     `json:",omitempty"`
	QueryParam []ServiceRouteHTTPMatchQueryParam `json:",omitempty"`
	Methods    []string                          `json:",omitempty"`
}

// ServiceRouteHTTPMatchHeader matches one request header.
type ServiceRouteHTTPMatchHeader struct {
	Name    string
	Present bool   `json:",omitempty"`
	Exact   string `json:",omitempty"`
	Prefix  string `json:",omitempty"`
	Suffix  string `json:",omitempty"`
	Regex   string `json:",omitempty"`
	Invert  bool   `json:",omitempty"`
}

// ServiceRouteHTTPMatchQueryParam matches one query parameter.
type ServiceRouteHTTPMatchQueryParam struct {
	Name    string
	Present bool   `json:",omitempty"`
	Exact   string `json:",omitempty"`
	Regex   string `json:",omitempty"`
}

// ServiceRouteDestination says where a matched request goes.
type ServiceRouteDestination struct {
	Service               string   `json:",omitempty"`
	ServiceSubset         string   `json:",omitempty"`
	Namespace             string   `json:",omitempty"`
	PrefixRewrite         string   `json:",omitempty"`
	RequestTimeout        Duration `json:",omitempty"`
	IdleTimeout           Duration `json:",omitempty"`
	NumRetries            uint32   `json:",omitempty"`
	RetryOnConnectFailure bool     `json:",omitempty"`
	// RetryOn lists Envoy retry conditions (docs/discovery-chain.md,
	// service-router).
	RetryOn            []string `json:",omitempty"`
	RetryOnStatusCodes []uint32 `json:",omitempty"`
	// RequestHeaders and ResponseHeaders modify the headers of a request
	// sent down this route and of its response.
	RequestHeaders  *HTTPHeaderModifiers `json:",omitempty"`
	ResponseHeaders *HTTPHeaderModifiers `json:",omitempty"`
}

// HTTPHeaderModifiers adds, sets or removes HTTP headers of a request or
// response (later Consul's field of routes and splits).
type HTTPHeaderModifiers struct {
	// Add appends values (a header already present keeps its values).
	Add map[string]string `json:",omitempty"`
	// Set replaces any existing values.
	Set map[string]string `json:",omitempty"`
	// Remove lists header names to strip.
	Remove []string `json:",omitempty"`
}

// IsZero reports whether m modifies nothing (nil included).
func (m *HTTPHeaderModifiers) IsZero() bool {
	return m == nil || (len(m.Add) == 0 && len(m.Set) == 0 && len(m.Remove) == 0)
}

// ServiceSplitterConfigEntry is a service-splitter entry.
type ServiceSplitterConfigEntry struct {
	Kind   Kind
	Name   string
	Splits []ServiceSplit    `json:",omitempty"`
	Meta   map[string]string `json:",omitempty"`
}

// ServiceSplit is one weighted leg of a splitter.
type ServiceSplit struct {
	Weight        float32
	Service       string `json:",omitempty"`
	ServiceSubset string `json:",omitempty"`
	Namespace     string `json:",omitempty"`
	// RequestHeaders and ResponseHeaders modify the headers of a request
	// sent down this leg and of its response.
	RequestHeaders  *HTTPHeaderModifiers `json:",omitempty"`
	ResponseHeaders *HTTPHeaderModifiers `json:",omitempty"`
}

// ServiceResolverConfigEntry is a service-resolver entry.
type ServiceResolverConfigEntry struct {
	Kind           Kind
	Name           string
	DefaultSubset  string                             `json:",omitempty"`
	Subsets        map[string]ServiceResolverSubset   `json:",omitempty"`
	Redirect       *ServiceResolverRedirect           `json:",omitempty"`
	Failover       map[string]ServiceResolverFailover `json:",omitempty"`
	ConnectTimeout Duration                           `json:",omitempty"`
	// RequestTimeout is the timeout of a whole request to this service,
	// used by a route that sets none.
	RequestTimeout Duration `json:",omitempty"`
	// LoadBalancer picks the load-balancing policy for this service.
	LoadBalancer *LoadBalancer     `json:",omitempty"`
	Meta         map[string]string `json:",omitempty"`
}

// Load-balancing policies (LoadBalancer.Policy); "" is the proxy's default
// (round robin).
const (
	LBPolicyRoundRobin   = "round_robin"
	LBPolicyLeastRequest = "least_request"
	LBPolicyRingHash     = "ring_hash"
	LBPolicyMaglev       = "maglev"
	LBPolicyRandom       = "random"
)

// Hash-policy fields (HashPolicy.Field).
const (
	HashPolicyHeader     = "header"
	HashPolicyCookie     = "cookie"
	HashPolicyQueryParam = "query_parameter"
)

// LoadBalancer is a resolver's load-balancing policy and its settings.
type LoadBalancer struct {
	Policy             string              `json:",omitempty"`
	RingHashConfig     *RingHashConfig     `json:",omitempty"`
	LeastRequestConfig *LeastRequestConfig `json:",omitempty"`
	// HashPolicies, in order, build the request hash of ring_hash and
	// maglev.
	HashPolicies []HashPolicy `json:",omitempty"`
}

// IsHashBased reports whether the policy hashes requests (ring_hash or
// maglev).
func (lb *LoadBalancer) IsHashBased() bool {
	return lb != nil && (lb.Policy == LBPolicyRingHash || lb.Policy == LBPolicyMaglev)
}

// RingHashConfig sizes the ring of the ring_hash policy.
type RingHashConfig struct {
	MinimumRingSize uint64 `json:",omitempty"`
	MaximumRingSize uint64 `json:",omitempty"`
}

// LeastRequestConfig tunes the least_request policy.
type LeastRequestConfig struct {
	ChoiceCount uint32 `json:",omitempty"`
}

// HashPolicy is one input of a request hash: a header, cookie or query
// parameter named by FieldValue, or the source IP.
type HashPolicy struct {
	Field        string        `json:",omitempty"`
	FieldValue   string        `json:",omitempty"`
	CookieConfig *CookieConfig `json:",omitempty"`
	SourceIP     bool          `json:",omitempty"`
	// Terminal stops hashing at this policy when it produced a hash.
	Terminal bool `json:",omitempty"`
}

// CookieConfig asks the proxy to generate the hashed cookie: a session
// cookie, or one with a TTL, with an optional Path.
type CookieConfig struct {
	Session bool     `json:",omitempty"`
	TTL     Duration `json:",omitempty"`
	Path    string   `json:",omitempty"`
}

// ServiceResolverSubset selects instances by a bexpr filter.
type ServiceResolverSubset struct {
	Filter      string `json:",omitempty"`
	OnlyPassing bool   `json:",omitempty"`
}

// ServiceResolverRedirect sends all traffic for a service elsewhere.
type ServiceResolverRedirect struct {
	Service       string `json:",omitempty"`
	ServiceSubset string `json:",omitempty"`
	Namespace     string `json:",omitempty"`
	Datacenter    string `json:",omitempty"`
}

// ServiceResolverFailover lists where traffic goes when a subset is unhealthy.
type ServiceResolverFailover struct {
	Service       string   `json:",omitempty"`
	ServiceSubset string   `json:",omitempty"`
	Namespace     string   `json:",omitempty"`
	Datacenters   []string `json:",omitempty"`
	// Targets is an ordered list of failover destinations (later Consul);
	// it cannot be combined with Service, ServiceSubset or Datacenters.
	Targets []ServiceResolverFailoverTarget `json:",omitempty"`
}

// ServiceResolverFailoverTarget is one failover destination; empty parts
// keep the failing target's.
type ServiceResolverFailoverTarget struct {
	Service       string `json:",omitempty"`
	ServiceSubset string `json:",omitempty"`
	Namespace     string `json:",omitempty"`
	Datacenter    string `json:",omitempty"`
}

// ---- compiled chain (docs/discovery-chain.md, Compiled chain), 1.6 naming ----

// Node types of a compiled chain.
const (
	NodeTypeRouter   = "router"
	NodeTypeSplitter = "splitter"
	NodeTypeResolver = "resolver"
)

// CompiledChain is a compiled discovery chain (docs/discovery-chain.md,
// Compiled chain).
type CompiledChain struct {
	ServiceName       string
	Namespace         string
	Datacenter        string
	CustomizationHash string `json:",omitempty"`
	Default           bool   `json:",omitempty"`
	Protocol          string
	StartNode         string
	Nodes             map[string]*GraphNode
	Targets           map[string]*Target
}

// GraphNode is one node of a compiled chain; its map key is "<Type>:<Name>".
type GraphNode struct {
	Type     string
	Name     string
	Routes   []*Route          `json:",omitempty"`
	Splits   []*Split          `json:",omitempty"`
	Resolver *ResolverNodeInfo `json:",omitempty"`
	// LoadBalancer is the resolver's policy on a resolver node, and on a
	// splitter node the first hash-based policy among its legs (later
	// Consul's shape).
	LoadBalancer *LoadBalancer `json:",omitempty"`
}

// Route is one compiled route of a router node.
type Route struct {
	Definition *ServiceRoute
	NextNode   string
}

// Split is one compiled leg of a splitter node; Weight is the effective
// weight, left out when zero (as Consul prints it). Definition is the
// configured leg (merged with its parents' header modifiers when nested
// splitters were flattened); it is only present when the leg modifies
// headers, so the 1.6 shape of other chains is unchanged.
type Split struct {
	Definition *ServiceSplit `json:",omitempty"`
	Weight     float32       `json:",omitempty"`
	NextNode   string
}

// ResolverNodeInfo is the resolver part of a resolver node.
type ResolverNodeInfo struct {
	Default        bool `json:",omitempty"`
	ConnectTimeout Duration
	// RequestTimeout is the resolver's RequestTimeout (omitted when 0).
	RequestTimeout Duration `json:",omitempty"`
	Target         string
	Failover       *FailoverInfo `json:",omitempty"`
}

// FailoverInfo lists failover target IDs in priority order.
type FailoverInfo struct {
	Targets []string
}

// Target is one (service, subset, namespace, datacenter) destination.
type Target struct {
	ID            string
	Service       string
	ServiceSubset string `json:",omitempty"`
	Namespace     string
	Datacenter    string
	MeshGateway   MeshGatewayConfig
	Subset        ServiceResolverSubset
	External      bool `json:",omitempty"`
	SNI           string
	Name          string
}
