package chain

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Tests of ValidateWrite's fast path (validate_skip.go). The full
// validation, compileAffected, is the oracle: the fast path may only skip
// a write the oracle accepts, and ValidateWrite must give the oracle's
// verdict (the same error text) on every store built by validated writes.

const errMainNoSubsetV1 = `service "main" does not have a subset named "v1"`

func withMeta[E Entry](e E, kv ...string) E {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	switch t := any(e).(type) {
	case *ServiceConfigEntry:
		t.Meta = m
	case *ProxyConfigEntry:
		t.Meta = m
	case *ServiceRouterConfigEntry:
		t.Meta = m
	case *ServiceSplitterConfigEntry:
		t.Meta = m
	case *ServiceResolverConfigEntry:
		t.Meta = m
	}
	return e
}

func sdWith(name, protocol string, mod func(*ServiceConfigEntry)) *ServiceConfigEntry {
	e := serviceDefaults(name, protocol)
	mod(e)
	return e
}

func proxyWith(mod func(*ProxyConfigEntry)) *ProxyConfigEntry {
	p := &ProxyConfigEntry{Kind: KindProxyDefaults, Name: ProxyDefaultsName}
	mod(p)
	return p
}

// mainSubsetRouter routes /v1 of main to main's subset v1.
func mainSubsetRouter() *ServiceRouterConfigEntry {
	return router("main", pathPrefixRoute("/v1", &ServiceRouteDestination{ServiceSubset: "v1"}))
}

