package chain

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decodeOK decodes data and fails the test on error.
func decodeOK(t *testing.T, data string) Entry {
	t.Helper()
	e, err := DecodeEntry([]byte(data))
	if err != nil {
		t.Fatalf("DecodeEntry() = %v, want nil error", err)
	}
	return e
}

// wantDecodeError checks that err is a *DecodeError with exactly msg.
func wantDecodeError(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %q", msg)
	}
	var derr *DecodeError
	if !errors.As(err, &derr) {
		t.Fatalf("error %T (%v), want *DecodeError", err, err)
	}
	if derr.Msg != msg {
		t.Fatalf("error = %q, want %q", derr.Msg, msg)
	}
}

func TestDecodeEntryErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   string
		want string
	}{
		"no kind":                {`name = "web"`, "Payload does not contain a kind/Kind key at the top level"},
		"no kind json":           {`{"Name": "web"}`, "Payload does not contain a kind/Kind key at the top level"},
		"empty document":         {``, "Payload does not contain a kind/Kind key at the top level"},
		"other kind spelling":    {`KIND = "service-defaults"`, "Payload does not contain a kind/Kind key at the top level"},
		"kind not string":        {`{"Kind": 5}`, "Kind value in payload is not a string"},
		"kind block":             {`kind { a = 1 }`, "Kind value in payload is not a string"},
		"kind list":              {`{"kind": ["service-router"]}`, "Kind value in payload is not a string"},
		"invalid kind":           {`kind = "service-foo"`, "invalid config entry kind: service-foo"},
		"kind is case-sensitive": {`Kind = "Service-Router"`, "invalid config entry kind: Service-Router"},
		"unknown top-level key": {`kind = "service-resolver"
name = "web"
cornfig { a = 1 }`, `invalid config key "cornfig"`},
		"unknown keys combined in order": {`{"Kind":"service-resolver","Name":"web","zeta":1,"Alpha":2,
			"Subsets":{"v1":{"Filter":"","Bogus":true}},"Redirect":{"Service":"x","Datacentre":"dc2"}}`,
			`invalid config key "Alpha"; invalid config key "Redirect.Datacentre"; invalid config key "Subsets.v1.Bogus"; invalid config key "zeta"`},
		"unknown key in route": {`kind = "service-router"
name = "web"
routes = [{ match { http { path_prefix = "/" pathprefx = "/" } } }]`, `invalid config key "routes[0].match.http.pathprefx"`},
		"unknown key in header": {`{"Kind":"service-router","Name":"web","Routes":[{},{"Match":{"HTTP":{"Header":[{"Name":"a","Exakt":"1"}]}}}]}`,
			`invalid config key "Routes[1].Match.HTTP.Header[0].Exakt"`},
		"unknown key in split": {`{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":100,"Subset":"v1"}]}`,
			`invalid config key "Splits[0].Subset"`},
		"unknown key in failover": {`kind = "service-resolver"
name = "web"
failover { "*" { datacenters = ["dc2"] dcs = ["x"] } }`, `invalid config key "failover.*.dcs"`},
		"unknown key in expose path": {`{"Kind":"proxy-defaults","Expose":{"Paths":[{"Path":"/x","Port":1}]}}`,
			`invalid config key "Expose.Paths[0].Port"`},
		"namespace is not an entry field":       {`{"Kind":"service-defaults","Name":"web","Namespace":"ns"}`, `invalid config key "Namespace"`},
		"snake case only for multi-word fields": {`{"Kind":"service-defaults","Name":"web","pro_tocol":"http"}`, `invalid config key "pro_tocol"`},
		"field of another kind":                 {`{"Kind":"service-splitter","Name":"web","Routes":[]}`, `invalid config key "Routes"`},
		"same field twice": {`Kind = "service-defaults"
Name = "a"
name = "b"`, `duplicate config key "name" (same field as "Name")`},
		"same field camel and snake": {`{"Kind":"service-resolver","Name":"web","DefaultSubset":"a","default_subset":"b"}`,
			`duplicate config key "default_subset" (same field as "DefaultSubset")`},
		"several objects for one": {`{"Kind":"service-router","Name":"web","Routes":[{"Destination":[{"Service":"a"},{"Service":"b"}]}]}`,
			`config key "Routes[0].Destination" must be a single object, not a list of 2`},
		"bad duration": {`{"Kind":"service-resolver","Name":"web","ConnectTimeout":"15 parsecs"}`,
			`error decoding 'ConnectTimeout': time: unknown unit " parsecs" in duration "15 parsecs"`},
		"fractional nanoseconds": {`{"Kind":"service-resolver","Name":"web","ConnectTimeout":1.5}`,
			`error decoding 'ConnectTimeout': time: invalid duration 1.5: not an integer number of nanoseconds`},
		"negative retries": {`{"Kind":"service-router","Name":"x","Routes":[{"Destination":{"NumRetries":-1}}]}`,
			`error decoding 'Routes[0].Destination.NumRetries': -1 is not an integer between 0 and 4294967295`},
		"retries overflow": {`{"Kind":"service-router","Name":"x","Routes":[{"Destination":{"NumRetries":"4294967296"}}]}`,
			`error decoding 'Routes[0].Destination.NumRetries': 4294967296 is not an integer between 0 and 4294967295`},
		"weight not a number": {`{"Kind":"service-splitter","Name":"x","Splits":[{"Weight":"half"}]}`,
			`error decoding 'Splits[0].Weight': "half" is not a number`},
		"weight NaN": {`{"Kind":"service-splitter","Name":"x","Splits":[{"Weight":"NaN"}]}`,
			`error decoding 'Splits[0].Weight': NaN is not a finite number`},
		"weight overflows float32": {`{"Kind":"service-splitter","Name":"x","Splits":[{"Weight":1e39}]}`,
			`error decoding 'Splits[0].Weight': 1e+39 is out of range`},
		"string for object": {`{"Kind":"service-router","Name":"x","Routes":[{"Match":"all"}]}`,
			`'Routes[0].Match' expected a map, got 'string'`},
		"hcl syntax error":   {`kind = "service-router`, `failed to parse config entry: At 1:23: literal not terminated`},
		"json syntax error":  {`{"Kind": "service-router",}`, `failed to parse config entry: invalid character '}' looking for beginning of object key string`},
		"json trailing data": {`{"Kind": "service-router"} {}`, `failed to parse config entry: unexpected data after the top-level object`},
		"hcl invalid utf-8":  {"kind = \"service-defaults\"\nname = \"a\xffb\"", "failed to parse config entry: At 2:10: illegal UTF-8 encoding"},
		"hcl int overflow": {`kind = "proxy-defaults"
config { x = 99999999999999999999 }`, `failed to parse config entry: strconv.ParseInt: parsing "99999999999999999999": value out of range`},
		"too deep hcl": {`kind = "proxy-defaults"
config { x = ` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + ` }`, "document nests deeper than 64 levels"},
		"too deep json": {`{"Kind":"proxy-defaults","Config":{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`,
			"document nests deeper than 64 levels"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, err := DecodeEntry([]byte(tc.in))
			if e != nil {
				t.Errorf("DecodeEntry() entry = %#v, want nil", e)
			}
			wantDecodeError(t, err, tc.want)
		})
	}
}

