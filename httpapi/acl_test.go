package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	capi "github.com/hashicorp/consul/api"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/server"
)

func withACLs(c *server.Config) { c.ACLEnabled = true }

// aclEnv is a single server with ACLs on, bootstrapped through the
// official client.
type aclEnv struct {
	t    *testing.T
	addr string
	root *capi.Client // holds the bootstrap (management) token
	n    int
}

func startACLHTTP(t *testing.T) *aclEnv {
	t.Helper()
	s := servertest.StartSingle(t, withACLs)
	anon := consulClient(t, s.HTTPAddr())
	boot, _, err := anon.ACL().Bootstrap()
	if err != nil {
		t.Fatalf("ACL().Bootstrap(): %v", err)
	}
	if boot.SecretID == "" || boot.AccessorID == "" || len(boot.Policies) != 1 || boot.Policies[0].Name != "global-management" {
		t.Fatalf("Bootstrap() = %+v, want a management token with its secret", boot)
	}
	root := consulClient(t, s.HTTPAddr())
	root.AddHeader("X-Consul-Token", boot.SecretID)
	return &aclEnv{t: t, addr: s.HTTPAddr(), root: root}
}

// token creates, through the official client, a policy with rules and a
// token holding it, and returns the token's SecretID.
func (e *aclEnv) token(rules string) string {
	e.t.Helper()
	e.n++
	p, _, err := e.root.ACL().PolicyCreate(&capi.ACLPolicy{Name: fmt.Sprintf("p%d", e.n), Rules: rules}, nil)
	if err != nil {
		e.t.Fatalf("PolicyCreate(%q): %v", rules, err)
	}
	tok, _, err := e.root.ACL().TokenCreate(&capi.ACLToken{Description: rules, Policies: []*capi.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		e.t.Fatalf("TokenCreate(%q): %v", rules, err)
	}
	if tok.SecretID == "" || len(tok.Policies) != 1 || tok.Policies[0].Name != p.Name {
		e.t.Fatalf("TokenCreate = %+v, want a secret and the policy %s", tok, p.Name)
	}
	return tok.SecretID
}

// transport is how a request carries its token.
type transport int

const (
	viaQuery transport = iota
	viaHeader
	viaBearer
)

func (tr transport) String() string {
	return [...]string{"?token=", "X-Consul-Token", "Authorization: Bearer"}[tr]
}

// call makes one raw HTTP request with tok ("" for none) carried by tr.
func (e *aclEnv) call(method, path, body, tok string, tr transport) (int, string) {
	e.t.Helper()
	u := "http://" + e.addr + path
	if tok != "" && tr == viaQuery {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u += sep + "token=" + url.QueryEscape(tok)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case tok == "":
	case tr == viaHeader:
		req.Header.Set("X-Consul-Token", tok)
	case tr == viaBearer:
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func denied(perm, name string) string {
	if name == "" {
		return "Permission denied: token lacks permission '" + perm + "'"
	}
	return "Permission denied: token lacks permission '" + perm + "' on \"" + name + "\""
}

// TestHTTPACLEveryEndpoint calls every endpoint family with no token, a
// wrong token, a token one permission short and the right token (carried
// in turn by ?token=, X-Consul-Token and Authorization: Bearer).
func TestHTTPACLEveryEndpoint(t *testing.T) {
	t.Parallel()
	e := startACLHTTP(t)
	for _, ce := range []capi.ConfigEntry{
		&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "http"},
		&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "gone", Protocol: "http"},
	} {
		if _, _, err := e.root.ConfigEntries().Set(ce, nil); err != nil {
			t.Fatalf("Set(%s) with the management token: %v", ce.GetName(), err)
		}
	}
	if _, err := e.root.Catalog().Register(&capi.CatalogRegistration{Node: "n1", Address: "127.0.0.1",
		Service: &capi.AgentService{ID: "web-1", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatalf("Register(web-1): %v", err)
	}
	webRead := `service "web" { policy = "read" }`
	webWrite := `service "web" { policy = "write" }`
	otherRead := `service "other" { policy = "read" }`
	allServices := `service_prefix "" { policy = "write" }`
	cases := []struct {
		name, method, path, body string
		right, short             string // rules
		deniedMsg                string // the answer with no token or the short one
		rightCode                int
		rightContains            string
	}{
		{"config write", "PUT", "/v1/config", `{"Kind":"service-defaults","Name":"web","Protocol":"http"}`, webWrite, webRead, denied("service:write", "web"), 200, "true"},
		{"config read", "GET", "/v1/config/service-defaults/web", "", webRead, otherRead, denied("service:read", "web"), 200, `"Protocol":"http"`},
		{"config delete", "DELETE", "/v1/config/service-defaults/gone", "", `service "gone" { policy = "write" }`, `service "gone" { policy = "read" }`, denied("service:write", "gone"), 200, "{}"},
		{"discovery chain", "GET", "/v1/discovery-chain/web", "", webRead, otherRead, denied("service:read", "web"), 200, `"ServiceName":"web"`},
		{"catalog register", "PUT", "/v1/catalog/register", `{"Node":"n1","Address":"127.0.0.1","Service":{"ID":"web-2","Service":"web","Port":81}}`, webWrite, webRead, denied("service:write", "web"), 200, "true"},
		{"catalog service", "GET", "/v1/catalog/service/web", "", webRead, otherRead, denied("service:read", "web"), 200, `"ServiceID":"web-1"`},
		{"health service", "GET", "/v1/health/service/web", "", webRead, otherRead, denied("service:read", "web"), 200, `"ID":"web-1"`},
		{"status leader", "GET", "/v1/status/leader", "", `operator = "read"`, allServices, denied("operator:read", ""), 200, `"127.0.0.1:`},
		{"status peers", "GET", "/v1/status/peers", "", `operator = "read"`, allServices, denied("operator:read", ""), 200, `"127.0.0.1:`},
		{"agent metrics", "GET", "/v1/agent/metrics?format=prometheus", "", `operator = "read"`, allServices, denied("operator:read", ""), 200, "chainstore_raft_is_leader"},
		{"snapshot save", "GET", "/v1/snapshot", "", `operator = "write"`, `operator = "read"`, denied("operator:write", ""), 200, ""},
		// The right token passes the ACL check; the body is no snapshot.
		{"snapshot restore", "PUT", "/v1/snapshot", "not a snapshot", `operator = "write"`, `operator = "read"`, denied("operator:write", ""), 400, "snapshot refused"},
		{"acl policy list", "GET", "/v1/acl/policies", "", `acl = "read"`, `operator = "write"`, denied("acl:read", ""), 200, `"Name":"global-management"`},
		{"acl policy read", "GET", "/v1/acl/policy/name/global-management", "", `acl = "read"`, `operator = "write"`, denied("acl:read", ""), 200, `"Rules":`},
		{"acl token list", "GET", "/v1/acl/tokens", "", `acl = "read"`, `operator = "write"`, denied("acl:read", ""), 200, `"AccessorID":"00000000-0000-0000-0000-000000000002"`},
		{"acl policy create", "PUT", "/v1/acl/policy", `{"Name":"made-by-test","Rules":"operator = \"read\""}`, `acl = "write"`, `acl = "read"`, denied("acl:write", ""), 200, `"Name":"made-by-test"`},
		{"acl token create", "PUT", "/v1/acl/token", `{"Description":"x","Policies":[{"Name":"global-management"}]}`, `acl = "write"`, `acl = "read"`, denied("acl:write", ""), 200, `"SecretID":"`},
	}
	for i, c := range cases {
		right, short := e.token(c.right), e.token(c.short)
		tr := transport(i % 3)
		for _, try := range []struct {
			who, tok, want string
		}{{"no token", "", c.deniedMsg}, {"a wrong token", "00000000-dead-beef-0000-000000000000", "ACL not found"}, {"a token one permission short", short, c.deniedMsg}} {
			code, body := e.call(c.method, c.path, c.body, try.tok, tr)
			if code != http.StatusForbidden || body != try.want {
				t.Errorf("%s with %s (%v) = %d %q, want 403 %q", c.name, try.who, tr, code, body, try.want)
			}
		}
		code, body := e.call(c.method, c.path, c.body, right, tr)
		if code != c.rightCode || !strings.Contains(body, c.rightContains) {
			t.Errorf("%s with the right token (%v) = %d %.300q, want %d containing %q", c.name, tr, code, body, c.rightCode, c.rightContains)
		}
	}

	// Lists filter, as in Consul: a token that may read nothing sees
	// nothing; an unknown token is refused.
	for _, path := range []string{"/v1/config/service-defaults", "/v1/catalog/services"} {
		if code, body := e.call("GET", path, "", e.token(otherRead), viaHeader); code != 200 || strings.Contains(body, "web") {
			t.Errorf("GET %s with a token for another service = %d %q, want 200 without web", path, code, body)
		}
		if code, body := e.call("GET", path, "", "00000000-dead-beef-0000-000000000000", viaHeader); code != 403 || body != "ACL not found" {
			t.Errorf("GET %s with a wrong token = %d %q, want 403 ACL not found", path, code, body)
		}
		if code, body := e.call("GET", path, "", e.token(webRead), viaBearer); code != 200 || !strings.Contains(body, "web") {
			t.Errorf("GET %s with service:read on web = %d %q, want web listed", path, code, body)
		}
	}

	// A second bootstrap is refused as Consul refuses it.
	if code, body := e.call("PUT", "/v1/acl/bootstrap", "", "", viaHeader); code != 403 || !strings.HasPrefix(body, "Permission denied: ACL bootstrap no longer allowed (reset index: ") {
		t.Errorf("second bootstrap = %d %q", code, body)
	}
}

// TestHTTPACLClient drives the ACL endpoints through the official
// client: policies and tokens round-trip, secrets are never shown again,
// token/self identifies the caller by each transport, and what
// chainstore's model lacks is refused with a message saying so.
func TestHTTPACLClient(t *testing.T) {
	t.Parallel()
	e := startACLHTTP(t)
	a := e.root.ACL()
	p, _, err := a.PolicyCreate(&capi.ACLPolicy{Name: "web-read", Description: "reads web", Rules: `service "web" { policy = "read" }`}, nil)
	if err != nil || p.ID == "" || p.CreateIndex == 0 {
		t.Fatalf("PolicyCreate = %+v, %v", p, err)
	}
	if got, _, err := a.PolicyRead(p.ID, nil); err != nil || got.Name != "web-read" || got.Rules != p.Rules || got.Description != "reads web" {
		t.Fatalf("PolicyRead(%s) = %+v, %v", p.ID, got, err)
	}
	if got, _, err := a.PolicyReadByName("web-read", nil); err != nil || got.ID != p.ID {
		t.Fatalf("PolicyReadByName = %+v, %v", got, err)
	}
	list, _, err := a.PolicyList(nil)
	if err != nil || len(list) != 2 {
		t.Fatalf("PolicyList = %v, %v; want global-management and web-read", list, err)
	}
	tok, _, err := a.TokenCreate(&capi.ACLToken{Description: "web reader", Policies: []*capi.ACLTokenPolicyLink{{Name: "web-read"}}}, nil)
	if err != nil || tok.SecretID == "" || tok.AccessorID == "" {
		t.Fatalf("TokenCreate = %+v, %v", tok, err)
	}
	read, _, err := a.TokenRead(tok.AccessorID, nil)
	if err != nil || read.Description != "web reader" || len(read.Policies) != 1 || read.Policies[0].ID != p.ID {
		t.Fatalf("TokenRead = %+v, %v", read, err)
	}
	if read.SecretID != "" {
		t.Fatalf("TokenRead shows the secret %q", read.SecretID)
	}
	toks, _, err := a.TokenList(nil)
	if err != nil || len(toks) != 3 {
		t.Fatalf("TokenList = %v, %v; want anonymous, bootstrap and web reader", toks, err)
	}
	for _, lt := range toks {
		if lt.SecretID != "" {
			t.Fatalf("TokenList shows the secret of %s", lt.AccessorID)
		}
	}
	// The raw listing holds no secret at all.
	if _, body := e.call("GET", "/v1/acl/tokens", "", e.token(`acl = "read"`), viaHeader); strings.Contains(body, tok.SecretID) {
		t.Fatalf("token list body holds a secret: %s", body)
	}

	// token/self by each transport.
	for _, tr := range []transport{viaQuery, viaHeader, viaBearer} {
		code, body := e.call("GET", "/v1/acl/token/self", "", tok.SecretID, tr)
		var self capi.ACLToken
		if code != 200 || json.Unmarshal([]byte(body), &self) != nil || self.AccessorID != tok.AccessorID || self.SecretID != "" {
			t.Fatalf("token/self via %v = %d %q, want accessor %s without the secret", tr, code, body, tok.AccessorID)
		}
	}
	me := consulClient(t, e.addr)
	me.AddHeader("X-Consul-Token", tok.SecretID)
	if self, _, err := me.ACL().TokenReadSelf(nil); err != nil || self.AccessorID != tok.AccessorID {
		t.Fatalf("TokenReadSelf = %+v, %v", self, err)
	}
	if code, body := e.call("GET", "/v1/acl/token/self", "", "00000000-dead-beef-0000-000000000000", viaHeader); code != 403 || body != "ACL not found" {
		t.Fatalf("token/self with a wrong token = %d %q", code, body)
	}

	// What chainstore's model lacks.
	refusals := []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"PUT", "/v1/acl/policy/" + p.ID, `{"ID":"` + p.ID + `","Name":"web-read","Rules":""}`, 501, "updating a policy is not supported"},
		{"PUT", "/v1/acl/token/" + tok.AccessorID, `{"AccessorID":"` + tok.AccessorID + `"}`, 501, "updating a token is not supported"},
		{"GET", "/v1/acl/roles", "", 501, "no roles"},
		{"PUT", "/v1/acl/role", `{"Name":"r"}`, 501, "no roles"},
		{"PUT", "/v1/acl/token", `{"Roles":[{"Name":"r"}]}`, 400, "Roles: chainstore's ACL model has no roles"},
		{"PUT", "/v1/acl/token", `{"ExpirationTTL":60000000000}`, 400, "do not expire"},
		{"PUT", "/v1/acl/token", `{"Polcies":[]}`, 400, `unknown field "Polcies"`},
		{"GET", "/v1/acl/policies?ns=team", "", 400, "no namespaces"},
		{"PUT", "/v1/acl/policy", `{"Name":"x","Rules":"service {"}`, 400, ""},
		{"DELETE", "/v1/acl/policy/00000000-0000-0000-0000-000000000001", "", 400, "global-management policy cannot be deleted"},
		{"DELETE", "/v1/acl/token/00000000-0000-0000-0000-000000000002", "", 400, "anonymous token"},
	}
	for _, r := range refusals {
		if code, body := e.call(r.method, r.path, r.body, e.token(`acl = "write"`), viaHeader); code != r.code || !strings.Contains(body, r.contains) {
			t.Errorf("%s %s = %d %q, want %d containing %q", r.method, r.path, code, body, r.code, r.contains)
		}
	}

	// Delete, then reads are Consul's 403 ACL not found.
	if _, err := a.TokenDelete(tok.AccessorID, nil); err != nil {
		t.Fatalf("TokenDelete: %v", err)
	}
	if _, _, err := a.TokenRead(tok.AccessorID, nil); statusCode(err) != 403 || !strings.Contains(err.Error(), "ACL not found") {
		t.Fatalf("TokenRead of a deleted token: %v", err)
	}
	if _, err := a.PolicyDelete(p.ID, nil); err != nil {
		t.Fatalf("PolicyDelete: %v", err)
	}
	if _, _, err := a.PolicyRead(p.ID, nil); statusCode(err) != 403 {
		t.Fatalf("PolicyRead of a deleted policy: %v", err)
	}
}

// TestHTTPACLDisabled: without ACLs, the ACL endpoints answer as Consul's
// do (401 ACL support disabled).
func TestHTTPACLDisabled(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	_, _, err := consulClient(t, s.HTTPAddr()).ACL().Bootstrap()
	if statusCode(err) != 401 || !strings.Contains(err.Error(), "ACL support disabled") {
		t.Fatalf("Bootstrap without ACLs: %v", err)
	}
}
