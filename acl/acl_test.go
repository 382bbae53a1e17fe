package acl

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		rules   string
		want    *Policy
		wantErr string
	}{
		"empty": {rules: "", want: &Policy{}},
		"hcl all kinds": {
			rules: `service "web" { policy = "write" }
service_prefix "" { policy = "read" }
operator = "read"
acl = "deny"`,
			want: &Policy{
				Services: []ServiceRule{{Name: "web", Policy: AccessWrite}, {Name: "", Prefix: true, Policy: AccessRead}},
				Operator: AccessRead, ACL: AccessDeny,
			},
		},
		"json": {
			rules: `{"service": {"web": {"policy": "deny"}, "api": {"policy": "read"}}, "service_prefix": {"a": {"policy": "write"}}, "operator": "write"}`,
			want: &Policy{
				Services: []ServiceRule{{Name: "web", Policy: AccessDeny}, {Name: "api", Policy: AccessRead}, {Name: "a", Prefix: true, Policy: AccessWrite}},
				Operator: AccessWrite,
			},
		},
		"unknown kind":     {rules: `node "x" { policy = "read" }`, wantErr: `unknown rule kind "node"`},
		"unknown field":    {rules: `service "x" { policy = "read" intentions = "read" }`, wantErr: `unknown field "intentions"`},
		"bad word":         {rules: `service "x" { policy = "admin" }`, wantErr: `invalid policy "admin"`},
		"missing policy":   {rules: `service "x" { }`, wantErr: `service "x": missing policy`},
		"duplicate":        {rules: "service \"x\" { policy = \"read\" }\nservice \"x\" { policy = \"write\" }", wantErr: `service "x" is set twice`},
		"operator block":   {rules: `operator "x" { policy = "read" }`, wantErr: "operator takes a value"},
		"operator twice":   {rules: "operator = \"read\"\noperator = \"write\"", wantErr: "operator is set twice"},
		"syntax":           {rules: `service "x" {`, wantErr: "invalid ACL rules"},
		"service no block": {rules: `service = "read"`, wantErr: "needs a name and a block"},
		"number":           {rules: `acl = 1`, wantErr: "want a string"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.rules)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidRules) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tc.rules, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.rules, err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("Parse(%q) mismatch (-want +got):\n%s", tc.rules, d)
			}
			again, err := Parse(got.String())
			if err != nil {
				t.Fatalf("Parse(String()) = %v", err)
			}
			if again.String() != got.String() {
				t.Fatalf("String round trip: %q != %q", again.String(), got.String())
			}
		})
	}
}

func mustParse(t *testing.T, rules string) *Policy {
	t.Helper()
	p, err := Parse(rules)
	if err != nil {
		t.Fatalf("Parse(%q): %v", rules, err)
	}
	return p
}

