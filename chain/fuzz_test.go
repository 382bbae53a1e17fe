package chain

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// fuzzReader turns fuzz bytes into choices; it yields zeros once the input
// is exhausted, so every input decodes to some entry set.
type fuzzReader struct {
	data []byte
}

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
	fuzzNames      = []string{"main", "other", "a", "B", ""}
	fuzzSubsets    = []string{"", "v1", "v2", "Bad_Subset"}
	fuzzNamespaces = []string{"", "", "default", "ns2"}
	fuzzDCs        = []string{"", "dc1", "dc2", "dc3"}
	fuzzProtocols  = []string{"", "http", "tcp", "grpc", "HTTP2"}
	fuzzModes      = []string{"", "none", "local", "remote"}
	fuzzWeights    = [][]float32{{100}, {50, 50}, {90, 10}, {33.33, 33.33, 33.34}, {99.999, 0.001}, {60, 40}, {120, -20}}
)

// fuzzEntries decodes up to 12 entries from data. Many are invalid on
// purpose; the caller keeps those that pass Prepare.
// Later entry fields for the fuzzers: header modifiers and load
// balancers, some invalid on purpose.
var (
	fuzzModifiers     = []*HTTPHeaderModifiers{nil, nil, {}, {Set: map[string]string{"x-a": "1"}, Remove: []string{"x-b"}}, {Add: map[string]string{"x-a": "2"}}}
	fuzzLoadBalancers = []*LoadBalancer{nil, {Policy: LBPolicyLeastRequest}, {Policy: "bogus"},
		{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{Field: HashPolicyHeader, FieldValue: "x"}}},
		{Policy: LBPolicyMaglev, HashPolicies: []HashPolicy{{SourceIP: true}}},
		{Policy: LBPolicyRoundRobin, HashPolicies: []HashPolicy{{SourceIP: true}}}}
)

