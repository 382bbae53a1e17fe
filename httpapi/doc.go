// Package httpapi serves chainstore's Consul-compatible HTTP API: config
// entries (/v1/config), discovery chains (/v1/discovery-chain), Raft
// status (/v1/status), the catalog (/v1/catalog, /v1/health/service),
// ACL bootstrap, policies and tokens (/v1/acl/*), backups (/v1/snapshot),
// liveness and readiness (/v1/agent/health), and, when a metrics handler
// is given, /v1/agent/metrics. Other handlers (the web UI) are mounted on
// the same listener with Server.Mount.
//
// There is one implementation and two front ends: every handler calls the
// rpc services in-process through rpc.Local, so forwarding to the leader,
// the consistency modes (?stale, ?consistent), blocking queries
// (?index=&wait=), admission control and error statuses are those of the
// gRPC API. The handlers only translate: query parameters and headers to
// request messages (the ACL token goes into incoming gRPC metadata),
// response messages to Consul's JSON shapes and X-Consul-* headers, and
// gRPC statuses to Consul's status codes and error texts.
// docs/http-api.md lists the endpoints and every difference from Consul.
//
// # Goroutines
//
// Serve runs net/http's accept loop on the caller's goroutine; net/http
// runs one goroutine per connection. Shutdown stops them (in-flight
// requests finish within Config.ShutdownTimeout, then connections are
// closed).
package httpapi
