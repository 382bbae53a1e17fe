package fsm

import (
	"fmt"

	"github.com/chainstore/chainstore/chain"
	raftlogv1 "github.com/chainstore/chainstore/proto/chainstore/raftlog/v1"
)

// Conversion between chain.Entry and its log format v1 message
// (raftlogv1.Entry). The contract, checked by FuzzEntryProtoEquivalence:
// for every entry, entryFromProto(entryToProto(e)) has the canonical JSON
// (chain.EncodeEntry) that chain.DecodeCanonical(chain.EncodeEntry(e))
// has, i.e. the v1 log gives every replica the entry the v0 (JSON) log
// gave it. Pointer fields map to message fields, so nil and empty stay
// apart; nil and empty maps and slices do not (the JSON omits both).

// entryToProto converts e (non-nil) to its message.
func entryToProto(e chain.Entry) (*raftlogv1.Entry, error) {
	switch t := e.(type) {
	case *chain.ServiceConfigEntry:
		return &raftlogv1.Entry{Kind: &raftlogv1.Entry_ServiceDefaults{ServiceDefaults: &raftlogv1.ServiceDefaults{
			Name:        t.Name,
			Protocol:    t.Protocol,
			MeshGateway: meshGatewayToProto(t.MeshGateway),
			ExternalSni: t.ExternalSNI,
			Expose:      exposeToProto(t.Expose),
			Meta:        t.Meta,
		}}}, nil
	case *chain.ProxyConfigEntry:
		cfg, err := chain.EncodeProxyConfig(t.Config)
		if err != nil {
			return nil, err
		}
		return &raftlogv1.Entry{Kind: &raftlogv1.Entry_ProxyDefaults{ProxyDefaults: &raftlogv1.ProxyDefaults{
			Name:        t.Name,
			ConfigJson:  cfg,
			MeshGateway: meshGatewayToProto(t.MeshGateway),
			Expose:      exposeToProto(t.Expose),
			Meta:        t.Meta,
		}}}, nil
	case *chain.ServiceRouterConfigEntry:
		m := &raftlogv1.ServiceRouter{Name: t.Name, Meta: t.Meta}
		if len(t.Routes) > 0 {
			m.Routes = make([]*raftlogv1.ServiceRoute, len(t.Routes))
			for i := range t.Routes {
				m.Routes[i] = routeToProto(&t.Routes[i])
			}
		}
		return &raftlogv1.Entry{Kind: &raftlogv1.Entry_ServiceRouter{ServiceRouter: m}}, nil
	case *chain.ServiceSplitterConfigEntry:
		m := &raftlogv1.ServiceSplitter{Name: t.Name, Meta: t.Meta}
		if len(t.Splits) > 0 {
			m.Splits = make([]*raftlogv1.ServiceSplit, len(t.Splits))
			for i, s := range t.Splits {
				m.Splits[i] = &raftlogv1.ServiceSplit{
					Weight:          s.Weight,
					Service:         s.Service,
					ServiceSubset:   s.ServiceSubset,
					Namespace:       s.Namespace,
					RequestHeaders:  headersToProto(s.RequestHeaders),
					ResponseHeaders: headersToProto(s.ResponseHeaders),
				}
			}
		}
		return &raftlogv1.Entry{Kind: &raftlogv1.Entry_ServiceSplitter{ServiceSplitter: m}}, nil
	case *chain.ServiceResolverConfigEntry:
		return &raftlogv1.Entry{Kind: &raftlogv1.Entry_ServiceResolver{ServiceResolver: resolverToProto(t)}}, nil
	}
	return nil, fmt.Errorf("encode entry of type %T: %w", e, ErrMalformedCommand)
}

