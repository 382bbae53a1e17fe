package chain

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Tests of the entry fields later Consul versions added
// (docs/discovery-chain.md, "Later entry features").

const laterRouterHCL = `
kind = "service-router"
name = "web"
meta { owner = "team-a" }
routes = [
  {
    match { http { path_prefix = "/api" methods = ["get", "POST"] } }
    destination {
      service = "api"
      request_timeout = "3s"
      idle_timeout = "30s"
      num_retries = 2
      retry_on = ["unavailable", "cancelled"]
      retry_on_status_codes = [503]
      request_headers {
        add { x-from = "router" }
        set { x-mode = "canary" }
        remove = ["x-debug"]
      }
      response_headers { set { x-served-by = "api" } }
    }
  },
]`

const laterRouterJSON = `{
  "Kind": "service-router", "Name": "web", "Meta": {"owner": "team-a"},
  "Routes": [{
    "Match": {"HTTP": {"PathPrefix": "/api", "Methods": ["get", "POST"]}},
    "Destination": {
      "Service": "api", "RequestTimeout": "3s", "IdleTimeout": "30s", "NumRetries": 2,
      "RetryOn": ["unavailable", "cancelled"], "RetryOnStatusCodes": [503],
      "RequestHeaders": {"Add": {"x-from": "router"}, "Set": {"x-mode": "canary"}, "Remove": ["x-debug"]},
      "ResponseHeaders": {"Set": {"x-served-by": "api"}}
    }
  }]
}`

const laterSplitterHCL = `
kind = "service-splitter"
name = "web"
splits = [
  { weight = 90, service_subset = "v1", request_headers { set { x-leg = "v1" } } },
  { weight = 10, service_subset = "v2", response_headers { remove = ["x-internal"] } },
]`

const laterSplitterJSON = `{
  "Kind": "service-splitter", "Name": "web",
  "Splits": [
    {"Weight": 90, "ServiceSubset": "v1", "RequestHeaders": {"Set": {"x-leg": "v1"}}},
    {"Weight": 10, "ServiceSubset": "v2", "ResponseHeaders": {"Remove": ["x-internal"]}}
  ]
}`

const laterResolverHCL = `
kind = "service-resolver"
name = "web"
request_timeout = "20s"
subsets { v1 { filter = "Service.Meta.version == v1" } }
failover {
  "*" {
    targets = [
      { service = "web-backup" },
      { service_subset = "v1", datacenter = "dc2" },
    ]
  }
}
load_balancer {
  policy = "ring_hash"
  ring_hash_config { minimum_ring_size = 1024 maximum_ring_size = 8192 }
  hash_policies = [
    { field = "header", field_value = "x-user", terminal = true },
    { field = "cookie", field_value = "session", cookie_config { ttl = "1h" path = "/" } },
    { field = "query_parameter", field_value = "id" },
    { source_ip = true },
  ]
}`

const laterResolverJSON = `{
  "Kind": "service-resolver", "Name": "web", "RequestTimeout": "20s",
  "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}},
  "Failover": {"*": {"Targets": [{"Service": "web-backup"}, {"ServiceSubset": "v1", "Datacenter": "dc2"}]}},
  "LoadBalancer": {
    "Policy": "ring_hash",
    "RingHashConfig": {"MinimumRingSize": 1024, "MaximumRingSize": 8192},
    "HashPolicies": [
      {"Field": "header", "FieldValue": "x-user", "Terminal": true},
      {"Field": "cookie", "FieldValue": "session", "CookieConfig": {"TTL": "1h", "Path": "/"}},
      {"Field": "query_parameter", "FieldValue": "id"},
      {"SourceIP": true}
    ]
  }
}`

const laterServiceDefaultsHCL = `
kind = "service-defaults"
name = "web"
protocol = "http"
external_sni = "web.example.com"
mesh_gateway { mode = "local" }
expose {
  checks = true
  paths = [{ path = "/health", local_path_port = 8080, listener_port = 21500, protocol = "http2" }]
}
meta { team = "a" }`

const laterServiceDefaultsJSON = `{
  "Kind": "service-defaults", "Name": "web", "Protocol": "http", "ExternalSNI": "web.example.com",
  "MeshGateway": {"Mode": "local"},
  "Expose": {"Checks": true, "Paths": [{"Path": "/health", "LocalPathPort": 8080, "ListenerPort": 21500, "Protocol": "http2"}]},
  "Meta": {"team": "a"}
}`