func TestValidateWriteSkip(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		setup     []Entry
		op        Change
		wantSkip  bool
		expectErr string // empty: accepted
	}{
		"ServiceDefaultsMetaOnly": {
			setup:    []Entry{serviceDefaults("web", "http")},
			op:       upsert(withMeta(serviceDefaults("web", "http"), "owner", "team-a")),
			wantSkip: true,
		},
		"ServiceDefaultsMetaOnlyUnderRouter": {
			setup:    []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:       upsert(withMeta(serviceDefaults("main", "http"), "owner", "team-a")),
			wantSkip: true,
		},
		"ServiceDefaultsExposeOnly": {
			setup: []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op: upsert(sdWith("main", "http", func(e *ServiceConfigEntry) {
				e.Expose = ExposeConfig{Checks: true, Paths: []ExposePath{{Path: "/health", LocalPathPort: 8080, ListenerPort: 21500}}}
			})),
			wantSkip: true,
		},
		"ServiceDefaultsNameCaseOnly": {
			setup:    []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:       upsert(serviceDefaults("MAIN", "http")),
			wantSkip: true,
		},
		"ServiceDefaultsHTTPToTCPUnderRouter": {
			setup:     []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:        upsert(serviceDefaults("main", "tcp")),
			expectErr: errMainNotHTTPtcp,
		},
		"ServiceDefaultsHTTPToGRPCLeaf": {
			setup: []Entry{serviceDefaults("web", "http")},
			op:    upsert(serviceDefaults("web", "grpc")),
		},
		"ServiceDefaultsCreateSameProtocolAsProxy": {
			setup:    []Entry{proxyDefaults("http"), mainSplitter()},
			op:       upsert(serviceDefaults("main", "http")),
			wantSkip: true,
		},
		"ServiceDefaultsCreateEmptyProtocolIsTCP": {
			op:       upsert(serviceDefaults("web", "")),
			wantSkip: true,
		},
		"ServiceDefaultsCreateTCP": {
			op:       upsert(serviceDefaults("web", "tcp")),
			wantSkip: true,
		},
		"ServiceDefaultsCreateHTTPWithoutProxy": {
			op: upsert(serviceDefaults("web", "http")),
		},
		// An explicit empty protocol is tcp, not proxy-defaults' protocol
		// [quirk], so creating one under proxy http changes the chain.
		"ServiceDefaultsCreateEmptyUnderProxyHTTP": {
			setup:     []Entry{proxyDefaults("http"), mainSplitter()},
			op:        upsert(serviceDefaults("main", "")),
			expectErr: errMainNotHTTPtcp,
		},
		"ServiceDefaultsDeleteSameAsProxy": {
			setup:    []Entry{proxyDefaults("http"), serviceDefaults("main", "http"), mainSplitter()},
			op:       remove(KindServiceDefaults, "main"),
			wantSkip: true,
		},
		"ServiceDefaultsDeleteFallsBackToTCP": {
			setup:     []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:        remove(KindServiceDefaults, "main"),
			expectErr: errMainNotHTTPtcp,
		},
		"ServiceDefaultsExternalSNIAdded": {
			setup: []Entry{serviceDefaults("main", "http"), resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
			})},
			op:        upsert(sdWith("main", "http", func(e *ServiceConfigEntry) { e.ExternalSNI = "main.example.com" })),
			expectErr: `service "main" has an external SNI set; cannot define subsets for external services`,
		},
		"ServiceDefaultsMeshGatewaySet": {
			setup:    []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:       upsert(sdWith("main", "http", func(e *ServiceConfigEntry) { e.MeshGateway.Mode = MeshGatewayModeLocal })),
			wantSkip: true,
		},
		"ServiceDefaultsExternalSNIRenamed": {
			setup: []Entry{
				sdWith("main", "http", func(e *ServiceConfigEntry) { e.ExternalSNI = "main.example.com" }),
				resolver("main", func(r *ServiceResolverConfigEntry) { r.ConnectTimeout = Duration(time.Second) }),
			},
			op:       upsert(sdWith("main", "http", func(e *ServiceConfigEntry) { e.ExternalSNI = "main.example.org" })),
			wantSkip: true,
		},
		"ServiceDefaultsMeshGatewaySameAsProxy": {
			setup: []Entry{
				proxyWith(func(p *ProxyConfigEntry) {
					p.Config = map[string]any{"protocol": "http"}
					p.MeshGateway.Mode = MeshGatewayModeLocal
				}),
				serviceDefaults("main", "http"), mainSplitter(),
			},
			op:       upsert(sdWith("main", "http", func(e *ServiceConfigEntry) { e.MeshGateway.Mode = MeshGatewayModeLocal })),
			wantSkip: true,
		},
		"ProxyDefaultsMetaAndOtherConfig": {
			setup: []Entry{proxyDefaults("http"), mainSplitter()},
			op: upsert(withMeta(proxyWith(func(p *ProxyConfigEntry) {
				p.Config = map[string]any{"protocol": "http", "local_connect_timeout_ms": 5000}
			}), "owner", "ops")),
			wantSkip: true,
		},
		"ProxyDefaultsProtocolKeySpelling": {
			setup: []Entry{proxyDefaults("http"), mainSplitter()},
			op: upsert(proxyWith(func(p *ProxyConfigEntry) {
				p.Config = map[string]any{"Protocol": "HTTP"}
			})),
			wantSkip: true,
		},
		"ProxyDefaultsMeshGateway": {
			setup: []Entry{proxyDefaults("http"), mainSplitter()},
			op: upsert(proxyWith(func(p *ProxyConfigEntry) {
				p.Config = map[string]any{"protocol": "http"}
				p.MeshGateway.Mode = MeshGatewayModeRemote
			})),
			wantSkip: true,
		},
		"ProxyDefaultsToTCPUnderSplitter": {
			setup:     []Entry{proxyDefaults("http"), mainSplitter()},
			op:        upsert(proxyDefaults("tcp")),
			expectErr: errMainNotHTTPtcp,
		},
		"ProxyDefaultsDeleteWithoutProtocol": {
			setup:    []Entry{proxyWith(func(p *ProxyConfigEntry) { p.Config = map[string]any{"other": 1} }), resolver("main", nil)},
			op:       remove(KindProxyDefaults, "global"),
			wantSkip: true,
		},
		"ProxyDefaultsCreateHTTP": {
			setup: []Entry{resolver("main", nil)},
			op:    upsert(proxyDefaults("http")),
		},
		"RouterMetaOnly": {
			setup:    []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:       upsert(withMeta(mainRouter(), "rev", "2")),
			wantSkip: true,
		},
		"RouterUnchanged": {
			setup:    []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:       upsert(mainRouter()),
			wantSkip: true,
		},
		"RouterMatchAndTimeoutsChange": {
			setup: []Entry{serviceDefaults("main", "http"), mainRouter()},
			op: upsert(router("main", pathPrefixRoute("/elsewhere", &ServiceRouteDestination{
				Namespace: "other", RequestTimeout: Duration(time.Second), NumRetries: 3, RetryOn: []string{"5xx"},
				RequestHeaders: &HTTPHeaderModifiers{Set: map[string]string{"x-a": "1"}},
			}))),
			wantSkip: true,
		},
		// No Destination and an empty one both go to the chain's service.
		"RouterEmptyDestination": {
			setup:    []Entry{serviceDefaults("main", "http"), router("main", pathPrefixRoute("/a", nil))},
			op:       upsert(router("main", pathPrefixRoute("/a", &ServiceRouteDestination{PrefixRewrite: "/b"}))),
			wantSkip: true,
		},
		"RouterDestinationChange": {
			setup:     []Entry{serviceDefaults("main", "http"), serviceDefaults("other", "tcp"), mainRouter()},
			op:        upsert(router("main", pathPrefixRoute("/other", &ServiceRouteDestination{Service: "other"}))),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
		},
		"RouterRouteAdded": {
			setup: []Entry{serviceDefaults("main", "http"), mainRouter()},
			op: upsert(router("main", pathPrefixRoute("/other", &ServiceRouteDestination{Namespace: "other"}),
				pathPrefixRoute("/x", nil))),
		},
		// The router node takes the entry's spelling of the name, so a
		// change of case changes the chain.
		"RouterNameCase": {
			setup: []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:    upsert(router("Main", pathPrefixRoute("/other", &ServiceRouteDestination{Namespace: "other"}))),
		},
		"RouterCreate": {
			setup: []Entry{serviceDefaults("main", "http")},
			op:    upsert(mainRouter()),
		},
		"RouterDeleteAbsent": {
			op:       remove(KindServiceRouter, "main"),
			wantSkip: true,
		},
		"SplitterMetaOnly": {
			setup:    []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:       upsert(withMeta(mainSplitter(), "rev", "2")),
			wantSkip: true,
		},
		"SplitterWeightsAndHeaders": {
			setup: []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op: upsert(splitter("main", ServiceSplit{Weight: 50, Namespace: "v1"}, ServiceSplit{
				Weight: 50, Namespace: "v2", ResponseHeaders: &HTTPHeaderModifiers{Remove: []string{"x-b"}},
			})),
			wantSkip: true,
		},
		"SplitterLegToOtherService": {
			setup:     []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:        upsert(splitter("main", ServiceSplit{Weight: 90, Namespace: "v1"}, ServiceSplit{Weight: 10, Service: "other"})),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
		},
		"SplitterDelete": {
			setup: []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:    remove(KindServiceSplitter, "main"),
		},
		"ResolverMetaOnly": {
			setup: []Entry{serviceDefaults("main", "http"), resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
			}), mainSubsetRouter()},
			op: upsert(withMeta(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
			}), "rev", "2")),
			wantSkip: true,
		},
		"ResolverTimeoutsFiltersLoadBalancer": {
			setup: []Entry{serviceDefaults("main", "http"), resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
			}), mainSubsetRouter()},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = map[string]ServiceResolverSubset{"v1": {Filter: "Service.Meta.version == v9", OnlyPassing: true}}
				r.ConnectTimeout = Duration(3 * time.Second)
				r.RequestTimeout = Duration(10 * time.Second)
				r.LoadBalancer = &LoadBalancer{Policy: LBPolicyLeastRequest}
			})),
			wantSkip: true,
		},
		"ResolverSubsetAdded": {
			setup: []Entry{serviceDefaults("main", "http"), resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
			}), mainSubsetRouter()},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2") })),
		},
		"ResolverFailoverDatacenters": {
			setup: []Entry{serviceDefaults("main", "http"), resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}
			})},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2", "dc3"}}}
			})),
		},
		"ResolverRedirectRetarget": {
			setup: []Entry{
				serviceDefaults("main", "http"), serviceDefaults("other", "tcp"), serviceDefaults("third", "http"),
				resolver("main", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Service: "third"} }),
			},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "other"}
			})),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
		},
		"ResolverRedirectSameTargetNewMeta": {
			setup: []Entry{
				serviceDefaults("main", "http"), serviceDefaults("third", "http"),
				resolver("main", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Service: "third"} }),
			},
			op: upsert(withMeta(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "third"}
			}), "rev", "3")),
			wantSkip: true,
		},
		"ResolverSubsetRemovedUnderRoute": {
			setup: []Entry{serviceDefaults("main", "http"), resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
			}), mainSubsetRouter()},
			op:        upsert(resolver("main", func(r *ServiceResolverConfigEntry) { r.ConnectTimeout = Duration(time.Second) })),
			expectErr: errMainNoSubsetV1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := NewMemStore()
			for _, e := range tc.setup {
				if err := Prepare(e); err != nil {
					t.Fatalf("setup Prepare(%s/%s) = %v", e.GetKind(), e.GetName(), err)
				}
				if err := ValidateWrite(s, upsert(e)); err != nil {
					t.Fatalf("setup ValidateWrite(%s/%s) = %v", e.GetKind(), e.GetName(), err)
				}
				s.Upsert(e)
			}
			if tc.op.Entry != nil {
				if err := Prepare(tc.op.Entry); err != nil {
					t.Fatalf("Prepare(op) = %v", err)
				}
			}
			key, next := changeParts(t, tc.op)
			if got := graphInputUnchanged(s, key, next); got != tc.wantSkip {
				t.Errorf("graphInputUnchanged(%s) = %v, want %v", key, got, tc.wantSkip)
			}
			got := ValidateWrite(s, tc.op)
			if errText(got) != tc.expectErr {
				t.Errorf("ValidateWrite(%s) = %q, want %q", key, errText(got), tc.expectErr)
			}
			if oracle := compileAffected(s, key, next); errText(oracle) != errText(got) {
				t.Errorf("ValidateWrite(%s) = %q, but the full validation says %q", key, errText(got), errText(oracle))
			}
		})
	}
}

