package grpccheck

import (
	"go/build"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

// compile prepares entries (Normalize + Validate, as a write does) and
// compiles the chain of service "web" in dc1 with the real compiler.
func compile(tb testing.TB, entries ...chain.Entry) *chain.CompiledChain {
	tb.Helper()
	for _, e := range entries {
		if err := chain.Prepare(e); err != nil {
			tb.Fatalf("Prepare(%s/%s) = %v", e.GetKind(), e.GetName(), err)
		}
	}
	res, err := chain.Compile(chain.CompileRequest{
		ServiceName:           "web",
		EvaluateInNamespace:   "default",
		EvaluateInDatacenter:  "dc1",
		EvaluateInTrustDomain: "td.consul",
		UseInDatacenter:       "dc1",
		Entries:               chain.NewMemStore(entries...),
	})
	if err != nil {
		tb.Fatalf("Compile(web) = %v", err)
	}
	return res.Chain
}

func grpcDefaults(name string) *chain.ServiceConfigEntry {
	return &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: name, Protocol: "grpc"}
}

func router(name string, routes ...chain.ServiceRoute) *chain.ServiceRouterConfigEntry {
	return &chain.ServiceRouterConfigEntry{Kind: chain.KindServiceRouter, Name: name, Routes: routes}
}

func resolver(name string, connectTimeout time.Duration) *chain.ServiceResolverConfigEntry {
	return &chain.ServiceResolverConfigEntry{Kind: chain.KindServiceResolver, Name: name, ConnectTimeout: chain.Duration(connectTimeout)}
}

func httpMatch(m chain.ServiceRouteHTTPMatch) *chain.ServiceRouteMatch {
	return &chain.ServiceRouteMatch{HTTP: &m}
}

// TestWarnings: every feature a chain can carry that gRPC clients ignore
// or cannot match, on the chain xds's IgnoredFeatures Build case uses.
func TestWarnings(t *testing.T) {
	t.Parallel()
	dest := &chain.ServiceRouteDestination{
		PrefixRewrite:         "/v2.Echo/",
		RequestTimeout:        chain.Duration(2 * time.Second),
		NumRetries:            3,
		RetryOnConnectFailure: true,
		RetryOnStatusCodes:    []uint32{503, 500},
	}
	c := compile(t,
		grpcDefaults("web"),
		resolver("web", 3*time.Second),
		router("web",
			chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/demo.Echo/"}), Destination: dest},
			chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{Header: []chain.ServiceRouteHTTPMatchHeader{{Name: ":authority", Exact: "web"}}})},
			chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{QueryParam: []chain.ServiceRouteHTTPMatchQueryParam{{Name: "canary", Present: true}}})},
			chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathExact: "/demo.Echo/Ping", Methods: []string{"get", "POST"}})},
			chain.ServiceRoute{Destination: &chain.ServiceRouteDestination{NumRetries: 2}},
		),
	)
	w := func(route int, match string, f Feature, detail string) Warning {
		return Warning{Node: "router:web", Route: route, Match: match, Feature: f, Detail: detail}
	}
	want := []Warning{
		w(0, `PathPrefix "/demo.Echo/"`, FeaturePrefixRewrite, "ignored by gRPC clients: the backend sees the original method path"),
		w(0, `PathPrefix "/demo.Echo/"`, FeatureRetryOnConnectFailure, "an Envoy retry condition: gRPC clients do not retry on connection failures"),
		w(0, `PathPrefix "/demo.Echo/"`, FeatureRetryOnStatusCodes, `HTTP status [500] has no gRPC status name: not retried on (only 503 maps, to "unavailable")`),
		w(1, `PathPrefix "/" + 1 header`, FeatureHeader, `":authority" is a pseudo-, transport or binary header: gRPC route matching does not see it as sent, so this match does not work as written`),
		w(2, `PathPrefix "/" + 1 query param`, FeatureQueryParam, "gRPC clients skip a route with query-parameter matches: this route never fires"),
		w(3, `PathExact "/demo.Echo/Ping" + Methods GET,POST`, FeatureMethods, "gRPC route matching cannot see :method (every gRPC call is a POST): this route never fires"),
		w(4, `PathPrefix "/"`, FeatureNumRetries, "2 retries without a condition gRPC clients honour (RetryOnStatusCodes 503): no retries"),
		{Node: "resolver:web.default.dc1", Route: -1, Feature: FeatureConnectTimeout, Detail: "connect timeout 3s is not used by gRPC clients (kept for Envoy)"},
	}
	if diff := cmp.Diff(want, Warnings(c)); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
}

// TestWarningsNone: a default chain, and a router whose features gRPC
// honours (503 retries, a default connect timeout, visible headers), have
// no warnings.
func TestWarningsNone(t *testing.T) {
	t.Parallel()
	chains := map[string]*chain.CompiledChain{
		"default": compile(t),
		"honoured": compile(t,
			grpcDefaults("web"),
			resolver("web", chain.DefaultConnectTimeout),
			router("web", chain.ServiceRoute{
				Match: httpMatch(chain.ServiceRouteHTTPMatch{
					PathPrefix: "/demo.Echo/",
					Header:     []chain.ServiceRouteHTTPMatchHeader{{Name: "x-canary", Present: true}},
				}),
				Destination: &chain.ServiceRouteDestination{NumRetries: 2, RetryOnStatusCodes: []uint32{503}},
			}),
		),
	}
	for name, c := range chains {
		if got := Warnings(c); len(got) != 0 {
			t.Errorf("Warnings(%s) = %v, want none", name, got)
		}
	}
}

func TestWarningsNilChain(t *testing.T) {
	t.Parallel()
	if got := Warnings(nil); got != nil {
		t.Errorf("Warnings(nil) = %v, want nil", got)
	}
}