// TestDecodeEntryDeepNestingNoPanic feeds pathological documents that
// must be rejected quickly instead of exhausting the stack.
func TestDecodeEntryDeepNestingNoPanic(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"hcl brackets":        strings.Repeat("[", 200000),
		"hcl blocks":          "kind = \"proxy-defaults\"\n" + strings.Repeat("a {", 200000),
		"json objects":        `{"Kind":"proxy-defaults","Config":` + strings.Repeat(`{"a":`, 200000),
		"brackets in strings": `kind = "proxy-defaults"` + "\nconfig { s = \"" + strings.Repeat("[", 1000) + "\" }",
		"brackets in heredoc": "kind = \"proxy-defaults\"\nconfig {\ns = <<EOF\n" + strings.Repeat("{", 1000) + "\nEOF\n}\n",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, err := DecodeEntry([]byte(in))
			if strings.HasPrefix(name, "brackets in") {
				if err != nil {
					t.Fatalf("DecodeEntry() = %v, want brackets in strings ignored", err)
				}
				return
			}
			var derr *DecodeError
			if e != nil || !errors.As(err, &derr) {
				t.Fatalf("DecodeEntry() = %v, %v; want *DecodeError", e, err)
			}
		})
	}
}

func TestDecodeEntry(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   string
		want Entry
	}{
		"service-defaults snake case": {`kind = "service-defaults"
name = "web"
protocol = "HTTP"
external_sni = "web.ext"
mesh_gateway { mode = "local" }
expose {
  checks = true
  paths { path = "/m" local_path_port = 8080 listener_port = "21500" protocol = "http" }
}`, &ServiceConfigEntry{Kind: KindServiceDefaults, Name: "web", Protocol: "HTTP", ExternalSNI: "web.ext",
			MeshGateway: MeshGatewayConfig{Mode: "local"},
			Expose:      ExposeConfig{Checks: true, Paths: []ExposePath{{Path: "/m", LocalPathPort: 8080, ListenerPort: 21500, Protocol: "http"}}}}},
		"service-defaults any case": {`{"kind":"service-defaults","NAME":"web","protocol":"grpc","externalsni":"x","MeshGateway":{"MODE":"none"}}`,
			&ServiceConfigEntry{Kind: KindServiceDefaults, Name: "web", Protocol: "grpc", ExternalSNI: "x", MeshGateway: MeshGatewayConfig{Mode: "none"}}},
		"proxy-defaults config verbatim": {`kind = "proxy-defaults"
name = "global"
config {
  protocol = "http"
  local_connect_timeout_ms = 1000
  Envoy_Extra { Some_Key = "v" }
  list = [1, "two", 3.5]
  blocks { a = 1 }
  blocks { b = 2 }
}
CreateIndex = 10
modify_index = 12`, &ProxyConfigEntry{Kind: KindProxyDefaults, Name: "global", Config: map[string]any{
			"protocol":                 "http",
			"local_connect_timeout_ms": 1000,
			"Envoy_Extra":              map[string]any{"Some_Key": "v"},
			"list":                     []any{1, "two", 3.5},
			"blocks":                   []any{map[string]any{"a": 1}, map[string]any{"b": 2}},
		}}},
		"proxy-defaults json config numbers": {`{"Kind":"proxy-defaults","Config":{"a":5,"b":5.5,"c":1e3,"big":1152921504606846977}}`,
			&ProxyConfigEntry{Kind: KindProxyDefaults, Config: map[string]any{"a": 5, "b": 5.5, "c": 1000.0, "big": 1152921504606846977}}},
		"router blocks collapsed, arrays kept": {`kind = "service-router"
name = "web"
routes {
  match {
    http {
      path_exact = "/x"
      header { name = "a" present = true }
      query_param { name = "q" regex = "." }
      methods = "get"
    }
  }
  destination {
    service = "api"
    service_subset = "v1"
    namespace = "default"
    prefix_rewrite = "/"
    request_timeout = "2s"
    num_retries = "3"
    retry_on_connect_failure = "true"
    retry_on_status_codes = [503, "504"]
  }
}`, &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{{
			Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{
				PathExact:  "/x",
				Header:     []ServiceRouteHTTPMatchHeader{{Name: "a", Present: true}},
				QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "q", Regex: "."}},
				Methods:    []string{"get"},
			}},
			Destination: &ServiceRouteDestination{Service: "api", ServiceSubset: "v1", Namespace: "default", PrefixRewrite: "/",
				RequestTimeout: Duration(2 * time.Second), NumRetries: 3, RetryOnConnectFailure: true, RetryOnStatusCodes: []uint32{503, 504}},
		}}}},
		"router json lists of one": {`{"Kind":"service-router","Name":"web","Routes":[{"Match":[{"HTTP":[{"PathPrefix":"/a","Header":[{"Name":"h","Exact":"1"}]}]}],"Destination":{"Service":"a","RequestTimeout":1000000000}}]}`,
			&ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{{
				Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/a", Header: []ServiceRouteHTTPMatchHeader{{Name: "h", Exact: "1"}}}},
				Destination: &ServiceRouteDestination{Service: "a", RequestTimeout: Duration(time.Second)},
			}}}},
		"router object in list keeps all keys": {`{"Kind":"service-router","Name":"x","Routes":[{"Destination":{"NumRetries":1},"Match":{"HTTP":{"Methods":["GET"]}}}]}`,
			&ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "x", Routes: []ServiceRoute{{
				Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{Methods: []string{"GET"}}},
				Destination: &ServiceRouteDestination{NumRetries: 1},
			}}}},
		"splitter weak weights": {`kind = "service-splitter"
name = "web"
splits = [
  { weight = "50.5", service_subset = "v1" },
  { weight = 49.5, service = "api", namespace = "default" },
]`, &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "web", Splits: []ServiceSplit{
			{Weight: 50.5, ServiceSubset: "v1"}, {Weight: 49.5, Service: "api", Namespace: "default"}}}},
		"splitter single split block": {`kind = "service-splitter"
name = "web"
splits { weight = 100 }`, &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "web", Splits: []ServiceSplit{{Weight: 100}}}},
		"resolver snake case": {`kind = "service-resolver"
name = "web"
default_subset = "v1"
connect_timeout = 5000000000
subsets {
  v1 { filter = "Service.Meta.version == v1" only_passing = true }
}
subsets {
  v2 { filter = "Service.Meta.version == v2" }
}
redirect { service = "api" service_subset = "v1" namespace = "ns" datacenter = "dc2" }
meta { team = "a" n = 5 }`, &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "web", DefaultSubset: "v1",
			ConnectTimeout: Duration(5 * time.Second),
			Subsets: map[string]ServiceResolverSubset{
				"v1": {Filter: "Service.Meta.version == v1", OnlyPassing: true},
				"v2": {Filter: "Service.Meta.version == v2"},
			},
			Redirect: &ServiceResolverRedirect{Service: "api", ServiceSubset: "v1", Namespace: "ns", Datacenter: "dc2"},
			Meta:     map[string]string{"team": "a", "n": "5"},
		}},
		"resolver failover": {`{"kind":"service-resolver","name":"web","failover":{"*":{"service":"b","service_subset":"s","namespace":"n","datacenters":"dc2"}}}`,
			&ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "web", Failover: map[string]ServiceResolverFailover{
				"*": {Service: "b", ServiceSubset: "s", Namespace: "n", Datacenters: []string{"dc2"}}}}},
		"empty list is empty object": {`{"Kind":"service-router","Name":"web","Routes":[{"Match":[]}]}`,
			&ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{{Match: &ServiceRouteMatch{}}}}},
		"invalid utf-8 replaced json": {"{\"Kind\":\"service-defaults\",\"Name\":\"a\xffb\"}",
			&ServiceConfigEntry{Kind: KindServiceDefaults, Name: "a\uFFFDb"}},
		"name weakly typed": {`{"Kind":"service-defaults","Name":42}`, &ServiceConfigEntry{Kind: KindServiceDefaults, Name: "42"}},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := decodeOK(t, tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeEntry() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeSnakeCaseTables decodes every snake_case key Consul 1.6
// translated for each kind (docs/discovery-chain.md, Decoding) and checks
// it lands in its field.
func TestDecodeSnakeCaseTables(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   string
		want Entry
	}{
		"proxy-defaults": {`kind = "proxy-defaults"
mesh_gateway { mode = "local" }
expose { paths = [{ local_path_port = 1, listener_port = 2 }] }`,
			&ProxyConfigEntry{Kind: KindProxyDefaults, MeshGateway: MeshGatewayConfig{Mode: "local"},
				Expose: ExposeConfig{Paths: []ExposePath{{LocalPathPort: 1, ListenerPort: 2}}}}},
		"service-defaults": {`kind = "service-defaults"
name = "s"
mesh_gateway { mode = "remote" }
external_sni = "x"`, &ServiceConfigEntry{Kind: KindServiceDefaults, Name: "s", MeshGateway: MeshGatewayConfig{Mode: "remote"}, ExternalSNI: "x"}},
		"service-router": {`kind = "service-router"
name = "s"
routes = [{
  match { http {
    path_exact = "/a" path_prefix = "/b" path_regex = "c"
    query_param = [{ name = "q" exact = "1" }]
  } }
  destination {
    service_subset = "v1" prefix_rewrite = "/" request_timeout = "1s" num_retries = 2
    retry_on_connect_failure = true retry_on_status_codes = [500]
  }
}]`, &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "s", Routes: []ServiceRoute{{
			Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathExact: "/a", PathPrefix: "/b", PathRegex: "c",
				QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "q", Exact: "1"}}}},
			Destination: &ServiceRouteDestination{ServiceSubset: "v1", PrefixRewrite: "/", RequestTimeout: Duration(time.Second),
				NumRetries: 2, RetryOnConnectFailure: true, RetryOnStatusCodes: []uint32{500}},
		}}}},
		"service-splitter": {`kind = "service-splitter"
name = "s"
splits = [{ weight = 100, service_subset = "v1" }]`,
			&ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "s", Splits: []ServiceSplit{{Weight: 100, ServiceSubset: "v1"}}}},
		"service-resolver": {`kind = "service-resolver"
name = "s"
default_subset = "v1"
connect_timeout = "3s"
subsets = { v1 = { only_passing = true } }
redirect { service = "t" service_subset = "v1" }`, &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "s",
			DefaultSubset: "v1", ConnectTimeout: Duration(3 * time.Second),
			Subsets:  map[string]ServiceResolverSubset{"v1": {OnlyPassing: true}},
			Redirect: &ServiceResolverRedirect{Service: "t", ServiceSubset: "v1"}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, decodeOK(t, tc.in)); diff != "" {
				t.Errorf("DecodeEntry() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeSpellings: three spellings of one resolver (HCL snake_case, HCL
// CamelCase, JSON) decode to the same entry (docs/discovery-chain.md,
// Decoding).
func TestDecodeSpellings(t *testing.T) {
	t.Parallel()
	spellings := map[string]string{
		"hcl snake_case": `kind = "service-resolver"
name = "web"
default_subset  = "v1"
connect_timeout = "15s"
subsets = { v1 = { filter = "Service.Meta.version == v1" } }`,
		"hcl CamelCase": `Kind = "service-resolver"
Name = "web"
DefaultSubset  = "v1"
ConnectTimeout = "15s"
Subsets = { v1 = { Filter = "Service.Meta.version == v1" } }`,
		"json": `{"Kind":"service-resolver","Name":"web","DefaultSubset":"v1","ConnectTimeout":"15s",
 "Subsets":{"v1":{"Filter":"Service.Meta.version == v1"}}}`,
	}
	want := &ServiceResolverConfigEntry{
		Kind:           KindServiceResolver,
		Name:           "web",
		DefaultSubset:  "v1",
		ConnectTimeout: Duration(15 * time.Second),
		Subsets:        map[string]ServiceResolverSubset{"v1": {Filter: "Service.Meta.version == v1"}},
	}
	for name, in := range spellings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := decodeOK(t, in)
			if diff := cmp.Diff(Entry(want), got); diff != "" {
				t.Errorf("DecodeEntry(%s) mismatch (-want +got):\n%s", name, diff)
			}
			if err := Prepare(got); err != nil {
				t.Errorf("Prepare() = %v", err)
			}
		})
	}
}

