package chain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// entryValidationCase is one Prepare (Normalize + Validate) expectation. An
// empty wantErr means the entry must be accepted.
type entryValidationCase struct {
	entry   Entry
	wantErr string
}

// runEntryValidationCases runs Prepare on each case and checks the exact
// message and the *ValidationError type, kind and name.
func runEntryValidationCases(t *testing.T, cases map[string]entryValidationCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := Prepare(tc.entry)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Prepare() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Prepare() = nil, want %q", tc.wantErr)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Prepare() error %T (%v), want *ValidationError", err, err)
			}
			if verr.Msg != tc.wantErr || err.Error() != tc.wantErr {
				t.Fatalf("Prepare() = %q, want %q", err.Error(), tc.wantErr)
			}
			if verr.Kind != tc.entry.GetKind() {
				t.Errorf("ValidationError.Kind = %q, want %q", verr.Kind, tc.entry.GetKind())
			}
			if verr.Name != tc.entry.GetName() {
				t.Errorf("ValidationError.Name = %q, want %q", verr.Name, tc.entry.GetName())
			}
		})
	}
}

func veMetaOfSize(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[strings.Repeat("k", i+1)] = "v"
	}
	return m
}

// veMetaCases builds the shared Meta rules for an entry made by mk.
func veMetaCases(prefix string, mk func(meta map[string]string) Entry) map[string]entryValidationCase {
	return map[string]entryValidationCase{
		prefix + "meta blank key":      {mk(map[string]string{"": "x"}), "Meta key cannot be blank"},
		prefix + "meta 65 pairs":       {mk(veMetaOfSize(65)), "Meta exceeds maximum element count 64"},
		prefix + "meta 64 pairs ok":    {mk(veMetaOfSize(64)), ""},
		prefix + "meta key 129 chars":  {mk(map[string]string{strings.Repeat("k", 129): "v"}), `Meta key "` + strings.Repeat("k", 129) + `" exceeds maximum length 128`},
		prefix + "meta key 128 ok":     {mk(map[string]string{strings.Repeat("k", 128): "v"}), ""},
		prefix + "meta value 513":      {mk(map[string]string{"k": strings.Repeat("v", 513)}), `Meta value for key "k" exceeds maximum length 512`},
		prefix + "meta value 512 ok":   {mk(map[string]string{"k": strings.Repeat("v", 512)}), ""},
		prefix + "meta first in order": {mk(map[string]string{"b": strings.Repeat("v", 513), "a": strings.Repeat("v", 513)}), `Meta value for key "a" exceeds maximum length 512`},
	}
}

func veMergeCases(sets ...map[string]entryValidationCase) map[string]entryValidationCase {
	out := make(map[string]entryValidationCase)
	for _, s := range sets {
		for k, v := range s {
			out[k] = v
		}
	}
	return out
}

func TestValidateServiceDefaults(t *testing.T) {
	t.Parallel()
	cases := map[string]entryValidationCase{
		"valid":                {&ServiceConfigEntry{Name: "web", Protocol: "HTTP"}, ""},
		"any protocol allowed": {&ServiceConfigEntry{Name: "web", Protocol: "udp"}, ""},
		"name required":        {&ServiceConfigEntry{}, "serviceName is required"},
		"wildcard name":        {&ServiceConfigEntry{Name: "*"}, "service-defaults name must be the name of a service, and not a wildcard"},
		"mesh gateway none":    {&ServiceConfigEntry{Name: "web", MeshGateway: MeshGatewayConfig{Mode: "none"}}, ""},
		"mesh gateway local":   {&ServiceConfigEntry{Name: "web", MeshGateway: MeshGatewayConfig{Mode: "local"}}, ""},
		"mesh gateway remote":  {&ServiceConfigEntry{Name: "web", MeshGateway: MeshGatewayConfig{Mode: "remote"}}, ""},
		"mesh gateway bad": {&ServiceConfigEntry{Name: "web", MeshGateway: MeshGatewayConfig{Mode: "Local"}},
			`MeshGateway.Mode "Local" is invalid: must be one of "", "none", "local" or "remote"`},
		"name checked before meta": {&ServiceConfigEntry{Meta: map[string]string{"": ""}}, "serviceName is required"},
	}
	runEntryValidationCases(t, veMergeCases(cases, veMetaCases("", func(m map[string]string) Entry {
		return &ServiceConfigEntry{Name: "web", Meta: m}
	})))
}

