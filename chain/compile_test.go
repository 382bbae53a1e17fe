package chain

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/internal/testutil"
)

// compileTestCase is one named Compile case. The request defaults to the
// chain "main" compiled in dc1 for use in dc1; successful cases are also
// checked against testdata/compile-<name>.golden.
type compileTestCase struct {
	entries []Entry

	service                string // default "main"
	datacenter             string // default "dc1"
	useInDatacenter        string // default "dc1"
	overrideProtocol       string
	overrideConnectTimeout time.Duration
	overrideMeshGateway    MeshGatewayConfig

	expect       *CompiledChain
	expectCustom bool   // CustomizationHash must be 8 hex characters
	expectErr    string // exact error text; the error must be a *GraphError
	expectReads  []Key  // checked when non-nil
}

func (tc compileTestCase) request() CompileRequest {
	req := CompileRequest{
		ServiceName:            "main",
		EvaluateInNamespace:    "default",
		EvaluateInDatacenter:   "dc1",
		EvaluateInTrustDomain:  testTrustDomain,
		UseInDatacenter:        "dc1",
		OverrideProtocol:       tc.overrideProtocol,
		OverrideConnectTimeout: tc.overrideConnectTimeout,
		OverrideMeshGateway:    tc.overrideMeshGateway,
		Entries:                NewMemStore(tc.entries...),
	}
	if tc.service != "" {
		req.ServiceName = tc.service
	}
	if tc.datacenter != "" {
		req.EvaluateInDatacenter = tc.datacenter
	}
	if tc.useInDatacenter != "" {
		req.UseInDatacenter = tc.useInDatacenter
	}
	return req
}

func compileTestCases() map[string]compileTestCase {
	return map[string]compileTestCase{
		// defaults and protocol determination
		"NoEntries":                         testcaseNoEntries(),
		"ResolverConnectTimeout":            testcaseResolverConnectTimeout(),
		"ServiceDefaultsHTTP":               testcaseServiceDefaultsHTTP(),
		"ProxyDefaultsProtocolWeak":         testcaseProxyDefaultsProtocolWeak(),
		"EmptyServiceDefaultsProtocolIsTCP": testcaseEmptyServiceDefaultsProtocolIsTCP(),
		"SplitterNameHasNoProtocol":         testcaseSplitterNameHasNoProtocol(),
		// routers
		"RouterCatchAllOnly":      testcaseRouterCatchAllOnly(),
		"RouterBypassesSplitter":  testcaseRouterBypassesSplitter(),
		"RouteWithoutDestination": testcaseRouteWithoutDestination(),
		"RouteToOtherSplitter":    testcaseRouteToOtherSplitter(),
		// splitters
		"SplitterLegToSelf":       testcaseSplitterLegToSelf(),
		"SplitterThreeLevels":     testcaseSplitterThreeLevels(),
		"SplitterFlattenRounding": testcaseSplitterFlattenRounding(),
		// resolvers
		"RedirectToService":             testcaseRedirectToService(),
		"RedirectDropsSubset":           testcaseRedirectDropsSubset(),
		"RedirectDatacenterKeepsSubset": testcaseRedirectDatacenterKeepsSubset(),
		"RedirectToSameTargetIsNoop":    testcaseRedirectToSameTargetIsNoop(),
		"RedirectChain":                 testcaseRedirectChain(),
		"VirtualService":                testcaseVirtualService(),
		"MultiDCCanary":                 testcaseMultiDCCanary(),
		"DefaultSubset":                 testcaseDefaultSubset(),
		"FailoverForDefaultSubset":      testcaseFailoverForDefaultSubset(),
		"FailoverStar":                  testcaseFailoverStar(),
		"FailoverMutualNotTransitive":   testcaseFailoverMutualNotTransitive(),
		"FailoverThroughRedirect":       testcaseFailoverThroughRedirect(),
		"FailoverOnlyToSelf":            testcaseFailoverOnlyToSelf(),
		"ExternalSNI":                   testcaseExternalSNI(),
		// mesh gateways
		"MeshGatewayFromProxyDefaults":   testcaseMeshGatewayFromProxyDefaults(),
		"MeshGatewayFromServiceDefaults": testcaseMeshGatewayFromServiceDefaults(),
		"MeshGatewayOverride":            testcaseMeshGatewayOverride(),
		"MeshGatewayOverrideLocalOnly":   testcaseMeshGatewayOverrideLocalOnly(),
		// overrides
		"ConnectTimeoutOverride":          testcaseConnectTimeoutOverride(),
		"ConnectTimeoutOverrideUnchanged": testcaseConnectTimeoutOverrideUnchanged(),
		"ProtocolOverrideTCPDisablesL7":   testcaseProtocolOverrideTCPDisablesL7(),
		"ProtocolOverrideHTTPOnTCPChain":  testcaseProtocolOverrideHTTPOnTCPChain(),
		"ProtocolOverrideSameProtocol":    testcaseProtocolOverrideSameProtocol(),
		// documentation examples (testdata/entries) and the worked example
		"SeedRouteAdmin":        testcaseSeedRouteAdmin(),
		"SeedCanaryHeaderQuery": testcaseSeedCanaryHeaderQuery(),
		"SeedSplitterFlatten":   testcaseSeedSplitterFlatten(),
		"SpecExampleDC2":        testcaseSpecExampleDC2(),
		// graph errors
		"ErrInconsistentRouter":        testcaseErrInconsistentRouter(),
		"ErrInconsistentSplitter":      testcaseErrInconsistentSplitter(),
		"ErrInconsistentRedirect":      testcaseErrInconsistentRedirect(),
		"ErrInconsistentFailover":      testcaseErrInconsistentFailover(),
		"ErrRouterNotHTTP":             testcaseErrRouterNotHTTP(),
		"ErrSplitterNotHTTP":           testcaseErrSplitterNotHTTP(),
		"ErrCircularSplitters":         testcaseErrCircularSplitters(),
		"ErrCircularThroughRouter":     testcaseErrCircularThroughRouter(),
		"ErrCircularRedirect":          testcaseErrCircularRedirect(),
		"ErrCircularRedirectSubsets":   testcaseErrCircularRedirectSubsets(),
		"ErrMissingSubsetInRoute":      testcaseErrMissingSubsetInRoute(),
		"ErrMissingSubsetSynthesized":  testcaseErrMissingSubsetSynthesized(),
		"ErrMissingSubsetRedirect":     testcaseErrMissingSubsetRedirect(),
		"ErrMissingSubsetFailover":     testcaseErrMissingSubsetFailover(),
		"ErrExternalSNIWithRedirect":   testcaseErrExternalSNIWithRedirect(),
		"ErrExternalSNIWithSubsets":    testcaseErrExternalSNIWithSubsets(),
		"ErrExternalSNIWithFailover":   testcaseErrExternalSNIWithFailover(),
		"ErrExternalSNIFailoverTarget": testcaseErrExternalSNIFailoverTarget(),
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	for name, tc := range compileTestCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := tc.request()
			res, err := Compile(req)
			if res == nil {
				t.Fatalf("Compile(%q) returned a nil result", req.ServiceName)
			}
			if tc.expectReads != nil {
				if diff := cmp.Diff(tc.expectReads, res.Reads); diff != "" {
					t.Errorf("Compile(%q).Reads mismatch (-want +got):\n%s", req.ServiceName, diff)
				}
			}
			if tc.expectErr != "" {
				if err == nil {
					t.Fatalf("Compile(%q) = nil error, want %q", req.ServiceName, tc.expectErr)
				}
				var ge *GraphError
				if !errors.As(err, &ge) {
					t.Errorf("Compile(%q) error %T is not a *GraphError", req.ServiceName, err)
				}
				if err.Error() != tc.expectErr {
					t.Errorf("Compile(%q) error = %q, want %q", req.ServiceName, err.Error(), tc.expectErr)
				}
				if res.Chain != nil {
					t.Errorf("Compile(%q) returned a chain with an error", req.ServiceName)
				}
				if len(res.Reads) == 0 {
					t.Errorf("Compile(%q) returned no Reads with a graph error", req.ServiceName)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile(%q) error = %v", req.ServiceName, err)
			}
			got := res.Chain
			want := *tc.expect
			if tc.expectCustom {
				if !hashRE.MatchString(got.CustomizationHash) {
					t.Errorf("Compile(%q).CustomizationHash = %q, want 8 hex characters", req.ServiceName, got.CustomizationHash)
				}
				want.CustomizationHash = got.CustomizationHash
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("Compile(%q) mismatch (-want +got):\n%s", req.ServiceName, diff)
			}
			testutil.Golden(t, filepath.Join("testdata", "compile-"+name+".golden"), mustJSON(t, map[string]any{"Chain": got}))
		})
	}
}