// TestDecodeSeeds decodes and validates the documentation examples kept in
// testdata/entries (examples from the Consul documentation).
func TestDecodeSeeds(t *testing.T) {
	t.Parallel()
	canary := func(m ServiceRouteHTTPMatch) ServiceRoute {
		return ServiceRoute{Match: &ServiceRouteMatch{HTTP: &m}, Destination: &ServiceRouteDestination{Service: "web", ServiceSubset: "canary"}}
	}
	want := map[string]Entry{
		"router_admin.hcl": &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{{
			Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/admin"}},
			Destination: &ServiceRouteDestination{Service: "admin"},
		}}},
		"router_canary.hcl": &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{
			canary(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{{Name: "x-debug", Exact: "1"}}}),
			canary(ServiceRouteHTTPMatch{QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "x-debug", Exact: "1"}}}),
		}},
		"splitter_subsets.hcl": &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "a", Splits: []ServiceSplit{
			{Weight: 50, ServiceSubset: "v1"}, {Weight: 50, ServiceSubset: "v2"}}},
		"splitter_services.json": &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "b", Splits: []ServiceSplit{
			{Weight: 50, Service: "a"}, {Weight: 50, Service: "b"}}},
		"splitter_canary.hcl": &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "web", Splits: []ServiceSplit{
			{Weight: 90, ServiceSubset: "v1"}, {Weight: 10, ServiceSubset: "v2"}}},
		"resolver_full.hcl": &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "web", DefaultSubset: "v1",
			ConnectTimeout: Duration(15 * time.Second),
			Subsets: map[string]ServiceResolverSubset{
				"v1": {Filter: "Service.Meta.version == v1"},
				"v2": {Filter: "Service.Meta.version == v2", OnlyPassing: true},
			},
			Failover: map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc3", "dc4"}}},
		},
		"proxy_defaults.hcl": &ProxyConfigEntry{Kind: KindProxyDefaults, Name: "global",
			Config: map[string]any{
				"protocol":                 "http",
				"local_connect_timeout_ms": 1000,
				"envoy_extra":              map[string]any{"Some_Key": "kept verbatim"},
			},
			MeshGateway: MeshGatewayConfig{Mode: "local"},
			Expose: ExposeConfig{Checks: true, Paths: []ExposePath{
				{Path: "/metrics", LocalPathPort: 8080, ListenerPort: 21500, Protocol: "http"}}},
		},
		"service_defaults.hcl": &ServiceConfigEntry{Kind: KindServiceDefaults, Name: "web", Protocol: "http",
			ExternalSNI: "web.example.com", MeshGateway: MeshGatewayConfig{Mode: "remote"}, Meta: map[string]string{"owner": "team-a"}},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "entries", "*"))
	if err != nil || len(files) != len(want) {
		t.Fatalf("testdata/entries has %d files (%v), want %d", len(files), err, len(want))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeOK(t, string(data))
			if err := Prepare(got); err != nil {
				t.Fatalf("Prepare() = %v", err)
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("decoded %s mismatch (-want +got):\n%s", name, diff)
			}
			assertRoundTrip(t, got)
		})
	}
}