// entryFromProto converts m back. It fails (wrapping ErrMalformedCommand)
// on a message without a kind or with an undecodable proxy Config.
func entryFromProto(m *raftlogv1.Entry) (chain.Entry, error) {
	switch k := m.GetKind().(type) {
	case *raftlogv1.Entry_ServiceDefaults:
		p := k.ServiceDefaults
		if p == nil {
			break
		}
		return &chain.ServiceConfigEntry{
			Kind:        chain.KindServiceDefaults,
			Name:        p.Name,
			Protocol:    p.Protocol,
			MeshGateway: meshGatewayFromProto(p.MeshGateway),
			ExternalSNI: p.ExternalSni,
			Expose:      exposeFromProto(p.Expose),
			Meta:        nilIfEmpty(p.Meta),
		}, nil
	case *raftlogv1.Entry_ProxyDefaults:
		p := k.ProxyDefaults
		if p == nil {
			break
		}
		cfg, err := chain.DecodeProxyConfig(p.ConfigJson)
		if err != nil {
			return nil, fmt.Errorf("proxy-defaults Config: %w: %w", ErrMalformedCommand, err)
		}
		return &chain.ProxyConfigEntry{
			Kind:        chain.KindProxyDefaults,
			Name:        p.Name,
			Config:      cfg,
			MeshGateway: meshGatewayFromProto(p.MeshGateway),
			Expose:      exposeFromProto(p.Expose),
			Meta:        nilIfEmpty(p.Meta),
		}, nil
	case *raftlogv1.Entry_ServiceRouter:
		p := k.ServiceRouter
		if p == nil {
			break
		}
		e := &chain.ServiceRouterConfigEntry{Kind: chain.KindServiceRouter, Name: p.Name, Meta: nilIfEmpty(p.Meta)}
		if len(p.Routes) > 0 {
			e.Routes = make([]chain.ServiceRoute, len(p.Routes))
			for i, r := range p.Routes {
				e.Routes[i] = routeFromProto(r)
			}
		}
		return e, nil
	case *raftlogv1.Entry_ServiceSplitter:
		p := k.ServiceSplitter
		if p == nil {
			break
		}
		e := &chain.ServiceSplitterConfigEntry{Kind: chain.KindServiceSplitter, Name: p.Name, Meta: nilIfEmpty(p.Meta)}
		if len(p.Splits) > 0 {
			e.Splits = make([]chain.ServiceSplit, len(p.Splits))
			for i, s := range p.Splits {
				e.Splits[i] = chain.ServiceSplit{
					Weight:          s.GetWeight(),
					Service:         s.GetService(),
					ServiceSubset:   s.GetServiceSubset(),
					Namespace:       s.GetNamespace(),
					RequestHeaders:  headersFromProto(s.GetRequestHeaders()),
					ResponseHeaders: headersFromProto(s.GetResponseHeaders()),
				}
			}
		}
		return e, nil
	case *raftlogv1.Entry_ServiceResolver:
		if k.ServiceResolver == nil {
			break
		}
		return resolverFromProto(k.ServiceResolver), nil
	}
	return nil, fmt.Errorf("entry without a kind: %w", ErrMalformedCommand)
}

func meshGatewayToProto(m chain.MeshGatewayConfig) *raftlogv1.MeshGatewayConfig {
	if m.Mode == "" {
		return nil
	}
	return &raftlogv1.MeshGatewayConfig{Mode: m.Mode}
}

func meshGatewayFromProto(m *raftlogv1.MeshGatewayConfig) chain.MeshGatewayConfig {
	return chain.MeshGatewayConfig{Mode: m.GetMode()}
}

func exposeToProto(x chain.ExposeConfig) *raftlogv1.ExposeConfig {
	if !x.Checks && len(x.Paths) == 0 {
		return nil
	}
	m := &raftlogv1.ExposeConfig{Checks: x.Checks}
	if len(x.Paths) > 0 {
		m.Paths = make([]*raftlogv1.ExposePath, len(x.Paths))
		for i, p := range x.Paths {
			m.Paths[i] = &raftlogv1.ExposePath{Path: p.Path, LocalPathPort: int64(p.LocalPathPort), ListenerPort: int64(p.ListenerPort), Protocol: p.Protocol}
		}
	}
	return m
}