// TestCompileDeterministic compiles every successful case twice and checks
// the JSON is identical and the entries were not modified.
func TestCompileDeterministic(t *testing.T) {
	t.Parallel()
	for name, tc := range compileTestCases() {
		if tc.expectErr != "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			before := mustJSON(t, tc.entries)
			req := tc.request()
			r1, err1 := Compile(req)
			r2, err2 := Compile(req)
			if err1 != nil || err2 != nil {
				t.Fatalf("Compile(%q) errors = %v, %v", req.ServiceName, err1, err2)
			}
			if diff := cmp.Diff(string(mustJSON(t, r1.Chain)), string(mustJSON(t, r2.Chain))); diff != "" {
				t.Errorf("Compile(%q) is not deterministic (-first +second):\n%s", req.ServiceName, diff)
			}
			// Mutating the output must not reach the entries.
			for _, n := range r1.Chain.Nodes {
				for _, r := range n.Routes {
					if r.Definition.Match != nil && r.Definition.Match.HTTP != nil {
						r.Definition.Match.HTTP.PathPrefix = "/mutated"
						r.Definition.Match.HTTP.Methods = append(r.Definition.Match.HTTP.Methods[:0:0], "MUTATED")
					}
				}
			}
			if diff := cmp.Diff(string(before), string(mustJSON(t, tc.entries))); diff != "" {
				t.Errorf("Compile(%q) changed its entries (-before +after):\n%s", req.ServiceName, diff)
			}
		})
	}
}

func TestCompileInputErrors(t *testing.T) {
	t.Parallel()
	full := CompileRequest{
		ServiceName:           "main",
		EvaluateInNamespace:   "default",
		EvaluateInDatacenter:  "dc1",
		EvaluateInTrustDomain: testTrustDomain,
		UseInDatacenter:       "dc1",
		Entries:               NewMemStore(),
	}
	cases := map[string]struct {
		mod     func(r *CompileRequest)
		want    error
		wantMsg string
	}{
		"ServiceName":     {func(r *CompileRequest) { r.ServiceName = "" }, ErrServiceNameRequired, "serviceName is required"},
		"Namespace":       {func(r *CompileRequest) { r.EvaluateInNamespace = "" }, ErrNamespaceRequired, "evaluateInNamespace is required"},
		"Datacenter":      {func(r *CompileRequest) { r.EvaluateInDatacenter = "" }, ErrDatacenterRequired, "evaluateInDatacenter is required"},
		"TrustDomain":     {func(r *CompileRequest) { r.EvaluateInTrustDomain = "" }, ErrTrustDomainRequired, "evaluateInTrustDomain is required"},
		"UseInDatacenter": {func(r *CompileRequest) { r.UseInDatacenter = "" }, ErrUseInDatacenterRequired, "useInDatacenter is required"},
		"Entries":         {func(r *CompileRequest) { r.Entries = nil }, ErrEntriesRequired, "entries is required"},
		"FirstMissingWins": {func(r *CompileRequest) {
			r.EvaluateInDatacenter, r.Entries = "", nil
		}, ErrDatacenterRequired, "evaluateInDatacenter is required"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := full
			tc.mod(&req)
			res, err := Compile(req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Compile() error = %v, want %v", err, tc.want)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("Compile() error text = %q, want %q", err.Error(), tc.wantMsg)
			}
			var ge *GraphError
			if errors.As(err, &ge) {
				t.Errorf("Compile() input error is a *GraphError")
			}
			if res == nil || res.Chain != nil || len(res.Reads) != 0 {
				t.Errorf("Compile() result = %+v, want empty result", res)
			}
		})
	}
}

// wrongKindLookup returns a service-defaults entry for every key.
type wrongKindLookup struct{}

func (wrongKindLookup) GetEntry(k Key) Entry { return serviceDefaults(k.Name, "http") }

func TestCompileWrongKindFromLookup(t *testing.T) {
	t.Parallel()
	res, err := Compile(CompileRequest{
		ServiceName: "main", EvaluateInNamespace: "default", EvaluateInDatacenter: "dc1",
		EvaluateInTrustDomain: testTrustDomain, UseInDatacenter: "dc1", Entries: wrongKindLookup{},
	})
	if !errors.Is(err, ErrUnexpectedEntry) {
		t.Fatalf("Compile() error = %v, want ErrUnexpectedEntry", err)
	}
	if len(res.Reads) == 0 {
		t.Errorf("Compile() Reads empty on a lookup error")
	}
}