// assertRoundTrip checks that e (prepared) survives EncodeEntry through
// both decoders unchanged.
func assertRoundTrip(t *testing.T, e Entry) {
	t.Helper()
	enc, err := EncodeEntry(e)
	if err != nil {
		t.Fatalf("EncodeEntry() = %v", err)
	}
	for name, decode := range map[string]func([]byte) (Entry, error){"DecodeCanonical": DecodeCanonical, "DecodeEntry": DecodeEntry} {
		got, err := decode(enc)
		if err != nil {
			t.Fatalf("%s(%s) = %v", name, enc, err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("%s(EncodeEntry(e)) mismatch (-want +got):\n%s", name, diff)
		}
		if !EqualEntries(e, got) {
			t.Errorf("EqualEntries(e, %s(EncodeEntry(e))) = false", name)
		}
		if err := Prepare(got); err != nil {
			t.Errorf("Prepare(%s(EncodeEntry(e))) = %v", name, err)
		}
	}
}

func TestDecodeMap(t *testing.T) {
	t.Parallel()
	var raw map[string]any
	if err := json.Unmarshal([]byte(`{"kind":"service-splitter","name":"web","splits":[{"weight":60,"service_subset":"v1"},{"weight":40}]}`), &raw); err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(raw)
	got, err := DecodeMap(raw)
	if err != nil {
		t.Fatalf("DecodeMap() = %v", err)
	}
	want := &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "web", Splits: []ServiceSplit{{Weight: 60, ServiceSubset: "v1"}, {Weight: 40}}}
	if diff := cmp.Diff(Entry(want), got); diff != "" {
		t.Errorf("DecodeMap() mismatch (-want +got):\n%s", diff)
	}
	if after, _ := json.Marshal(raw); string(after) != string(before) {
		t.Errorf("DecodeMap modified its input: %s -> %s", before, after)
	}
}

