package chain

import (
	"reflect"
	"strings"
)

// This file is the fast path of write-time validation
// (docs/discovery-chain.md, Write-time validation, "Skipping the
// compile"): a write that leaves its key's graph input unchanged cannot
// make any chain fail to compile, so ValidateWrite need not compile.
//
// A key's graph input is the part of its entry that can decide whether a
// chain compiles: what Gathering follows, which services, subsets,
// namespaces and datacenters the compiler resolves, the protocols it
// compares and the conditions of its errors. Fields that only shape a
// successful result (route matches and timeouts, split weights and header
// modifiers, resolver timeouts, load balancers and subset filters,
// mesh-gateway modes, Meta, Expose) are left out.
//
// The argument, in short:
//
//  1. Compile reads the store only through gatherEntries. Compiling with
//     the fixed inputs of write-time validation (no overrides), every
//     branch the compiler takes and every value an error condition tests
//     comes from graph inputs; the other fields are only copied into the
//     result (or, for weights, scaled, which cannot fail).
//  2. So if the entry at the written key has the same graph input before
//     and after the write, each chain fails after the write exactly when it
//     failed before (with the same error).
//  3. Every chain of the store compiles before the write (the invariant
//     ValidateWrite keeps: each accepted write compiled every chain that
//     reads its key, and the others read nothing it changed). So every
//     affected chain still compiles, and the full validation would have
//     returned nil.
//
// Step 3 assumes the invariant. A store that breaks it (a snapshot from a
// version whose compiler accepted more) can get a different verdict from
// the fast path than from the full compile only for a write that changes
// no graph input: the fast path accepts it, the full compile would have
// rejected it for a chain it did not break. Both verdicts depend only on
// the store and the write, so replicas running this code agree.

// graphInputUnchanged reports whether replacing the entry at key in s by
// next (nil: a delete) leaves the graph input of that key unchanged, so
// that no chain can stop compiling. It is conservative: an unexpected type
// answers false.
func graphInputUnchanged(s GraphStore, key Key, next Entry) bool {
	prev := s.GetEntry(key)
	if isNilEntry(prev) {
		prev = nil
	}
	switch key.Kind {
	case KindServiceDefaults:
		proxy, ok := proxyDefaultsIn(s)
		if !ok {
			return false
		}
		a, okA := serviceDefaultsInputOf(prev, proxy)
		b, okB := serviceDefaultsInputOf(next, proxy)
		return okA && okB && a == b
	case KindProxyDefaults:
		a, okA := proxyDefaultsInputOf(prev)
		b, okB := proxyDefaultsInputOf(next)
		return okA && okB && a == b
	case KindServiceRouter, KindServiceSplitter, KindServiceResolver:
		return sameChainEntryInput(prev, next)
	}
	return false
}

// proxyDefaultsIn returns proxy-defaults/global of s, or nil when there is
// none; ok is false when the store holds something else under its key.
func proxyDefaultsIn(s EntryLookup) (*ProxyConfigEntry, bool) {
	e := s.GetEntry(KeyOf(KindProxyDefaults, ProxyDefaultsName))
	if isNilEntry(e) {
		return nil, true
	}
	p, ok := e.(*ProxyConfigEntry)
	return p, ok
}

// serviceDefaultsInput is the graph input of one service's
// service-defaults, with proxy-defaults' fallback applied: an absent entry
// and a present one that resolve to the same values are the same input.
type serviceDefaultsInput struct {
	// protocol as protocolOf returns it.
	protocol string
	// external: ExternalSNI is set, which forbids redirects, subsets and
	// failover on the service's resolver (its value only goes into
	// targets).
	external bool
}