// TestCompileReads checks that every key the compile looked at is reported,
// found or missing, sorted, also when the compile fails.
func TestCompileReads(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		entries []Entry
		service string
		want    []Key
		wantErr bool
	}{
		"NothingStored": {
			want: keys(
				"proxy-defaults", "global",
				"service-defaults", "main",
				"service-resolver", "main",
				"service-router", "main",
				"service-splitter", "main",
			),
		},
		"RouterSplitterResolverGraph": {
			entries: []Entry{
				proxyDefaults("http"),
				router("main",
					pathPrefixRoute("/admin", &ServiceRouteDestination{Service: "admin"}),
					pathPrefixRoute("/v1", &ServiceRouteDestination{Service: "Legacy", ServiceSubset: "v1"}),
				),
				splitter("admin", ServiceSplit{Weight: 50}, ServiceSplit{Weight: 50, Service: "admin-v2"}),
				resolver("main", func(r *ServiceResolverConfigEntry) {
					r.Failover = map[string]ServiceResolverFailover{"*": {Service: "backup"}}
				}),
				resolver("legacy", func(r *ServiceResolverConfigEntry) {
					r.Subsets = subsets("v1")
					r.Redirect = nil
				}),
				resolver("admin-v2", func(r *ServiceResolverConfigEntry) {
					r.Redirect = &ServiceResolverRedirect{Service: "admin-new"}
				}),
				// Not part of main's chain: must not be read.
				resolver("unrelated", nil),
				router("admin", pathPrefixRoute("/", &ServiceRouteDestination{Service: "never-followed"})),
			},
			want: keys(
				"proxy-defaults", "global",
				"service-defaults", "admin",
				"service-defaults", "admin-new",
				"service-defaults", "admin-v2",
				"service-defaults", "backup",
				"service-defaults", "legacy",
				"service-defaults", "main",
				"service-resolver", "admin",
				"service-resolver", "admin-new",
				"service-resolver", "admin-v2",
				"service-resolver", "backup",
				"service-resolver", "legacy",
				"service-resolver", "main",
				"service-router", "main",
				"service-splitter", "admin",
				"service-splitter", "admin-v2",
				"service-splitter", "legacy",
				"service-splitter", "main",
			),
		},
		"ReportedOnError": {
			entries: []Entry{
				resolver("main", func(r *ServiceResolverConfigEntry) {
					r.Redirect = &ServiceResolverRedirect{Service: "other"}
				}),
				resolver("other", func(r *ServiceResolverConfigEntry) {
					r.Redirect = &ServiceResolverRedirect{Service: "main"}
				}),
			},
			wantErr: true,
			want: keys(
				"proxy-defaults", "global",
				"service-defaults", "main",
				"service-defaults", "other",
				"service-resolver", "main",
				"service-resolver", "other",
				"service-router", "main",
				"service-splitter", "main",
			),
		},
		"CaseInsensitiveNames": {
			service: "Main",
			entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "MAIN", Datacenter: "dc2"}
			})},
			want: keys(
				"proxy-defaults", "global",
				"service-defaults", "main",
				"service-resolver", "main",
				"service-router", "main",
				"service-splitter", "main",
			),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := compileTestCase{entries: tc.entries, service: tc.service}.request()
			res, err := Compile(req)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Compile(%q) error = %v, wantErr %v", req.ServiceName, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, res.Reads); diff != "" {
				t.Errorf("Compile(%q).Reads mismatch (-want +got):\n%s", req.ServiceName, diff)
			}
		})
	}
}

// TestCompileIgnoresUngatheredEntries checks that the compile result only
// depends on what it read: a lookup that serves nothing else must give the
// same chain.
func TestCompileIgnoresUngatheredEntries(t *testing.T) {
	t.Parallel()
	for name, tc := range compileTestCases() {
		if tc.expectErr != "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := tc.request()
			res, err := Compile(req)
			if err != nil {
				t.Fatalf("Compile(%q) error = %v", req.ServiceName, err)
			}
			allowed := map[Key]bool{}
			for _, k := range res.Reads {
				allowed[k] = true
			}
			req.Entries = restrictedLookup{base: req.Entries, allowed: allowed, t: t}
			res2, err := Compile(req)
			if err != nil {
				t.Fatalf("Compile(%q) over its reads error = %v", req.ServiceName, err)
			}
			if diff := cmp.Diff(res.Chain, res2.Chain); diff != "" {
				t.Errorf("Compile(%q) over its reads differs (-full +restricted):\n%s", req.ServiceName, diff)
			}
		})
	}
}

type restrictedLookup struct {
	base    EntryLookup
	allowed map[Key]bool
	t       *testing.T
}

func (r restrictedLookup) GetEntry(k Key) Entry {
	if !r.allowed[k] {
		r.t.Errorf("second compile read %s, which the first did not report", k)
		return nil
	}
	return r.base.GetEntry(k)
}

func TestCustomizationHashDeterministicAndDistinct(t *testing.T) {
	t.Parallel()
	base := compileTestCase{entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
		r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}
	})}}
	hashOf := func(mod func(tc *compileTestCase)) string {
		t.Helper()
		tc := base
		mod(&tc)
		res, err := Compile(tc.request())
		if err != nil {
			t.Fatalf("Compile() error = %v", err)
		}
		return res.Chain.CustomizationHash
	}
	timeout7 := hashOf(func(tc *compileTestCase) { tc.overrideConnectTimeout = 7 * time.Second })
	timeout8 := hashOf(func(tc *compileTestCase) { tc.overrideConnectTimeout = 8 * time.Second })
	grpc := hashOf(func(tc *compileTestCase) { tc.overrideProtocol = "grpc" })
	all := hashOf(func(tc *compileTestCase) {
		tc.overrideConnectTimeout = 7 * time.Second
		tc.overrideProtocol = "grpc"
		tc.overrideMeshGateway = MeshGatewayConfig{Mode: "remote"}
	})
	again := hashOf(func(tc *compileTestCase) {
		tc.overrideConnectTimeout = 7 * time.Second
		tc.overrideProtocol = "grpc"
		tc.overrideMeshGateway = MeshGatewayConfig{Mode: "remote"}
	})
	hashes := map[string]string{"timeout7": timeout7, "timeout8": timeout8, "grpc": grpc, "all": all}
	seen := map[string]string{}
	for name, h := range hashes {
		if !hashRE.MatchString(h) {
			t.Errorf("hash %s = %q, want 8 lower-case hex characters", name, h)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("hashes %s and %s are both %q", name, other, h)
		}
		seen[h] = name
	}
	if all != again {
		t.Errorf("hash not deterministic: %q then %q", all, again)
	}
}

