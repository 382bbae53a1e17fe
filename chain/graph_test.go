package chain

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// graphTestCase is one write-time validation case (docs/discovery-chain.md,
// Write-time validation): setup entries
// are written in order, each through ValidateWrite (they must be
// accepted), then op is validated.
type graphTestCase struct {
	setup     []Entry
	op        Change
	expectErr string // exact *GraphError text; empty means accepted
}

func upsert(e Entry) Change          { return Change{Entry: e} }
func remove(k Kind, n string) Change { return Change{Key: KeyOf(k, n)} }

// mainSplitter sends 90/10 to two namespaces of main, so only main's
// protocol matters.
func mainSplitter() *ServiceSplitterConfigEntry {
	return splitter("main", ServiceSplit{Weight: 90, Namespace: "v1"}, ServiceSplit{Weight: 10, Namespace: "v2"})
}

func mainRouter() *ServiceRouterConfigEntry {
	return router("main", pathPrefixRoute("/other", &ServiceRouteDestination{Namespace: "other"}))
}

const (
	errMainNotHTTPtcp = `discovery chain "main" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`
)

// The 20 numbered write-time cases of docs/discovery-chain.md, Write-time
// validation, under the same numbers.
func graphTestCases() map[string]graphTestCase {
	return map[string]graphTestCase{
		"01_SplitterWithoutProtocol": {
			op:        upsert(mainSplitter()),
			expectErr: errMainNotHTTPtcp,
		},
		"02_SplitterWithTCPServiceDefaults": {
			setup:     []Entry{serviceDefaults("main", "tcp")},
			op:        upsert(mainSplitter()),
			expectErr: errMainNotHTTPtcp,
		},
		"03_SplitterServiceDefaultsHTTPBeatsProxyTCP": {
			setup: []Entry{proxyDefaults("tcp"), serviceDefaults("main", "http")},
			op:    upsert(mainSplitter()),
		},
		"04_SplitterWithProxyDefaultsHTTP": {
			setup: []Entry{proxyDefaults("http")},
			op:    upsert(mainSplitter()),
		},
		"05_RouterWithTCPServiceDefaults": {
			setup:     []Entry{serviceDefaults("main", "tcp")},
			op:        upsert(mainRouter()),
			expectErr: errMainNotHTTPtcp,
		},
		"06_RouterWithoutProtocol": {
			op:        upsert(mainRouter()),
			expectErr: errMainNotHTTPtcp,
		},
		"07_DeleteServiceDefaultsUnderSplitter": {
			setup:     []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:        remove(KindServiceDefaults, "main"),
			expectErr: errMainNotHTTPtcp,
		},
		"08_DeleteProxyDefaultsUnderSplitter": {
			setup:     []Entry{proxyDefaults("http"), mainSplitter()},
			op:        remove(KindProxyDefaults, "global"),
			expectErr: errMainNotHTTPtcp,
		},
		"09_DeleteProxyDefaultsWhenServiceDefaultsHTTP": {
			setup: []Entry{proxyDefaults("http"), serviceDefaults("main", "http"), mainSplitter()},
			op:    remove(KindProxyDefaults, "global"),
		},
		"10_ServiceDefaultsToTCPUnderSplitter": {
			setup:     []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:        upsert(serviceDefaults("main", "tcp")),
			expectErr: errMainNotHTTPtcp,
		},
		"11_DeleteServiceDefaultsUnderRouter": {
			setup:     []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:        remove(KindServiceDefaults, "main"),
			expectErr: errMainNotHTTPtcp,
		},
		"12_ServiceDefaultsToTCPUnderRouter": {
			setup:     []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:        upsert(serviceDefaults("main", "tcp")),
			expectErr: errMainNotHTTPtcp,
		},
		"13_SplitterInconsistentProtocols": {
			setup:     []Entry{serviceDefaults("main", "http"), serviceDefaults("other", "tcp")},
			op:        upsert(splitter("main", ServiceSplit{Weight: 90}, ServiceSplit{Weight: 10, Service: "other"})),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
		},
		"14_RouterInconsistentProtocols": {
			setup:     []Entry{serviceDefaults("main", "http"), serviceDefaults("other", "tcp")},
			op:        upsert(router("main", pathPrefixRoute("/other", &ServiceRouteDestination{Service: "other"}))),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
		},
		"15_FailoverInconsistentProtocols": {
			setup: []Entry{serviceDefaults("main", "grpc"), serviceDefaults("other", "tcp")},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "other"}}
			})),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "grpc"`,
		},
		"16_RedirectInconsistentProtocols": {
			setup: []Entry{serviceDefaults("main", "grpc"), serviceDefaults("other", "tcp")},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "other"}
			})),
			expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "grpc"`,
		},
		"17_RedirectToExistingSubset": {
			setup: []Entry{resolver("other", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1") })},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "other", ServiceSubset: "v1"}
			})),
		},
		"18_RedirectToMissingSubset": {
			setup: []Entry{resolver("other", nil)},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "other", ServiceSubset: "v1"}
			})),
			expectErr: `service "other" does not have a subset named "v1"`,
		},
		"19_CircularRedirect": {
			setup: []Entry{resolver("other", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "main"}
			})},
			op: upsert(resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "other"}
			})),
			expectErr: `detected circular resolver redirect: [main.default.dc1 -> other.default.dc1 -> main.default.dc1]`,
		},
		"20_CircularSplitters": {
			setup:     []Entry{proxyDefaults("http"), splitter("other", ServiceSplit{Weight: 100, Service: "main"})},
			op:        upsert(splitter("main", ServiceSplit{Weight: 100, Service: "other"})),
			expectErr: `detected circular reference: [splitter:main -> splitter:other -> splitter:main]`,
		},
		// Beyond the numbered cases.
		"FirstFailingChainInNameOrder": {
			setup: []Entry{
				serviceDefaults("shared", "http"),
				splitter("zeta", ServiceSplit{Weight: 100, Service: "shared"}),
				splitter("alpha", ServiceSplit{Weight: 100, Service: "shared"}),
			},
			op:        upsert(serviceDefaults("shared", "tcp")),
			expectErr: `discovery chain "alpha" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`,
		},
		"TransitiveReferrerChecked": {
			// top -> mid (splitter) -> leaf (resolver redirect); changing
			// leaf's protocol breaks top's chain through mid.
			setup: []Entry{
				proxyDefaults("http"),
				splitter("top", ServiceSplit{Weight: 100, Service: "mid"}),
				splitter("mid", ServiceSplit{Weight: 50}, ServiceSplit{Weight: 50, Service: "leaf"}),
			},
			op:        upsert(serviceDefaults("leaf", "grpc")),
			expectErr: `discovery chain "mid" uses inconsistent protocols; service "leaf" has "grpc" which is not "http"`,
		},
		"DeleteMissingEntryAccepted": {
			op: remove(KindServiceRouter, "nothing"),
		},
		"CaseInsensitiveKeys": {
			// Deleting "MAIN" deletes main's service-defaults.
			setup:     []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:        remove(KindServiceDefaults, "MAIN"),
			expectErr: errMainNotHTTPtcp,
		},
	}
}