func changeParts(t *testing.T, c Change) (Key, Entry) {
	t.Helper()
	key, err := c.key()
	if err != nil {
		t.Fatalf("change key: %v", err)
	}
	if c.Entry == nil || isNilEntry(c.Entry) {
		return key, nil
	}
	return key, c.Entry
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// compileOutcome is a chain's compiled JSON, or its error text.
func compileOutcome(t *testing.T, entries EntryLookup, service string) string {
	t.Helper()
	res, err := Compile(CompileRequest{
		ServiceName:           service,
		EvaluateInNamespace:   DefaultNamespace,
		EvaluateInDatacenter:  DefaultDatacenter,
		EvaluateInTrustDomain: ValidationTrustDomain,
		UseInDatacenter:       DefaultDatacenter,
		Entries:               entries,
	})
	if err != nil {
		return "error: " + err.Error()
	}
	b, err := json.Marshal(res.Chain)
	if err != nil {
		t.Fatalf("marshal chain %q: %v", service, err)
	}
	return string(b)
}

// compiledVerdicts compiles every name of names over entries, with the
// fixed inputs of write-time validation, and returns "ok" or the error
// text of each.
func compiledVerdicts(t *testing.T, entries EntryLookup, names []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(names))
	for _, n := range names {
		o := compileOutcome(t, entries, n)
		if !strings.HasPrefix(o, "error: ") {
			o = "ok"
		}
		out[n] = o
	}
	return out
}