// ---------------------------------------------------------------------------
// Defaults and protocol determination

func testcaseNoEntries() compileTestCase {
	c := expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{expect: c}
}

func testcaseResolverConnectTimeout() compileTestCase {
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.ConnectTimeout = Duration(33 * time.Second)
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 33*time.Second, false)),
			expTarget("main", "", "default", "dc1")),
	}
}

func testcaseServiceDefaultsHTTP() compileTestCase {
	c := expChain("main", "dc1", "http", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true // service-defaults do not make a chain non-default
	return compileTestCase{entries: []Entry{serviceDefaults("main", "http")}, expect: c}
}

func testcaseProxyDefaultsProtocolWeak() compileTestCase {
	// Config["protocol"] is matched case-insensitively and lower-cased.
	p := &ProxyConfigEntry{Kind: KindProxyDefaults, Name: "global", Config: map[string]any{"Protocol": "HTTP2"}}
	c := expChain("main", "dc1", "http2", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{entries: []Entry{p}, expect: c}
}

func testcaseEmptyServiceDefaultsProtocolIsTCP() compileTestCase {
	// [quirk] service-defaults without a protocol means tcp, even though
	// proxy-defaults says http.
	c := expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{entries: []Entry{proxyDefaults("http"), serviceDefaults("main", "")}, expect: c}
}

func testcaseSplitterNameHasNoProtocol() compileTestCase {
	// [quirk] main has no protocol, but only its legs' resolvers count.
	return compileTestCase{
		entries: []Entry{
			serviceDefaults("foo", "http"),
			serviceDefaults("bar", "http"),
			splitter("main", ServiceSplit{Weight: 50, Service: "foo"}, ServiceSplit{Weight: 50, Service: "bar"}),
		},
		expect: expChain("main", "dc1", "http", "splitter:main",
			nodes(
				expSplitter("main", split(50, "resolver:foo.default.dc1"), split(50, "resolver:bar.default.dc1")),
				expResolver("foo.default.dc1", 5*time.Second, true),
				expResolver("bar.default.dc1", 5*time.Second, true),
			),
			expTarget("foo", "", "default", "dc1"),
			expTarget("bar", "", "default", "dc1")),
	}
}

// ---------------------------------------------------------------------------
// Routers

func testcaseRouterCatchAllOnly() compileTestCase {
	return compileTestCase{
		entries: []Entry{serviceDefaults("main", "http"), router("main")},
		expect: expChain("main", "dc1", "http", "router:main",
			nodes(
				expRouter("main", catchAll("main", "resolver:main.default.dc1")),
				expResolver("main.default.dc1", 5*time.Second, true),
			),
			expTarget("main", "", "default", "dc1")),
	}
}

func testcaseRouterBypassesSplitter() compileTestCase {
	toSubset := pathPrefixRoute("/v2", &ServiceRouteDestination{ServiceSubset: "v2", PrefixRewrite: "/"})
	toNamespace := pathPrefixRoute("/ns", &ServiceRouteDestination{Namespace: "other"})
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			resolver("main", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2") }),
			splitter("main", ServiceSplit{Weight: 90, ServiceSubset: "v1"}, ServiceSplit{Weight: 10, ServiceSubset: "v2"}),
			router("main", toSubset, toNamespace),
		},
		expect: expChain("main", "dc1", "http", "router:main",
			nodes(
				expRouter("main",
					expRoute(toSubset, "resolver:v2.main.default.dc1"),
					expRoute(toNamespace, "resolver:main.other.dc1"),
					catchAll("main", "splitter:main"),
				),
				expSplitter("main", split(90, "resolver:v1.main.default.dc1"), split(10, "resolver:v2.main.default.dc1")),
				expResolver("v1.main.default.dc1", 5*time.Second, false),
				expResolver("v2.main.default.dc1", 5*time.Second, false),
				expResolver("main.other.dc1", 5*time.Second, false),
			),
			expTarget("main", "v1", "default", "dc1"),
			expTarget("main", "v2", "default", "dc1"),
			expTarget("main", "", "other", "dc1")),
	}
}

func testcaseRouteWithoutDestination() compileTestCase {
	// The later fix: a route without Destination goes to the chain's own
	// service (1.6 crashed).
	noDest := ServiceRoute{Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathExact: "/ping", Methods: []string{"GET"}}}}
	return compileTestCase{
		entries: []Entry{serviceDefaults("main", "http"), router("main", noDest)},
		expect: expChain("main", "dc1", "http", "router:main",
			nodes(
				expRouter("main",
					expRoute(noDest, "resolver:main.default.dc1"),
					catchAll("main", "resolver:main.default.dc1"),
				),
				expResolver("main.default.dc1", 5*time.Second, true),
			),
			expTarget("main", "", "default", "dc1")),
	}
}

func testcaseRouteToOtherSplitter() compileTestCase {
	toOther := pathPrefixRoute("/other", &ServiceRouteDestination{Service: "other", RequestTimeout: Duration(3 * time.Second), NumRetries: 2})
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			router("main", toOther),
			splitter("other", ServiceSplit{Weight: 80}, ServiceSplit{Weight: 20, Service: "third"}),
			// The router of other is never followed.
			router("other", pathPrefixRoute("/", &ServiceRouteDestination{Service: "nowhere"})),
		},
		expect: expChain("main", "dc1", "http", "router:main",
			nodes(
				expRouter("main",
					expRoute(toOther, "splitter:other"),
					catchAll("main", "resolver:main.default.dc1"),
				),
				expSplitter("other", split(80, "resolver:other.default.dc1"), split(20, "resolver:third.default.dc1")),
				expResolver("other.default.dc1", 5*time.Second, true),
				expResolver("third.default.dc1", 5*time.Second, true),
				expResolver("main.default.dc1", 5*time.Second, true),
			),
			expTarget("other", "", "default", "dc1"),
			expTarget("third", "", "default", "dc1"),
			expTarget("main", "", "default", "dc1")),
	}
}

// ---------------------------------------------------------------------------
// Splitters

func testcaseSplitterLegToSelf() compileTestCase {
	// A leg back to the splitter's own service goes to its resolver, never
	// to its splitter again.
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			splitter("main", ServiceSplit{Weight: 60}, ServiceSplit{Weight: 40, Service: "other"}),
		},
		expect: expChain("main", "dc1", "http", "splitter:main",
			nodes(
				expSplitter("main", split(60, "resolver:main.default.dc1"), split(40, "resolver:other.default.dc1")),
				expResolver("main.default.dc1", 5*time.Second, true),
				expResolver("other.default.dc1", 5*time.Second, true),
			),
			expTarget("main", "", "default", "dc1"),
			expTarget("other", "", "default", "dc1")),
	}
}

