package chain

import (
	"fmt"
	"testing"
)

// Benchmarks of write-time validation for the common writes (docs/
// benchmarks.md, Issue 12, Graph validation). They use only ValidateWrite,
// so the same file runs against older versions of the package:
//
//	go test -run '^$' -bench ValidateWrite -benchmem -count 5 ./chain/

func runValidateWriteBench(b *testing.B, s GraphStore, c Change) {
	b.Helper()
	if err := ValidateWrite(s, c); err != nil {
		b.Fatalf("ValidateWrite() = %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateWrite(s, c); err != nil {
			b.Fatal(err)
		}
	}
}

// validateBenchStore holds web (service-defaults http, a resolver with two
// subsets) and, when referrers > 0, a router "front" with five routes to
// web's subsets and referrers-1 splitters that send 10 % of their traffic
// to web (each with its own service-defaults).
func validateBenchStore(referrers int) *MemStore {
	s := NewMemStore(
		serviceDefaults("web", "http"),
		resolver("web", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2") }),
	)
	if referrers == 0 {
		return s
	}
	s.Upsert(serviceDefaults("front", "http"))
	s.Upsert(frontRouter("/", 0))
	for i := range referrers - 1 {
		name := fmt.Sprintf("chain%03d", i)
		s.Upsert(serviceDefaults(name, "http"))
		s.Upsert(splitter(name, ServiceSplit{Weight: 90}, ServiceSplit{Weight: 10, Service: "web"}))
	}
	return s
}

// frontRouter routes five prefixes to web's subsets, alternating from v1
// (shift 0) or v2 (shift 1).
func frontRouter(prefix string, shift int) *ServiceRouterConfigEntry {
	var routes []ServiceRoute
	for i := range 5 {
		routes = append(routes, pathPrefixRoute(fmt.Sprintf("%sapi%d", prefix, i),
			&ServiceRouteDestination{Service: "web", ServiceSubset: []string{"v1", "v2"}[(i+shift)%2]}))
	}
	return router("front", routes...)
}

func webMetaChange() Change {
	e := serviceDefaults("web", "http")
	e.Meta = map[string]string{"owner": "team-a", "rev": "42"}
	return Change{Entry: e}
}

// BenchmarkValidateWriteMetaNoReferrers: a service-defaults Meta edit of a
// service no other chain reaches (storebench's put, after the first).
func BenchmarkValidateWriteMetaNoReferrers(b *testing.B) {
	runValidateWriteBench(b, validateBenchStore(0), webMetaChange())
}

// BenchmarkValidateWriteMeta50Referrers: the same edit with 50 chains
// reaching web: 51 compiles without the fast path.
func BenchmarkValidateWriteMeta50Referrers(b *testing.B) {
	runValidateWriteBench(b, validateBenchStore(50), webMetaChange())
}

// BenchmarkValidateWriteRouterMatchChange: front's router with new path
// prefixes and the same destinations.
func BenchmarkValidateWriteRouterMatchChange(b *testing.B) {
	runValidateWriteBench(b, validateBenchStore(50), Change{Entry: frontRouter("/v2/", 0)})
}

// BenchmarkValidateWriteRouterDestinationChange: front's routes go to the
// other subsets, so front's chain compiles.
func BenchmarkValidateWriteRouterDestinationChange(b *testing.B) {
	runValidateWriteBench(b, validateBenchStore(50), Change{Entry: frontRouter("/", 1)})
}

// BenchmarkValidateWriteNewLeaf: a new service-defaults with protocol http
// and no proxy-defaults (storebench's first put of each key): the default
// chain of the new service compiles.
func BenchmarkValidateWriteNewLeaf(b *testing.B) {
	runValidateWriteBench(b, validateBenchStore(50), Change{Entry: serviceDefaults("fresh", "http")})
}