func fuzzEntries(data []byte) []Entry {
	r := &fuzzReader{data: data}
	var out []Entry
	for len(out) < 12 && !r.done() {
		name := pick(r, fuzzNames)
		switch r.byte() % 5 {
		case 0:
			e := &ServiceConfigEntry{Kind: KindServiceDefaults, Name: name, Protocol: pick(r, fuzzProtocols)}
			e.MeshGateway.Mode = pick(r, fuzzModes)
			if r.byte()%4 == 0 {
				e.ExternalSNI = name + ".example.com"
			}
			out = append(out, e)
		case 1:
			e := &ProxyConfigEntry{Kind: KindProxyDefaults, Name: ProxyDefaultsName}
			switch r.byte() % 4 {
			case 1:
				e.Config = map[string]any{"protocol": pick(r, fuzzProtocols)}
			case 2:
				e.Config = map[string]any{"Protocol": pick(r, fuzzProtocols), "other": 5}
			case 3:
				e.Config = map[string]any{"protocol": 42}
			}
			e.MeshGateway.Mode = pick(r, fuzzModes)
			out = append(out, e)
		case 2:
			e := &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: name}
			for n := int(r.byte() % 4); n > 0; n-- {
				var route ServiceRoute
				switch r.byte() % 4 {
				case 1:
					route.Match = &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/p"}}
				case 2:
					route.Match = &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathExact: "/e", Methods: []string{"get"}}}
				case 3:
					route.Match = &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{
						Header: []ServiceRouteHTTPMatchHeader{{Name: "x-debug", Exact: "1"}},
					}}
				}
				if r.byte()%3 != 0 {
					route.Destination = &ServiceRouteDestination{
						Service:       pick(r, fuzzNames),
						ServiceSubset: pick(r, fuzzSubsets),
						Namespace:     pick(r, fuzzNamespaces),
					}
				}
				e.Routes = append(e.Routes, route)
			}
			out = append(out, e)
		case 3:
			e := &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: name}
			for _, w := range pick(r, fuzzWeights) {
				e.Splits = append(e.Splits, ServiceSplit{
					Weight:          w,
					Service:         pick(r, fuzzNames),
					ServiceSubset:   pick(r, fuzzSubsets),
					Namespace:       pick(r, fuzzNamespaces),
					RequestHeaders:  pick(r, fuzzModifiers),
					ResponseHeaders: pick(r, fuzzModifiers),
				})
			}
			out = append(out, e)
		case 4:
			e := &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: name}
			mask := r.byte()
			if mask&1 != 0 {
				e.Subsets = map[string]ServiceResolverSubset{"v1": {Filter: "Service.Meta.version == v1"}}
			}
			if mask&2 != 0 {
				if e.Subsets == nil {
					e.Subsets = map[string]ServiceResolverSubset{}
				}
				e.Subsets["v2"] = ServiceResolverSubset{OnlyPassing: true}
			}
			if mask&4 != 0 {
				e.DefaultSubset = pick(r, fuzzSubsets)
			}
			if mask&8 != 0 {
				e.Redirect = &ServiceResolverRedirect{
					Service:       pick(r, fuzzNames),
					ServiceSubset: pick(r, fuzzSubsets),
					Namespace:     pick(r, fuzzNamespaces),
					Datacenter:    pick(r, fuzzDCs),
				}
			}
			if mask&16 != 0 {
				fo := ServiceResolverFailover{Service: pick(r, fuzzNames), ServiceSubset: pick(r, fuzzSubsets)}
				for n := int(r.byte() % 3); n > 0; n-- {
					fo.Datacenters = append(fo.Datacenters, pick(r, fuzzDCs))
				}
				e.Failover = map[string]ServiceResolverFailover{pick(r, []string{"*", "v1", "v2"}): fo}
			}
			if mask&32 != 0 {
				e.ConnectTimeout = Duration(time.Duration(r.byte()) * time.Second)
			}
			if mask&64 != 0 {
				e.LoadBalancer = pick(r, fuzzLoadBalancers)
				e.RequestTimeout = Duration(time.Duration(r.byte()%4) * time.Second)
			}
			if mask&128 != 0 {
				fo := ServiceResolverFailover{}
				for n := int(r.byte()%3) + 1; n > 0; n-- {
					fo.Targets = append(fo.Targets, ServiceResolverFailoverTarget{
						Service: pick(r, fuzzNames), ServiceSubset: pick(r, fuzzSubsets), Datacenter: pick(r, fuzzDCs),
					})
				}
				e.Failover = map[string]ServiceResolverFailover{pick(r, []string{"*", "v1", "v2"}): fo}
			}
			out = append(out, e)
		}
	}
	return out
}

// FuzzCompile builds an entry set from the fuzz input, keeps the entries
// that pass Prepare, and compiles every name twice in two datacenters. A
// compile must not panic, may only fail with a *GraphError, must give
// identical JSON both times, and must produce a well-formed graph.
// ValidateWrite of every kept entry must not panic either.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 1, 0, 2, 1, 4, 0, 1, 0, 1, 1, 1})                   // service-defaults http + splitter
	f.Add([]byte{0, 4, 9, 1, 0, 0, 1, 4, 8, 0, 0, 0, 0})                   // resolvers with redirects
	f.Add([]byte{0, 3, 1, 1, 0, 0, 1, 3, 1, 0, 0, 0, 0, 1, 1, 1})          // nested splitters
	f.Add([]byte{0, 2, 3, 1, 1, 1, 1, 1, 0, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1}) // router
	f.Add([]byte("a fairly long input to produce a mixture of entry kinds!!"))
	f.Add([]byte{0, 4, 192, 3, 1, 2, 1, 2, 0, 1, 1, 0, 2, 4, 3, 3, 1, 1, 0, 0})     // resolver with a load balancer and failover targets
	f.Add([]byte{0, 3, 1, 3, 1, 0, 3, 4, 2, 1, 0, 3, 0, 1, 1, 0, 1, 2, 3, 3, 3, 1}) // splitters with header modifiers
	f.Fuzz(func(t *testing.T, data []byte) {
		store := NewMemStore()
		var kept []Entry
		for _, e := range fuzzEntries(data) {
			if Prepare(e) == nil {
				store.Upsert(e)
				kept = append(kept, e)
			}
		}
		for _, name := range []string{"main", "other", "a", "b", "unknown"} {
			for _, dc := range []string{"dc1", "dc2"} {
				req := CompileRequest{
					ServiceName:           name,
					EvaluateInNamespace:   DefaultNamespace,
					EvaluateInDatacenter:  dc,
					EvaluateInTrustDomain: ValidationTrustDomain,
					UseInDatacenter:       DefaultDatacenter,
					Entries:               store,
				}
				if data := data; len(data) > 0 && data[0]%2 == 1 {
					req.OverrideProtocol = "tcp"
					req.OverrideConnectTimeout = time.Second
					req.OverrideMeshGateway.Mode = "local"
				}
				checkCompileTwice(t, req)
			}
		}
		for _, e := range kept {
			_ = ValidateWrite(store, Change{Entry: e})
			_ = ValidateWrite(store, Change{Key: KeyOf(e.GetKind(), e.GetName())})
		}
	})
}