func TestDecodeLaterFieldsBothSpellings(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ hcl, json string }{
		"router":           {laterRouterHCL, laterRouterJSON},
		"splitter":         {laterSplitterHCL, laterSplitterJSON},
		"resolver":         {laterResolverHCL, laterResolverJSON},
		"service-defaults": {laterServiceDefaultsHCL, laterServiceDefaultsJSON},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fromHCL, err := DecodeEntry([]byte(tc.hcl))
			if err != nil {
				t.Fatalf("DecodeEntry(HCL) error = %v", err)
			}
			fromJSON, err := DecodeEntry([]byte(tc.json))
			if err != nil {
				t.Fatalf("DecodeEntry(JSON) error = %v", err)
			}
			if diff := cmp.Diff(fromJSON, fromHCL); diff != "" {
				t.Errorf("HCL and JSON decode differently (-json +hcl):\n%s", diff)
			}
			if err := Prepare(fromHCL); err != nil {
				t.Fatalf("Prepare() = %v", err)
			}
			// The canonical form round-trips through the strict decoder.
			raw, err := EncodeEntry(fromHCL)
			if err != nil {
				t.Fatalf("EncodeEntry() = %v", err)
			}
			back, err := DecodeCanonical(raw)
			if err != nil {
				t.Fatalf("DecodeCanonical(%s) = %v", raw, err)
			}
			if diff := cmp.Diff(fromHCL, back); diff != "" {
				t.Errorf("canonical round trip differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeLaterFieldsValues(t *testing.T) {
	t.Parallel()
	e, err := DecodeEntry([]byte(laterResolverHCL))
	if err != nil {
		t.Fatal(err)
	}
	r := e.(*ServiceResolverConfigEntry)
	want := &LoadBalancer{
		Policy:         LBPolicyRingHash,
		RingHashConfig: &RingHashConfig{MinimumRingSize: 1024, MaximumRingSize: 8192},
		HashPolicies: []HashPolicy{
			{Field: HashPolicyHeader, FieldValue: "x-user", Terminal: true},
			{Field: HashPolicyCookie, FieldValue: "session", CookieConfig: &CookieConfig{TTL: Duration(time.Hour), Path: "/"}},
			{Field: HashPolicyQueryParam, FieldValue: "id"},
			{SourceIP: true},
		},
	}
	if diff := cmp.Diff(want, r.LoadBalancer); diff != "" {
		t.Errorf("LoadBalancer (-want +got):\n%s", diff)
	}
	if r.RequestTimeout != Duration(20*time.Second) {
		t.Errorf("RequestTimeout = %v, want 20s", time.Duration(r.RequestTimeout))
	}
	wantTargets := []ServiceResolverFailoverTarget{{Service: "web-backup"}, {ServiceSubset: "v1", Datacenter: "dc2"}}
	if diff := cmp.Diff(wantTargets, r.Failover["*"].Targets); diff != "" {
		t.Errorf("Failover targets (-want +got):\n%s", diff)
	}
	if got := r.References(); !cmp.Equal(got, []string{"web-backup"}) {
		t.Errorf("References() = %v, want [web-backup]", got)
	}
}

func TestValidateLaterFields(t *testing.T) {
	t.Parallel()
	res := func(mod func(r *ServiceResolverConfigEntry)) *ServiceResolverConfigEntry { return resolver("web", mod) }
	lb := func(l *LoadBalancer) *ServiceResolverConfigEntry {
		return res(func(r *ServiceResolverConfigEntry) { r.LoadBalancer = l })
	}
	dest := func(d *ServiceRouteDestination) *ServiceRouterConfigEntry {
		return router("web", ServiceRoute{Destination: d})
	}
	runEntryValidationCases(t, map[string]entryValidationCase{
		"retry conditions ok": {dest(&ServiceRouteDestination{RetryOn: []string{"5xx", "gateway-error", "reset",
			"connect-failure", "envoy-ratelimited", "retriable-4xx", "refused-stream", "cancelled",
			"deadline-exceeded", "internal", "resource-exhausted", "unavailable"}}), ""},
		"bad retry condition": {dest(&ServiceRouteDestination{RetryOn: []string{"unavailable", "sometimes"}}),
			`Route[0] contains an invalid retry condition: "sometimes"`},
		"negative request timeout": {res(func(r *ServiceResolverConfigEntry) { r.RequestTimeout = -1 }),
			"Bad RequestTimeout '-1ns', must be >= 0"},
		"every policy": {lb(&LoadBalancer{Policy: LBPolicyMaglev, HashPolicies: []HashPolicy{{SourceIP: true}}}), ""},
		"bad policy":   {lb(&LoadBalancer{Policy: "fastest"}), `Bad LoadBalancer policy: "fastest" is not supported`},
		"ring config for other policy": {lb(&LoadBalancer{Policy: LBPolicyMaglev, RingHashConfig: &RingHashConfig{}}),
			`Bad LoadBalancer configuration. RingHashConfig specified for incompatible load balancing policy "maglev"`},
		"least request config for other policy": {lb(&LoadBalancer{Policy: LBPolicyRandom, LeastRequestConfig: &LeastRequestConfig{ChoiceCount: 2}}),
			`Bad LoadBalancer configuration. LeastRequestConfig specified for incompatible load balancing policy "random"`},
		"hash policies need hashing": {lb(&LoadBalancer{Policy: LBPolicyRoundRobin, HashPolicies: []HashPolicy{{SourceIP: true}}}),
			`Bad LoadBalancer configuration: HashPolicies specified for non-hash-based Policy: "round_robin"`},
		"bad hash field": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{Field: "body", FieldValue: "x"}}}),
			`Bad LoadBalancer HashPolicy[0]: "body" is not a supported field`},
		"source ip and field": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{Field: "header", FieldValue: "x", SourceIP: true}}}),
			`Bad LoadBalancer HashPolicy[0]: A single hash policy cannot hash both a source address and a "header"`},
		"source ip and value": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{FieldValue: "x", SourceIP: true}}}),
			`Bad LoadBalancer HashPolicy[0]: A FieldValue cannot be specified when hashing SourceIP`},
		"field without value": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{SourceIP: true}, {Field: "cookie"}}}),
			`Bad LoadBalancer HashPolicy[1]: Field "cookie" was specified without a FieldValue`},
		"value without field": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{FieldValue: "x"}}}),
			`Bad LoadBalancer HashPolicy[0]: FieldValue requires a Field to apply to`},
		"cookie config on header": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{Field: "header", FieldValue: "x", CookieConfig: &CookieConfig{}}}}),
			`Bad LoadBalancer HashPolicy[0]: cookie_config provided for "header"`},
		"session cookie with ttl": {lb(&LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{Field: "cookie", FieldValue: "x", CookieConfig: &CookieConfig{Session: true, TTL: Duration(time.Second)}}}}),
			`Bad LoadBalancer HashPolicy[0]: a session cookie cannot have an associated TTL`},
		"ring too large": {lb(&LoadBalancer{Policy: LBPolicyRingHash, RingHashConfig: &RingHashConfig{MaximumRingSize: MaxRingSize + 1}}),
			"Bad LoadBalancer RingHashConfig: ring sizes must be at most 8388608"},
		"ring min above max": {lb(&LoadBalancer{Policy: LBPolicyRingHash, RingHashConfig: &RingHashConfig{MinimumRingSize: 10, MaximumRingSize: 5}}),
			"Bad LoadBalancer RingHashConfig: MinimumRingSize 10 (1024 when unset) is greater than MaximumRingSize 5"},
		"ring default min above max": {lb(&LoadBalancer{Policy: LBPolicyRingHash, RingHashConfig: &RingHashConfig{MaximumRingSize: 512}}),
			"Bad LoadBalancer RingHashConfig: MinimumRingSize 0 (1024 when unset) is greater than MaximumRingSize 512"},
		"choice count one": {lb(&LoadBalancer{Policy: LBPolicyLeastRequest, LeastRequestConfig: &LeastRequestConfig{ChoiceCount: 1}}),
			"Bad LoadBalancer LeastRequestConfig: ChoiceCount must be 0 (the default) or at least 2"},
		"failover targets ok": {res(func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Targets: []ServiceResolverFailoverTarget{{Service: "b"}, {Datacenter: "dc2"}}}}
		}), ""},
		"targets with datacenters": {res(func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}, Targets: []ServiceResolverFailoverTarget{{Service: "b"}}}}
		}), `Bad Failover["*"]: Targets cannot be set with Datacenters`},
		"targets with subset": {res(func(r *ServiceResolverConfigEntry) {
			r.Subsets = subsets("v1")
			r.Failover = map[string]ServiceResolverFailover{"*": {ServiceSubset: "v1", Targets: []ServiceResolverFailoverTarget{{Service: "b"}}}}
		}), `Bad Failover["*"]: Targets cannot be set with ServiceSubset`},
		"targets with service": {res(func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Service: "b", Targets: []ServiceResolverFailoverTarget{{Service: "c"}}}}
		}), `Bad Failover["*"]: Targets cannot be set with Service`},
		"target with unknown own subset": {res(func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Targets: []ServiceResolverFailoverTarget{{Service: "b"}, {ServiceSubset: "v9"}}}}
		}), `Bad Failover["*"].Targets[1]: ServiceSubset "v9" is not a valid subset of "web"`},
	})
}