func TestValidateWrite(t *testing.T) {
	t.Parallel()
	for name, tc := range graphTestCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := NewMemStore()
			for _, e := range tc.setup {
				if err := ValidateWrite(s, upsert(e)); err != nil {
					t.Fatalf("setup ValidateWrite(%s/%s) = %v", e.GetKind(), e.GetName(), err)
				}
				s.Upsert(e)
			}
			err := ValidateWrite(s, tc.op)
			if tc.expectErr == "" {
				if err != nil {
					t.Fatalf("ValidateWrite() = %v, want accepted", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateWrite() = nil, want %q", tc.expectErr)
			}
			var ge *GraphError
			if !errors.As(err, &ge) {
				t.Errorf("ValidateWrite() error %T is not a *GraphError", err)
			}
			if err.Error() != tc.expectErr {
				t.Errorf("ValidateWrite() = %q, want %q", err.Error(), tc.expectErr)
			}
		})
	}
}

func TestValidateWriteDoesNotModifyStore(t *testing.T) {
	t.Parallel()
	s := NewMemStore(serviceDefaults("main", "http"), mainSplitter())
	before := s.Keys()
	if err := ValidateWrite(s, remove(KindServiceDefaults, "main")); err == nil {
		t.Fatalf("ValidateWrite(delete) = nil, want an error")
	}
	if err := ValidateWrite(s, upsert(serviceDefaults("other", "tcp"))); err != nil {
		t.Fatalf("ValidateWrite(other) = %v", err)
	}
	if diff := cmp.Diff(before, s.Keys()); diff != "" {
		t.Errorf("store changed (-before +after):\n%s", diff)
	}
}

func TestValidateWriteKeyMismatch(t *testing.T) {
	t.Parallel()
	err := ValidateWrite(NewMemStore(), Change{Key: KeyOf(KindServiceDefaults, "a"), Entry: serviceDefaults("b", "http")})
	if !errors.Is(err, ErrChangeKeyMismatch) {
		t.Fatalf("ValidateWrite() = %v, want ErrChangeKeyMismatch", err)
	}
	// A matching key (any case) is fine.
	if err := ValidateWrite(NewMemStore(), Change{Key: KeyOf(KindServiceDefaults, "A"), Entry: serviceDefaults("a", "http")}); err != nil {
		t.Fatalf("ValidateWrite() = %v, want nil", err)
	}
}