// chainNamesFor lists every lower-cased name an entry of s has, plus the
// names in extra: the chains a test compares before and after a change.
func chainNamesFor(s *MemStore, extra ...string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		n = strings.ToLower(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, k := range s.Keys() {
		if k.Kind != KindProxyDefaults {
			add(k.Name)
		}
	}
	for _, n := range extra {
		add(n)
	}
	return out
}

// cloneEntry deep-copies e through its canonical encoding.
func cloneEntry(t *testing.T, e Entry) Entry {
	t.Helper()
	enc, err := EncodeEntry(e)
	if err != nil {
		t.Fatalf("EncodeEntry: %v", err)
	}
	c, err := DecodeCanonical(enc)
	if err != nil {
		t.Fatalf("DecodeCanonical(%s): %v", enc, err)
	}
	return c
}

// checkWriteAgainstOracle validates c on s through ValidateWrite and the
// oracle and fails the test if they disagree, or if the fast path skipped
// a write that changes a compiled chain. It applies c when accepted and
// reports whether the fast path skipped it.
func checkWriteAgainstOracle(t *testing.T, s *MemStore, c Change) bool {
	t.Helper()
	key, next := changeParts(t, c)
	skip := graphInputUnchanged(s, key, next)
	oracle := compileAffected(s, key, next)
	got := ValidateWrite(s, c)
	if skip && oracle != nil {
		t.Fatalf("fast path skips %s but the full validation rejects it: %v\nwrite: %s", key, oracle, describeChange(c))
	}
	if errText(got) != errText(oracle) {
		t.Fatalf("ValidateWrite(%s) = %q, full validation = %q\nwrite: %s", key, errText(got), errText(oracle), describeChange(c))
	}
	if skip {
		// Stronger than the verdict: no chain of the store, affected or
		// not, changes whether (and how) it fails.
		names := chainNamesFor(s, key.Name)
		before := compiledVerdicts(t, s, names)
		after := compiledVerdicts(t, &overlay{base: s, key: key, entry: next}, names)
		for _, n := range names {
			if before[n] != after[n] {
				t.Fatalf("fast path skips %s but chain %q changes verdict:\nbefore %s\nafter  %s\nwrite: %s", key, n, before[n], after[n], describeChange(c))
			}
		}
	}
	if got == nil {
		if err := s.Apply(c); err != nil {
			t.Fatalf("Apply(%s): %v", key, err)
		}
	}
	return skip
}

func describeChange(c Change) string {
	if c.Entry == nil || isNilEntry(c.Entry) {
		return "delete " + c.Key.String()
	}
	enc, err := EncodeEntry(c.Entry)
	if err != nil {
		return err.Error()
	}
	return "upsert " + string(enc)
}

// mutateEntry changes one field of a copy of e, chosen by r: fields the
// compiler ignores (Meta, Expose, unrelated proxy Config keys, the case of
// a service-defaults name) as often as ones it reads.
func mutateEntry(t *testing.T, r *fuzzReader, e Entry) Entry {
	t.Helper()
	c := cloneEntry(t, e)
	meta := map[string]string{"rev": fmt.Sprint(r.byte())}
	switch x := c.(type) {
	case *ServiceConfigEntry:
		switch r.byte() % 7 {
		case 0:
			x.Meta = meta
		case 1:
			x.Expose.Checks = !x.Expose.Checks
		case 2:
			x.Protocol = pick(r, fuzzProtocols)
		case 3:
			x.MeshGateway.Mode = pick(r, fuzzModes)
		case 4:
			if x.ExternalSNI == "" {
				x.ExternalSNI = x.Name + ".example.com"
			} else {
				x.ExternalSNI = ""
			}
		case 5:
			x.Name = strings.ToUpper(x.Name)
		case 6:
			x.Expose.Paths = append(x.Expose.Paths, ExposePath{Path: "/metrics", LocalPathPort: 9102})
		}
	case *ProxyConfigEntry:
		switch r.byte() % 5 {
		case 0:
			x.Meta = meta
		case 1:
			if x.Config == nil {
				x.Config = map[string]any{}
			}
			x.Config["unrelated"] = int(r.byte())
		case 2:
			x.Config = map[string]any{pick(r, []string{"protocol", "Protocol", "PROTOCOL"}): pick(r, fuzzProtocols)}
		case 3:
			x.MeshGateway.Mode = pick(r, fuzzModes)
		case 4:
			x.Expose.Checks = !x.Expose.Checks
		}
	case *ServiceRouterConfigEntry:
		switch r.byte() % 9 {
		case 0:
			x.Meta = meta
		case 7:
			if len(x.Routes) > 0 && x.Routes[0].Destination != nil {
				x.Routes[0].Destination.Namespace = pick(r, fuzzNamespaces)
			}
		case 8:
			if len(x.Routes) > 0 {
				x.Routes[0].Destination = &ServiceRouteDestination{Service: pick(r, fuzzNames), Namespace: pick(r, fuzzNamespaces)}
			}
		case 4:
			for i := range x.Routes {
				if d := x.Routes[i].Destination; d != nil {
					d.RequestTimeout, d.NumRetries, d.RetryOn = Duration(time.Second), 2, []string{"5xx"}
				}
			}
		case 5:
			if len(x.Routes) > 0 {
				x.Routes = x.Routes[:len(x.Routes)-1]
			}
		case 6:
			if len(x.Routes) > 0 && x.Routes[0].Destination != nil {
				x.Routes[0].Destination.ServiceSubset = pick(r, fuzzSubsets)
			}
		case 1:
			if len(x.Routes) > 0 {
				x.Routes[0].Match = &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/m"}}
			}
		case 2:
			if len(x.Routes) > 0 && x.Routes[0].Destination != nil {
				x.Routes[0].Destination.Service = pick(r, fuzzNames)
			}
		case 3:
			x.Name = strings.ToUpper(x.Name)
		}
	case *ServiceSplitterConfigEntry:
		switch r.byte() % 6 {
		case 0:
			x.Meta = meta
		case 5:
			if len(x.Splits) > 0 {
				x.Splits[len(x.Splits)-1].ServiceSubset = pick(r, fuzzSubsets)
			}
		case 3:
			for i := range x.Splits {
				x.Splits[i].RequestHeaders = pick(r, fuzzModifiers)
			}
		case 4:
			if len(x.Splits) > 0 {
				x.Splits[0].Namespace = pick(r, fuzzNamespaces)
			}
		case 1:
			if len(x.Splits) > 1 {
				x.Splits[0].Weight, x.Splits[1].Weight = x.Splits[1].Weight, x.Splits[0].Weight
			}
		case 2:
			if len(x.Splits) > 0 {
				x.Splits[0].Service = pick(r, fuzzNames)
			}
		}
	case *ServiceResolverConfigEntry:
		switch r.byte() % 14 {
		case 0:
			x.Meta = meta
		case 10:
			x.Redirect = &ServiceResolverRedirect{Service: pick(r, fuzzNames), ServiceSubset: pick(r, []string{"", "v1"})}
			x.Failover = nil
		case 11:
			x.Failover = map[string]ServiceResolverFailover{pick(r, []string{"*", "v1"}): {Service: pick(r, fuzzNames)}}
		case 12:
			x.Failover = map[string]ServiceResolverFailover{"*": {Targets: []ServiceResolverFailoverTarget{
				{Service: pick(r, fuzzNames)}, {Service: pick(r, fuzzNames), Datacenter: pick(r, fuzzDCs)},
			}}}
		case 13:
			x.DefaultSubset = pick(r, append([]string{""}, sortedKeys(x.Subsets)...))
		case 7:
			x.LoadBalancer = pick(r, fuzzLoadBalancers)
		case 8:
			for name, sub := range x.Subsets {
				sub.OnlyPassing = !sub.OnlyPassing
				x.Subsets[name] = sub
			}
		case 9:
			x.Subsets = map[string]ServiceResolverSubset{pick(r, []string{"v1", "v2"}): {}}
		case 5:
			x.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{pick(r, fuzzDCs), "dc3"}}}
		case 6:
			x.Redirect = &ServiceResolverRedirect{Datacenter: "dc2"}
		case 1:
			x.ConnectTimeout = Duration(time.Duration(r.byte()%5) * time.Second)
		case 2:
			x.Subsets = nil
		case 3:
			x.DefaultSubset = pick(r, fuzzSubsets)
		case 4:
			x.Redirect = nil
		}
	}
	return c
}