func testcaseSplitterThreeLevels() compileTestCase {
	// [60 -> x, 40 -> splitter(75 -> v1, 25 -> splitter(80 -> v2, 20 -> v3))]
	// flattens to [60, 30, 8, 2], in that order; the inner splitters are
	// pruned.
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			splitter("main", ServiceSplit{Weight: 60, Service: "x"}, ServiceSplit{Weight: 40, Service: "y"}),
			splitter("y", ServiceSplit{Weight: 75, ServiceSubset: "v1"}, ServiceSplit{Weight: 25, Service: "z"}),
			splitter("z", ServiceSplit{Weight: 80, ServiceSubset: "v2"}, ServiceSplit{Weight: 20, ServiceSubset: "v3"}),
			resolver("y", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1") }),
			resolver("z", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v2", "v3") }),
		},
		expect: expChain("main", "dc1", "http", "splitter:main",
			nodes(
				expSplitter("main",
					split(60, "resolver:x.default.dc1"),
					split(30, "resolver:v1.y.default.dc1"),
					split(8, "resolver:v2.z.default.dc1"),
					split(2, "resolver:v3.z.default.dc1"),
				),
				expResolver("x.default.dc1", 5*time.Second, true),
				expResolver("v1.y.default.dc1", 5*time.Second, false),
				expResolver("v2.z.default.dc1", 5*time.Second, false),
				expResolver("v3.z.default.dc1", 5*time.Second, false),
			),
			expTarget("x", "", "default", "dc1"),
			expTarget("y", "v1", "default", "dc1"),
			expTarget("z", "v2", "default", "dc1"),
			expTarget("z", "v3", "default", "dc1")),
	}
}

func testcaseSplitterFlattenRounding() compileTestCase {
	// 50 x 33.33% = 16.665 rounds half away from zero to 16.67.
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			splitter("main", ServiceSplit{Weight: 50, Service: "a"}, ServiceSplit{Weight: 50}),
			splitter("a",
				ServiceSplit{Weight: 33.33, ServiceSubset: "v1"},
				ServiceSplit{Weight: 33.33, ServiceSubset: "v2"},
				ServiceSplit{Weight: 33.34, ServiceSubset: "v3"}),
			resolver("a", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2", "v3") }),
		},
		expect: expChain("main", "dc1", "http", "splitter:main",
			nodes(
				expSplitter("main",
					split(16.67, "resolver:v1.a.default.dc1"),
					split(16.67, "resolver:v2.a.default.dc1"),
					split(16.67, "resolver:v3.a.default.dc1"),
					split(50, "resolver:main.default.dc1"),
				),
				expResolver("v1.a.default.dc1", 5*time.Second, false),
				expResolver("v2.a.default.dc1", 5*time.Second, false),
				expResolver("v3.a.default.dc1", 5*time.Second, false),
				expResolver("main.default.dc1", 5*time.Second, true),
			),
			expTarget("a", "v1", "default", "dc1"),
			expTarget("a", "v2", "default", "dc1"),
			expTarget("a", "v3", "default", "dc1"),
			expTarget("main", "", "default", "dc1")),
	}
}

// ---------------------------------------------------------------------------
// Resolvers: redirects, default subsets, failover, external SNI

func testcaseRedirectToService() compileTestCase {
	// The redirect target's synthesized resolver is Default, but the chain
	// is not (its target is not the requested service). The intermediate
	// target main.default.dc1 is not retained.
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Redirect = &ServiceResolverRedirect{Service: "other"}
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:other.default.dc1",
			nodes(expResolver("other.default.dc1", 5*time.Second, true)),
			expTarget("other", "", "default", "dc1")),
	}
}

func testcaseRedirectDropsSubset() compileTestCase {
	toV1 := pathPrefixRoute("/v1", &ServiceRouteDestination{ServiceSubset: "v1"})
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			router("main", toV1),
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
				r.Redirect = &ServiceResolverRedirect{Service: "other"}
			}),
		},
		expect: expChain("main", "dc1", "http", "router:main",
			nodes(
				expRouter("main",
					expRoute(toV1, "resolver:other.default.dc1"),
					catchAll("main", "resolver:other.default.dc1"),
				),
				expResolver("other.default.dc1", 5*time.Second, true),
			),
			expTarget("other", "", "default", "dc1")),
	}
}

func testcaseRedirectDatacenterKeepsSubset() compileTestCase {
	toV1 := pathPrefixRoute("/v1", &ServiceRouteDestination{ServiceSubset: "v1"})
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			router("main", toV1),
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
				r.Redirect = &ServiceResolverRedirect{Datacenter: "dc2"}
			}),
		},
		expect: expChain("main", "dc1", "http", "router:main",
			nodes(
				expRouter("main",
					expRoute(toV1, "resolver:v1.main.default.dc2"),
					catchAll("main", "resolver:main.default.dc2"),
				),
				expResolver("v1.main.default.dc2", 5*time.Second, false),
				expResolver("main.default.dc2", 5*time.Second, false),
			),
			expTarget("main", "v1", "default", "dc2"),
			expTarget("main", "", "default", "dc2")),
	}
}

func testcaseRedirectToSameTargetIsNoop() compileTestCase {
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Redirect = &ServiceResolverRedirect{Service: "main", Datacenter: "dc1"}
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false)),
			expTarget("main", "", "default", "dc1")),
	}
}

func testcaseRedirectChain() compileTestCase {
	// main -> b -> c/v2 (in dc3); each hop records its protocol.
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("grpc"),
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "b"}
			}),
			resolver("b", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "c", ServiceSubset: "v2", Datacenter: "dc3"}
			}),
			resolver("c", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v2")
				r.ConnectTimeout = Duration(2 * time.Second)
			}),
		},
		expect: expChain("main", "dc1", "grpc", "resolver:v2.c.default.dc3",
			nodes(expResolver("v2.c.default.dc3", 2*time.Second, false)),
			expTarget("c", "v2", "default", "dc3")),
	}
}

func testcaseVirtualService() compileTestCase {
	return compileTestCase{
		service: "api-dc2",
		entries: []Entry{
			resolver("api-dc2", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "api", Datacenter: "dc2"}
			}),
			resolver("api", func(r *ServiceResolverConfigEntry) { r.ConnectTimeout = Duration(33 * time.Second) }),
		},
		expect: expChain("api-dc2", "dc1", "tcp", "resolver:api.default.dc2",
			nodes(expResolver("api.default.dc2", 33*time.Second, false)),
			expTarget("api", "", "default", "dc2")),
	}
}