func TestValidateProxyDefaults(t *testing.T) {
	t.Parallel()
	cases := map[string]entryValidationCase{
		"empty name becomes global": {&ProxyConfigEntry{Config: map[string]any{"protocol": "http"}}, ""},
		"global":                    {&ProxyConfigEntry{Name: "global"}, ""},
		"other name rejected":       {&ProxyConfigEntry{Name: "foo"}, `invalid name ("foo"), only "global" is supported`},
		"case matters":              {&ProxyConfigEntry{Name: "Global"}, `invalid name ("Global"), only "global" is supported`},
		"mesh gateway bad": {&ProxyConfigEntry{MeshGateway: MeshGatewayConfig{Mode: "bogus"}},
			`MeshGateway.Mode "bogus" is invalid: must be one of "", "none", "local" or "remote"`},
	}
	runEntryValidationCases(t, veMergeCases(cases, veMetaCases("", func(m map[string]string) Entry {
		return &ProxyConfigEntry{Name: "global", Meta: m}
	})))
}

// TestValidateProxyDefaultsWithoutNormalize checks Validate's own name
// rules, for callers that skip Normalize.
func TestValidateProxyDefaultsWithoutNormalize(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		name, want string
	}{
		"empty": {"", "Name is required"},
		"other": {"foo", `invalid name ("foo"), only "global" is supported`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := (&ProxyConfigEntry{Name: tc.name}).Validate()
			var verr *ValidationError
			if !errors.As(err, &verr) || verr.Msg != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func veHTTPRoute(m ServiceRouteHTTPMatch) ServiceRoute {
	return ServiceRoute{Match: &ServiceRouteMatch{HTTP: &m}}
}

func veRouter(routes ...ServiceRoute) *ServiceRouterConfigEntry {
	return &ServiceRouterConfigEntry{Name: "web", Routes: routes}
}

func TestValidateServiceRouter(t *testing.T) {
	t.Parallel()
	rewrite := &ServiceRouteDestination{PrefixRewrite: "/"}
	cases := map[string]entryValidationCase{
		"valid empty":          {veRouter(), ""},
		"route without dest":   {veRouter(ServiceRoute{}), ""},
		"name required":        {&ServiceRouterConfigEntry{}, "Name is required"},
		"path exact no slash":  {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{PathExact: "x"})), `Route[0] PathExact doesn't start with '/': "x"`},
		"path prefix no slash": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{PathPrefix: "admin"})), `Route[0] PathPrefix doesn't start with '/': "admin"`},
		"path regex unchecked": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{PathRegex: "x.*"})), ""},
		"exact and prefix": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{PathExact: "/a", PathPrefix: "/b"})),
			"Route[0] should only contain at most one of PathExact, PathPrefix, or PathRegex"},
		"prefix and regex": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{PathPrefix: "/b", PathRegex: "x"})),
			"Route[0] should only contain at most one of PathExact, PathPrefix, or PathRegex"},
		"index of failing route": {veRouter(ServiceRoute{}, veHTTPRoute(ServiceRouteHTTPMatch{PathExact: "y"})),
			`Route[1] PathExact doesn't start with '/': "y"`},
		"header missing name": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{{Name: "a", Exact: "1"}, {Exact: "1"}}})),
			"Route[0] Header[1] missing required Name field"},
		"header only invert": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{{Name: "a", Invert: true}}})),
			"Route[0] Header[0] should only contain one of Present, Exact, Prefix, Suffix, or Regex"},
		"header present false only": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{{Name: "a", Present: false}}})),
			"Route[0] Header[0] should only contain one of Present, Exact, Prefix, Suffix, or Regex"},
		"header two operators": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{{Name: "a", Prefix: "x", Suffix: "y"}}})),
			"Route[0] Header[0] should only contain one of Present, Exact, Prefix, Suffix, or Regex"},
		"header present and regex": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{{Name: "a", Present: true, Regex: "y"}}})),
			"Route[0] Header[0] should only contain one of Present, Exact, Prefix, Suffix, or Regex"},
		"header each operator ok": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Header: []ServiceRouteHTTPMatchHeader{
			{Name: "a", Present: true}, {Name: "b", Exact: "1"}, {Name: "c", Prefix: "1"},
			{Name: "d", Suffix: "1", Invert: true}, {Name: "e", Regex: "1"},
		}})), ""},
		"query param missing name": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{QueryParam: []ServiceRouteHTTPMatchQueryParam{{Exact: "1"}}})),
			"Route[0] QueryParam[0] missing required Name field"},
		"query param no operator": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "a"}}})),
			"Route[0] QueryParam[0] should only contain one of Present, Exact, or Regex"},
		"query param two operators": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{QueryParam: []ServiceRouteHTTPMatchQueryParam{{Name: "a", Exact: "1", Regex: "1"}}})),
			"Route[0] QueryParam[0] should only contain one of Present, Exact, or Regex"},
		"query param each operator ok": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{QueryParam: []ServiceRouteHTTPMatchQueryParam{
			{Name: "a", Present: true}, {Name: "b", Exact: "1"}, {Name: "c", Regex: "1"},
		}})), ""},
		"header checked before query param": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{
			Header:     []ServiceRouteHTTPMatchHeader{{Exact: "1"}},
			QueryParam: []ServiceRouteHTTPMatchQueryParam{{Exact: "1"}},
		})), "Route[0] Header[0] missing required Name field"},
		"invalid method": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Methods: []string{"get", "fetch"}})),
			`Route[0] Methods contains an invalid method "FETCH"`},
		"duplicate method after upper-casing": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Methods: []string{"GET", "get"}})),
			`Route[0] Methods contains "GET" more than once`},
		"all methods ok": {veRouter(veHTTPRoute(ServiceRouteHTTPMatch{Methods: []string{
			"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}})), ""},
		"prefix rewrite without match": {veRouter(ServiceRoute{Destination: rewrite}),
			"Route[0] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"},
		"prefix rewrite with regex": {veRouter(ServiceRoute{Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathRegex: "/a.*"}}, Destination: rewrite}),
			"Route[0] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"},
		"prefix rewrite with header": {veRouter(ServiceRoute{Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{
			Header: []ServiceRouteHTTPMatchHeader{{Name: "a", Present: true}}}}, Destination: rewrite}),
			"Route[0] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"},
		"prefix rewrite with empty match": {veRouter(ServiceRoute{Match: &ServiceRouteMatch{}, Destination: rewrite}),
			"Route[0] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"},
		"prefix rewrite with prefix": {veRouter(ServiceRoute{Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/a"}}, Destination: rewrite}), ""},
		"prefix rewrite with exact":  {veRouter(ServiceRoute{Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathExact: "/a"}}, Destination: rewrite}), ""},
		"match checked before destination": {veRouter(ServiceRoute{Match: &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathExact: "a"}}, Destination: rewrite}),
			`Route[0] PathExact doesn't start with '/': "a"`},
		"meta before routes": {&ServiceRouterConfigEntry{Name: "web", Meta: map[string]string{"": ""},
			Routes: []ServiceRoute{veHTTPRoute(ServiceRouteHTTPMatch{PathExact: "x"})}}, "Meta key cannot be blank"},
	}
	runEntryValidationCases(t, veMergeCases(cases, veMetaCases("", func(m map[string]string) Entry {
		return &ServiceRouterConfigEntry{Name: "web", Meta: m}
	})))
}