func exposeFromProto(m *raftlogv1.ExposeConfig) chain.ExposeConfig {
	x := chain.ExposeConfig{Checks: m.GetChecks()}
	if ps := m.GetPaths(); len(ps) > 0 {
		x.Paths = make([]chain.ExposePath, len(ps))
		for i, p := range ps {
			x.Paths[i] = chain.ExposePath{Path: p.GetPath(), LocalPathPort: int(p.GetLocalPathPort()), ListenerPort: int(p.GetListenerPort()), Protocol: p.GetProtocol()}
		}
	}
	return x
}

func headersToProto(h *chain.HTTPHeaderModifiers) *raftlogv1.HTTPHeaderModifiers {
	if h == nil {
		return nil
	}
	return &raftlogv1.HTTPHeaderModifiers{Add: h.Add, Set: h.Set, Remove: h.Remove}
}

func headersFromProto(m *raftlogv1.HTTPHeaderModifiers) *chain.HTTPHeaderModifiers {
	if m == nil {
		return nil
	}
	return &chain.HTTPHeaderModifiers{Add: nilIfEmpty(m.Add), Set: nilIfEmpty(m.Set), Remove: nilIfEmptySlice(m.Remove)}
}

func routeToProto(r *chain.ServiceRoute) *raftlogv1.ServiceRoute {
	m := &raftlogv1.ServiceRoute{}
	if r.Match != nil {
		m.Match = &raftlogv1.ServiceRouteMatch{}
		if h := r.Match.HTTP; h != nil {
			hm := &raftlogv1.ServiceRouteHTTPMatch{
				PathExact:  h.PathExact,
				PathPrefix: h.PathPrefix,
				PathRegex:  h.PathRegex,
				Methods:    h.Methods,
			}
			if len(h.Header) > 0 {
				hm.Header = make([]*raftlogv1.ServiceRouteHTTPMatchHeader, len(h.Header))
				for i, x := range h.Header {
					hm.Header[i] = &raftlogv1.ServiceRouteHTTPMatchHeader{Name: x.Name, Present: x.Present, Exact: x.Exact, Prefix: x.Prefix, Suffix: x.Suffix, Regex: x.Regex, Invert: x.Invert}
				}
			}
			if len(h.QueryParam) > 0 {
				hm.QueryParam = make([]*raftlogv1.ServiceRouteHTTPMatchQueryParam, len(h.QueryParam))
				for i, x := range h.QueryParam {
					hm.QueryParam[i] = &raftlogv1.ServiceRouteHTTPMatchQueryParam{Name: x.Name, Present: x.Present, Exact: x.Exact, Regex: x.Regex}
				}
			}
			m.Match.Http = hm
		}
	}
	if d := r.Destination; d != nil {
		m.Destination = &raftlogv1.ServiceRouteDestination{
			Service:               d.Service,
			ServiceSubset:         d.ServiceSubset,
			Namespace:             d.Namespace,
			PrefixRewrite:         d.PrefixRewrite,
			RequestTimeoutNanos:   int64(d.RequestTimeout),
			IdleTimeoutNanos:      int64(d.IdleTimeout),
			NumRetries:            d.NumRetries,
			RetryOnConnectFailure: d.RetryOnConnectFailure,
			RetryOn:               d.RetryOn,
			RetryOnStatusCodes:    d.RetryOnStatusCodes,
			RequestHeaders:        headersToProto(d.RequestHeaders),
			ResponseHeaders:       headersToProto(d.ResponseHeaders),
		}
	}
	return m
}