func testcaseMultiDCCanary() compileTestCase {
	pd := proxyDefaults("http")
	pd.MeshGateway.Mode = "remote"
	remote := func(t *Target) { t.MeshGateway.Mode = "remote" }
	return compileTestCase{
		entries: []Entry{
			pd,
			splitter("main", ServiceSplit{Weight: 60, Service: "main-dc2"}, ServiceSplit{Weight: 40, Service: "main-dc3"}),
			resolver("main-dc2", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "main", Datacenter: "dc2"}
			}),
			resolver("main-dc3", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "main", Datacenter: "dc3"}
			}),
			resolver("main", func(r *ServiceResolverConfigEntry) { r.ConnectTimeout = Duration(33 * time.Second) }),
		},
		expect: expChain("main", "dc1", "http", "splitter:main",
			nodes(
				expSplitter("main", split(60, "resolver:main.default.dc2"), split(40, "resolver:main.default.dc3")),
				expResolver("main.default.dc2", 33*time.Second, false),
				expResolver("main.default.dc3", 33*time.Second, false),
			),
			expTarget("main", "", "default", "dc2", remote),
			expTarget("main", "", "default", "dc3", remote)),
	}
}

func testcaseDefaultSubset() compileTestCase {
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.DefaultSubset = "v1"
			r.Subsets = subsets("v1", "v2")
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:v1.main.default.dc1",
			nodes(expResolver("v1.main.default.dc1", 5*time.Second, false)),
			expTarget("main", "v1", "default", "dc1")),
	}
}

func testcaseFailoverForDefaultSubset() compileTestCase {
	// Failover["v1"] applies to default-subset traffic; the rewrite to the
	// primary itself (dc1) is dropped; order is kept.
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.DefaultSubset = "v1"
			r.Subsets = subsets("v1", "v2")
			r.Failover = map[string]ServiceResolverFailover{
				"v1": {Datacenters: []string{"dc3", "dc1", "dc2"}},
				"*":  {Datacenters: []string{"dc9"}},
			}
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:v1.main.default.dc1",
			nodes(expResolver("v1.main.default.dc1", 5*time.Second, false, "v1.main.default.dc3", "v1.main.default.dc2")),
			expTarget("main", "v1", "default", "dc1"),
			expTarget("main", "v1", "default", "dc3"),
			expTarget("main", "v1", "default", "dc2")),
	}
}

func testcaseFailoverStar() compileTestCase {
	// No Failover[""] exists for the unnamed subset, so "*" applies; a
	// failover to another service clears the subset and uses that
	// service's default subset.
	return compileTestCase{
		entries: []Entry{
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
				r.Failover = map[string]ServiceResolverFailover{
					"v1": {Datacenters: []string{"dc2"}},
					"*":  {Service: "backup", Datacenters: []string{"dc2", "dc3"}},
				}
			}),
			resolver("backup", func(r *ServiceResolverConfigEntry) {
				r.DefaultSubset = "v1"
				r.Subsets = subsets("v1")
			}),
		},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false, "v1.backup.default.dc2", "v1.backup.default.dc3")),
			expTarget("main", "", "default", "dc1"),
			expTarget("backup", "v1", "default", "dc2"),
			expTarget("backup", "v1", "default", "dc3")),
	}
}

func testcaseFailoverMutualNotTransitive() compileTestCase {
	// main fails over to other and other to main: legal, no node for
	// other, other's own failover ignored.
	return compileTestCase{
		entries: []Entry{
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "other"}}
			}),
			resolver("other", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "main"}}
			}),
		},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false, "other.default.dc1")),
			expTarget("main", "", "default", "dc1"),
			expTarget("other", "", "default", "dc1")),
	}
}

func testcaseFailoverThroughRedirect() compileTestCase {
	// A failover target's redirect applies; only the final target is kept.
	return compileTestCase{
		entries: []Entry{
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "backup"}}
			}),
			resolver("backup", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "backup2", Datacenter: "dc2"}
			}),
		},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false, "backup2.default.dc2")),
			expTarget("main", "", "default", "dc1"),
			expTarget("backup2", "", "default", "dc2")),
	}
}

func testcaseFailoverOnlyToSelf() compileTestCase {
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc1"}}}
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false)),
			expTarget("main", "", "default", "dc1")),
	}
}

func testcaseExternalSNI() compileTestCase {
	// ExternalSNI replaces the SNI (not Name) and forces no gateway, even
	// in another datacenter with a gateway configured.
	sd := serviceDefaults("main", "")
	sd.ExternalSNI = "main.example.com"
	sd.MeshGateway.Mode = "remote"
	c := expChain("main", "dc2", "tcp", "resolver:main.default.dc2",
		nodes(expResolver("main.default.dc2", 5*time.Second, true)),
		expTarget("main", "", "default", "dc2", func(t *Target) {
			t.SNI = "main.example.com"
			t.External = true
		}))
	c.Default = true // ExternalSNI does not make a chain non-default
	return compileTestCase{datacenter: "dc2", entries: []Entry{sd}, expect: c}
}

// ---------------------------------------------------------------------------
// Mesh gateways (1.6 rule: never inside UseInDatacenter)

func testcaseMeshGatewayFromProxyDefaults() compileTestCase {
	pd := proxyDefaults("")
	pd.MeshGateway.Mode = "remote"
	return compileTestCase{
		entries: []Entry{pd, resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false, "main.default.dc2")),
			expTarget("main", "", "default", "dc1"),
			expTarget("main", "", "default", "dc2", func(t *Target) { t.MeshGateway.Mode = "remote" })),
	}
}

func testcaseMeshGatewayFromServiceDefaults() compileTestCase {
	pd := proxyDefaults("")
	pd.MeshGateway.Mode = "remote"
	sd := serviceDefaults("main", "")
	sd.MeshGateway.Mode = "local"
	return compileTestCase{
		entries: []Entry{pd, sd, resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Service: "other", Datacenters: []string{"dc2"}}}
		})},
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false, "other.default.dc2")),
			expTarget("main", "", "default", "dc1"),
			// other has no service-defaults: proxy-defaults' mode applies.
			expTarget("other", "", "default", "dc2", func(t *Target) { t.MeshGateway.Mode = "remote" })),
	}
}

func testcaseMeshGatewayOverride() compileTestCase {
	pd := proxyDefaults("")
	pd.MeshGateway.Mode = "remote"
	return compileTestCase{
		overrideMeshGateway: MeshGatewayConfig{Mode: "local"},
		entries: []Entry{pd, resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}
		})},
		expectCustom: true,
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 5*time.Second, false, "main.default.dc2")),
			expTarget("main", "", "default", "dc1"),
			expTarget("main", "", "default", "dc2", func(t *Target) { t.MeshGateway.Mode = "local" })),
	}
}

