// Package grpccheck lists the features of a compiled discovery chain that a
// stock grpc-go (v1.85.0) proxyless client ignores or cannot match (§5.2 of
// docs/xds.md, the xDS design document of packages xds and xdsserver).
//
// It reads only the chain and depends on nothing but the chain package and
// the standard library, so a client binary (storectl's `chain --check
// grpc` and its put-time warnings) can check a chain without linking the
// xDS resource types. Package xds builds the resources and reports the
// same warnings, plus those its instances cause (FeatureDuplicateAddress).
package grpccheck

import (
	"fmt"
	"slices"

	"github.com/chainstore/chainstore/chain"
)

// The retry mapping gRPC clients honour (§5.2): HTTPUnavailable (503) is
// the only HTTP status with a gRPC retry condition, GRPCUnavailable.
const (
	HTTPUnavailable = 503
	GRPCUnavailable = "unavailable"
)

// Feature names a chain feature a gRPC client ignores or cannot match.
type Feature string

// The features Warnings (and xds.Build) report.
const (
	// FeaturePrefixRewrite: prefix_rewrite is ignored; the backend sees the
	// original method path.
	FeaturePrefixRewrite Feature = "PrefixRewrite"
	// FeatureRetryOnConnectFailure: an Envoy retry condition; gRPC clients
	// retry only on status names.
	FeatureRetryOnConnectFailure Feature = "RetryOnConnectFailure"
	// FeatureRetryOnStatusCodes: an HTTP status other than 503 has no gRPC
	// status name and is not retried on.
	FeatureRetryOnStatusCodes Feature = "RetryOnStatusCodes"
	// FeatureNumRetries: NumRetries without a condition gRPC can use means
	// no retries.
	FeatureNumRetries Feature = "NumRetries"
	// FeatureQueryParam: grpc-go skips a route with query-parameter
	// matches, so the route never fires.
	FeatureQueryParam Feature = "QueryParam"
	// FeatureMethods: route matching cannot see :method (every gRPC call
	// is a POST), so the route never fires.
	FeatureMethods Feature = "Methods"
	// FeatureHeader: a pseudo-, transport or binary header is not visible
	// to gRPC route matching; the matcher sees it as absent.
	FeatureHeader Feature = "Header"
	// FeatureConnectTimeout: connect_timeout is accepted but not used by
	// gRPC clients (kept for Envoy).
	FeatureConnectTimeout Feature = "ConnectTimeout"
	// FeatureRetryOn: an Envoy retry condition (5xx, reset, ...) has no
	// gRPC status name; gRPC clients do not retry on it.
	FeatureRetryOn Feature = "RetryOn"
	// FeatureIdleTimeout: idle_timeout is ignored by gRPC clients (kept for
	// Envoy).
	FeatureIdleTimeout Feature = "IdleTimeout"
	// FeatureHeaderModifiers: request and response header add/set/remove
	// on routes and split legs are ignored by gRPC clients (kept for
	// Envoy).
	FeatureHeaderModifiers Feature = "HeaderModifiers"
	// FeatureLoadBalancer: a policy gRPC clients NACK (maglev, random) is
	// published as round robin.
	FeatureLoadBalancer Feature = "LoadBalancer"
	// FeatureHashPolicy: cookie, query-parameter and source-IP hashing are
	// ignored by gRPC clients (header hashing is honoured).
	FeatureHashPolicy Feature = "HashPolicy"
	// FeatureDuplicateAddress: two instances of a target share an address
	// and port; grpc-go NACKs that, so only one is listed. Only xds.Build
	// reports it: it comes from the instances, not the chain.
	FeatureDuplicateAddress Feature = "DuplicateAddress"
)

// Warning is one feature of a chain (or of its instances) that gRPC
// clients ignore or cannot match.
type Warning struct {
	// Node is the chain node concerned ("router:web",
	// "resolver:v1.web.default.dc1"), or "target:<ID>" for an instance
	// problem.
	Node string
	// Route is the 0-based index of the route in the router node, or -1
	// when the warning is not about a route.
	Route int
	// Match describes the route's match (`PathPrefix "/admin"`); empty
	// when Route is -1.
	Match string
	// Feature is what is ignored.
	Feature Feature
	// Detail says what a gRPC client does instead.
	Detail string
}

// String renders the warning on one line.
func (w Warning) String() string {
	if w.Route < 0 {
		return fmt.Sprintf("%s: %s: %s", w.Node, w.Feature, w.Detail)
	}
	return fmt.Sprintf("%s route %d (%s): %s: %s", w.Node, w.Route, w.Match, w.Feature, w.Detail)
}

// grpcRetryOn are the retry conditions gRPC clients honour: gRPC status
// names (§5.2).
var grpcRetryOn = map[string]bool{
	"cancelled": true, "deadline-exceeded": true, "internal": true, "resource-exhausted": true, GRPCUnavailable: true,
}

// IsGRPCRetryCondition reports whether a RetryOn condition is a gRPC
// status name gRPC clients retry on.
func IsGRPCRetryCondition(on string) bool { return grpcRetryOn[on] }

// RetryConditions returns the retry_on conditions of a route destination
// that gRPC clients honour, in order and without repeats: its RetryOn
// entries that are gRPC status names, then "unavailable" for
// RetryOnStatusCodes 503. nil means no retry policy.
func RetryConditions(d *chain.ServiceRouteDestination) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, on := range d.RetryOn {
		if grpcRetryOn[on] && !slices.Contains(out, on) {
			out = append(out, on)
		}
	}
	if slices.Contains(d.RetryOnStatusCodes, HTTPUnavailable) && !slices.Contains(out, GRPCUnavailable) {
		out = append(out, GRPCUnavailable)
	}
	return out
}