func routeFromProto(m *raftlogv1.ServiceRoute) chain.ServiceRoute {
	var r chain.ServiceRoute
	if mm := m.GetMatch(); mm != nil {
		r.Match = &chain.ServiceRouteMatch{}
		if h := mm.GetHttp(); h != nil {
			hm := &chain.ServiceRouteHTTPMatch{
				PathExact:  h.GetPathExact(),
				PathPrefix: h.GetPathPrefix(),
				PathRegex:  h.GetPathRegex(),
				Methods:    nilIfEmptySlice(h.GetMethods()),
			}
			if hs := h.GetHeader(); len(hs) > 0 {
				hm.Header = make([]chain.ServiceRouteHTTPMatchHeader, len(hs))
				for i, x := range hs {
					hm.Header[i] = chain.ServiceRouteHTTPMatchHeader{Name: x.GetName(), Present: x.GetPresent(), Exact: x.GetExact(), Prefix: x.GetPrefix(), Suffix: x.GetSuffix(), Regex: x.GetRegex(), Invert: x.GetInvert()}
				}
			}
			if qs := h.GetQueryParam(); len(qs) > 0 {
				hm.QueryParam = make([]chain.ServiceRouteHTTPMatchQueryParam, len(qs))
				for i, x := range qs {
					hm.QueryParam[i] = chain.ServiceRouteHTTPMatchQueryParam{Name: x.GetName(), Present: x.GetPresent(), Exact: x.GetExact(), Regex: x.GetRegex()}
				}
			}
			r.Match.HTTP = hm
		}
	}
	if d := m.GetDestination(); d != nil {
		r.Destination = &chain.ServiceRouteDestination{
			Service:               d.GetService(),
			ServiceSubset:         d.GetServiceSubset(),
			Namespace:             d.GetNamespace(),
			PrefixRewrite:         d.GetPrefixRewrite(),
			RequestTimeout:        chain.Duration(d.GetRequestTimeoutNanos()),
			IdleTimeout:           chain.Duration(d.GetIdleTimeoutNanos()),
			NumRetries:            d.GetNumRetries(),
			RetryOnConnectFailure: d.GetRetryOnConnectFailure(),
			RetryOn:               nilIfEmptySlice(d.GetRetryOn()),
			RetryOnStatusCodes:    nilIfEmptySlice(d.GetRetryOnStatusCodes()),
			RequestHeaders:        headersFromProto(d.GetRequestHeaders()),
			ResponseHeaders:       headersFromProto(d.GetResponseHeaders()),
		}
	}
	return r
}

func resolverToProto(t *chain.ServiceResolverConfigEntry) *raftlogv1.ServiceResolver {
	m := &raftlogv1.ServiceResolver{
		Name:                t.Name,
		DefaultSubset:       t.DefaultSubset,
		ConnectTimeoutNanos: int64(t.ConnectTimeout),
		RequestTimeoutNanos: int64(t.RequestTimeout),
		Meta:                t.Meta,
	}
	if len(t.Subsets) > 0 {
		m.Subsets = make(map[string]*raftlogv1.ServiceResolverSubset, len(t.Subsets))
		for k, s := range t.Subsets {
			m.Subsets[k] = &raftlogv1.ServiceResolverSubset{Filter: s.Filter, OnlyPassing: s.OnlyPassing}
		}
	}
	if r := t.Redirect; r != nil {
		m.Redirect = &raftlogv1.ServiceResolverRedirect{Service: r.Service, ServiceSubset: r.ServiceSubset, Namespace: r.Namespace, Datacenter: r.Datacenter}
	}
	if len(t.Failover) > 0 {
		m.Failover = make(map[string]*raftlogv1.ServiceResolverFailover, len(t.Failover))
		for k, f := range t.Failover {
			fm := &raftlogv1.ServiceResolverFailover{Service: f.Service, ServiceSubset: f.ServiceSubset, Namespace: f.Namespace, Datacenters: f.Datacenters}
			if len(f.Targets) > 0 {
				fm.Targets = make([]*raftlogv1.ServiceResolverFailoverTarget, len(f.Targets))
				for i, x := range f.Targets {
					fm.Targets[i] = &raftlogv1.ServiceResolverFailoverTarget{Service: x.Service, ServiceSubset: x.ServiceSubset, Namespace: x.Namespace, Datacenter: x.Datacenter}
				}
			}
			m.Failover[k] = fm
		}
	}
	if lb := t.LoadBalancer; lb != nil {
		lm := &raftlogv1.LoadBalancer{Policy: lb.Policy}
		if c := lb.RingHashConfig; c != nil {
			lm.RingHashConfig = &raftlogv1.RingHashConfig{MinimumRingSize: c.MinimumRingSize, MaximumRingSize: c.MaximumRingSize}
		}
		if c := lb.LeastRequestConfig; c != nil {
			lm.LeastRequestConfig = &raftlogv1.LeastRequestConfig{ChoiceCount: c.ChoiceCount}
		}
		if len(lb.HashPolicies) > 0 {
			lm.HashPolicies = make([]*raftlogv1.HashPolicy, len(lb.HashPolicies))
			for i, h := range lb.HashPolicies {
				hm := &raftlogv1.HashPolicy{Field: h.Field, FieldValue: h.FieldValue, SourceIp: h.SourceIP, Terminal: h.Terminal}
				if c := h.CookieConfig; c != nil {
					hm.CookieConfig = &raftlogv1.CookieConfig{Session: c.Session, TtlNanos: int64(c.TTL), Path: c.Path}
				}
				lm.HashPolicies[i] = hm
			}
		}
		m.LoadBalancer = lm
	}
	return m
}