func TestDecodeMapInvalidUTF8(t *testing.T) {
	t.Parallel()
	got, err := DecodeMap(map[string]any{"Kind": "service-defaults", "Name": "a\xff\xfeb",
		"Meta": map[string]any{"k\xff": "v\xff"}})
	if err != nil {
		t.Fatalf("DecodeMap() = %v", err)
	}
	want := &ServiceConfigEntry{Kind: KindServiceDefaults, Name: "a\uFFFDb", Meta: map[string]string{"k\uFFFD": "v\uFFFD"}}
	if diff := cmp.Diff(Entry(want), got); diff != "" {
		t.Errorf("DecodeMap() mismatch (-want +got):\n%s", diff)
	}
	_, err = DecodeMap(map[string]any{"Kind": "proxy-defaults", "Config": map[string]any{"k\xff": 1, "k\xfe": 2}})
	wantDecodeError(t, err, "duplicate config key \"k\uFFFD\" after replacing invalid UTF-8")
}

func TestDecodeMapErrors(t *testing.T) {
	t.Parallel()
	self := map[string]any{"Kind": "proxy-defaults"}
	cfg := map[string]any{}
	cfg["loop"] = cfg
	self["Config"] = cfg
	cases := map[string]struct {
		raw  map[string]any
		want string
	}{
		"nil map":           {nil, "Payload does not contain a kind/Kind key at the top level"},
		"self reference":    {self, "document nests deeper than 64 levels"},
		"unsupported value": {map[string]any{"Kind": "proxy-defaults", "Config": map[string]any{"f": func() {}}}, "unsupported value of type func()"},
		"non-finite float":  {map[string]any{"Kind": "proxy-defaults", "Config": map[string]any{"f": veNaN()}}, "invalid number NaN"},
		"int keyed map":     {map[string]any{"Kind": "proxy-defaults", "Config": map[int]any{1: 2}}, "unsupported value of type map[int]interface {}"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeMap(tc.raw)
			wantDecodeError(t, err, tc.want)
		})
	}
}