func veSplitter(splits ...ServiceSplit) *ServiceSplitterConfigEntry {
	return &ServiceSplitterConfigEntry{Name: "web", Splits: splits}
}

func TestValidateServiceSplitter(t *testing.T) {
	t.Parallel()
	cases := map[string]entryValidationCase{
		"valid":         {veSplitter(ServiceSplit{Weight: 90, ServiceSubset: "v1"}, ServiceSplit{Weight: 10, ServiceSubset: "v2"}), ""},
		"name required": {&ServiceSplitterConfigEntry{Splits: []ServiceSplit{{Weight: 100}}}, "Name is required"},
		"no splits":     {veSplitter(), "no splits configured"},
		"no splits before meta": {&ServiceSplitterConfigEntry{Name: "web", Meta: map[string]string{"": ""}},
			"no splits configured"},
		"thirds":                   {veSplitter(ServiceSplit{Weight: 34, Service: "a"}, ServiceSplit{Weight: 33, Service: "b"}, ServiceSplit{Weight: 33, Service: "c"}), ""},
		"99.999 and 0.001 round":   {veSplitter(ServiceSplit{Weight: 99.999, Service: "a"}, ServiceSplit{Weight: 0.001, Service: "b"}), ""},
		"zero weight allowed":      {veSplitter(ServiceSplit{Weight: 100, Service: "a"}, ServiceSplit{Weight: 0, Service: "b"}), ""},
		"negative weight allowed":  {veSplitter(ServiceSplit{Weight: 110, Service: "a"}, ServiceSplit{Weight: -10, Service: "b"}), ""},
		"99.98 plus 0.01":          {veSplitter(ServiceSplit{Weight: 99.98, Service: "a"}, ServiceSplit{Weight: 0.01, Service: "b"}), "the sum of all split weights must be 100, not 99.989998"},
		"sum over 100":             {veSplitter(ServiceSplit{Weight: 60, Service: "a"}, ServiceSplit{Weight: 50, Service: "b"}), "the sum of all split weights must be 100, not 110.000000"},
		"single split of 50":       {veSplitter(ServiceSplit{Weight: 50}), "the sum of all split weights must be 100, not 50.000000"},
		"huge weights cancel":      {veSplitter(ServiceSplit{Weight: 1e30, Service: "a"}, ServiceSplit{Weight: 100, Service: "b"}, ServiceSplit{Weight: -1e30, Service: "c"}), ""},
		"nan weight":               {veSplitter(ServiceSplit{Weight: float32(veNaN()), Service: "a"}, ServiceSplit{Weight: 100, Service: "b"}), "the sum of all split weights must be 100, not NaN"},
		"duplicate subset":         {veSplitter(ServiceSplit{Weight: 50, ServiceSubset: "v1"}, ServiceSplit{Weight: 50, ServiceSubset: "v1"}), `split destination occurs more than once: service="web", subset="v1", namespace=""`},
		"empty service is own":     {veSplitter(ServiceSplit{Weight: 50}, ServiceSplit{Weight: 50, Service: "web"}), `split destination occurs more than once: service="web", subset="", namespace=""`},
		"same service other ns ok": {veSplitter(ServiceSplit{Weight: 50, Service: "a"}, ServiceSplit{Weight: 50, Service: "a", Namespace: "x"}), ""},
		"duplicate before sum":     {veSplitter(ServiceSplit{Weight: 10, Service: "a"}, ServiceSplit{Weight: 10, Service: "a", Namespace: "x"}, ServiceSplit{Weight: 10, Service: "a", Namespace: "x"}), `split destination occurs more than once: service="a", subset="", namespace="x"`},
	}
	runEntryValidationCases(t, veMergeCases(cases, veMetaCases("", func(m map[string]string) Entry {
		return &ServiceSplitterConfigEntry{Name: "web", Splits: []ServiceSplit{{Weight: 100}}, Meta: m}
	})))
}