func resolverFromProto(m *raftlogv1.ServiceResolver) *chain.ServiceResolverConfigEntry {
	e := &chain.ServiceResolverConfigEntry{
		Kind:           chain.KindServiceResolver,
		Name:           m.GetName(),
		DefaultSubset:  m.GetDefaultSubset(),
		ConnectTimeout: chain.Duration(m.GetConnectTimeoutNanos()),
		RequestTimeout: chain.Duration(m.GetRequestTimeoutNanos()),
		Meta:           nilIfEmpty(m.GetMeta()),
	}
	if ss := m.GetSubsets(); len(ss) > 0 {
		e.Subsets = make(map[string]chain.ServiceResolverSubset, len(ss))
		for k, s := range ss {
			e.Subsets[k] = chain.ServiceResolverSubset{Filter: s.GetFilter(), OnlyPassing: s.GetOnlyPassing()}
		}
	}
	if r := m.GetRedirect(); r != nil {
		e.Redirect = &chain.ServiceResolverRedirect{Service: r.GetService(), ServiceSubset: r.GetServiceSubset(), Namespace: r.GetNamespace(), Datacenter: r.GetDatacenter()}
	}
	if fs := m.GetFailover(); len(fs) > 0 {
		e.Failover = make(map[string]chain.ServiceResolverFailover, len(fs))
		for k, f := range fs {
			fo := chain.ServiceResolverFailover{Service: f.GetService(), ServiceSubset: f.GetServiceSubset(), Namespace: f.GetNamespace(), Datacenters: nilIfEmptySlice(f.GetDatacenters())}
			if ts := f.GetTargets(); len(ts) > 0 {
				fo.Targets = make([]chain.ServiceResolverFailoverTarget, len(ts))
				for i, x := range ts {
					fo.Targets[i] = chain.ServiceResolverFailoverTarget{Service: x.GetService(), ServiceSubset: x.GetServiceSubset(), Namespace: x.GetNamespace(), Datacenter: x.GetDatacenter()}
				}
			}
			e.Failover[k] = fo
		}
	}
	if lm := m.GetLoadBalancer(); lm != nil {
		lb := &chain.LoadBalancer{Policy: lm.GetPolicy()}
		if c := lm.GetRingHashConfig(); c != nil {
			lb.RingHashConfig = &chain.RingHashConfig{MinimumRingSize: c.GetMinimumRingSize(), MaximumRingSize: c.GetMaximumRingSize()}
		}
		if c := lm.GetLeastRequestConfig(); c != nil {
			lb.LeastRequestConfig = &chain.LeastRequestConfig{ChoiceCount: c.GetChoiceCount()}
		}
		if hs := lm.GetHashPolicies(); len(hs) > 0 {
			lb.HashPolicies = make([]chain.HashPolicy, len(hs))
			for i, h := range hs {
				hp := chain.HashPolicy{Field: h.GetField(), FieldValue: h.GetFieldValue(), SourceIP: h.GetSourceIp(), Terminal: h.GetTerminal()}
				if c := h.GetCookieConfig(); c != nil {
					hp.CookieConfig = &chain.CookieConfig{Session: c.GetSession(), TTL: chain.Duration(c.GetTtlNanos()), Path: c.GetPath()}
				}
				lb.HashPolicies[i] = hp
			}
		}
		e.LoadBalancer = lb
	}
	return e
}
