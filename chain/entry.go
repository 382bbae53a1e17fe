package chain

import (
	"sort"
	"strings"
)

// Compile-time assertions that every entry type implements Entry.
var (
	_ Entry = (*ServiceConfigEntry)(nil)
	_ Entry = (*ProxyConfigEntry)(nil)
	_ Entry = (*ServiceRouterConfigEntry)(nil)
	_ Entry = (*ServiceSplitterConfigEntry)(nil)
	_ Entry = (*ServiceResolverConfigEntry)(nil)
)

// GetKind implements Entry.
func (e *ServiceConfigEntry) GetKind() Kind { return KindServiceDefaults }

// GetName implements Entry.
func (e *ServiceConfigEntry) GetName() string {
	if e == nil {
		return ""
	}
	return e.Name
}

// References implements Entry; service-defaults refers to nothing.
func (e *ServiceConfigEntry) References() []string { return nil }

// GetKind implements Entry.
func (e *ProxyConfigEntry) GetKind() Kind { return KindProxyDefaults }

// GetName implements Entry.
func (e *ProxyConfigEntry) GetName() string {
	if e == nil {
		return ""
	}
	return e.Name
}

// References implements Entry; proxy-defaults refers to nothing.
func (e *ProxyConfigEntry) References() []string { return nil }

// GetKind implements Entry.
func (e *ServiceRouterConfigEntry) GetKind() Kind { return KindServiceRouter }

// GetName implements Entry.
func (e *ServiceRouterConfigEntry) GetName() string {
	if e == nil {
		return ""
	}
	return e.Name
}

// References implements Entry: every route's Destination.Service
// (docs/discovery-chain.md, Kinds and identity).
func (e *ServiceRouterConfigEntry) References() []string {
	if e == nil {
		return nil
	}
	var out []string
	for _, r := range e.Routes {
		if r.Destination != nil {
			out = append(out, r.Destination.Service)
		}
	}
	return refList(e.Name, out)
}

// GetKind implements Entry.
func (e *ServiceSplitterConfigEntry) GetKind() Kind { return KindServiceSplitter }

// GetName implements Entry.
func (e *ServiceSplitterConfigEntry) GetName() string {
	if e == nil {
		return ""
	}
	return e.Name
}

// References implements Entry: every split's Service
// (docs/discovery-chain.md, Kinds and identity).
func (e *ServiceSplitterConfigEntry) References() []string {
	if e == nil {
		return nil
	}
	out := make([]string, 0, len(e.Splits))
	for _, s := range e.Splits {
		out = append(out, s.Service)
	}
	return refList(e.Name, out)
}

// GetKind implements Entry.
func (e *ServiceResolverConfigEntry) GetKind() Kind { return KindServiceResolver }

// GetName implements Entry.
func (e *ServiceResolverConfigEntry) GetName() string {
	if e == nil {
		return ""
	}
	return e.Name
}

// References implements Entry: Redirect.Service and every Failover's
// Service and Targets' services (docs/discovery-chain.md, Kinds and
// identity).
func (e *ServiceResolverConfigEntry) References() []string {
	if e == nil {
		return nil
	}
	var out []string
	if e.Redirect != nil {
		out = append(out, e.Redirect.Service)
	}
	for _, f := range e.Failover {
		out = append(out, f.Service)
		for _, t := range f.Targets {
			out = append(out, t.Service)
		}
	}
	return refList(e.Name, out)
}

// refList sorts and dedupes names, dropping empty ones and self (compared
// case-insensitively, since keys are case-insensitive). It returns nil when
// nothing remains.
func refList(self string, names []string) []string {
	if len(names) == 0 {
		return nil
	}
	seen := make(map[string]struct{}, len(names))
	var out []string
	for _, n := range names {
		if n == "" || strings.EqualFold(n, self) {
			continue
		}
		if _, ok := seen[n]; ok {
			continue
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