func TestEncodeEntryCanonical(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		entry Entry
		want  string
	}{
		"resolver": {&ServiceResolverConfigEntry{Name: "web", DefaultSubset: "v1", ConnectTimeout: Duration(15 * time.Second),
			Subsets: map[string]ServiceResolverSubset{"v2": {Filter: "Service.Meta.version == v2"}, "v1": {Filter: "a && b < c"}}},
			`{"Kind":"service-resolver","Name":"web","DefaultSubset":"v1","Subsets":{"v1":{"Filter":"a && b < c"},"v2":{"Filter":"Service.Meta.version == v2"}},"ConnectTimeout":"15s"}`},
		"router durations": {&ServiceRouterConfigEntry{Name: "web", Routes: []ServiceRoute{{Destination: &ServiceRouteDestination{RequestTimeout: Duration(1500 * time.Millisecond)}}}},
			`{"Kind":"service-router","Name":"web","Routes":[{"Destination":{"RequestTimeout":"1.5s"}}]}`},
		"empty collections omitted": {&ServiceSplitterConfigEntry{Name: "web", Splits: []ServiceSplit{}, Meta: map[string]string{}},
			`{"Kind":"service-splitter","Name":"web"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := EncodeEntry(tc.entry)
			if err != nil {
				t.Fatalf("EncodeEntry() = %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("EncodeEntry() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEncodeEntryErrors(t *testing.T) {
	t.Parallel()
	if _, err := EncodeEntry(nil); !errors.Is(err, ErrNilEntry) {
		t.Errorf("EncodeEntry(nil) = %v, want ErrNilEntry", err)
	}
	if _, err := EncodeEntry((*ServiceConfigEntry)(nil)); !errors.Is(err, ErrNilEntry) {
		t.Errorf("EncodeEntry(typed nil) = %v, want ErrNilEntry", err)
	}
	if _, err := EncodeEntry(&ProxyConfigEntry{Config: map[string]any{"c": make(chan int)}}); err == nil {
		t.Errorf("EncodeEntry(chan in Config) = nil error")
	}
}

func roundTripEntries() map[string]Entry {
	return map[string]Entry{
		"service-defaults": &ServiceConfigEntry{Kind: KindServiceDefaults, Name: "web", Protocol: "http", ExternalSNI: "x",
			MeshGateway: MeshGatewayConfig{Mode: "local"}, Meta: map[string]string{"a": "b"},
			Expose: ExposeConfig{Checks: true, Paths: []ExposePath{{Path: "/p", LocalPathPort: 1, ListenerPort: 2, Protocol: "http2"}}}},
		"proxy-defaults": &ProxyConfigEntry{Kind: KindProxyDefaults, Name: "global",
			Config: map[string]any{"protocol": "http", "n": 1, "f": 2.5, "nested": map[string]any{"l": []any{1, "x", true, nil}}}},
		"service-router": &ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{
			{
				Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/api",
					Header:     []ServiceRouteHTTPMatchHeader{{Name: "h", Suffix: "s", Invert: true}},
					QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "q", Present: true}},
					Methods:    []string{"GET", "PUT"}}},
				Destination: &ServiceRouteDestination{Service: "api", ServiceSubset: "v2", Namespace: "default", PrefixRewrite: "/",
					RequestTimeout: Duration(3 * time.Second), NumRetries: 4, RetryOnConnectFailure: true, RetryOnStatusCodes: []uint32{502, 503}},
			},
			{Destination: &ServiceRouteDestination{Service: "other"}},
		}},
		"service-splitter": &ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "web", Splits: []ServiceSplit{
			{Weight: 33.33, Service: "a"}, {Weight: 33.33, Service: "b", ServiceSubset: "s"}, {Weight: 33.34, Namespace: "n"}}},
		"service-resolver": &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "web", DefaultSubset: "v1",
			Subsets: map[string]ServiceResolverSubset{"v1": {Filter: `Service.Meta.version == "v1"`}, "v2": {OnlyPassing: true}},
			Failover: map[string]ServiceResolverFailover{
				"*":  {Datacenters: []string{"dc2"}},
				"v1": {Service: "backup", ServiceSubset: "x", Namespace: "default", Datacenters: []string{"dc3"}},
			},
			ConnectTimeout: Duration(1234 * time.Millisecond), Meta: map[string]string{"k": "v"}},
		"service-resolver redirect": &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "web",
			Redirect: &ServiceResolverRedirect{Service: "api", ServiceSubset: "v1", Namespace: "default", Datacenter: "dc2"}},
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for name, e := range roundTripEntries() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := Prepare(e); err != nil {
				t.Fatalf("Prepare() = %v", err)
			}
			assertRoundTrip(t, e)
		})
	}
}

func TestDecodeCanonicalErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in, want string
	}{
		"unknown field": {`{"Kind":"service-defaults","Name":"web","Bogus":1}`,
			`failed to decode canonical service-defaults: json: unknown field "Bogus"`},
		"trailing data": {`{"Kind":"service-defaults","Name":"web"} {}`,
			"failed to decode canonical entry: invalid character '{' after top-level value"},
		"no kind":      {`{"Name":"web"}`, "Payload does not contain a kind/Kind key at the top level"},
		"bad kind":     {`{"Kind":"nope"}`, "invalid config entry kind: nope"},
		"not json":     {`Kind = "service-defaults"`, "failed to decode canonical entry: invalid character 'K' looking for beginning of value"},
		"kind not str": {`{"Kind":1}`, "failed to decode canonical entry: json: cannot unmarshal number into Go struct field .Kind of type string"},
		"bad duration": {`{"Kind":"service-resolver","ConnectTimeout":"x"}`,
			`failed to decode canonical service-resolver: invalid duration "x": time: invalid duration "x"`},
		"wrong type": {`{"Kind":"service-splitter","Splits":[{"Weight":"50"}]}`,
			"failed to decode canonical service-splitter: json: cannot unmarshal string into Go struct field ServiceSplit.Splits.Weight of type float32"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeCanonical([]byte(tc.in))
			wantDecodeError(t, err, tc.want)
		})
	}
}

func TestEqualEntries(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		a, b Entry
		want bool
	}{
		"both nil":  {nil, nil, true},
		"one nil":   {&ServiceConfigEntry{Name: "a"}, nil, false},
		"typed nil": {(*ServiceConfigEntry)(nil), nil, true},
		"same":      {&ServiceConfigEntry{Name: "a", Protocol: "http"}, &ServiceConfigEntry{Name: "a", Protocol: "http"}, true},
		"normalized protocol": {&ServiceConfigEntry{Name: "a", Protocol: "HTTP"},
			&ServiceConfigEntry{Kind: KindServiceDefaults, Name: "a", Protocol: "http"}, true},
		"nil vs empty maps": {&ServiceResolverConfigEntry{Name: "a", Meta: map[string]string{}, Subsets: map[string]ServiceResolverSubset{}},
			&ServiceResolverConfigEntry{Name: "a"}, true},
		"nil vs empty slices": {&ServiceRouterConfigEntry{Name: "a", Routes: []ServiceRoute{}}, &ServiceRouterConfigEntry{Name: "a"}, true},
		"rounded weights": {veSplitter(ServiceSplit{Weight: 99.999}, ServiceSplit{Weight: 0.001, Service: "b"}),
			veSplitter(ServiceSplit{Weight: 100}, ServiceSplit{Weight: 0, Service: "b"}), true},
		"config int vs float": {&ProxyConfigEntry{Config: map[string]any{"n": 5}}, &ProxyConfigEntry{Name: "global", Config: map[string]any{"n": 5.0}}, true},
		"different kinds":     {&ServiceConfigEntry{Name: "a"}, &ServiceResolverConfigEntry{Name: "a"}, false},
		"different names":     {&ServiceConfigEntry{Name: "a"}, &ServiceConfigEntry{Name: "A"}, false},
		"different field":     {&ServiceResolverConfigEntry{Name: "a"}, &ServiceResolverConfigEntry{Name: "a", DefaultSubset: "v1"}, false},
		"different order":     {veSplitter(ServiceSplit{Weight: 50, Service: "a"}, ServiceSplit{Weight: 50}), veSplitter(ServiceSplit{Weight: 50}, ServiceSplit{Weight: 50, Service: "a"}), false},
		"bad proxy names":     {&ProxyConfigEntry{Name: "x"}, &ProxyConfigEntry{Name: "y"}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var before []byte
			if !entryIsNil(tc.a) {
				before, _ = json.Marshal(tc.a)
			}
			if got := EqualEntries(tc.a, tc.b); got != tc.want {
				t.Errorf("EqualEntries() = %v, want %v", got, tc.want)
			}
			if got := EqualEntries(tc.b, tc.a); got != tc.want {
				t.Errorf("EqualEntries(b, a) = %v, want %v", got, tc.want)
			}
			if !entryIsNil(tc.a) {
				if after, _ := json.Marshal(tc.a); string(after) != string(before) {
					t.Errorf("EqualEntries modified its argument: %s -> %s", before, after)
				}
			}
		})
	}
}

func TestNewEntry(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		e, err := NewEntry(k, "web")
		if err != nil {
			t.Fatalf("NewEntry(%q) = %v", k, err)
		}
		if e.GetKind() != k || e.GetName() != "web" {
			t.Errorf("NewEntry(%q) = %s/%s", k, e.GetKind(), e.GetName())
		}
	}
	_, err := NewEntry("nope", "x")
	wantDecodeError(t, err, "invalid config entry kind: nope")

	// A delete of proxy-defaults/foo is refused by Normalize
	// (docs/discovery-chain.md, proxy-defaults).
	e, _ := NewEntry(KindProxyDefaults, "foo")
	var verr *ValidationError
	if err := e.Normalize(); !errors.As(err, &verr) || verr.Msg != `invalid name ("foo"), only "global" is supported` {
		t.Errorf("Normalize(proxy-defaults/foo) = %v", err)
	}
}

func TestSnakeCase(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ServiceSubset": "service_subset", "ExternalSNI": "external_sni", "HTTP": "http", "MeshGateway": "mesh_gateway",
		"RetryOnStatusCodes": "retry_on_status_codes", "LocalPathPort": "local_path_port", "Name": "name", "QueryParam": "query_param",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// Benchmarks for the write path (DecodeEntry + Prepare + EncodeEntry) and
// the FSM path (DecodeCanonical):
//
//	go test ./chain -run '^$' -bench 'Entry|Canonical' -benchmem
func BenchmarkDecodeEntryHCL(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "entries", "router_canary.hcl"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e, err := DecodeEntry(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := Prepare(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEntryJSON(b *testing.B) {
	data, err := EncodeEntry(roundTripEntries()["service-resolver"])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntry(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCanonical(b *testing.B) {
	data, err := EncodeEntry(roundTripEntries()["service-resolver"])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCanonical(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEntry(b *testing.B) {
	e := roundTripEntries()["service-router"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEntry(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEqualEntries(b *testing.B) {
	x, y := roundTripEntries()["service-router"], roundTripEntries()["service-router"]
	b.ReportAllocs()
	for b.Loop() {
		if !EqualEntries(x, y) {
			b.Fatal("not equal")
		}
	}
}