// serviceDefaultsInputOf returns the graph input of service-defaults e
// (nil: absent) under proxy-defaults proxy (nil: absent); ok is false when
// e has an unexpected type.
func serviceDefaultsInputOf(e Entry, proxy *ProxyConfigEntry) (serviceDefaultsInput, bool) {
	if e == nil {
		protocol := proxyProtocolOf(proxy)
		if protocol == "" {
			protocol = "tcp"
		}
		return serviceDefaultsInput{protocol: protocol}, true
	}
	sd, ok := e.(*ServiceConfigEntry)
	if !ok {
		return serviceDefaultsInput{}, false
	}
	in := serviceDefaultsInput{protocol: strings.ToLower(sd.Protocol), external: sd.ExternalSNI != ""}
	if in.protocol == "" {
		in.protocol = "tcp"
	}
	return in, true
}

// proxyDefaultsInput is the graph input of proxy-defaults: the protocol
// from Config (proxyProtocolOf). An absent entry has none.
type proxyDefaultsInput struct {
	protocol string
}

func proxyDefaultsInputOf(e Entry) (proxyDefaultsInput, bool) {
	if e == nil {
		return proxyDefaultsInput{}, true
	}
	p, ok := e.(*ProxyConfigEntry)
	if !ok {
		return proxyDefaultsInput{}, false
	}
	return proxyDefaultsInput{protocol: proxyProtocolOf(p)}, true
}

// sameChainEntryInput compares the graph inputs of two routers, splitters
// or resolvers (nil: absent; an absent entry only equals an absent one).
// The name is compared exactly: a router node takes the entry's spelling.
func sameChainEntryInput(a, b Entry) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) {
	case *ServiceRouterConfigEntry:
		y, ok := b.(*ServiceRouterConfigEntry)
		return ok && sameRouterInput(x, y)
	case *ServiceSplitterConfigEntry:
		y, ok := b.(*ServiceSplitterConfigEntry)
		return ok && sameSplitterInput(x, y)
	case *ServiceResolverConfigEntry:
		y, ok := b.(*ServiceResolverConfigEntry)
		return ok && sameResolverInput(x, y)
	}
	return false
}

// sameRouterInput: the same routes, in order, to the same service, subset
// and namespace. A route without Destination goes where an empty
// Destination goes (the chain's own service).
func sameRouterInput(a, b *ServiceRouterConfigEntry) bool {
	if a.Name != b.Name || len(a.Routes) != len(b.Routes) {
		return false
	}
	for i := range a.Routes {
		if routeDestinationInput(a.Routes[i].Destination) != routeDestinationInput(b.Routes[i].Destination) {
			return false
		}
	}
	return true
}

// targetInput is where a route or split leads: service, subset, namespace.
type targetInput struct {
	service, subset, namespace string
}

func routeDestinationInput(d *ServiceRouteDestination) targetInput {
	if d == nil {
		return targetInput{}
	}
	return targetInput{service: d.Service, subset: d.ServiceSubset, namespace: d.Namespace}
}

// sameSplitterInput: the same legs, in order, to the same service, subset
// and namespace (weights and header modifiers only shape the result).
func sameSplitterInput(a, b *ServiceSplitterConfigEntry) bool {
	if a.Name != b.Name || len(a.Splits) != len(b.Splits) {
		return false
	}
	for i := range a.Splits {
		x, y := &a.Splits[i], &b.Splits[i]
		if x.Service != y.Service || x.ServiceSubset != y.ServiceSubset || x.Namespace != y.Namespace {
			return false
		}
	}
	return true
}

// sameResolverInput: the same default subset, subset names, redirect and
// failover (compared whole). Subset filters, timeouts and the load
// balancer only shape the result.
func sameResolverInput(a, b *ServiceResolverConfigEntry) bool {
	if a.Name != b.Name || a.DefaultSubset != b.DefaultSubset || len(a.Subsets) != len(b.Subsets) {
		return false
	}
	for name := range a.Subsets {
		if _, ok := b.Subsets[name]; !ok {
			return false
		}
	}
	if (a.Redirect == nil) != (b.Redirect == nil) || (a.Redirect != nil && *a.Redirect != *b.Redirect) {
		return false
	}
	if len(a.Failover) != len(b.Failover) {
		return false
	}
	return len(a.Failover) == 0 || reflect.DeepEqual(a.Failover, b.Failover)
}