func testcaseMeshGatewayOverrideLocalOnly() compileTestCase {
	// Only local targets: the override changes nothing, so no hash.
	c := expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{overrideMeshGateway: MeshGatewayConfig{Mode: "remote"}, expect: c}
}

// ---------------------------------------------------------------------------
// Overrides

func testcaseConnectTimeoutOverride() compileTestCase {
	return compileTestCase{
		overrideConnectTimeout: 7 * time.Second,
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.ConnectTimeout = Duration(10 * time.Second)
		})},
		expectCustom: true,
		expect: expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
			nodes(expResolver("main.default.dc1", 7*time.Second, false)),
			expTarget("main", "", "default", "dc1")),
	}
}

func testcaseConnectTimeoutOverrideUnchanged() compileTestCase {
	c := expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{overrideConnectTimeout: 5 * time.Second, expect: c}
}

func testcaseProtocolOverrideTCPDisablesL7() compileTestCase {
	// A tcp override skips the router and splitter; the chain starts at
	// the resolver, stays "default", and is customized.
	c := expChain("main", "dc1", "tcp", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{
		overrideProtocol: "tcp",
		entries: []Entry{
			proxyDefaults("http"),
			router("main", pathPrefixRoute("/admin", &ServiceRouteDestination{Service: "admin"})),
			splitter("main", ServiceSplit{Weight: 100, Service: "other"}),
		},
		expectCustom: true,
		expect:       c,
	}
}

func testcaseProtocolOverrideHTTPOnTCPChain() compileTestCase {
	c := expChain("main", "dc1", "http", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{overrideProtocol: "http", expectCustom: true, expect: c}
}

func testcaseProtocolOverrideSameProtocol() compileTestCase {
	c := expChain("main", "dc1", "grpc", "resolver:main.default.dc1",
		nodes(expResolver("main.default.dc1", 5*time.Second, true)),
		expTarget("main", "", "default", "dc1"))
	c.Default = true
	return compileTestCase{overrideProtocol: "GRPC", entries: []Entry{serviceDefaults("main", "grpc")}, expect: c}
}

// ---------------------------------------------------------------------------
// Documentation examples (testdata/entries) and the worked example of
// docs/discovery-chain.md, Compiled chain

func testcaseSeedRouteAdmin() compileTestCase {
	admin := pathPrefixRoute("/admin", &ServiceRouteDestination{Service: "admin"})
	return compileTestCase{
		service: "web",
		entries: []Entry{proxyDefaults("http"), router("web", admin)},
		expect: expChain("web", "dc1", "http", "router:web",
			nodes(
				expRouter("web",
					expRoute(admin, "resolver:admin.default.dc1"),
					catchAll("web", "resolver:web.default.dc1"),
				),
				expResolver("admin.default.dc1", 5*time.Second, true),
				expResolver("web.default.dc1", 5*time.Second, true),
			),
			expTarget("admin", "", "default", "dc1"),
			expTarget("web", "", "default", "dc1")),
	}
}

func testcaseSeedCanaryHeaderQuery() compileTestCase {
	byHeader := ServiceRoute{
		Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{
			Header: []ServiceRouteHTTPMatchHeader{{Name: "x-debug", Exact: "1"}},
		}},
		Destination: &ServiceRouteDestination{Service: "web", ServiceSubset: "canary"},
	}
	byQuery := ServiceRoute{
		Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{
			QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "x-debug", Exact: "1"}},
		}},
		Destination: &ServiceRouteDestination{Service: "web", ServiceSubset: "canary"},
	}
	return compileTestCase{
		service: "web",
		entries: []Entry{
			serviceDefaults("web", "http"),
			router("web", byHeader, byQuery),
			resolver("web", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("canary") }),
		},
		expect: expChain("web", "dc1", "http", "router:web",
			nodes(
				expRouter("web",
					expRoute(byHeader, "resolver:canary.web.default.dc1"),
					expRoute(byQuery, "resolver:canary.web.default.dc1"),
					catchAll("web", "resolver:web.default.dc1"),
				),
				expResolver("canary.web.default.dc1", 5*time.Second, false),
				expResolver("web.default.dc1", 5*time.Second, false),
			),
			expTarget("web", "canary", "default", "dc1"),
			expTarget("web", "", "default", "dc1")),
	}
}

func testcaseSeedSplitterFlatten() compileTestCase {
	// splitter[a]: a_v1=50, a_v2=50; splitter[b]: a=50, b=50
	// => effective b: a_v1=25, a_v2=25, b=50.
	return compileTestCase{
		service: "b",
		entries: []Entry{
			proxyDefaults("http"),
			splitter("a", ServiceSplit{Weight: 50, ServiceSubset: "v1"}, ServiceSplit{Weight: 50, ServiceSubset: "v2"}),
			splitter("b", ServiceSplit{Weight: 50, Service: "a"}, ServiceSplit{Weight: 50, Service: "b"}),
			resolver("a", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2") }),
		},
		expect: expChain("b", "dc1", "http", "splitter:b",
			nodes(
				expSplitter("b",
					split(25, "resolver:v1.a.default.dc1"),
					split(25, "resolver:v2.a.default.dc1"),
					split(50, "resolver:b.default.dc1"),
				),
				expResolver("v1.a.default.dc1", 5*time.Second, false),
				expResolver("v2.a.default.dc1", 5*time.Second, false),
				expResolver("b.default.dc1", 5*time.Second, true),
			),
			expTarget("a", "v1", "default", "dc1"),
			expTarget("a", "v2", "default", "dc1"),
			expTarget("b", "", "default", "dc1")),
	}
}

func testcaseSpecExampleDC2() compileTestCase {
	return compileTestCase{
		service:    "web",
		datacenter: "dc2",
		entries: []Entry{
			resolver("web", func(r *ServiceResolverConfigEntry) {
				r.DefaultSubset = "v1"
				r.Subsets = subsets("v1", "v2")
			}),
			serviceDefaults("web", "http"),
			splitter("web", ServiceSplit{Weight: 90, ServiceSubset: "v1"}, ServiceSplit{Weight: 10, ServiceSubset: "v2"}),
		},
		expect: expChain("web", "dc2", "http", "splitter:web",
			nodes(
				expSplitter("web", split(90, "resolver:v1.web.default.dc2"), split(10, "resolver:v2.web.default.dc2")),
				expResolver("v1.web.default.dc2", 5*time.Second, false),
				expResolver("v2.web.default.dc2", 5*time.Second, false),
			),
			expTarget("web", "v1", "default", "dc2"),
			expTarget("web", "v2", "default", "dc2")),
	}
}

// ---------------------------------------------------------------------------
// Graph errors

func testcaseErrInconsistentRouter() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			serviceDefaults("main", "http"),
			serviceDefaults("other", "tcp"),
			router("main", pathPrefixRoute("/other", &ServiceRouteDestination{Service: "other"})),
		},
		expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
	}
}

