package xds

import (
	"errors"
	"testing"
	"time"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// fuzzReader turns fuzz bytes into choices; it yields zeros once the input
// is exhausted, so every input decodes to some chain and catalog.
type fuzzReader struct{ data []byte }

func (r *fuzzReader) byte() byte {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *fuzzReader) done() bool { return len(r.data) == 0 }

func pick[T any](r *fuzzReader, from []T) T { return from[int(r.byte())%len(from)] }

var (
	fuzzServices  = []string{"web", "api", "db"}
	fuzzSubsets   = []string{"", "v1", "v2"}
	fuzzDCs       = []string{"dc1", "dc2"}
	fuzzPaths     = []string{"", "/", "/demo.Echo/Ping", "/demo."}
	fuzzRegexes   = []string{`/demo\..*`, "(", "[a-z]+", ".*"}
	fuzzHeaders   = []string{"x-canary", ":method", "content-type", "x-trace-bin", "X-Upper"}
	fuzzValues    = []string{"1", "a b", "ü"}
	fuzzWeights   = [][]float32{{100}, {90, 10}, {50, 50}, {33.33, 33.33, 33.34}, {100, 0}, {120, -20}, {99.99, 0.01}}
	fuzzAddresses = []string{"10.0.0.1", "10.0.0.2", "::1", "host.example"}
	fuzzPorts     = []int{8080, 8081, 1, 65535}
	fuzzStatuses  = []catalog.Health{catalog.Passing, catalog.Warning, catalog.Critical}
	fuzzModifiers = []*chain.HTTPHeaderModifiers{nil, nil, {}, {Add: map[string]string{"x-a": "1"}},
		{Set: map[string]string{"x-b": "ü", "X-C": ""}, Remove: []string{"x-d", "x-d"}}, {Remove: []string{""}}, {Add: map[string]string{"x-e": "a\nb"}}}
	fuzzRetryOn = [][]string{nil, {"unavailable"}, {"5xx", "cancelled"}, {"reset"}, {"deadline-exceeded", "internal", "resource-exhausted"}}
	fuzzLBs     = []*chain.LoadBalancer{nil, {Policy: chain.LBPolicyRoundRobin}, {Policy: chain.LBPolicyLeastRequest, LeastRequestConfig: &chain.LeastRequestConfig{ChoiceCount: 3}},
		{Policy: chain.LBPolicyLeastRequest, LeastRequestConfig: &chain.LeastRequestConfig{ChoiceCount: 1}},
		{Policy: chain.LBPolicyRingHash, RingHashConfig: &chain.RingHashConfig{MinimumRingSize: 16, MaximumRingSize: 64},
			HashPolicies: []chain.HashPolicy{{Field: chain.HashPolicyHeader, FieldValue: "X-User", Terminal: true}, {SourceIP: true}}},
		{Policy: chain.LBPolicyRingHash, RingHashConfig: &chain.RingHashConfig{MaximumRingSize: 512}},
		{Policy: chain.LBPolicyMaglev, HashPolicies: []chain.HashPolicy{{Field: chain.HashPolicyCookie, FieldValue: "s", CookieConfig: &chain.CookieConfig{Session: true}}}},
		{Policy: chain.LBPolicyRandom},
		{Policy: chain.LBPolicyRingHash, HashPolicies: []chain.HashPolicy{{Field: chain.HashPolicyQueryParam, FieldValue: "id"},
			{Field: chain.HashPolicyCookie, FieldValue: "c", CookieConfig: &chain.CookieConfig{TTL: chain.Duration(time.Minute), Path: "/"}}}}}
)

// fuzzEntries decodes up to 8 entries (all services get protocol grpc, so
// routers and splitters pass the protocol gate). Some are invalid on
// purpose; the caller keeps those that pass Prepare.
func fuzzEntries(r *fuzzReader) []chain.Entry {
	out := []chain.Entry{grpcDefaults("web"), grpcDefaults("api"), grpcDefaults("db")}
	for n := 0; n < 8 && !r.done(); n++ {
		name := pick(r, fuzzServices)
		switch r.byte() % 3 {
		case 0:
			e := router(name)
			for k := int(r.byte() % 4); k > 0; k-- {
				e.Routes = append(e.Routes, fuzzRoute(r))
			}
			out = append(out, e)
		case 1:
			e := splitter(name)
			for _, w := range pick(r, fuzzWeights) {
				e.Splits = append(e.Splits, chain.ServiceSplit{Weight: w, Service: pick(r, fuzzServices), ServiceSubset: pick(r, fuzzSubsets),
					RequestHeaders: pick(r, fuzzModifiers), ResponseHeaders: pick(r, fuzzModifiers)})
			}
			out = append(out, e)
		default:
			out = append(out, fuzzResolver(r, name))
		}
	}
	return out
}

func fuzzRoute(r *fuzzReader) chain.ServiceRoute {
	m := chain.ServiceRouteHTTPMatch{}
	switch r.byte() % 4 {
	case 1:
		m.PathExact = pick(r, fuzzPaths)
	case 2:
		m.PathPrefix = pick(r, fuzzPaths)
	case 3:
		m.PathRegex = pick(r, fuzzRegexes)
	}
	for k := int(r.byte() % 3); k > 0; k-- {
		h := chain.ServiceRouteHTTPMatchHeader{Name: pick(r, fuzzHeaders), Invert: r.byte()%2 == 0}
		switch r.byte() % 5 {
		case 0:
			h.Present = true
		case 1:
			h.Exact = pick(r, fuzzValues)
		case 2:
			h.Prefix = pick(r, fuzzValues)
		case 3:
			h.Suffix = pick(r, fuzzValues)
		default:
			h.Regex = pick(r, fuzzRegexes)
		}
		m.Header = append(m.Header, h)
	}
	if r.byte()%4 == 0 {
		m.QueryParam = []chain.ServiceRouteHTTPMatchQueryParam{{Name: "q", Exact: pick(r, fuzzValues)}}
	}
	if r.byte()%4 == 0 {
		m.Methods = []string{"GET"}
	}
	route := chain.ServiceRoute{Match: httpMatch(m)}
	if r.byte()%3 != 0 {
		route.Destination = &chain.ServiceRouteDestination{
			Service:               pick(r, fuzzServices),
			ServiceSubset:         pick(r, fuzzSubsets),
			RequestTimeout:        chain.Duration(time.Duration(r.byte()) * 10 * time.Millisecond),
			NumRetries:            uint32(r.byte() % 3),
			RetryOnConnectFailure: r.byte()%2 == 0,
			RetryOnStatusCodes:    pick(r, [][]uint32{nil, {503}, {500, 503}, {429}}),
		}
		if r.byte()%4 == 0 {
			route.Destination.PrefixRewrite = "/x/"
		}
		d := route.Destination
		d.IdleTimeout = chain.Duration(time.Duration(r.byte()%3) * time.Second)
		d.RetryOn = pick(r, fuzzRetryOn)
		d.RequestHeaders, d.ResponseHeaders = pick(r, fuzzModifiers), pick(r, fuzzModifiers)
	}
	return route
}

func fuzzResolver(r *fuzzReader, name string) *chain.ServiceResolverConfigEntry {
	e := resolver(name, nil)
	mask := r.byte()
	if mask&1 != 0 {
		e.Subsets = versionSubsets("v1", "v2")
		e.Subsets["v2"] = chain.ServiceResolverSubset{Filter: e.Subsets["v2"].Filter, OnlyPassing: true}
	}
	if mask&2 != 0 {
		e.DefaultSubset = pick(r, fuzzSubsets)
	}
	if mask&4 != 0 {
		e.Redirect = &chain.ServiceResolverRedirect{Service: pick(r, fuzzServices), Datacenter: pick(r, fuzzDCs)}
	}
	if mask&8 != 0 {
		fo := chain.ServiceResolverFailover{Service: pick(r, fuzzServices), ServiceSubset: pick(r, fuzzSubsets)}
		for k := int(r.byte() % 3); k > 0; k-- {
			fo.Datacenters = append(fo.Datacenters, pick(r, fuzzDCs))
		}
		e.Failover = map[string]chain.ServiceResolverFailover{pick(r, []string{"*", "v1", "v2"}): fo}
	}
	if mask&16 != 0 {
		e.ConnectTimeout = chain.Duration(time.Duration(r.byte()) * time.Second)
	}
	if mask&32 != 0 {
		e.LoadBalancer = pick(r, fuzzLBs)
		e.RequestTimeout = chain.Duration(time.Duration(r.byte()%4) * time.Second)
	}
	if mask&64 != 0 && e.Redirect == nil {
		fo := chain.ServiceResolverFailover{}
		for k := int(r.byte()%3) + 1; k > 0; k-- {
			fo.Targets = append(fo.Targets, chain.ServiceResolverFailoverTarget{
				Service: pick(r, fuzzServices), ServiceSubset: pick(r, fuzzSubsets), Datacenter: pick(r, fuzzDCs),
			})
		}
		e.Failover = map[string]chain.ServiceResolverFailover{"*": fo}
	}
	return e
}

// fuzzInstances decodes up to 8 instances; addresses repeat often.
func fuzzInstances(r *fuzzReader) []*catalog.Stored {
	var out []*catalog.Stored
	for n := int(r.byte() % 9); n > 0; n-- {
		s := inst("i"+string(rune('a'+n)), pick(r, fuzzServices), pick(r, fuzzAddresses), pick(r, fuzzPorts), pick(r, fuzzSubsets))
		s.Datacenter = pick(r, fuzzDCs)
		s.Status = pick(r, fuzzStatuses)
		out = append(out, s)
	}
	return out
}

// FuzzBuild compiles a random but valid chain (entries that pass Prepare,
// compiled by the real compiler) with a random catalog. Build must not
// panic, and must either fail or return resources that pass Validate;
// grpccheck.Warnings must not panic either. `go test` runs only the seeds.
func FuzzBuild(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 1, 1, 4, 1, 0, 0, 1, 0, 3, 0, 0, 1})    // splitter 90/10
	f.Add([]byte{0, 0, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}) // router with header matches
	f.Add([]byte{0, 2, 9, 1, 1, 1, 0, 2, 4, 5, 0, 1, 2, 3})       // resolver with subsets and failover
	f.Add([]byte{0, 1, 5, 0, 1, 2, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0}) // negative split weight
	f.Add([]byte("a fairly long input producing a mixture of routes, splits and instances"))
	f.Add([]byte{2, 0, 96, 4, 1, 2, 2, 1, 0, 0, 1, 2, 3, 0, 1, 1, 4, 0, 1, 1})                  // resolver with a load balancer and failover targets
	f.Add([]byte{0, 1, 3, 2, 1, 2, 3, 0, 1, 2, 1, 1, 1, 3, 4, 1, 2, 4, 3, 3, 2, 1, 4, 2, 0, 1}) // router with header modifiers and retry conditions
	f.Add([]byte{1, 1, 1, 3, 0, 1, 3, 4, 2, 1, 0, 4, 3, 2, 2, 1, 1, 3, 2, 1})                   // splitter legs with header modifiers
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{data: data}
		var kept []chain.Entry
		for _, e := range fuzzEntries(r) {
			if chain.Prepare(e) == nil {
				kept = append(kept, e)
			}
		}
		instances := fuzzInstances(r)
		for _, service := range fuzzServices {
			res, err := chain.Compile(chain.CompileRequest{
				ServiceName: service, EvaluateInNamespace: "default", EvaluateInDatacenter: "dc1",
				EvaluateInTrustDomain: testTrustDomain, UseInDatacenter: "dc1", Entries: chain.NewMemStore(kept...),
			})
			if err != nil {
				continue // a graph error: not a chain Build ever sees
			}
			_ = grpccheck.Warnings(res.Chain)
			out, err := Build(res.Chain, catalogOf(instances...))
			if err != nil {
				if !errors.Is(err, ErrInvalidChain) {
					t.Fatalf("Build(%s) error %v does not wrap ErrInvalidChain", service, err)
				}
				continue
			}
			if err := Validate(out); err != nil {
				t.Fatalf("Validate(Build(%s)) = %v", service, err)
			}
		}
	})
}