// runSkipScenario builds a store from the first half of data through
// validated writes, then runs writes decoded from the second half
// (mutations of stored entries, unchanged rewrites, deletes, new
// entries), each checked against the oracle. It returns how many writes
// the fast path skipped.
func runSkipScenario(t *testing.T, data []byte) int {
	t.Helper()
	half := len(data) / 2
	s := NewMemStore()
	skipped := 0
	if len(data) > 0 && data[0]%2 == 0 {
		// Half the scenarios start from HTTP proxy-defaults, so that more
		// routers and splitters are accepted.
		p := proxyDefaults("http")
		p.MeshGateway.Mode = fuzzModes[int(data[0]/2)%len(fuzzModes)]
		s.Upsert(p)
	}
	if len(data) > 0 && data[0]%3 == 0 {
		// A third fail "a" over to other datacenters, where mesh-gateway
		// modes apply.
		s.Upsert(resolver("a", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2", "dc3"}}}
		}))
	}
	for _, e := range fuzzEntries(data[:half]) {
		if Prepare(e) != nil {
			continue
		}
		if checkWriteAgainstOracle(t, s, upsert(e)) {
			skipped++
		}
	}
	r := &fuzzReader{data: data[half:]}
	for steps := 0; steps < 24 && !r.done(); steps++ {
		keys := s.Keys()
		var c Change
		switch op := r.byte() % 5; {
		case op <= 1 && len(keys) > 0:
			e := mutateEntry(t, r, s.GetEntry(pick(r, keys)))
			if Prepare(e) != nil {
				continue
			}
			c = upsert(e)
		case op == 2 && len(keys) > 0:
			c = upsert(cloneEntry(t, s.GetEntry(pick(r, keys))))
		case op == 3:
			k := KeyOf(KindProxyDefaults, ProxyDefaultsName)
			if len(keys) > 0 && r.byte()%2 == 0 {
				k = pick(r, keys)
			}
			c = remove(k.Kind, k.Name)
		default:
			chunk := make([]byte, 0, 10)
			for range 10 {
				chunk = append(chunk, r.byte())
			}
			fresh := fuzzEntries(chunk)
			if len(fresh) == 0 || Prepare(fresh[0]) != nil {
				continue
			}
			c = upsert(fresh[0])
		}
		if checkWriteAgainstOracle(t, s, c) {
			skipped++
		}
	}
	return skipped
}