func veNaN() float64 {
	var zero float64
	return zero / zero
}

func veResolverWithSubsets(names ...string) *ServiceResolverConfigEntry {
	e := &ServiceResolverConfigEntry{Name: "web", Subsets: map[string]ServiceResolverSubset{}}
	for _, n := range names {
		e.Subsets[n] = ServiceResolverSubset{Filter: `Service.Meta.version == "` + n + `"`}
	}
	return e
}

func TestValidateServiceResolver(t *testing.T) {
	t.Parallel()
	with := func(e *ServiceResolverConfigEntry, fn func(e *ServiceResolverConfigEntry)) *ServiceResolverConfigEntry {
		fn(e)
		return e
	}
	const charsReason = "must be 63 characters or fewer, begin or end with lower case alphanumeric characters, and contain lower case alphanumeric characters or '-' in between"
	cases := map[string]entryValidationCase{
		"valid default":  {&ServiceResolverConfigEntry{Name: "web"}, ""},
		"name required":  {&ServiceResolverConfigEntry{}, "Name is required"},
		"empty subset":   {veResolverWithSubsets(""), "Subset defined with empty name"},
		"subset 64 long": {veResolverWithSubsets(strings.Repeat("a", 64)), `Subset "` + strings.Repeat("a", 64) + `" is invalid: must be non-empty and 63 characters or fewer`},
		"subset 63 long": {veResolverWithSubsets(strings.Repeat("a", 63)), ""},
		"subset a":       {veResolverWithSubsets("a"), ""},
		"subset 2a":      {veResolverWithSubsets("2a"), ""},
		"subset a--a":    {veResolverWithSubsets("a--a"), ""},
		"subset 0-0":     {veResolverWithSubsets("0-0"), ""},
		"subset A":       {veResolverWithSubsets("A"), `Subset "A" is invalid: ` + charsReason},
		"subset a_a":     {veResolverWithSubsets("a_a"), `Subset "a_a" is invalid: ` + charsReason},
		"subset a.a":     {veResolverWithSubsets("a.a"), `Subset "a.a" is invalid: ` + charsReason},
		"subset -a":      {veResolverWithSubsets("-a"), `Subset "-a" is invalid: ` + charsReason},
		"subset a-":      {veResolverWithSubsets("a-"), `Subset "a-" is invalid: ` + charsReason},
		"subset space a": {veResolverWithSubsets(" a"), `Subset " a" is invalid: ` + charsReason},
		"subsets checked in sorted order": {veResolverWithSubsets("v1", "B", "A"),
			`Subset "A" is invalid: ` + charsReason},
		"bad filter": {with(veResolverWithSubsets("v1"), func(e *ServiceResolverConfigEntry) {
			e.Subsets["v1"] = ServiceResolverSubset{Filter: "Service.Meta.version =="}
		}), `Filter for subset "v1" is not a valid expression: ` + veParseErrText("Service.Meta.version ==")},
		"empty filter ok": {with(veResolverWithSubsets("v1"), func(e *ServiceResolverConfigEntry) {
			e.Subsets["v1"] = ServiceResolverSubset{OnlyPassing: true}
		}), ""},
		"default subset missing": {with(veResolverWithSubsets("v1"), func(e *ServiceResolverConfigEntry) { e.DefaultSubset = "v2" }),
			`DefaultSubset "v2" is not a valid subset`},
		"default subset ok": {with(veResolverWithSubsets("v1"), func(e *ServiceResolverConfigEntry) { e.DefaultSubset = "v1" }), ""},
		"redirect and failover": {&ServiceResolverConfigEntry{Name: "web",
			Redirect: &ServiceResolverRedirect{Service: "other"},
			Failover: map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}}},
			"Redirect and Failover cannot both be set"},
		"redirect empty": {&ServiceResolverConfigEntry{Name: "web", Redirect: &ServiceResolverRedirect{}}, "Redirect is empty"},
		"redirect subset without service": {&ServiceResolverConfigEntry{Name: "web", Redirect: &ServiceResolverRedirect{ServiceSubset: "v1"}},
			"Redirect.ServiceSubset defined without Redirect.Service"},
		"redirect namespace without service": {&ServiceResolverConfigEntry{Name: "web", Redirect: &ServiceResolverRedirect{Namespace: "ns"}},
			"Redirect.Namespace defined without Redirect.Service"},
		"redirect datacenter only ok": {&ServiceResolverConfigEntry{Name: "web", Redirect: &ServiceResolverRedirect{Datacenter: "dc2"}}, ""},
		"redirect to own missing subset": {&ServiceResolverConfigEntry{Name: "web", Redirect: &ServiceResolverRedirect{Service: "web", ServiceSubset: "v9"}},
			`Redirect.ServiceSubset "v9" is not a valid subset of "web"`},
		"redirect to own subset ok": {with(veResolverWithSubsets("v1"), func(e *ServiceResolverConfigEntry) {
			e.Redirect = &ServiceResolverRedirect{Service: "web", ServiceSubset: "v1"}
		}), ""},
		"redirect to other subset unchecked": {&ServiceResolverConfigEntry{Name: "web", Redirect: &ServiceResolverRedirect{Service: "api", ServiceSubset: "v9"}}, ""},
		"failover bad key": {&ServiceResolverConfigEntry{Name: "web", Failover: map[string]ServiceResolverFailover{"v1": {Datacenters: []string{"dc2"}}}},
			`Bad Failover["v1"]: not a valid subset`},
		"failover empty": {&ServiceResolverConfigEntry{Name: "web", Failover: map[string]ServiceResolverFailover{"*": {}}},
			`Bad Failover["*"] one of Service, ServiceSubset, Namespace, or Datacenters is required`},
		"failover subset of self missing": {&ServiceResolverConfigEntry{Name: "web", Failover: map[string]ServiceResolverFailover{"*": {ServiceSubset: "v2"}}},
			`Bad Failover["*"].ServiceSubset "v2" is not a valid subset of ""`},
		"failover subset of named self missing": {&ServiceResolverConfigEntry{Name: "web", Failover: map[string]ServiceResolverFailover{"*": {Service: "web", ServiceSubset: "v2"}}},
			`Bad Failover["*"].ServiceSubset "v2" is not a valid subset of "web"`},
		"failover subset of other unchecked": {&ServiceResolverConfigEntry{Name: "web", Failover: map[string]ServiceResolverFailover{"*": {Service: "api", ServiceSubset: "v2"}}}, ""},
		"failover empty datacenter": {&ServiceResolverConfigEntry{Name: "web", Failover: map[string]ServiceResolverFailover{"*": {Datacenters: []string{"dc2", ""}}}},
			`Bad Failover["*"].Datacenters: found empty datacenter`},
		"failover keys in sorted order": {with(veResolverWithSubsets("v1", "v2"), func(e *ServiceResolverConfigEntry) {
			e.Failover = map[string]ServiceResolverFailover{"v2": {}, "v1": {}}
		}), `Bad Failover["v1"] one of Service, ServiceSubset, Namespace, or Datacenters is required`},
		"failover valid": {with(veResolverWithSubsets("v1", "v2"), func(e *ServiceResolverConfigEntry) {
			e.Failover = map[string]ServiceResolverFailover{"v1": {ServiceSubset: "v2"}, "*": {Datacenters: []string{"dc3", "dc4"}}}
		}), ""},
		"negative connect timeout": {&ServiceResolverConfigEntry{Name: "web", ConnectTimeout: Duration(-time.Second)},
			"Bad ConnectTimeout '-1s', must be >= 0"},
		"zero connect timeout ok": {&ServiceResolverConfigEntry{Name: "web", ConnectTimeout: 0}, ""},
		"subsets before default subset": {with(veResolverWithSubsets("A"), func(e *ServiceResolverConfigEntry) { e.DefaultSubset = "zz" }),
			`Subset "A" is invalid: ` + charsReason},
		"failover before connect timeout": {&ServiceResolverConfigEntry{Name: "web", ConnectTimeout: Duration(-1),
			Failover: map[string]ServiceResolverFailover{"*": {}}},
			`Bad Failover["*"] one of Service, ServiceSubset, Namespace, or Datacenters is required`},
	}
	runEntryValidationCases(t, veMergeCases(cases, veMetaCases("", func(m map[string]string) Entry {
		return &ServiceResolverConfigEntry{Name: "web", Meta: m}
	})))
}

