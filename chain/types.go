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
	NumRetries            uint32   `json:",omitempty"`
	RetryOnConnectFailure bool     `json:",omitempty"`
	RetryOnStatusCodes    []uint32 `json:",omitempty"`
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
	Meta           map[string]string                  `json:",omitempty"`
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
}

// Route is one compiled route of a router node.
type Route struct {
	Definition *ServiceRoute
	NextNode   string
}

// Split is one compiled leg of a splitter node; Weight is the effective weight.
type Split struct {
	Weight   float32
	NextNode string
}

// ResolverNodeInfo is the resolver part of a resolver node.
type ResolverNodeInfo struct {
	Default        bool `json:",omitempty"`
	ConnectTimeout Duration
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