func testcaseErrInconsistentSplitter() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			serviceDefaults("main", "http"),
			serviceDefaults("other", "tcp"),
			splitter("main", ServiceSplit{Weight: 90}, ServiceSplit{Weight: 10, Service: "other"}),
		},
		expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "http"`,
	}
}

func testcaseErrInconsistentRedirect() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			serviceDefaults("main", "grpc"),
			serviceDefaults("other", "tcp"),
			resolver("main", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Service: "other"} }),
		},
		expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "grpc"`,
	}
}

func testcaseErrInconsistentFailover() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			serviceDefaults("main", "grpc"),
			serviceDefaults("other", "tcp"),
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "other"}}
			}),
		},
		expectErr: `discovery chain "main" uses inconsistent protocols; service "other" has "tcp" which is not "grpc"`,
	}
}

func testcaseErrRouterNotHTTP() compileTestCase {
	return compileTestCase{
		entries:   []Entry{router("main", pathPrefixRoute("/other", &ServiceRouteDestination{Namespace: "other"}))},
		expectErr: `discovery chain "main" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`,
		expectReads: keys(
			"proxy-defaults", "global",
			"service-defaults", "main",
			"service-resolver", "main",
			"service-router", "main",
			"service-splitter", "main",
		),
	}
}

func testcaseErrSplitterNotHTTP() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			serviceDefaults("main", "udp"),
			splitter("main", ServiceSplit{Weight: 90, Namespace: "v1"}, ServiceSplit{Weight: 10, Namespace: "v2"}),
		},
		expectErr: `discovery chain "main" uses a protocol "udp" that does not permit advanced routing or splitting behavior`,
	}
}

func testcaseErrCircularSplitters() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			splitter("main", ServiceSplit{Weight: 100, Service: "other"}),
			splitter("other", ServiceSplit{Weight: 100, Service: "main"}),
		},
		expectErr: `detected circular reference: [splitter:main -> splitter:other -> splitter:main]`,
	}
}

func testcaseErrCircularThroughRouter() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			router("main", pathPrefixRoute("/x", &ServiceRouteDestination{Service: "other"})),
			splitter("main", ServiceSplit{Weight: 50, Service: "other"}, ServiceSplit{Weight: 50}),
			splitter("other", ServiceSplit{Weight: 100, Service: "main"}),
		},
		expectErr: `detected circular reference: [router:main -> splitter:main -> splitter:other -> splitter:main]`,
	}
}

func testcaseErrCircularRedirect() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			resolver("main", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Service: "other"} }),
			resolver("other", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Service: "main"} }),
		},
		expectErr: `detected circular resolver redirect: [main.default.dc1 -> other.default.dc1 -> main.default.dc1]`,
	}
}

func testcaseErrCircularRedirectSubsets() compileTestCase {
	// Subsets are part of the target IDs in the history; the history
	// starts at the first target, not at the repeated one.
	return compileTestCase{
		entries: []Entry{
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Subsets = subsets("v1")
				r.Redirect = &ServiceResolverRedirect{Service: "other"}
			}),
			resolver("other", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "main", ServiceSubset: "v1"}
			}),
		},
		expectErr: `detected circular resolver redirect: [main.default.dc1 -> other.default.dc1 -> v1.main.default.dc1 -> other.default.dc1]`,
	}
}

func testcaseErrMissingSubsetInRoute() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			resolver("main", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1") }),
			router("main", pathPrefixRoute("/v9", &ServiceRouteDestination{ServiceSubset: "v9"})),
		},
		expectErr: `service "main" does not have a subset named "v9"`,
	}
}

func testcaseErrMissingSubsetSynthesized() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			proxyDefaults("http"),
			splitter("main", ServiceSplit{Weight: 50}, ServiceSplit{Weight: 50, Service: "other", ServiceSubset: "v1"}),
		},
		expectErr: `service "other" does not have a subset named "v1"`,
	}
}

func testcaseErrMissingSubsetRedirect() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Redirect = &ServiceResolverRedirect{Service: "other", ServiceSubset: "v1"}
			}),
			resolver("other", func(r *ServiceResolverConfigEntry) { r.ConnectTimeout = Duration(time.Second) }),
		},
		expectErr: `service "other" does not have a subset named "v1"`,
	}
}

func testcaseErrMissingSubsetFailover() compileTestCase {
	return compileTestCase{
		entries: []Entry{resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Service: "other", ServiceSubset: "v2"}}
		})},
		expectErr: `service "other" does not have a subset named "v2"`,
	}
}

func externalDefaults(name string) *ServiceConfigEntry {
	sd := serviceDefaults(name, "")
	sd.ExternalSNI = name + ".example.com"
	return sd
}

func testcaseErrExternalSNIWithRedirect() compileTestCase {
	// The redirect is a no-op for dc1 but still forbidden.
	return compileTestCase{
		entries: []Entry{
			externalDefaults("main"),
			resolver("main", func(r *ServiceResolverConfigEntry) { r.Redirect = &ServiceResolverRedirect{Datacenter: "dc1"} }),
		},
		expectErr: `service "main" has an external SNI set; cannot define redirects for external services`,
	}
}

func testcaseErrExternalSNIWithSubsets() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			externalDefaults("main"),
			resolver("main", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1") }),
		},
		expectErr: `service "main" has an external SNI set; cannot define subsets for external services`,
	}
}

func testcaseErrExternalSNIWithFailover() compileTestCase {
	return compileTestCase{
		entries: []Entry{
			externalDefaults("main"),
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}
			}),
		},
		expectErr: `service "main" has an external SNI set; cannot define failover for external services`,
	}
}

func testcaseErrExternalSNIFailoverTarget() compileTestCase {
	// Failover targets go through the same checks.
	return compileTestCase{
		entries: []Entry{
			externalDefaults("other"),
			resolver("main", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "other"}}
			}),
			resolver("other", func(r *ServiceResolverConfigEntry) {
				r.Failover = map[string]ServiceResolverFailover{"*": {Service: "main"}}
			}),
		},
		expectErr: `service "other" has an external SNI set; cannot define failover for external services`,
	}
}