// FuzzValidateWriteSkip fuzzes the fast path against the full validation:
//
//	go test ./chain -run '^$' -fuzz FuzzValidateWriteSkip -fuzztime 60s
func FuzzValidateWriteSkip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 1, 0, 2, 1, 4, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 2, 0, 3, 0})
	f.Add([]byte{0, 3, 1, 1, 0, 0, 1, 3, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 4, 2, 0, 3, 0, 0})
	f.Add([]byte("a fairly long input to produce a mixture of entry kinds and then writes!!"))
	f.Fuzz(func(t *testing.T, data []byte) {
		runSkipScenario(t, data)
	})
}

// TestValidateWriteSkipMatchesOracle runs the fuzz scenario over a fixed
// set of pseudo-random inputs, so every test run checks several thousand
// writes, and checks that the fast path is actually taken.
func TestValidateWriteSkipMatchesOracle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(12, 2026))
	runs := 400
	if testing.Short() {
		runs = 100
	}
	skipped := 0
	for range runs {
		data := make([]byte, 40+rng.IntN(80))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		skipped += runSkipScenario(t, data)
	}
	if skipped < runs/10 {
		t.Fatalf("fast path taken %d times in %d scenarios; the generator no longer reaches it", skipped, runs)
	}
}

// ---- the graph inputs cover every field that can decide a verdict ----

