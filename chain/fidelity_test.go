package chain

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/chainstore/chainstore/internal/testutil"
)

// Fidelity to Consul 1.6: one named test per behaviour that used to differ
// (docs/discovery-chain.md, "Fidelity tests"). Each asserts the
// exact output Consul gives.

// compileGolden compiles service from entries and compares the chain with
// testdata/compile-<name>.golden (-update rewrites it; review the diff).
func compileGolden(t *testing.T, name, service string, entries ...Entry) *CompiledChain {
	t.Helper()
	res, err := Compile(CompileRequest{
		ServiceName:           service,
		EvaluateInNamespace:   "default",
		EvaluateInDatacenter:  "dc1",
		EvaluateInTrustDomain: testTrustDomain,
		UseInDatacenter:       "dc1",
		Entries:               NewMemStore(entries...),
	})
	if err != nil {
		t.Fatalf("Compile(%q) error = %v", service, err)
	}
	testutil.Golden(t, filepath.Join("testdata", "compile-"+name+".golden"), mustJSON(t, map[string]any{"Chain": res.Chain}))
	return res.Chain
}

func compileErr(t *testing.T, service string, entries ...Entry) error {
	t.Helper()
	_, err := Compile(CompileRequest{
		ServiceName:           service,
		EvaluateInNamespace:   "default",
		EvaluateInDatacenter:  "dc1",
		EvaluateInTrustDomain: testTrustDomain,
		UseInDatacenter:       "dc1",
		Entries:               NewMemStore(entries...),
	})
	return err
}

func TestFidelityZeroWeightSplitOmitsWeight(t *testing.T) {
	t.Parallel()
	c := compileGolden(t, "FidelityZeroWeightSplit", "main",
		serviceDefaults("main", "http"),
		resolver("main", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2") }),
		splitter("main", ServiceSplit{Weight: 100, ServiceSubset: "v1"}, ServiceSplit{Weight: 0, ServiceSubset: "v2"}))
	b := mustJSON(t, c.Nodes["splitter:main"].Splits[1])
	want := "{\n  \"NextNode\": \"resolver:v2.main.default.dc1\"\n}\n"
	if string(b) != want {
		t.Errorf("zero-weight split = %s, want %s", b, want)
	}
}

func TestFidelityRouterNodeUsesEntrySpelling(t *testing.T) {
	t.Parallel()
	c := compileGolden(t, "FidelityRouterNameCase", "web",
		serviceDefaults("web", "http"),
		router("WEB", pathPrefixRoute("/admin", &ServiceRouteDestination{Service: "admin"})),
		serviceDefaults("admin", "http"))
	if c.StartNode != "router:WEB" {
		t.Errorf("StartNode = %q, want %q", c.StartNode, "router:WEB")
	}
	n := c.Nodes["router:WEB"]
	if n == nil || n.Name != "WEB" {
		t.Fatalf("Nodes[router:WEB] = %+v, want a node named WEB", n)
	}
	// The catch-all keeps the compiled service's spelling (our catalog is
	// case-sensitive; see docs/discovery-chain.md, Router step).
	last := n.Routes[len(n.Routes)-1]
	if last.Definition.Destination.Service != "web" || last.NextNode != "resolver:web.default.dc1" {
		t.Errorf("catch-all = %+v -> %q, want service web -> resolver:web.default.dc1", last.Definition.Destination, last.NextNode)
	}
}

func TestFidelityServiceDefaultsWithoutName(t *testing.T) {
	t.Parallel()
	err := Prepare(&ServiceConfigEntry{Protocol: "http"})
	var verr *ValidationError
	if !errors.As(err, &verr) || verr.Msg != "serviceName is required" {
		t.Fatalf("Prepare(service-defaults without name) = %v, want *ValidationError %q", err, "serviceName is required")
	}
	// The other kinds keep Consul's "Name is required".
	for _, e := range []Entry{&ServiceRouterConfigEntry{}, &ServiceSplitterConfigEntry{Splits: []ServiceSplit{{Weight: 100}}}, &ServiceResolverConfigEntry{}} {
		if err := Prepare(e); err == nil || err.Error() != "Name is required" {
			t.Errorf("Prepare(%s without name) = %v, want %q", e.GetKind(), err, "Name is required")
		}
	}
}

func TestFidelityCircularReferencePathOrder(t *testing.T) {
	t.Parallel()
	// Consul follows the last split first: main's second leg (to c) is
	// explored before its first (to b).
	err := compileErr(t, "main",
		proxyDefaults("http"),
		splitter("main", ServiceSplit{Weight: 50, Service: "b"}, ServiceSplit{Weight: 50, Service: "c"}),
		splitter("b", ServiceSplit{Weight: 100, Service: "main"}),
		splitter("c", ServiceSplit{Weight: 100, Service: "main"}))
	want := "detected circular reference: [splitter:main -> splitter:c -> splitter:main]"
	var ge *GraphError
	if !errors.As(err, &ge) || err.Error() != want {
		t.Fatalf("Compile() = %v, want *GraphError %q", err, want)
	}
}

func TestFidelityDecodeTypeErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ in, want string }{
		"map expected": {`{"Kind":"service-resolver","Name":"web","Subsets":"x"}`,
			`'Subsets' expected a map, got 'string'`},
		"map value expected": {`{"Kind":"service-resolver","Name":"web","Subsets":{"v1":"x"}}`,
			`'Subsets.v1' expected a map, got 'string'`},
		"struct list element": {`{"Kind":"service-router","Name":"web","Routes":["x"]}`,
			`'Routes[0]' expected a map, got 'string'`},
		"scalar for list of structs": {`{"Kind":"service-router","Name":"web","Routes":"x"}`,
			`'Routes[0]' expected a map, got 'string'`},
		"meta list": {`{"Kind":"service-defaults","Name":"web","Meta":["x"]}`,
			`'Meta' expected a map, got 'slice'`},
		"bool": {`{"Kind":"service-defaults","Name":"web","Expose":{"Checks":"maybe"}}`,
			`cannot parse 'Expose.Checks' as bool: strconv.ParseBool: invalid syntax`},
		"string from map": {`{"Kind":"service-defaults","Name":{"a":1}}`,
			`'Name' expected type 'string', got unconvertible type 'map'`},
		"duration": {`{"Kind":"service-resolver","Name":"web","ConnectTimeout":"abc"}`,
			`error decoding 'ConnectTimeout': time: invalid duration "abc"`},
		"duration of wrong type": {`{"Kind":"service-resolver","Name":"web","RequestTimeout":true}`,
			`error decoding 'RequestTimeout': time: invalid duration true`},
		"snake duration": {"kind = \"service-resolver\"\nname = \"web\"\nconnect_timeout = \"5 s\"",
			`error decoding 'ConnectTimeout': time: unknown unit " s" in duration "5 s"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeEntry([]byte(tc.in))
			wantDecodeError(t, err, tc.want)
			if bytes.Contains([]byte(err.Error()), []byte("chain.")) || bytes.Contains([]byte(err.Error()), []byte("interface {}")) {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}
}

func TestFidelityUnknownNestedKeyFollowsInputCase(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ in, want string }{
		"json camel": {`{"Kind":"service-defaults","Name":"web","MeshGateway":{"mood":"x"}}`, `invalid config key "MeshGateway.mood"`},
		"hcl camel":  {"Kind = \"service-defaults\"\nName = \"web\"\nMeshGateway { mood = \"x\" }", `invalid config key "MeshGateway.mood"`},
		"hcl snake":  {"kind = \"service-defaults\"\nname = \"web\"\nmesh_gateway { mood = \"x\" }", `invalid config key "mesh_gateway.mood"`},
		"json snake": {`{"kind":"service-resolver","name":"web","load_balancer":{"ring_hash_config":{"size":1}}}`, `invalid config key "load_balancer.ring_hash_config.size"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeEntry([]byte(tc.in))
			wantDecodeError(t, err, tc.want)
		})
	}
}

