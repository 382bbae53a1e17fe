package chain

import (
	"fmt"
	"math"
	"strings"
)

// errNilEntry builds the error every Normalize/Validate returns for a nil
// receiver: `config entry is nil` (docs/discovery-chain.md, Validation).
func errNilEntry(kind Kind) error {
	return &ValidationError{Kind: kind, Msg: "config entry is nil"}
}

// Normalize implements Entry: forces Kind and lower-cases Protocol.
func (e *ServiceConfigEntry) Normalize() error {
	if e == nil {
		return errNilEntry(KindServiceDefaults)
	}
	e.Kind = KindServiceDefaults
	e.Protocol = strings.ToLower(e.Protocol)
	return nil
}

// Normalize implements Entry: forces Kind, turns an empty Name into
// "global" and rejects any other name (the later Consul behaviour, so
// deletes of "proxy-defaults/foo" cannot remove "global").
func (e *ProxyConfigEntry) Normalize() error {
	if e == nil {
		return errNilEntry(KindProxyDefaults)
	}
	e.Kind = KindProxyDefaults
	if e.Name == "" {
		e.Name = ProxyDefaultsName
	}
	if e.Name != ProxyDefaultsName {
		return proxyNameError(e.Name)
	}
	return nil
}

func proxyNameError(name string) error {
	return &ValidationError{
		Kind: KindProxyDefaults,
		Name: name,
		Msg:  fmt.Sprintf("invalid name (%q), only %q is supported", name, ProxyDefaultsName),
	}
}

// Normalize implements Entry: forces Kind and upper-cases every route's
// Methods.
func (e *ServiceRouterConfigEntry) Normalize() error {
	if e == nil {
		return errNilEntry(KindServiceRouter)
	}
	e.Kind = KindServiceRouter
	for i := range e.Routes {
		m := e.Routes[i].Match
		if m == nil || m.HTTP == nil {
			continue
		}
		for j, method := range m.HTTP.Methods {
			m.HTTP.Methods[j] = strings.ToUpper(method)
		}
	}
	return nil
}

// Normalize implements Entry: forces Kind and rounds every weight to 0.01
// (half away from zero), so 99.999 becomes 100 and 0.001 becomes 0.
func (e *ServiceSplitterConfigEntry) Normalize() error {
	if e == nil {
		return errNilEntry(KindServiceSplitter)
	}
	e.Kind = KindServiceSplitter
	for i := range e.Splits {
		e.Splits[i].Weight = NormalizeWeight(e.Splits[i].Weight)
	}
	return nil
}

// Normalize implements Entry: forces Kind.
func (e *ServiceResolverConfigEntry) Normalize() error {
	if e == nil {
		return errNilEntry(KindServiceResolver)
	}
	e.Kind = KindServiceResolver
	return nil
}

// scaledWeight returns w in units of 0.01, rounded half away from zero. The
// multiplication is done in float32 (the weight's own precision), so a
// weight written as 0.005 counts as half a unit and rounds up. Non-finite
// weights stay non-finite.
func scaledWeight(w float32) float64 {
	return math.Round(float64(w * 100))
}

// NormalizeWeight rounds a split weight to 0.01 precision, half away from
// zero (docs/discovery-chain.md, Validation).
func NormalizeWeight(w float32) float32 {
	s := scaledWeight(w)
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return w
	}
	return float32(s / 100)
}