// fieldRole classifies a field of an entry type, or of a struct inside
// one.
type fieldRole int

const (
	roleGraph    fieldRole = iota // part of the graph input (validate_skip.go)
	roleIdentity                  // Kind, and service-defaults' and proxy-defaults' Name: fixed by the key
	roleOutput                    // only shapes a compiled chain, never decides whether it compiles
)

// graphFieldRoles classifies every field of the entry types and of the
// structs the graph input looks inside. Redirect and Failover are compared
// whole, so the types inside them need no entry.
var graphFieldRoles = map[reflect.Type]map[string]fieldRole{
	reflect.TypeFor[ServiceConfigEntry](): {
		"Kind": roleIdentity, "Name": roleIdentity, "Protocol": roleGraph, "ExternalSNI": roleGraph,
		"MeshGateway": roleOutput, "Expose": roleOutput, "Meta": roleOutput,
	},
	reflect.TypeFor[ProxyConfigEntry](): {
		// Config is graph input through its "protocol" key only
		// (proxyProtocolOf); ignoredFieldMutations changes other keys.
		"Kind": roleIdentity, "Name": roleIdentity, "Config": roleGraph,
		"MeshGateway": roleOutput, "Expose": roleOutput, "Meta": roleOutput,
	},
	reflect.TypeFor[ServiceRouterConfigEntry](): {
		"Kind": roleIdentity, "Name": roleGraph, "Routes": roleGraph, "Meta": roleOutput,
	},
	reflect.TypeFor[ServiceRoute](): {"Match": roleOutput, "Destination": roleGraph},
	reflect.TypeFor[ServiceRouteDestination](): {
		"Service": roleGraph, "ServiceSubset": roleGraph, "Namespace": roleGraph,
		"PrefixRewrite": roleOutput, "RequestTimeout": roleOutput, "IdleTimeout": roleOutput,
		"NumRetries": roleOutput, "RetryOnConnectFailure": roleOutput, "RetryOn": roleOutput,
		"RetryOnStatusCodes": roleOutput, "RequestHeaders": roleOutput, "ResponseHeaders": roleOutput,
	},
	reflect.TypeFor[ServiceSplitterConfigEntry](): {
		"Kind": roleIdentity, "Name": roleGraph, "Splits": roleGraph, "Meta": roleOutput,
	},
	reflect.TypeFor[ServiceSplit](): {
		"Weight": roleOutput, "Service": roleGraph, "ServiceSubset": roleGraph, "Namespace": roleGraph,
		"RequestHeaders": roleOutput, "ResponseHeaders": roleOutput,
	},
	reflect.TypeFor[ServiceResolverConfigEntry](): {
		"Kind": roleIdentity, "Name": roleGraph, "DefaultSubset": roleGraph, "Subsets": roleGraph,
		"Redirect": roleGraph, "Failover": roleGraph,
		"ConnectTimeout": roleOutput, "RequestTimeout": roleOutput, "LoadBalancer": roleOutput, "Meta": roleOutput,
	},
	// Subsets are graph input by name only.
	reflect.TypeFor[ServiceResolverSubset](): {"Filter": roleOutput, "OnlyPassing": roleOutput},
}

// A field added to an entry type (or to a route, destination, split or
// subset) must be classified here; if it can decide whether a chain
// compiles, the graph input in validate_skip.go must compare it.
func TestGraphInputFieldsClassified(t *testing.T) {
	t.Parallel()
	for typ, roles := range graphFieldRoles {
		seen := map[string]bool{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			seen[f.Name] = true
			if _, ok := roles[f.Name]; !ok {
				t.Errorf("%s.%s is not classified: compare it in the graph input (validate_skip.go) if it can decide whether a chain compiles, and add it to graphFieldRoles", typ.Name(), f.Name)
			}
		}
		for name := range roles {
			if !seen[name] {
				t.Errorf("graphFieldRoles lists %s.%s, which does not exist", typ.Name(), name)
			}
		}
	}
}