// TestWarningsSkipsWhatItCannotRead: a hand-made chain with a missing
// start node, nil routes and splits, and a route without a definition
// gives no warnings and no panic (xds.Build reports such chains).
func TestWarningsSkipsWhatItCannotRead(t *testing.T) {
	t.Parallel()
	chains := map[string]*chain.CompiledChain{
		"no nodes": {StartNode: "router:web"},
		"nil parts": {StartNode: "router:web", Nodes: map[string]*chain.GraphNode{
			"router:web":   {Type: chain.NodeTypeRouter, Routes: []*chain.Route{nil, {NextNode: "splitter:web"}}},
			"splitter:web": {Type: chain.NodeTypeSplitter, Splits: []*chain.Split{nil, {NextNode: "resolver:gone"}}},
		}},
	}
	for name, c := range chains {
		if got := Warnings(c); len(got) != 0 {
			t.Errorf("Warnings(%s) = %v, want none", name, got)
		}
	}
}

// TestWarningsResolverOrder: connect-timeout warnings come per reachable
// resolver node in key order, each node once however often it is reached.
func TestWarningsResolverOrder(t *testing.T) {
	t.Parallel()
	res := func(timeout time.Duration) *chain.GraphNode {
		return &chain.GraphNode{Type: chain.NodeTypeResolver, Resolver: &chain.ResolverNodeInfo{ConnectTimeout: chain.Duration(timeout)}}
	}
	c := &chain.CompiledChain{StartNode: "splitter:web", Nodes: map[string]*chain.GraphNode{
		"splitter:web": {Type: chain.NodeTypeSplitter, Splits: []*chain.Split{
			{NextNode: "resolver:b"}, {NextNode: "resolver:a"}, {NextNode: "resolver:b"},
		}},
		"resolver:a":      res(time.Second),
		"resolver:b":      res(2 * time.Second),
		"resolver:unused": res(time.Second),
	}}
	var got []string
	for _, w := range Warnings(c) {
		got = append(got, w.String())
	}
	want := []string{
		"resolver:a: ConnectTimeout: connect timeout 1s is not used by gRPC clients (kept for Envoy)",
		"resolver:b: ConnectTimeout: connect timeout 2s is not used by gRPC clients (kept for Envoy)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
}

func TestInvisibleHeader(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		":authority": true, ":path": true, "Content-Type": true, "user-agent": true, "te": true, "host": true,
		"connection": true, "grpc-timeout": true, "x-trace-bin": true,
		"x-canary": false, "authorization": false, "x-grpc": false, "binary": false,
	} {
		if got := invisibleHeader(name); got != want {
			t.Errorf("invisibleHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDescribeMatch(t *testing.T) {
	t.Parallel()
	hdr := chain.ServiceRouteHTTPMatchHeader{Name: "x-a", Present: true}
	qp := chain.ServiceRouteHTTPMatchQueryParam{Name: "q", Present: true}
	tests := map[string]struct {
		def  *chain.ServiceRoute
		want string
	}{
		"nil":      {nil, `PathPrefix "/"`},
		"no match": {&chain.ServiceRoute{}, `PathPrefix "/"`},
		"exact":    {&chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathExact: "/a.B/C"})}, `PathExact "/a.B/C"`},
		"regex":    {&chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathRegex: "/a.*"})}, `PathRegex "/a.*"`},
		"two headers": {
			&chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{PathPrefix: "/admin", Header: []chain.ServiceRouteHTTPMatchHeader{hdr, hdr}})},
			`PathPrefix "/admin" + 2 headers`,
		},
		"everything": {
			&chain.ServiceRoute{Match: httpMatch(chain.ServiceRouteHTTPMatch{
				Header: []chain.ServiceRouteHTTPMatchHeader{hdr}, QueryParam: []chain.ServiceRouteHTTPMatchQueryParam{qp, qp}, Methods: []string{"GET"},
			})},
			`PathPrefix "/" + 1 header + 2 query params + Methods GET`,
		},
	}
	for name, tc := range tests {
		if got := describeMatch(tc.def); got != tc.want {
			t.Errorf("describeMatch(%s) = %q, want %q", name, got, tc.want)
		}
	}
}

func TestWarningString(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		w    Warning
		want string
	}{
		"route": {
			Warning{Node: "router:web", Route: 2, Match: `PathPrefix "/" + 1 query param`, Feature: FeatureQueryParam, Detail: "never fires"},
			`router:web route 2 (PathPrefix "/" + 1 query param): QueryParam: never fires`,
		},
		"node": {
			Warning{Node: "resolver:web.default.dc1", Route: -1, Feature: FeatureConnectTimeout, Detail: "not used"},
			"resolver:web.default.dc1: ConnectTimeout: not used",
		},
	}
	for name, tc := range tests {
		if got := tc.w.String(); got != tc.want {
			t.Errorf("%s: String() = %q, want %q", name, got, tc.want)
		}
	}
}

// TestImportsOnlyChainAndStd pins the package's promise: it imports only
// the chain package and the standard library, so a client (storectl) can
// use it without linking envoy's generated code; and nothing it links
// comes from go-control-plane.
func TestImportsOnlyChainAndStd(t *testing.T) {
	t.Parallel()
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp != "github.com/chainstore/chainstore/chain" && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
			t.Errorf("grpccheck imports %s; want only the chain package and the standard library", imp)
		}
	}
	if testing.Short() {
		return
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		xds := strings.HasPrefix(dep, "github.com/chainstore/chainstore/xds") && dep != "github.com/chainstore/chainstore/xds/grpccheck"
		if xds || strings.HasPrefix(dep, "github.com/envoyproxy/") {
			t.Errorf("grpccheck links %s", dep)
		}
	}
}
