// Package xds translates a compiled discovery chain and the catalog's
// instances into the xDS resources a stock grpc-go (v1.85.0) proxyless
// client accepts when it dials xds:///<service>: the "gRPC flavour" of
// docs/xds.md (the xDS design document; its sections are cited as §n).
//
// The package is pure: no goroutines, no clock, no I/O and no global
// mutable state. Build is deterministic in its inputs (resources and
// their fields come out in a fixed order), so a publisher can version
// each resource by a hash of its encoding. Serving the resources (caches,
// ADS streams, ACK/NACK bookkeeping) belongs to another package.
//
// # Resources
//
// Build(chain, instances) returns one Resources per chain:
//
//   - Listener, named after the chain's service (the name a client dials):
//     only api_listener, holding an HttpConnectionManager whose RDS source
//     is ADS (V3) with route_config_name = the service, and exactly one
//     HTTP filter, envoy.filters.http.router (§3.1).
//   - RouteConfig, named after the service: one virtual host (the service,
//     domains ["*"]) whose routes come from the start node (§4.2):
//     a router gives one route per compiled route, in order (the compiler's
//     implicit catch-all `prefix: "/"` is its last route); a splitter or a
//     resolver gives a single catch-all route. A route to a splitter is
//     weighted_clusters with weight = percent × 100 (90/10 → 9000/1000; no
//     total_weight, zero-weight legs left out, legs reaching the same
//     target merged), a route to a resolver is route.cluster. Route
//     matches map as PathExact → path, PathPrefix → prefix, PathRegex →
//     safe_regex, headers → string_match / present_match with
//     invert_match, query parameters → query_parameters, Methods → a
//     `:method` safe_regex header (Consul's shape; gRPC never matches it).
//     RequestTimeout > 0 sets both max_stream_duration fields; PrefixRewrite
//     is carried as prefix_rewrite (ignored by gRPC, kept for Envoy).
//     Retries: RetryOnStatusCodes 503 becomes retry_on "unavailable" (the
//     only HTTP status with a gRPC counterpart); num_retries is NumRetries
//     when > 0 and unset otherwise (one retry, as Envoy and grpc-go
//     default), never 0. Without a mapped condition there is no policy.
//   - Clusters, one per resolver node reachable from the start node, named
//     after the node's target (ClusterName: target.Name, or
//     "<CustomizationHash>~<target.Name>" for a customised chain, §4.1):
//     type EDS, config source ADS (V3), service_name = target.Name,
//     connect_timeout = the node's ConnectTimeout, round robin, plaintext.
//     A resolver node with failover becomes the aggregate cluster of §3.5
//     under the same name (cluster_type envoy.clusters.aggregate, lb_policy
//     ROUND_ROBIN) whose children, in failover order, are the EDS clusters
//     "failover-target~0~<primary>" (the primary target) and
//     "failover-target~<n>~<primary>" (the n-th failover target). A
//     failover-only target gets no cluster of its own: its child cluster is
//     how the chain reaches it, and a plain cluster under its name could
//     contradict the aggregate another chain publishes there.
//   - Endpoints, one ClusterLoadAssignment per target the clusters use
//     (primary and failover targets), named target.Name and therefore
//     shared by every cluster that points at the target (§4.1). The
//     instances are catalog.Select(instances(target.Service), target) (the
//     subset Filter evaluated here); one locality per datacenter (region =
//     datacenter, load_balancing_weight 1, priority 0), endpoints sorted by
//     address and port, health HEALTHY when (*catalog.Stored).Healthy
//     (passing, or warning unless the subset is OnlyPassing) and UNHEALTHY
//     otherwise (a TTL check not yet passed included), kept listed (§3.4).
//     A target without instances gets one empty locality. Two instances
//     with the same address and port (which grpc-go NACKs) are listed
//     once, the healthy one first, with a warning.
//
// ByType groups them per xDS type URL in the order a publisher applies
// them (§6.4: clusters, endpoints, listeners, route configurations).
//
// # Warnings
//
// What grpc-go v1.85.0 ignores, or what makes a route never fire, is
// reported, not dropped silently (§5.2). The chain's part lives in package
// grpccheck (./grpccheck), which imports only the chain package and the
// standard library so that clients can use it without linking envoy's
// types: grpccheck.Warnings(chain) lists it for a chain alone (for
// `storectl chain <name> --check grpc` and storectl put's warnings).
// Resources.Warnings is that list followed by what the instances cause
// (grpccheck.FeatureDuplicateAddress). Warning and Feature here are
// aliases of grpccheck's types; see grpccheck.Feature for the list.
//
// # Later Consul fields
//
// Header modifiers (route → the route's request/response headers to
// add/remove, split leg → the weighted-cluster leg's), IdleTimeout →
// idle_timeout, RetryOn gRPC status names → retry_on, a resolver's
// RequestTimeout → max_stream_duration of routes that set none, a
// hash-based LoadBalancer → route hash_policy, and least_request /
// ring_hash → the cluster's lb_policy (maglev and random stay round robin:
// gRPC clients NACK them). docs/xds.md §4.2, §3.3 and §5.2 give the
// details and what gRPC clients ignore.
//
// # Validation
//
// Validate(resources) runs ValidateAll() of the envoy module on every
// message (Anys unpacked), the shape rules of §3 and §5.2 (what grpc-go
// NACKs: empty string matchers, num_retries 0, non-gRPC retry
// conditions, localities without locality or with weight 0, priority
// gaps, duplicate addresses, other LB policies, TLS) and the references
// (listener → route configuration, route → cluster, EDS cluster →
// assignment, aggregate → children). It returns a *ValidationError listing
// every problem. Publish nothing that fails it (§6.4).
//
// Build returns an error (wrapping ErrInvalidChain, or a catalog filter
// error) for input it cannot translate faithfully: a missing node or
// target, a route match with no or two conditions, a regex RE2 rejects, a
// negative or oversized split weight. For every chain the compiler
// produces, Build either fails that way or returns resources that pass
// Validate (FuzzBuild checks this).
package xds
