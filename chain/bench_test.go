package chain

import (
	"fmt"
	"testing"
	"time"
)

// Aims (chain/ is on the write path and on every chain watch):
//   - a typical chain compiles in < 20 us;
//   - ValidateWrite over 10,000 stored entries, with the written service
//     referenced by 100 chains (101 compiles), takes < 5 ms.
//
// Run: go test -run='^$' -bench=. -benchmem ./chain/

func benchRequest(service string, entries EntryLookup) CompileRequest {
	return CompileRequest{
		ServiceName:           service,
		EvaluateInNamespace:   DefaultNamespace,
		EvaluateInDatacenter:  DefaultDatacenter,
		EvaluateInTrustDomain: ValidationTrustDomain,
		UseInDatacenter:       DefaultDatacenter,
		Entries:               entries,
	}
}

func runCompileBench(b *testing.B, req CompileRequest) {
	b.Helper()
	if _, err := Compile(req); err != nil {
		b.Fatalf("Compile(%q) = %v", req.ServiceName, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Compile(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileOneResolver(b *testing.B) {
	store := NewMemStore(
		serviceDefaults("web", "http"),
		resolver("web", func(r *ServiceResolverConfigEntry) {
			r.DefaultSubset = "v1"
			r.Subsets = subsets("v1", "v2")
			r.ConnectTimeout = Duration(15 * time.Second)
		}),
	)
	runCompileBench(b, benchRequest("web", store))
}

// deepEntries: a router with 50 routes over services, subsets and a
// three-level splitter chain; resolvers with redirects and failover.
func deepEntries() []Entry {
	entries := []Entry{
		proxyDefaults("http"),
		resolver("main", func(r *ServiceResolverConfigEntry) {
			r.DefaultSubset = "v1"
			r.Subsets = subsets("v1", "v2")
			r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2", "dc3"}}}
		}),
		splitter("split1", ServiceSplit{Weight: 50, Service: "split2"}, ServiceSplit{Weight: 50, Service: "svc1"}),
		splitter("split2", ServiceSplit{Weight: 60, Service: "split3"}, ServiceSplit{Weight: 40, Service: "main", ServiceSubset: "v2"}),
		splitter("split3", ServiceSplit{Weight: 50, Service: "virtual"}, ServiceSplit{Weight: 50, Service: "svc2"}),
		resolver("virtual", func(r *ServiceResolverConfigEntry) {
			r.Redirect = &ServiceResolverRedirect{Service: "svc3", Datacenter: "dc2"}
		}),
	}
	for i := range 10 {
		name := fmt.Sprintf("svc%d", i)
		entries = append(entries, resolver(name, func(r *ServiceResolverConfigEntry) {
			r.ConnectTimeout = Duration(time.Duration(i+1) * time.Second)
			r.Failover = map[string]ServiceResolverFailover{"*": {Service: "backup", Datacenters: []string{"dc2"}}}
		}))
	}
	var routes []ServiceRoute
	for i := range 50 {
		var dest *ServiceRouteDestination
		switch i % 5 {
		case 0, 3:
			dest = &ServiceRouteDestination{Service: fmt.Sprintf("svc%d", i%10)}
		case 1:
			dest = &ServiceRouteDestination{ServiceSubset: []string{"v1", "v2"}[i%2], NumRetries: 2}
		case 2:
			dest = &ServiceRouteDestination{Service: "split1", RequestTimeout: Duration(time.Second)}
		case 4:
			dest = &ServiceRouteDestination{Service: "virtual"}
		}
		routes = append(routes, ServiceRoute{
			Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{
				PathPrefix: fmt.Sprintf("/route%d", i),
				Header:     []ServiceRouteHTTPMatchHeader{{Name: "x-route", Exact: fmt.Sprint(i)}},
				Methods:    []string{"GET", "POST"},
			}},
			Destination: dest,
		})
	}
	return append(entries, router("main", routes...))
}

func BenchmarkCompileDeep(b *testing.B) {
	runCompileBench(b, benchRequest("main", NewMemStore(deepEntries()...)))
}

// validate10kStore holds 10,000 entries: 100 chains (splitter + resolver)
// that split to "target", and 4,900 unrelated services with
// service-defaults and a resolver.
func validate10kStore(b *testing.B) *MemStore {
	b.Helper()
	s := NewMemStore(proxyDefaults("http"), serviceDefaults("target", "http"))
	for i := range 100 {
		name := fmt.Sprintf("chain%03d", i)
		s.Upsert(splitter(name, ServiceSplit{Weight: 90}, ServiceSplit{Weight: 10, Service: "target"}))
		s.Upsert(resolver(name, func(r *ServiceResolverConfigEntry) { r.ConnectTimeout = Duration(3 * time.Second) }))
	}
	for i := 0; s.Len() < 10_000; i++ {
		name := fmt.Sprintf("filler%05d", i)
		s.Upsert(serviceDefaults(name, "http"))
		if s.Len() < 10_000 {
			s.Upsert(resolver(name, func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}
			}))
		}
	}
	if s.Len() != 10_000 {
		b.Fatalf("store has %d entries, want 10000", s.Len())
	}
	if n := len(AffectedChains(s, KeyOf(KindServiceResolver, "target"))); n != 101 {
		b.Fatalf("write of target affects %d chains, want 101", n)
	}
	return s
}

func BenchmarkValidateWrite10k(b *testing.B) {
	s := validate10kStore(b)
	change := Change{Entry: resolver("target", func(r *ServiceResolverConfigEntry) {
		r.DefaultSubset = "v1"
		r.Subsets = subsets("v1")
		r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2", "dc3"}}}
	})}
	if err := ValidateWrite(s, change); err != nil {
		b.Fatalf("ValidateWrite() = %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := ValidateWrite(s, change); err != nil {
			b.Fatal(err)
		}
	}
}