func TestCompileLaterFeatures(t *testing.T) {
	t.Parallel()
	t.Run("RouterHeadersAndRetries", func(t *testing.T) {
		t.Parallel()
		e, err := DecodeEntry([]byte(laterRouterHCL))
		if err != nil {
			t.Fatal(err)
		}
		if err := Prepare(e); err != nil {
			t.Fatal(err)
		}
		compileGolden(t, "LaterRouterHeadersAndRetries", "web", e, proxyDefaults("http"))
	})
	t.Run("SplitterHeadersNested", func(t *testing.T) {
		t.Parallel()
		// The parent leg's request headers apply first (the child's win);
		// its response headers apply last (the parent's win).
		c := compileGolden(t, "LaterSplitterHeadersNested", "main",
			proxyDefaults("http"),
			resolver("other", func(r *ServiceResolverConfigEntry) { r.Subsets = subsets("v1", "v2") }),
			splitter("main",
				ServiceSplit{Weight: 50, Service: "other", RequestHeaders: &HTTPHeaderModifiers{Set: map[string]string{"x-a": "parent", "x-b": "parent"}, Remove: []string{"x-r"}},
					ResponseHeaders: &HTTPHeaderModifiers{Set: map[string]string{"x-resp": "parent"}}},
				ServiceSplit{Weight: 50}),
			splitter("other",
				ServiceSplit{Weight: 50, ServiceSubset: "v1", RequestHeaders: &HTTPHeaderModifiers{Set: map[string]string{"x-a": "child"}, Remove: []string{"x-r", "x-s"}},
					ResponseHeaders: &HTTPHeaderModifiers{Set: map[string]string{"x-resp": "child"}}},
				ServiceSplit{Weight: 50, ServiceSubset: "v2"}))
		legs := c.Nodes["splitter:main"].Splits
		want := &ServiceSplit{Weight: 50, ServiceSubset: "v1",
			RequestHeaders:  &HTTPHeaderModifiers{Set: map[string]string{"x-a": "child", "x-b": "parent"}, Remove: []string{"x-r", "x-s"}},
			ResponseHeaders: &HTTPHeaderModifiers{Set: map[string]string{"x-resp": "parent"}}}
		if diff := cmp.Diff(want, legs[0].Definition); diff != "" {
			t.Errorf("merged leg 0 (-want +got):\n%s", diff)
		}
		if legs[2].Definition != nil {
			t.Errorf("leg without modifiers has Definition %+v, want none", legs[2].Definition)
		}
	})
	t.Run("ResolverLoadBalancerAndFailoverTargets", func(t *testing.T) {
		t.Parallel()
		e, err := DecodeEntry([]byte(laterResolverHCL))
		if err != nil {
			t.Fatal(err)
		}
		if err := Prepare(e); err != nil {
			t.Fatal(err)
		}
		c := compileGolden(t, "LaterResolverLoadBalancerFailoverTargets", "web", e)
		n := c.Nodes[c.StartNode]
		if n.LoadBalancer == nil || n.LoadBalancer.Policy != LBPolicyRingHash {
			t.Errorf("start node LoadBalancer = %+v, want ring_hash", n.LoadBalancer)
		}
		if got, want := n.Resolver.Failover.Targets, []string{"web-backup.default.dc1", "v1.web.default.dc2"}; !cmp.Equal(got, want) {
			t.Errorf("Failover.Targets = %v, want %v", got, want)
		}
		if n.Resolver.Default {
			t.Error("a resolver with a LoadBalancer is not a default resolver")
		}
	})
	t.Run("SplitterTakesFirstHashPolicy", func(t *testing.T) {
		t.Parallel()
		c := compileGolden(t, "LaterSplitterLoadBalancer", "main",
			proxyDefaults("http"),
			resolver("a", func(r *ServiceResolverConfigEntry) { r.LoadBalancer = &LoadBalancer{Policy: LBPolicyLeastRequest} }),
			resolver("b", func(r *ServiceResolverConfigEntry) {
				r.LoadBalancer = &LoadBalancer{Policy: LBPolicyRingHash, HashPolicies: []HashPolicy{{Field: "header", FieldValue: "x-b"}}}
			}),
			resolver("c", func(r *ServiceResolverConfigEntry) { r.LoadBalancer = &LoadBalancer{Policy: LBPolicyMaglev} }),
			splitter("main", ServiceSplit{Weight: 40, Service: "a"}, ServiceSplit{Weight: 30, Service: "b"}, ServiceSplit{Weight: 30, Service: "c"}))
		if lb := c.Nodes["splitter:main"].LoadBalancer; lb == nil || lb.Policy != LBPolicyRingHash {
			t.Errorf("splitter LoadBalancer = %+v, want b's ring_hash", lb)
		}
	})
	t.Run("RequestTimeoutOnResolverNode", func(t *testing.T) {
		t.Parallel()
		c := compileGolden(t, "LaterResolverRequestTimeout", "main",
			resolver("main", func(r *ServiceResolverConfigEntry) { r.RequestTimeout = Duration(7 * time.Second) }))
		if got := c.Nodes[c.StartNode].Resolver.RequestTimeout; got != Duration(7*time.Second) {
			t.Errorf("RequestTimeout = %v, want 7s", time.Duration(got))
		}
	})
}