func TestAuthorizer(t *testing.T) {
	t.Parallel()
	type check struct {
		perm Permission
		want bool
	}
	cases := map[string]struct {
		policies []string
		fallback Authorizer
		checks   []check
	}{
		"exact beats prefix": {
			policies: []string{`service_prefix "" { policy = "write" }
service "admin" { policy = "deny" }`},
			checks: []check{{ServiceWrite("web"), true}, {ServiceRead("admin"), false}, {ServiceRead("admin2"), true}},
		},
		"exact read beats prefix deny": {
			policies: []string{`service_prefix "" { policy = "deny" }
service "web" { policy = "read" }`},
			checks: []check{{ServiceRead("web"), true}, {ServiceWrite("web"), false}, {ServiceRead("api"), false}},
		},
		"longer prefix wins": {
			policies: []string{`service_prefix "a" { policy = "deny" }
service_prefix "ab" { policy = "write" }`},
			checks: []check{{ServiceWrite("abc"), true}, {ServiceRead("ax"), false}, {ServiceRead("b"), false}},
		},
		"deny wins at same specificity across policies": {
			policies: []string{`service "web" { policy = "write" }`, `service "web" { policy = "deny" }`},
			checks:   []check{{ServiceRead("web"), false}},
		},
		"write beats read across policies": {
			policies: []string{`service "web" { policy = "read" }`, `service "web" { policy = "write" }`},
			checks:   []check{{ServiceWrite("web"), true}},
		},
		"write implies read": {
			policies: []string{`operator = "write"`},
			checks:   []check{{OperatorRead, true}, {OperatorWrite, true}, {ACLRead, false}},
		},
		"read is not write": {
			policies: []string{`acl = "read"`},
			checks:   []check{{ACLRead, true}, {ACLWrite, false}},
		},
		"default allow fills gaps but not denies": {
			policies: []string{`service "admin" { policy = "deny" }`},
			fallback: AllowAll,
			checks:   []check{{ServiceWrite("web"), true}, {ServiceRead("admin"), false}, {OperatorWrite, true}},
		},
		"case-insensitive names": {
			policies: []string{`service "Web" { policy = "read" }`},
			checks:   []check{{ServiceRead("web"), true}, {ServiceRead("WEB"), true}},
		},
		"no policies deny default": {
			checks: []check{{ServiceRead("web"), false}, {OperatorRead, false}, {ACLRead, false}},
		},
		"global management": {
			policies: []string{GlobalManagementRules},
			checks:   []check{{ServiceWrite("x"), true}, {OperatorWrite, true}, {ACLWrite, true}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ps []*Policy
			for _, r := range tc.policies {
				ps = append(ps, mustParse(t, r))
			}
			fb := tc.fallback
			if fb == nil {
				fb = DenyAll
			}
			a := NewAuthorizer(fb, ps...)
			for _, c := range tc.checks {
				if got := a.Allowed(c.perm); got != c.want {
					t.Errorf("Allowed(%s %q) = %v, want %v", c.perm, c.perm.Name, got, c.want)
				}
			}
		})
	}
}

func TestDeniedErrorText(t *testing.T) {
	t.Parallel()
	err := Check(DenyAll, ServiceRead("admin"))
	if got, want := err.Error(), `Permission denied: token lacks permission 'service:read' on "admin"`; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatal("not ErrPermissionDenied")
	}
	if got, want := Check(DenyAll, OperatorWrite).Error(), "Permission denied: token lacks permission 'operator:write'"; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	if Check(AllowAll, ACLWrite) != nil {
		t.Fatal("AllowAll denied")
	}
}

func FuzzParseAuthorize(f *testing.F) {
	f.Add(`service "web" { policy = "write" }`, "web")
	f.Add(`service_prefix "" { policy = "read" } operator = "write"`, "x")
	f.Add(`{"service": {"a": {"policy": "deny"}}}`, "a")
	f.Add(`acl = "read"`, "")
	f.Fuzz(func(t *testing.T, rules, name string) {
		p, err := Parse(rules)
		if err != nil {
			return
		}
		// A parsed policy renders to rules that parse to the same policy.
		again, err := Parse(p.String())
		if err != nil {
			t.Fatalf("Parse(String()) = %v for %q", err, p.String())
		}
		if again.String() != p.String() {
			t.Fatalf("round trip %q != %q", again.String(), p.String())
		}
		for _, fb := range []Authorizer{DenyAll, AllowAll} {
			a := NewAuthorizer(fb, p)
			for _, pair := range [][2]Permission{
				{ServiceRead(name), ServiceWrite(name)},
				{OperatorRead, OperatorWrite},
				{ACLRead, ACLWrite},
			} {
				if a.Allowed(pair[1]) && !a.Allowed(pair[0]) {
					t.Fatalf("write without read: %s on %q with %q", pair[1], name, rules)
				}
			}
			// Adding a policy that denies the name removes access to it.
			deny := &Policy{Services: []ServiceRule{{Name: name, Policy: AccessDeny}}}
			if NewAuthorizer(fb, p, deny).Allowed(ServiceRead(name)) {
				t.Fatalf("exact deny of %q did not deny with rules %q", name, rules)
			}
		}
	})
}
