package chain

import (
	"reflect"
	"strings"
)

// This file is the fast path of write-time validation
// (docs/discovery-chain.md, Write-time validation, "Skipping the
// compile"): a write whose compile inputs equal those of the entry it
// replaces cannot change any compiled chain, so ValidateWrite need not
// compile anything.
//
// The argument, in short:
//
//  1. Compile reads the store only through gatherEntries, and reads each
//     gathered entry only through the fields its kind's compile input
//     (below) keeps. Gathering itself follows only fields those inputs
//     keep (route destinations, split services, redirect and failover
//     services).
//  2. So if the entry at the written key has the same compile input before
//     and after the write, every chain compiles to the same result (the
//     same chain or the same error) with or without the write.
//  3. Every chain of the store compiles before the write (the invariant
//     ValidateWrite keeps: each accepted write compiled every chain that
//     reads its key, and the others read nothing it changed). So every
//     affected chain still compiles, and the full validation would have
//     returned nil.
//
// Step 3 assumes the invariant. A store that breaks it (a snapshot from a
// version whose compiler accepted more) can get a different verdict from
// the fast path than from the full compile only for a write that changes
// no compile input: the fast path accepts it, the full compile would have
// rejected it for a chain it did not break. Both verdicts depend only on
// the store and the write, so replicas running this code agree.

// compileInputsUnchanged reports whether replacing the entry at key in s
// by next (nil: a delete) leaves the compile input of that key unchanged,
// so no compiled chain can change. It is conservative: any doubt (an
// unexpected type, a field it does not understand) answers false.
func compileInputsUnchanged(s GraphStore, key Key, next Entry) bool {
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

// serviceDefaultsInput is everything the compiler reads about one
// service's service-defaults, with proxy-defaults' fallbacks applied: an
// absent entry and a present one that resolve to the same values are the
// same input.
type serviceDefaultsInput struct {
	// protocol as protocolOf returns it.
	protocol string
	// externalSNI as buildResolverNode reads it ("" when absent).
	externalSNI string
	// meshGatewayMode as meshGatewayMode reads it before the override:
	// the entry's mode, else proxy-defaults'.
	meshGatewayMode string
}

// serviceDefaultsInputOf returns the compile input of service-defaults e
// (nil: absent) under proxy-defaults proxy (nil: absent); ok is false when
// e has an unexpected type.
func serviceDefaultsInputOf(e Entry, proxy *ProxyConfigEntry) (serviceDefaultsInput, bool) {
	var proxyMode string
	if proxy != nil {
		proxyMode = proxy.MeshGateway.Mode
	}
	if e == nil {
		protocol := proxyProtocolOf(proxy)
		if protocol == "" {
			protocol = "tcp"
		}
		return serviceDefaultsInput{protocol: protocol, meshGatewayMode: proxyMode}, true
	}
	sd, ok := e.(*ServiceConfigEntry)
	if !ok {
		return serviceDefaultsInput{}, false
	}
	in := serviceDefaultsInput{
		protocol:        strings.ToLower(sd.Protocol),
		externalSNI:     sd.ExternalSNI,
		meshGatewayMode: sd.MeshGateway.Mode,
	}
	if in.protocol == "" {
		in.protocol = "tcp"
	}
	if in.meshGatewayMode == "" {
		in.meshGatewayMode = proxyMode
	}
	return in, true
}

// proxyDefaultsInput is everything the compiler reads about proxy-defaults:
// the protocol from Config (proxyProtocolOf) and the mesh-gateway mode. An
// absent entry reads as both empty.
type proxyDefaultsInput struct {
	protocol        string
	meshGatewayMode string
}

func proxyDefaultsInputOf(e Entry) (proxyDefaultsInput, bool) {
	if e == nil {
		return proxyDefaultsInput{}, true
	}
	p, ok := e.(*ProxyConfigEntry)
	if !ok {
		return proxyDefaultsInput{}, false
	}
	return proxyDefaultsInput{protocol: proxyProtocolOf(p), meshGatewayMode: p.MeshGateway.Mode}, true
}

// sameChainEntryInput compares two routers, splitters or resolvers (nil:
// absent) on every field but Meta, which the compiler never reads. Any
// other difference, however irrelevant, counts.
func sameChainEntryInput(a, b Entry) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) {
	case *ServiceRouterConfigEntry:
		y, ok := b.(*ServiceRouterConfigEntry)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.Meta, yc.Meta = nil, nil
		return reflect.DeepEqual(&xc, &yc)
	case *ServiceSplitterConfigEntry:
		y, ok := b.(*ServiceSplitterConfigEntry)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.Meta, yc.Meta = nil, nil
		return reflect.DeepEqual(&xc, &yc)
	case *ServiceResolverConfigEntry:
		y, ok := b.(*ServiceResolverConfigEntry)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.Meta, yc.Meta = nil, nil
		return reflect.DeepEqual(&xc, &yc)
	}
	return false
}