func TestFidelityInvalidFilterRejectedAtWrite(t *testing.T) {
	t.Parallel()
	// Deliberately stricter than 1.6, which stored the filter and failed
	// when it was used.
	err := Prepare(resolver("web", func(r *ServiceResolverConfigEntry) {
		r.Subsets = map[string]ServiceResolverSubset{"v1": {Filter: "Service.Meta.version =="}}
	}))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Prepare() = %v, want *ValidationError", err)
	}
	const want = `Filter for subset "v1" is not a valid expression: 1:24 (23): no match found, expected: "-", "0", "\"", "` + "`" + `", [ \t\r\n], [1-9] or [a-zA-Z]`
	if verr.Msg != want {
		t.Errorf("Prepare() = %q, want %q", verr.Msg, want)
	}
}

func TestFidelityFlattenKeepsDuplicateLegs(t *testing.T) {
	t.Parallel()
	// Consul does not merge flattened legs that reach the same resolver.
	c := compileGolden(t, "FidelityFlattenDuplicateLegs", "main",
		proxyDefaults("http"),
		splitter("main", ServiceSplit{Weight: 50, Service: "a"}, ServiceSplit{Weight: 50, Service: "b"}),
		splitter("a", ServiceSplit{Weight: 100, Service: "c"}),
		splitter("b", ServiceSplit{Weight: 100, Service: "c"}))
	splits := c.Nodes["splitter:main"].Splits
	if len(splits) != 2 || splits[0].NextNode != "resolver:c.default.dc1" || splits[1].NextNode != "resolver:c.default.dc1" {
		t.Errorf("splits = %s, want two 50%% legs to resolver:c.default.dc1", mustJSON(t, splits))
	}
}