func TestCompileFailoverTargetsGatherAndWrite(t *testing.T) {
	t.Parallel()
	// A failover target's protocol takes part in the chain: a tcp backup
	// of an http service is rejected like any other failover.
	err := compileErr(t, "main",
		serviceDefaults("main", "http"), serviceDefaults("backup", "tcp"),
		resolver("main", func(r *ServiceResolverConfigEntry) {
			r.Failover = map[string]ServiceResolverFailover{"*": {Targets: []ServiceResolverFailoverTarget{{Service: "backup"}}}}
		}))
	want := `discovery chain "main" uses inconsistent protocols; service "backup" has "tcp" which is not "http"`
	if err == nil || err.Error() != want {
		t.Fatalf("Compile() = %v, want %q", err, want)
	}
}

func TestValidateWriteFailoverTargetLink(t *testing.T) {
	t.Parallel()
	// The link index learns failover Targets' services from References, so
	// changing the protocol of a target re-checks the chains failing over
	// to it.
	s := NewMemStore(serviceDefaults("main", "http"), serviceDefaults("backup", "http"))
	fo := resolver("main", func(r *ServiceResolverConfigEntry) {
		r.Failover = map[string]ServiceResolverFailover{"*": {Targets: []ServiceResolverFailoverTarget{{Service: "backup", Datacenter: "dc2"}}}}
	})
	if err := ValidateWrite(s, upsert(fo)); err != nil {
		t.Fatalf("ValidateWrite(resolver) = %v", err)
	}
	s.Upsert(fo)
	err := ValidateWrite(s, upsert(serviceDefaults("backup", "tcp")))
	want := `discovery chain "main" uses inconsistent protocols; service "backup" has "tcp" which is not "http"`
	var ge *GraphError
	if !errors.As(err, &ge) || err.Error() != want {
		t.Fatalf("ValidateWrite(backup becomes tcp) = %v, want *GraphError %q", err, want)
	}
}

