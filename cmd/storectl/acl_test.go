package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/server"
)

// TestACLCommandsAgainstServer runs the acl commands against a real
// server with ACLs on: bootstrap, policy and token round trips, and the
// token flag on other commands.
func TestACLCommandsAgainstServer(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t, func(c *server.Config) { c.ACLEnabled = true })
	ctl := func(token string, args ...string) (int, string, string) {
		t.Helper()
		return runStorectl(t, "", append([]string{"--addr", srv.Addr(), "--token", token}, args...)...)
	}
	mustCtl := func(token, want string, args ...string) string {
		t.Helper()
		code, stdout, stderr := ctl(token, args...)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("storectl %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), code, stdout, stderr, want)
		}
		return stdout
	}
	secretRE := regexp.MustCompile(`(?m)^SecretID: +(\S+)$`)
	accessorRE := regexp.MustCompile(`(?m)^AccessorID: +(\S+)$`)
	out := mustCtl("", "global-management", "acl", "bootstrap")
	m := secretRE.FindStringSubmatch(out)
	if m == nil || !accessorRE.MatchString(out) {
		t.Fatalf("bootstrap output lacks AccessorID/SecretID lines:\n%s", out)
	}
	root := m[1]
	if code, _, stderr := ctl("", "acl", "bootstrap"); code != 1 || !strings.Contains(stderr, "ACL bootstrap no longer allowed (reset index: ") {
		t.Fatalf("second bootstrap: exit %d, stderr %q", code, stderr)
	}

	rules := filepath.Join(t.TempDir(), "web.hcl")
	if err := os.WriteFile(rules, []byte(`service "web" { policy = "read" }`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCtl(root, `Name:         web-read`, "acl", "policy", "create", "--name", "web-read", "--rules", "@"+rules, "--description", "reads web")
	mustCtl(root, `service "web" { policy = "read" }`, "acl", "policy", "read", "--name", "web-read")
	mustCtl(root, "web-read", "acl", "policy", "list")
	out = mustCtl(root, "web-read", "acl", "token", "create", "--policy-name", "web-read", "--description", "t1")
	tok, acc := secretRE.FindStringSubmatch(out), accessorRE.FindStringSubmatch(out)
	if tok == nil || acc == nil {
		t.Fatalf("token create output lacks AccessorID/SecretID lines:\n%s", out)
	}
	list := mustCtl(root, acc[1], "acl", "token", "list")
	if strings.Contains(list, tok[1]) || strings.Contains(list, root) {
		t.Fatalf("token list shows a secret:\n%s", list)
	}
	mustCtl(root, "t1", "acl", "token", "read", "--accessor-id", acc[1])

	// The new token may not list members, nor create tokens.
	if code, _, stderr := ctl(tok[1], "members"); code != 1 || !strings.Contains(stderr, "Permission denied: token lacks permission 'operator:read'") {
		t.Fatalf("members with the web token: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := ctl(tok[1], "acl", "token", "create", "--policy-name", "global-management"); code != 1 || !strings.Contains(stderr, "token lacks permission 'acl:write'") {
		t.Fatalf("token create with the web token: exit %d, stderr %q", code, stderr)
	}
	mustCtl(root, "deleted", "acl", "token", "delete", "--accessor-id", acc[1])
	if code, _, stderr := ctl(tok[1], "get", "service-defaults", "web"); code != 1 || !strings.Contains(stderr, "ACL not found") {
		t.Fatalf("get with a deleted token: exit %d, stderr %q", code, stderr)
	}
	mustCtl(root, "deleted", "acl", "policy", "delete", "--name", "web-read")
	if code, _, stderr := ctl(root, "acl", "policy", "create", "--name", "x"); code != 2 || !strings.Contains(stderr, "--name and --rules are required") {
		t.Fatalf("policy create without rules: exit %d, stderr %q", code, stderr)
	}
}