// veParseErrText is what ParseFilter says about expr.
func veParseErrText(expr string) string {
	_, err := ParseFilter(expr)
	if err == nil {
		return "<parsed>"
	}
	return err.Error()
}

func TestNilEntries(t *testing.T) {
	t.Parallel()
	entries := map[string]Entry{
		"service-defaults": (*ServiceConfigEntry)(nil),
		"proxy-defaults":   (*ProxyConfigEntry)(nil),
		"service-router":   (*ServiceRouterConfigEntry)(nil),
		"service-splitter": (*ServiceSplitterConfigEntry)(nil),
		"service-resolver": (*ServiceResolverConfigEntry)(nil),
		"untyped":          nil,
	}
	for name, e := range entries {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			errs := []error{Prepare(e)}
			if e != nil {
				errs = append(errs, e.Normalize(), e.Validate())
				if e.GetName() != "" || e.References() != nil {
					t.Errorf("nil entry has name %q, refs %v", e.GetName(), e.References())
				}
			}
			for _, err := range errs {
				var verr *ValidationError
				if !errors.As(err, &verr) || verr.Msg != "config entry is nil" {
					t.Errorf("got %v, want config entry is nil", err)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in, want Entry
	}{
		"service-defaults protocol lower-cased": {
			&ServiceConfigEntry{Kind: "junk", Name: "web", Protocol: "HTTP2"},
			&ServiceConfigEntry{Kind: KindServiceDefaults, Name: "web", Protocol: "http2"},
		},
		"proxy-defaults empty name": {
			&ProxyConfigEntry{Config: map[string]any{"Protocol": "HTTP"}},
			&ProxyConfigEntry{Kind: KindProxyDefaults, Name: "global", Config: map[string]any{"Protocol": "HTTP"}},
		},
		"router methods upper-cased": {
			veRouter(ServiceRoute{}, veHTTPRoute(ServiceRouteHTTPMatch{Methods: []string{"get", "Post"}})),
			&ServiceRouterConfigEntry{Kind: KindServiceRouter, Name: "web", Routes: []ServiceRoute{{}, veHTTPRoute(ServiceRouteHTTPMatch{Methods: []string{"GET", "POST"}})}},
		},
		"splitter weights rounded": {
			veSplitter(ServiceSplit{Weight: 99.999}, ServiceSplit{Weight: 0.001}, ServiceSplit{Weight: 33.335}, ServiceSplit{Weight: -0.005}, ServiceSplit{Weight: 12.344}),
			&ServiceSplitterConfigEntry{Kind: KindServiceSplitter, Name: "web", Splits: []ServiceSplit{{Weight: 100}, {Weight: 0}, {Weight: 33.34}, {Weight: -0.01}, {Weight: 12.34}}},
		},
		"resolver kind forced": {
			&ServiceResolverConfigEntry{Name: "web"},
			&ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: "web"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := tc.in.Normalize(); err != nil {
				t.Fatalf("Normalize() = %v", err)
			}
			if diff := cmp.Diff(tc.want, tc.in); diff != "" {
				t.Errorf("Normalize() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeWeightIdempotent(t *testing.T) {
	t.Parallel()
	for _, w := range []float32{0, 0.001, 0.005, 0.015, 1.005, 33.333, 33.335, 50, 99.995, 99.999, -0.005, 1e30} {
		once := NormalizeWeight(w)
		if twice := NormalizeWeight(once); twice != once {
			t.Errorf("NormalizeWeight(%v) = %v, again = %v", w, once, twice)
		}
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		entry Entry
		want  []string
	}{
		"service-defaults": {&ServiceConfigEntry{Name: "web"}, nil},
		"proxy-defaults":   {&ProxyConfigEntry{Name: "global"}, nil},
		"router": {&ServiceRouterConfigEntry{Name: "web", Routes: []ServiceRoute{
			{Destination: &ServiceRouteDestination{Service: "b"}},
			{Destination: &ServiceRouteDestination{Service: "a"}},
			{Destination: &ServiceRouteDestination{Service: "web"}},
			{Destination: &ServiceRouteDestination{ServiceSubset: "v1"}},
			{},
			{Destination: &ServiceRouteDestination{Service: "b"}},
		}}, []string{"a", "b"}},
		"router own name differently cased": {&ServiceRouterConfigEntry{Name: "web", Routes: []ServiceRoute{
			{Destination: &ServiceRouteDestination{Service: "Web"}},
		}}, nil},
		"splitter": {veSplitter(ServiceSplit{Weight: 50, Service: "c"}, ServiceSplit{Weight: 25}, ServiceSplit{Weight: 25, Service: "a"}), []string{"a", "c"}},
		"resolver": {&ServiceResolverConfigEntry{Name: "web",
			Redirect: &ServiceResolverRedirect{Service: "z"},
			Failover: map[string]ServiceResolverFailover{"*": {Service: "y"}, "v1": {Service: "z"}, "v2": {Datacenters: []string{"dc2"}}},
		}, []string{"y", "z"}},
		"resolver none": {&ServiceResolverConfigEntry{Name: "web"}, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, tc.entry.References()); diff != "" {
				t.Errorf("References() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidSubsetName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"a": true, "0-0": true, "A": false, "": false, strings.Repeat("x", 63): true, strings.Repeat("x", 64): false} {
		if got := ValidSubsetName(name); got != want {
			t.Errorf("ValidSubsetName(%q) = %v, want %v", name, got, want)
		}
	}
}