func TestDecodeLaterFieldsOtherSpellings(t *testing.T) {
	t.Parallel()
	want, err := DecodeEntry([]byte(laterResolverJSON))
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"json snake_case": `{"kind":"service-resolver","name":"web","request_timeout":"20s",
		  "subsets":{"v1":{"filter":"Service.Meta.version == v1"}},
		  "failover":{"*":{"targets":[{"service":"web-backup"},{"service_subset":"v1","datacenter":"dc2"}]}},
		  "load_balancer":{"policy":"ring_hash","ring_hash_config":{"minimum_ring_size":1024,"maximum_ring_size":"8192"},
		    "hash_policies":[{"field":"header","field_value":"x-user","terminal":true},
		      {"field":"cookie","field_value":"session","cookie_config":{"ttl":"1h","path":"/"}},
		      {"field":"query_parameter","field_value":"id"},{"source_ip":true}]}}`,
		"hcl blocks in CamelCase": `
Kind = "service-resolver"
Name = "web"
RequestTimeout = "20s"
Subsets { v1 { Filter = "Service.Meta.version == v1" } }
Failover { "*" { Targets = [{ Service = "web-backup" }, { ServiceSubset = "v1" Datacenter = "dc2" }] } }
LoadBalancer {
  Policy = "ring_hash"
  RingHashConfig { MinimumRingSize = 1024 MaximumRingSize = 8192 }
  HashPolicies { Field = "header" FieldValue = "x-user" Terminal = true }
  HashPolicies {
    Field = "cookie"
    FieldValue = "session"
    CookieConfig { TTL = "1h" Path = "/" }
  }
  HashPolicies { Field = "query_parameter" FieldValue = "id" }
  HashPolicies { SourceIP = true }
}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEntry([]byte(doc))
			if err != nil {
				t.Fatalf("DecodeEntry() = %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded entry (-want +got):\n%s", diff)
			}
		})
	}
}