// outputPaths lists the paths ("Routes.*.Destination.NumRetries") of the
// roleOutput fields of typ, looking inside graph fields whose (element)
// type graphFieldRoles classifies.
func outputPaths(typ reflect.Type, prefix []string) [][]string {
	var out [][]string
	for name, role := range graphFieldRoles[typ] {
		path := append(slices.Clone(prefix), name)
		if role == roleOutput {
			out = append(out, path)
			continue
		}
		if role != roleGraph {
			continue
		}
		ft, _ := typ.FieldByName(name)
		elem := ft.Type
		for elem.Kind() == reflect.Pointer || elem.Kind() == reflect.Slice || elem.Kind() == reflect.Map {
			if elem.Kind() != reflect.Pointer {
				path = append(path, "*")
			}
			elem = elem.Elem()
		}
		if _, ok := graphFieldRoles[elem]; ok {
			out = append(out, outputPaths(elem, path)...)
		}
	}
	return out
}

// setPath fills the field at path below v (every element for "*"),
// allocating nil pointers on the way.
func setPath(v reflect.Value, path []string, n int) {
	if len(path) == 0 {
		fillValue(v, n)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		setPath(v.Elem(), path, n)
	case reflect.Slice:
		for i := range v.Len() {
			setPath(v.Index(i), path[1:], n)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			setPath(e, path[1:], n)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		setPath(v.FieldByName(path[0]), path[1:], n)
	default:
		panic(fmt.Sprintf("setPath: cannot descend into %s at %v", v.Kind(), path))
	}
}

// fillValue sets v to a non-zero value of its type derived from n.
func fillValue(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("x%d", n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n+1) * 1.5)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(s.Index(0), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(k, n)
		fillValue(e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem(), n)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i), n+i)
			}
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf(fmt.Sprintf("x%d", n)))
	default:
		panic(fmt.Sprintf("fillValue: unhandled kind %s", v.Kind()))
	}
}

// outputFieldMutations returns copies of e, each with the output fields at
// one path set to values derived from n, plus the special cases: another
// (non-empty) external SNI, the upper-cased name of a service-defaults
// and an unrelated proxy-defaults Config key.
func outputFieldMutations(t *testing.T, e Entry, n int) []Entry {
	t.Helper()
	var out []Entry
	for _, path := range outputPaths(reflect.TypeOf(e).Elem(), nil) {
		c := cloneEntry(t, e)
		setPath(reflect.ValueOf(c).Elem(), path, n)
		out = append(out, c)
	}
	switch x := cloneEntry(t, e).(type) {
	case *ServiceConfigEntry:
		x.Name = strings.ToUpper(x.Name)
		if x.ExternalSNI != "" {
			x.ExternalSNI = fmt.Sprintf("sni%d.example.com", n)
		}
		out = append(out, x)
	case *ProxyConfigEntry:
		if x.Config == nil {
			x.Config = map[string]any{}
		}
		x.Config[fmt.Sprintf("unrelated_%d", n)] = n
		out = append(out, x)
	}
	return out
}

// Changing only output fields keeps the graph input equal, and no chain of
// the store changes whether, or how, it fails to compile. The stores are
// not validated: this holds for broken chains too.
func TestGraphInputIgnoresOutputFields(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 2026))
	var stores []*MemStore
	for range 80 {
		data := make([]byte, 60)
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		s := NewMemStore()
		for _, e := range fuzzEntries(data) {
			if Prepare(e) == nil {
				s.Upsert(e)
			}
		}
		stores = append(stores, s)
	}
	checked := 0
	for _, s := range stores {
		names := chainNamesFor(s, "unknown")
		before := compiledVerdicts(t, s, names)
		for i, key := range s.Keys() {
			for _, m := range outputFieldMutations(t, s.GetEntry(key), i) {
				if !graphInputUnchanged(s, key, m) {
					t.Fatalf("graphInputUnchanged(%s) = false for a change of output fields: %s", key, describeChange(upsert(m)))
				}
				after := compiledVerdicts(t, &overlay{base: s, key: key, entry: m}, names)
				for _, n := range names {
					if before[n] != after[n] {
						t.Fatalf("changing output fields of %s changes the verdict of chain %q:\nbefore %s\nafter  %s\nentry %s", key, n, before[n], after[n], describeChange(upsert(m)))
					}
				}
				checked++
			}
		}
	}
	if checked < 300 {
		t.Fatalf("only %d mutations checked", checked)
	}
}

func TestOutputPaths(t *testing.T) {
	t.Parallel()
	var got []string
	for _, p := range outputPaths(reflect.TypeFor[ServiceRouterConfigEntry](), nil) {
		got = append(got, strings.Join(p, "."))
	}
	for _, want := range []string{"Meta", "Routes.*.Match", "Routes.*.Destination.NumRetries", "Routes.*.Destination.ResponseHeaders"} {
		if !slices.Contains(got, want) {
			t.Errorf("outputPaths(router) = %v, missing %s", got, want)
		}
	}
}