// The overlay used by write-time validation: masking removes an entry from
// the gathered set, editing replaces its contents.
func TestOverlay(t *testing.T) {
	t.Parallel()
	base := NewMemStore(serviceDefaults("main", "http"), resolver("main", nil))
	masked := &overlay{base: base, key: KeyOf(KindServiceDefaults, "main")}
	if got := masked.GetEntry(KeyOf(KindServiceDefaults, "main")); got != nil {
		t.Errorf("masked GetEntry = %v, want nil", got)
	}
	if got := masked.GetEntry(KeyOf(KindServiceResolver, "main")); got == nil {
		t.Errorf("unrelated key masked")
	}
	edited := &overlay{base: base, key: KeyOf(KindServiceDefaults, "main"), entry: serviceDefaults("main", "grpc")}
	res, err := Compile(CompileRequest{
		ServiceName: "main", EvaluateInNamespace: "default", EvaluateInDatacenter: "dc1",
		EvaluateInTrustDomain: testTrustDomain, UseInDatacenter: "dc1", Entries: edited,
	})
	if err != nil {
		t.Fatalf("Compile() = %v", err)
	}
	if res.Chain.Protocol != "grpc" {
		t.Errorf("Compile() over edited overlay: Protocol = %q, want grpc", res.Chain.Protocol)
	}
}

func TestAffectedChains(t *testing.T) {
	t.Parallel()
	s := NewMemStore(
		router("Web", pathPrefixRoute("/api", &ServiceRouteDestination{Service: "API"})),
		splitter("api", ServiceSplit{Weight: 50}, ServiceSplit{Weight: 50, Service: "api-v2"}),
		resolver("api-v2", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Service: "backup"}}
		}),
		resolver("standalone", nil),
		serviceDefaults("lonely", "http"),
		proxyDefaults("http"),
	)
	cases := map[string]struct {
		key  Key
		want []string
	}{
		"Leaf":          {KeyOf(KindServiceDefaults, "backup"), []string{"api", "api-v2", "backup", "web"}},
		"Middle":        {KeyOf(KindServiceResolver, "API-v2"), []string{"api", "api-v2", "web"}},
		"Top":           {KeyOf(KindServiceRouter, "web"), []string{"web"}},
		"NoChain":       {KeyOf(KindServiceDefaults, "lonely"), []string{"lonely"}},
		"ProxyDefaults": {KeyOf(KindProxyDefaults, "global"), []string{"api", "api-v2", "standalone", "web"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, AffectedChains(s, tc.key)); diff != "" {
				t.Errorf("AffectedChains(%s) mismatch (-want +got):\n%s", tc.key, diff)
			}
		})
	}
}

func TestMemStoreLinkIndex(t *testing.T) {
	t.Parallel()
	s := NewMemStore()
	s.Upsert(router("main", pathPrefixRoute("/a", &ServiceRouteDestination{Service: "Admin"})))
	s.Upsert(splitter("main", ServiceSplit{Weight: 50, Service: "admin"}, ServiceSplit{Weight: 50, Service: "b"}))
	s.Upsert(resolver("other", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Service: "admin"} }))
	s.Upsert(serviceDefaults("admin", "http"))

	check := func(step string, name string, want []string) {
		t.Helper()
		if diff := cmp.Diff(want, s.Referrers(name)); diff != "" {
			t.Errorf("%s: Referrers(%q) mismatch (-want +got):\n%s", step, name, diff)
		}
	}
	check("initial", "admin", []string{"main", "other"})
	check("initial", "ADMIN", []string{"main", "other"})
	check("initial", "b", []string{"main"})
	if diff := cmp.Diff([]string{"main", "other"}, s.ChainNames()); diff != "" {
		t.Errorf("ChainNames() mismatch (-want +got):\n%s", diff)
	}

	// Replacing the router without admin keeps main as a referrer through
	// the splitter.
	s.Upsert(router("main"))
	check("router replaced", "admin", []string{"main", "other"})
	s.Delete(KeyOf(KindServiceSplitter, "MAIN"))
	check("splitter deleted", "admin", []string{"other"})
	check("splitter deleted", "b", nil)
	if err := s.Apply(remove(KindServiceResolver, "other")); err != nil {
		t.Fatalf("Apply(delete) = %v", err)
	}
	check("resolver deleted", "admin", nil)
	if diff := cmp.Diff([]string{"main"}, s.ChainNames()); diff != "" {
		t.Errorf("ChainNames() after deletes mismatch (-want +got):\n%s", diff)
	}
	s.Delete(KeyOf(KindServiceRouter, "main"))
	if got := s.ChainNames(); len(got) != 0 {
		t.Errorf("ChainNames() = %v, want none", got)
	}
	if diff := cmp.Diff(keys("service-defaults", "admin"), s.Keys()); diff != "" {
		t.Errorf("Keys() mismatch (-want +got):\n%s", diff)
	}
	if s.Len() != 1 {
		t.Errorf("Len() = %d, want 1", s.Len())
	}
	var nilStore *MemStore
	if nilStore.GetEntry(KeyOf(KindServiceDefaults, "x")) != nil {
		t.Errorf("nil MemStore GetEntry returned an entry")
	}
}
