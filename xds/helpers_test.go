package xds

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
)

// Golden files live in testdata/*.golden. `go test ./xds/ -update` (the
// flag of internal/testutil) rewrites them from the current output.
//
// NOTE: review every golden diff (git diff xds/testdata) before committing
// it: the golden files pin the exact resources gRPC clients receive.

const testTrustDomain = "td.consul"

// ---- chains, compiled by the real compiler ----

// compileOpts are the optional compile inputs of a test chain.
type compileOpts struct {
	service                string // default "web"
	overrideConnectTimeout time.Duration
}

// compile prepares entries (Normalize + Validate, as a write does) and
// compiles the chain of opts.service (default "web") in dc1.
func compile(tb testing.TB, opts compileOpts, entries ...chain.Entry) *chain.CompiledChain {
	tb.Helper()
	for _, e := range entries {
		if err := chain.Prepare(e); err != nil {
			tb.Fatalf("Prepare(%s/%s) = %v", e.GetKind(), e.GetName(), err)
		}
	}
	service := opts.service
	if service == "" {
		service = "web"
	}
	res, err := chain.Compile(chain.CompileRequest{
		ServiceName:            service,
		EvaluateInNamespace:    "default",
		EvaluateInDatacenter:   "dc1",
		EvaluateInTrustDomain:  testTrustDomain,
		UseInDatacenter:        "dc1",
		OverrideConnectTimeout: opts.overrideConnectTimeout,
		Entries:                chain.NewMemStore(entries...),
	})
	if err != nil {
		tb.Fatalf("Compile(%q) = %v", service, err)
	}
	return res.Chain
}

func grpcDefaults(name string) *chain.ServiceConfigEntry {
	return &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: name, Protocol: "grpc"}
}

func router(name string, routes ...chain.ServiceRoute) *chain.ServiceRouterConfigEntry {
	return &chain.ServiceRouterConfigEntry{Kind: chain.KindServiceRouter, Name: name, Routes: routes}
}

func splitter(name string, splits ...chain.ServiceSplit) *chain.ServiceSplitterConfigEntry {
	return &chain.ServiceSplitterConfigEntry{Kind: chain.KindServiceSplitter, Name: name, Splits: splits}
}

func resolver(name string, mod func(r *chain.ServiceResolverConfigEntry)) *chain.ServiceResolverConfigEntry {
	r := &chain.ServiceResolverConfigEntry{Kind: chain.KindServiceResolver, Name: name}
	if mod != nil {
		mod(r)
	}
	return r
}

// versionSubsets defines subsets named after Service.Meta.version values.
func versionSubsets(names ...string) map[string]chain.ServiceResolverSubset {
	m := make(map[string]chain.ServiceResolverSubset, len(names))
	for _, n := range names {
		m[n] = chain.ServiceResolverSubset{Filter: "Service.Meta.version == " + n}
	}
	return m
}

func httpMatch(m chain.ServiceRouteHTTPMatch) *chain.ServiceRouteMatch {
	return &chain.ServiceRouteMatch{HTTP: &m}
}

func toSubset(subset string) *chain.ServiceRouteDestination {
	return &chain.ServiceRouteDestination{ServiceSubset: subset}
}

// targetName is the cluster and assignment name of a dc1 target.
func targetName(id string) string { return id + ".internal." + testTrustDomain }

// ---- instances ----

// inst is a passing instance of service in dc1 with Meta version.
func inst(id, service, addr string, port int, version string) *catalog.Stored {
	s := &catalog.Stored{
		Instance: catalog.Instance{ID: id, Service: service, Address: addr, Port: port, Datacenter: "dc1"},
		Status:   catalog.Passing,
	}
	if version != "" {
		s.Meta = map[string]string{"version": version}
	}
	return s
}

// withStatus returns s with its TTL check in status h.
func withStatus(s *catalog.Stored, h catalog.Health) *catalog.Stored {
	s.TTL = 10 * time.Second
	s.Status = h
	return s
}

// catalogOf serves the given instances by service.
func catalogOf(instances ...*catalog.Stored) Instances {
	return func(service string) []*catalog.Stored {
		var out []*catalog.Stored
		for _, s := range instances {
			if s.Service == service {
				out = append(out, s)
			}
		}
		return out
	}
}

// ---- output ----

// resourcesJSON renders r as indented JSON: each resource in its protojson
// form (re-indented, so protojson's randomized spacing never leaks into a
// golden file), then the warnings.
func resourcesJSON(t *testing.T, r *Resources) []byte {
	t.Helper()
	pj := func(m proto.Message) json.RawMessage {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatalf("protojson.Marshal: %v", err)
		}
		return b
	}
	doc := struct {
		Listener    json.RawMessage
		RouteConfig json.RawMessage
		Clusters    []json.RawMessage
		Endpoints   []json.RawMessage
		Warnings    []string `json:",omitempty"`
	}{Listener: pj(r.Listener), RouteConfig: pj(r.RouteConfig)}
	for _, c := range r.Clusters {
		doc.Clusters = append(doc.Clusters, pj(c))
	}
	for _, e := range r.Endpoints {
		doc.Endpoints = append(doc.Endpoints, pj(e))
	}
	for _, w := range r.Warnings {
		doc.Warnings = append(doc.Warnings, w.String())
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return append(b, '\n')
}