func checkCompileTwice(t *testing.T, req CompileRequest) {
	t.Helper()
	r1, err1 := Compile(req)
	r2, err2 := Compile(req)
	if err1 != nil {
		var ge *GraphError
		if !errors.As(err1, &ge) {
			t.Fatalf("Compile(%q) error %T %v is not a *GraphError", req.ServiceName, err1, err1)
		}
		if err2 == nil || err2.Error() != err1.Error() {
			t.Fatalf("Compile(%q) errors differ: %v then %v", req.ServiceName, err1, err2)
		}
		return
	}
	if err2 != nil {
		t.Fatalf("Compile(%q) succeeded then failed: %v", req.ServiceName, err2)
	}
	j1, err := json.Marshal(r1.Chain)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	j2, _ := json.Marshal(r2.Chain)
	if string(j1) != string(j2) {
		t.Fatalf("Compile(%q) not deterministic:\n%s\n%s", req.ServiceName, j1, j2)
	}
	checkWellFormed(t, r1.Chain)
}

// checkWellFormed verifies the graph invariants: the start node exists,
// every next node exists, every node is reachable, every resolver's
// targets exist and every target is used.
func checkWellFormed(t *testing.T, c *CompiledChain) {
	t.Helper()
	if _, ok := c.Nodes[c.StartNode]; !ok {
		t.Fatalf("start node %q missing", c.StartNode)
	}
	usedTargets := map[string]bool{}
	for key, n := range c.Nodes {
		if key != n.Type+":"+n.Name {
			t.Fatalf("node key %q does not match %s:%s", key, n.Type, n.Name)
		}
		for _, r := range n.Routes {
			if _, ok := c.Nodes[r.NextNode]; !ok {
				t.Fatalf("route of %s leads to missing node %q", key, r.NextNode)
			}
		}
		for _, s := range n.Splits {
			next, ok := c.Nodes[s.NextNode]
			if !ok {
				t.Fatalf("split of %s leads to missing node %q", key, s.NextNode)
			}
			if next.Type == NodeTypeSplitter {
				t.Fatalf("split of %s leads to splitter %q after flattening", key, s.NextNode)
			}
		}
		if n.Resolver != nil {
			ids := []string{n.Resolver.Target}
			if n.Resolver.Failover != nil {
				ids = append(ids, n.Resolver.Failover.Targets...)
			}
			for _, id := range ids {
				if _, ok := c.Targets[id]; !ok {
					t.Fatalf("resolver %s uses missing target %q", key, id)
				}
				usedTargets[id] = true
			}
		}
	}
	for id := range c.Targets {
		if !usedTargets[id] {
			t.Fatalf("target %q is not used by any node", id)
		}
	}
	if c.Protocol == "" {
		t.Fatalf("empty protocol")
	}
}
