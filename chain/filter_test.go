package chain

import (
	"errors"
	"strings"
	"testing"
)

func testInstance(version, env string, tags []string, statuses ...string) *ServiceInstance {
	inst := &ServiceInstance{
		Node: InstanceNode{ID: "n-1", Node: "node1", Address: "10.0.0.1", Datacenter: "dc1",
			Meta: map[string]string{"rack": "r1"}},
		Service: InstanceService{ID: "web-1", Service: "web", Tags: tags, Address: "10.0.0.2", Port: 8080,
			Meta: map[string]string{}},
	}
	if version != "" {
		inst.Service.Meta["version"] = version
	}
	if env != "" {
		inst.Service.Meta["env"] = env
	}
	for i, s := range statuses {
		inst.Checks = append(inst.Checks, InstanceCheck{CheckID: "c" + string(rune('0'+i)), Name: "check", Status: s, ServiceID: "web-1"})
	}
	return inst
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	v1 := testInstance("v1", "prod", []string{"canary", "blue"}, HealthPassing, HealthWarning)
	v2 := testInstance("v2", "staging", nil, HealthCritical)
	bare := testInstance("", "", nil)
	cases := map[string]struct {
		expr string
		inst *ServiceInstance
		want bool
	}{
		"meta version matches":         {"Service.Meta.version == v1", v1, true},
		"meta version does not match":  {"Service.Meta.version == v1", v2, false},
		"meta key missing":             {"Service.Meta.version == v1", bare, false},
		"meta key missing not equal":   {"Service.Meta.version != v1", bare, true},
		"quoted value":                 {`Service.Meta.version == "v2"`, v2, true},
		"flat ServiceMeta":             {"ServiceMeta.env == prod", v1, true},
		"flat ServiceMeta no match":    {"ServiceMeta.env == prod", v2, false},
		"tag in":                       {"canary in Service.Tags", v1, true},
		"tag not in":                   {"canary in Service.Tags", v2, false},
		"flat ServiceTags":             {"ServiceTags contains blue", v1, true},
		"node datacenter":              {"Node.Datacenter == dc1", v1, true},
		"node meta":                    {"Node.Meta.rack == r1 and NodeMeta.rack == r1", v1, true},
		"service port":                 {"Service.Port == 8080", v1, true},
		"service id and name":          {`Service.ID == "web-1" and ServiceName == web and ServiceID == "web-1"`, v1, true},
		"any check critical":           {"any Checks as c { c.Status == critical }", v2, true},
		"all checks not critical":      {"all Checks as c { c.Status != critical }", v1, true},
		"and or not":                   {"(Service.Meta.version == v1 or Service.Meta.version == v3) and not (ServiceMeta.env == staging)", v1, true},
		"matches regex":                {`Service.Meta.version matches "^v[0-9]+$"`, v2, true},
		"empty expression matches all": {"", bare, true},
		"is empty":                     {"Service.Tags is empty", v2, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tc.expr)
			if err != nil {
				t.Fatalf("ParseFilter(%q) = %v", tc.expr, err)
			}
			if f.String() != tc.expr {
				t.Errorf("String() = %q, want %q", f.String(), tc.expr)
			}
			got, err := f.Match(tc.inst)
			if err != nil {
				t.Fatalf("Match() = %v", err)
			}
			if got != tc.want {
				t.Errorf("ParseFilter(%q).Match() = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	t.Parallel()
	for name, expr := range map[string]string{
		"missing value":      "Service.Meta.version ==",
		"unbalanced paren":   "(Service.Meta.version == v1",
		"bad operator":       "Service.Meta.version === v1",
		"dangling and":       "Service.ID == a and",
		"garbage":            "%%%",
		"unterminated quote": `Service.ID == "a`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if f, err := ParseFilter(expr); err == nil {
				t.Fatalf("ParseFilter(%q) = %v, want error", expr, f)
			}
		})
	}
}

func TestFilterMatchErrors(t *testing.T) {
	t.Parallel()
	f, err := ParseFilter("Service.Mta.version == v1")
	if err != nil {
		t.Fatalf("ParseFilter() = %v", err)
	}
	if _, err := f.Match(testInstance("v1", "", nil)); err == nil || !strings.Contains(err.Error(), `evaluate filter "Service.Mta.version == v1"`) {
		t.Errorf("Match(unknown field) = %v, want evaluate error", err)
	}
	if _, err := f.Match(nil); !errors.Is(err, ErrNilInstance) {
		t.Errorf("Match(nil) = %v, want ErrNilInstance", err)
	}
	var nilFilter *Filter
	if ok, err := nilFilter.Match(testInstance("", "", nil)); !ok || err != nil {
		t.Errorf("nil Filter Match() = %v, %v; want true, nil", ok, err)
	}
}

func TestInstanceHealthy(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		statuses          []string
		onlyPassing, want bool
	}{
		"no checks":                 {nil, true, true},
		"passing":                   {[]string{HealthPassing}, true, true},
		"warning counts by default": {[]string{HealthPassing, HealthWarning}, false, true},
		"warning fails OnlyPassing": {[]string{HealthPassing, HealthWarning}, true, false},
		"critical fails":            {[]string{HealthCritical}, false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inst := testInstance("v1", "", nil, tc.statuses...)
			if got := inst.Healthy(tc.onlyPassing); got != tc.want {
				t.Errorf("Healthy(%v) = %v, want %v", tc.onlyPassing, got, tc.want)
			}
		})
	}
	var nilInst *ServiceInstance
	if nilInst.Healthy(false) {
		t.Errorf("nil instance is healthy")
	}
}
