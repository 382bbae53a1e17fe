package chain

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
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
			setup: []Entry{serviceDefaults("main", "http"), mainSplitter()},
			op:    upsert(sdWith("main", "http", func(e *ServiceConfigEntry) { e.MeshGateway.Mode = MeshGatewayModeLocal })),
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
		"RouterMatchChange": {
			setup: []Entry{serviceDefaults("main", "http"), mainRouter()},
			op:    upsert(router("main", pathPrefixRoute("/elsewhere", &ServiceRouteDestination{Namespace: "other"}))),
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
			if got := compileInputsUnchanged(s, key, next); got != tc.wantSkip {
				t.Errorf("compileInputsUnchanged(%s) = %v, want %v", key, got, tc.wantSkip)
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

// compiledOutcomes compiles every name of names over entries, with the
// fixed inputs of write-time validation.
func compiledOutcomes(t *testing.T, entries EntryLookup, names []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = compileOutcome(t, entries, n)
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
	skip := compileInputsUnchanged(s, key, next)
	oracle := compileAffected(s, key, next)
	got := ValidateWrite(s, c)
	if skip && oracle != nil {
		t.Fatalf("fast path skips %s but the full validation rejects it: %v\nwrite: %s", key, oracle, describeChange(c))
	}
	if errText(got) != errText(oracle) {
		t.Fatalf("ValidateWrite(%s) = %q, full validation = %q\nwrite: %s", key, errText(got), errText(oracle), describeChange(c))
	}
	if skip {
		// Stronger than the verdict: no chain compiles differently.
		names := chainNamesFor(s, key.Name)
		before := compiledOutcomes(t, s, names)
		after := compiledOutcomes(t, &overlay{base: s, key: key, entry: next}, names)
		for _, n := range names {
			if before[n] != after[n] {
				t.Fatalf("fast path skips %s but chain %q changes:\nbefore %s\nafter  %s\nwrite: %s", key, n, before[n], after[n], describeChange(c))
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
		switch r.byte() % 4 {
		case 0:
			x.Meta = meta
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
		switch r.byte() % 3 {
		case 0:
			x.Meta = meta
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
		switch r.byte() % 7 {
		case 0:
			x.Meta = meta
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
// set of pseudo-random inputs, so every test run checks a few thousand
// writes, and checks that the fast path is actually taken.
func TestValidateWriteSkipMatchesOracle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(12, 2026))
	runs := 1500
	if testing.Short() {
		runs = 300
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

// ---- the compile inputs cover every field the compiler reads ----

// fieldRole classifies a field of service-defaults and proxy-defaults,
// whose compile inputs (serviceDefaultsInput, proxyDefaultsInput) name
// the fields they keep. Routers, splitters and resolvers are compared on
// every field but Meta, so a new field there is an input automatically.
type fieldRole int

const (
	roleInput    fieldRole = iota // kept in the compile input
	roleIdentity                  // Kind and Name: fixed by the key (Name up to case)
	roleIgnored                   // never read by the compiler
)

var compileFieldRoles = map[reflect.Type]map[string]fieldRole{
	reflect.TypeFor[ServiceConfigEntry](): {
		"Kind": roleIdentity, "Name": roleIdentity, "Protocol": roleInput, "MeshGateway": roleInput,
		"ExternalSNI": roleInput, "Expose": roleIgnored, "Meta": roleIgnored,
	},
	reflect.TypeFor[ProxyConfigEntry](): {
		// Config is an input through its "protocol" key only
		// (proxyProtocolOf); TestCompileInputIgnoresUnreadFields changes
		// its other keys.
		"Kind": roleIdentity, "Name": roleIdentity, "Config": roleInput, "MeshGateway": roleInput,
		"Expose": roleIgnored, "Meta": roleIgnored,
	},
	reflect.TypeFor[MeshGatewayConfig]():          {"Mode": roleInput},
	reflect.TypeFor[ServiceRouterConfigEntry]():   {"Meta": roleIgnored},
	reflect.TypeFor[ServiceSplitterConfigEntry](): {"Meta": roleIgnored},
	reflect.TypeFor[ServiceResolverConfigEntry](): {"Meta": roleIgnored},
}

// A field added to service-defaults, proxy-defaults or MeshGatewayConfig
// must be classified here and, if the compiler reads it, added to the
// compile input.
func TestCompileInputFieldsClassified(t *testing.T) {
	t.Parallel()
	for typ, roles := range compileFieldRoles {
		complete := typ != reflect.TypeFor[ServiceRouterConfigEntry]() &&
			typ != reflect.TypeFor[ServiceSplitterConfigEntry]() &&
			typ != reflect.TypeFor[ServiceResolverConfigEntry]()
		seen := map[string]bool{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			seen[f.Name] = true
			if _, ok := roles[f.Name]; !ok && complete {
				t.Errorf("%s.%s is not classified: add it to the compile input in validate_skip.go if the compiler reads it, and to compileFieldRoles", typ.Name(), f.Name)
			}
		}
		for name := range roles {
			if !seen[name] {
				t.Errorf("compileFieldRoles lists %s.%s, which does not exist", typ.Name(), name)
			}
		}
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
		v.SetFloat(float64(n + 1))
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

// ignoredFieldMutations returns copies of e, each with one field the
// compiler does not read changed.
func ignoredFieldMutations(t *testing.T, e Entry, n int) []Entry {
	t.Helper()
	var out []Entry
	roles := compileFieldRoles[reflect.TypeOf(e).Elem()]
	for name, role := range roles {
		c := cloneEntry(t, e)
		f := reflect.ValueOf(c).Elem().FieldByName(name)
		switch {
		case role == roleIgnored:
			fillValue(f, n)
		case role == roleIdentity && name == "Name" && f.String() != strings.ToUpper(f.String()):
			if _, isSD := c.(*ServiceConfigEntry); !isSD {
				continue // a router's name spelling is an input
			}
			f.SetString(strings.ToUpper(f.String()))
		default:
			continue
		}
		out = append(out, c)
	}
	if p, ok := e.(*ProxyConfigEntry); ok {
		c := cloneEntry(t, p).(*ProxyConfigEntry)
		if c.Config == nil {
			c.Config = map[string]any{}
		}
		c.Config[fmt.Sprintf("unrelated_%d", n)] = n
		out = append(out, c)
	}
	return out
}

// Changing only fields the compiler does not read keeps the compile input
// equal, and no chain of the store compiles differently. The stores are
// not validated: this holds for broken chains too.
func TestCompileInputIgnoresUnreadFields(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 2026))
	stores := []*MemStore{NewMemStore(deepEntries()...)}
	for range 200 {
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
		before := compiledOutcomes(t, s, names)
		for i, key := range s.Keys() {
			for _, m := range ignoredFieldMutations(t, s.GetEntry(key), i) {
				if !compileInputsUnchanged(s, key, m) {
					t.Fatalf("compileInputsUnchanged(%s) = false for a change of ignored fields: %s", key, describeChange(upsert(m)))
				}
				after := compiledOutcomes(t, &overlay{base: s, key: key, entry: m}, names)
				for _, n := range names {
					if before[n] != after[n] {
						t.Fatalf("changing ignored fields of %s changes chain %q:\nbefore %s\nafter  %s\nentry %s", key, n, before[n], after[n], describeChange(upsert(m)))
					}
				}
				checked++
			}
		}
	}
	if checked < 500 {
		t.Fatalf("only %d mutations checked", checked)
	}
}
