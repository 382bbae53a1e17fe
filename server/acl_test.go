package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// aclEnv is a single server with ACLs on (default deny), bootstrapped.
type aclEnv struct {
	t      *testing.T
	single *servertest.Single
	client *api.Client
	root   string // the bootstrap token's SecretID
	n      int
	dir    string // the server's data directory
}

func withACLs(c *server.Config) { c.ACLEnabled = true }

func startACL(t *testing.T, mutate ...func(*server.Config)) *aclEnv {
	t.Helper()
	var dir string
	s := servertest.StartSingle(t, append([]func(*server.Config){withACLs, func(c *server.Config) { dir = c.DataDir }}, mutate...)...)
	e := &aclEnv{t: t, single: s, client: servertest.NewClient(t, s.Addr()), dir: dir}
	resp, err := e.client.ACL().Bootstrap(e.ctx(""), &chainstorev1.BootstrapRequest{})
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	e.root = resp.GetToken().GetSecretId()
	if e.root == "" || resp.GetToken().GetAccessorId() == "" {
		t.Fatalf("Bootstrap returned %v", resp)
	}
	return e
}

// ctx returns a context carrying token ("" for none).
func (e *aclEnv) ctx(token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	e.t.Cleanup(cancel)
	return api.WithToken(ctx, token)
}

// token creates a policy with rules and a token holding it, and returns
// the token's SecretID and AccessorID.
func (e *aclEnv) token(rules string) (secret, accessor string) {
	e.t.Helper()
	e.n++
	name := "p" + strconv.Itoa(e.n)
	if _, err := e.client.ACL().PolicyCreate(e.ctx(e.root), &chainstorev1.PolicyCreateRequest{Name: name, Rules: rules}); err != nil {
		e.t.Fatalf("PolicyCreate(%q): %v", rules, err)
	}
	resp, err := e.client.ACL().TokenCreate(e.ctx(e.root), &chainstorev1.TokenCreateRequest{PolicyNames: []string{name}})
	if err != nil {
		e.t.Fatalf("TokenCreate: %v", err)
	}
	return resp.GetToken().GetSecretId(), resp.GetToken().GetAccessorId()
}

func (e *aclEnv) put(doc string) {
	e.t.Helper()
	if _, err := e.client.Apply(e.ctx(e.root), &chainstorev1.ApplyRequest{Entry: []byte(doc)}); err != nil {
		e.t.Fatalf("Apply(%s): %v", doc, err)
	}
}

// wantDenied fails unless err is PermissionDenied with exactly msg.
func wantDenied(t *testing.T, what string, err error, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != codes.PermissionDenied || st.Message() != msg {
		t.Fatalf("%s: got %v, want PermissionDenied %q", what, err, msg)
	}
}

const aclNotFound = "ACL not found"

func denied(perm, name string) string {
	if name == "" {
		return "Permission denied: token lacks permission '" + perm + "'"
	}
	return "Permission denied: token lacks permission '" + perm + "' on \"" + name + "\""
}

// TestACLEveryRPC calls every RPC with no token, a wrong token, a deleted
// token, a token one permission short and the right token.
func TestACLEveryRPC(t *testing.T) {
	skipInShort(t)
	t.Parallel()
	e := startACL(t)
	e.put(`{"Kind": "service-defaults", "Name": "web", "Protocol": "http"}`)
	e.put(`{"Kind": "service-defaults", "Name": "admin", "Protocol": "http"}`)
	c := e.client
	reg := func(id string) *chainstorev1.RegisterRequest {
		return &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{Id: id, Service: "web", Address: "127.0.0.1", Port: 8080, Ttl: durationpb.New(time.Minute)}}
	}
	if _, err := c.Register(e.ctx(e.root), reg("web-0")); err != nil {
		t.Fatalf("Register: %v", err)
	}
	cases := []struct {
		name       string
		call       func(ctx context.Context) error
		right      string // rules that allow the call
		short      string // rules one permission short
		deniedText string // what the short token (and no token) gets
		anonDenied string // what no token gets, if it differs
	}{
		{
			name: "Apply service-defaults",
			call: func(ctx context.Context) error {
				_, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(`{"Kind":"service-defaults","Name":"web","Protocol":"http"}`)})
				return err
			},
			right: `service "web" { policy = "write" }`, short: `service "web" { policy = "read" }`,
			deniedText: denied("service:write", "web"),
		},
		{
			name: "Apply router referencing admin",
			call: func(ctx context.Context) error {
				_, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(`{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathPrefix":"/admin"}},"Destination":{"Service":"admin"}}]}`)})
				return err
			},
			right:      "service \"web\" { policy = \"write\" }\nservice \"admin\" { policy = \"read\" }",
			short:      "service \"web\" { policy = \"write\" }\nservice \"admin\" { policy = \"deny\" }",
			deniedText: denied("service:read", "admin"),
			anonDenied: denied("service:write", "web"),
		},
		{
			name: "Apply proxy-defaults",
			call: func(ctx context.Context) error {
				_, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(`{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http"}}`)})
				return err
			},
			right: `operator = "write"`, short: "operator = \"read\"\nservice_prefix \"\" { policy = \"write\" }",
			deniedText: denied("operator:write", ""),
		},
		{
			name: "Get",
			call: func(ctx context.Context) error {
				_, err := c.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "admin"})
				return err
			},
			right: `service "admin" { policy = "read" }`, short: "service_prefix \"\" { policy = \"write\" }\nservice \"admin\" { policy = \"deny\" }",
			deniedText: denied("service:read", "admin"),
		},
		{
			name: "Delete",
			call: func(ctx context.Context) error {
				_, err := c.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "gone"})
				return err
			},
			right: `service "gone" { policy = "write" }`, short: `service "gone" { policy = "read" }`,
			deniedText: denied("service:write", "gone"),
		},
		{
			name: "GetChain",
			call: func(ctx context.Context) error {
				err := c.Conn().Invoke(ctx, "/chainstore.v1.ChainService/GetChain", &chainstorev1.GetChainRequest{Chain: &chainstorev1.ChainRef{Service: "admin"}}, &chainstorev1.GetChainResponse{})
				return err
			},
			right: `service "admin" { policy = "read" }`, short: `service "web" { policy = "write" }`,
			deniedText: denied("service:read", "admin"),
		},
		{
			name:  "Register",
			call:  func(ctx context.Context) error { _, err := c.Register(ctx, reg("web-1")); return err },
			right: `service "web" { policy = "write" }`, short: `service "web" { policy = "read" }`,
			deniedText: denied("service:write", "web"),
		},
		{
			name: "UpdateCheck",
			call: func(ctx context.Context) error {
				_, err := c.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: "web-0", Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING})
				return err
			},
			right: `service "web" { policy = "write" }`, short: `service "web" { policy = "read" }`,
			deniedText: denied("service:write", "web"),
		},
		{
			name: "Instances",
			call: func(ctx context.Context) error {
				_, err := c.Instances(ctx, &chainstorev1.InstancesRequest{Service: "web"})
				return err
			},
			right: `service "web" { policy = "read" }`, short: `service "web" { policy = "deny" }`,
			deniedText: denied("service:read", "web"),
		},
		{
			name:  "Members",
			call:  func(ctx context.Context) error { _, err := c.Members(ctx, &chainstorev1.MembersRequest{}); return err },
			right: `operator = "read"`, short: `service_prefix "" { policy = "write" }`,
			deniedText: denied("operator:read", ""),
		},
		{
			name:  "Peers",
			call:  func(ctx context.Context) error { _, err := c.Peers(ctx, &chainstorev1.PeersRequest{}); return err },
			right: `operator = "read"`, short: `operator = "deny"`,
			deniedText: denied("operator:read", ""),
		},
		{
			name:  "Status",
			call:  func(ctx context.Context) error { _, err := c.Status(ctx, &chainstorev1.StatusRequest{}); return err },
			right: `operator = "write"`, short: `acl = "write"`,
			deniedText: denied("operator:read", ""),
		},
		{
			name: "XdsClients",
			call: func(ctx context.Context) error {
				_, err := c.XdsClients(ctx, &chainstorev1.XdsClientsRequest{})
				return err
			},
			right: `operator = "read"`, short: `acl = "read"`,
			deniedText: denied("operator:read", ""),
		},
		{
			name: "PolicyCreate",
			call: func(ctx context.Context) error {
				_, err := c.ACL().PolicyCreate(ctx, &chainstorev1.PolicyCreateRequest{Name: "x" + strconv.FormatInt(time.Now().UnixNano(), 10), Rules: `service_prefix "" { policy = "write" }`})
				return err
			},
			right: `acl = "write"`, short: "acl = \"read\"\noperator = \"write\"\nservice_prefix \"\" { policy = \"write\" }",
			deniedText: denied("acl:write", ""),
		},
		{
			name: "TokenCreate",
			call: func(ctx context.Context) error {
				_, err := c.ACL().TokenCreate(ctx, &chainstorev1.TokenCreateRequest{PolicyNames: []string{"global-management"}})
				return err
			},
			right: `acl = "write"`, short: "acl = \"read\"\noperator = \"write\"",
			deniedText: denied("acl:write", ""),
		},
		{
			name: "TokenList",
			call: func(ctx context.Context) error {
				_, err := c.ACL().TokenList(ctx, &chainstorev1.TokenListRequest{})
				return err
			},
			right: `acl = "read"`, short: `operator = "write"`,
			deniedText: denied("acl:read", ""),
		},
		{
			name: "PolicyList",
			call: func(ctx context.Context) error {
				_, err := c.ACL().PolicyList(ctx, &chainstorev1.PolicyListRequest{})
				return err
			},
			right: `acl = "read"`, short: `acl = "deny"`,
			deniedText: denied("acl:read", ""),
		},
		{
			name: "PolicyRead",
			call: func(ctx context.Context) error {
				_, err := c.ACL().PolicyRead(ctx, &chainstorev1.PolicyReadRequest{Name: "global-management"})
				return err
			},
			right: `acl = "read"`, short: `operator = "write"`,
			deniedText: denied("acl:read", ""),
		},
		{
			name: "TokenRead",
			call: func(ctx context.Context) error {
				_, err := c.ACL().TokenRead(ctx, &chainstorev1.TokenReadRequest{AccessorId: "00000000-0000-0000-0000-000000000002"})
				return err
			},
			right: `acl = "read"`, short: `operator = "write"`,
			deniedText: denied("acl:read", ""),
		},
		{
			name: "PolicyDelete",
			call: func(ctx context.Context) error {
				_, err := c.ACL().PolicyDelete(ctx, &chainstorev1.PolicyDeleteRequest{Name: "p1"})
				return err
			},
			right: `acl = "write"`, short: `acl = "read"`,
			deniedText: denied("acl:write", ""),
		},
		{
			name: "TokenDelete",
			call: func(ctx context.Context) error {
				_, err := c.ACL().TokenDelete(ctx, &chainstorev1.TokenDeleteRequest{AccessorId: "no-such-token"})
				return err
			},
			right: `acl = "write"`, short: `acl = "read"`,
			deniedText: denied("acl:write", ""),
		},
		{
			name: "XdsChains",
			call: func(ctx context.Context) error {
				_, err := c.XdsChains(ctx, &chainstorev1.XdsChainsRequest{})
				return err
			},
			right: `operator = "read"`, short: `operator = "deny"`,
			deniedText: denied("operator:read", ""),
		},
		{
			name: "Deregister",
			call: func(ctx context.Context) error {
				_, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: "web-1"})
				return err
			},
			right: `service "web" { policy = "write" }`, short: "service \"web\" { policy = \"read\" }\nservice_prefix \"\" { policy = \"write\" }",
			deniedText: denied("service:write", "web"),
		},
		{
			name: "Watch",
			call: func(ctx context.Context) error {
				// A subscription refused for a missing permission ends
				// with an Unsubscribed event; an unknown token ends the
				// stream. Both are turned into the error they carry.
				st, err := chainstorev1.NewChainServiceClient(c.Conn()).Watch(ctx)
				if err != nil {
					return err
				}
				// A stream the server ended at once (unknown token) makes
				// Send report io.EOF; Recv then carries the status.
				if err := st.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{Id: 1, Chain: &chainstorev1.ChainRef{Service: "web"}}}}); err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				for {
					resp, err := st.Recv()
					if err != nil {
						return err
					}
					if un := resp.GetUnsubscribed(); un != nil {
						return status.Error(codes.PermissionDenied, un.GetError())
					}
					if resp.GetUpdate() != nil {
						return nil
					}
				}
			},
			// web's chain reaches admin (the router written above), so
			// reading it needs both.
			right:      "service \"web\" { policy = \"read\" }\nservice \"admin\" { policy = \"read\" }",
			short:      "service \"web\" { policy = \"read\" }\nservice \"admin\" { policy = \"deny\" }",
			deniedText: denied("service:read", "admin"),
			anonDenied: denied("service:read", "web"),
		},
	}
	for _, tc := range cases {
		right, _ := e.token(tc.right)
		short, _ := e.token(tc.short)
		deleted, deletedAccessor := e.token(tc.right)
		if _, err := c.ACL().TokenDelete(e.ctx(e.root), &chainstorev1.TokenDeleteRequest{AccessorId: deletedAccessor}); err != nil {
			t.Fatalf("TokenDelete: %v", err)
		}
		anon := tc.deniedText
		if tc.anonDenied != "" {
			anon = tc.anonDenied
		}
		wantDenied(t, tc.name+" without a token", tc.call(e.ctx("")), anon)
		wantDenied(t, tc.name+" with a wrong token", tc.call(e.ctx("00000000-1111-2222-3333-444444444444")), aclNotFound)
		wantDenied(t, tc.name+" with a deleted token", tc.call(e.ctx(deleted)), aclNotFound)
		wantDenied(t, tc.name+" one permission short", tc.call(e.ctx(short)), tc.deniedText)
		if err := tc.call(e.ctx(right)); err != nil {
			t.Fatalf("%s with the right token: %v", tc.name, err)
		}
	}
	// The filtering reads answer an unknown or deleted token with ACL not
	// found, and filter for the others (TestACLListFiltersAndChains).
	gone, goneAccessor := e.token(`service_prefix "" { policy = "read" }`)
	if _, err := c.ACL().TokenDelete(e.ctx(e.root), &chainstorev1.TokenDeleteRequest{AccessorId: goneAccessor}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"00000000-1111-2222-3333-444444444444", gone} {
		_, err := c.List(e.ctx(tok), &chainstorev1.ListRequest{Kind: "service-defaults"})
		wantDenied(t, "List", err, aclNotFound)
		_, err = c.Services(e.ctx(tok), &chainstorev1.ServicesRequest{})
		wantDenied(t, "Services", err, aclNotFound)
	}
	svcs, err := c.Services(e.ctx(""), &chainstorev1.ServicesRequest{})
	if err != nil || len(svcs.GetServices()) != 0 {
		t.Fatalf("anonymous Services = %v, %v; want none and no error", svcs.GetServices(), err)
	}

	// The secret never comes back from a read.
	toks, err := c.ACL().TokenList(e.ctx(e.root), &chainstorev1.TokenListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks.GetTokens() {
		if tk.GetSecretId() != "" {
			t.Fatalf("TokenList shows a secret for %s", tk.GetAccessorId())
		}
	}
}

func TestACLListFiltersAndChains(t *testing.T) {
	skipInShort(t)
	t.Parallel()
	e := startACL(t)
	for _, n := range []string{"web", "api", "admin"} {
		e.put(`{"Kind": "service-defaults", "Name": "` + n + `", "Protocol": "http"}`)
	}
	e.put(`{"Kind": "service-router", "Name": "api", "Routes": [{"Match": {"HTTP": {"PathPrefix": "/admin"}}, "Destination": {"Service": "admin"}}]}`)
	tok, _ := e.token("service_prefix \"\" { policy = \"read\" }\nservice \"admin\" { policy = \"deny\" }")

	list, err := e.client.List(e.ctx(tok), &chainstorev1.ListRequest{Kind: "service-defaults"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	for _, se := range list.GetEntries() {
		names = append(names, se.GetName())
	}
	if strings.Join(names, ",") != "api,web" {
		t.Fatalf("List shows %v, want api,web (admin filtered)", names)
	}
	anon, err := e.client.List(e.ctx(""), &chainstorev1.ListRequest{Kind: "service-defaults"})
	if err != nil || len(anon.GetEntries()) != 0 {
		t.Fatalf("anonymous List = %v, %v; want no entries and no error", anon.GetEntries(), err)
	}

	chains := chainstorev1.NewChainServiceClient(e.client.Conn())
	// web is readable and reaches only web.
	if _, err := chains.GetChain(e.ctx(tok), &chainstorev1.GetChainRequest{Chain: &chainstorev1.ChainRef{Service: "web"}}); err != nil {
		t.Fatalf("GetChain(web): %v", err)
	}
	// api is readable but its router reaches admin: refused as a whole.
	_, err = chains.GetChain(e.ctx(tok), &chainstorev1.GetChainRequest{Chain: &chainstorev1.ChainRef{Service: "api"}})
	wantDenied(t, "GetChain(api)", err, denied("service:read", "admin"))

	// Watch: admin is refused at subscribe, api when its chain arrives,
	// web is delivered.
	stream, err := chains.Watch(e.ctx(tok))
	if err != nil {
		t.Fatal(err)
	}
	for i, svc := range []string{"admin", "api", "web"} {
		if err := stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{Id: uint64(i + 1), Chain: &chainstorev1.ChainRef{Service: svc}}}}); err != nil {
			t.Fatal(err)
		}
	}
	unsub := map[uint64]string{}
	gotWeb := false
	for len(unsub) < 2 || !gotWeb {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		switch ev := resp.GetEvent().(type) {
		case *chainstorev1.WatchResponse_Unsubscribed:
			unsub[ev.Unsubscribed.GetSubscriptionId()] = ev.Unsubscribed.GetError()
		case *chainstorev1.WatchResponse_Update:
			if id := ev.Update.GetSubscriptionId(); id != 3 {
				t.Fatalf("update for subscription %d, want only 3 (web)", id)
			}
			gotWeb = true
		}
	}
	if unsub[1] != denied("service:read", "admin") || unsub[2] != denied("service:read", "admin") {
		t.Fatalf("unsubscribed = %v, want both refused for admin", unsub)
	}
}

func TestACLBootstrapOnceAndReset(t *testing.T) {
	skipInShort(t)
	t.Parallel()
	e := startACL(t)
	_, err := e.client.ACL().Bootstrap(e.ctx(""), &chainstorev1.BootstrapRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.FailedPrecondition || !strings.HasPrefix(st.Message(), "ACL bootstrap no longer allowed (reset index: ") {
		t.Fatalf("second Bootstrap = %v, want refused with the reset index", err)
	}
	idx := strings.TrimSuffix(strings.TrimPrefix(st.Message(), "ACL bootstrap no longer allowed (reset index: "), ")")
	// The documented reset: write the index into the leader's reset file.
	reset := filepath.Join(e.dir, server.ACLBootstrapResetFile)
	if err := os.WriteFile(reset, []byte(idx+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.ACL().Bootstrap(e.ctx(""), &chainstorev1.BootstrapRequest{})
	if err != nil || resp.GetToken().GetSecretId() == "" {
		t.Fatalf("Bootstrap after reset = %v, %v", resp, err)
	}
	if _, err := os.Stat(reset); !os.IsNotExist(err) {
		t.Fatalf("reset file still there after the bootstrap: %v", err)
	}
	if _, err := e.client.Members(e.ctx(resp.GetToken().GetSecretId()), &chainstorev1.MembersRequest{}); err != nil {
		t.Fatalf("the new management token does not work: %v", err)
	}
	if _, err := e.client.ACL().Bootstrap(e.ctx(""), &chainstorev1.BootstrapRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("third Bootstrap = %v, want refused", err)
	}
}

// TestACLNoEscalation: a token with everything but acl:write cannot
// create a policy or a token, not even one narrower than itself.
func TestACLNoEscalation(t *testing.T) {
	skipInShort(t)
	t.Parallel()
	e := startACL(t)
	tok, _ := e.token("service_prefix \"\" { policy = \"write\" }\noperator = \"write\"\nacl = \"read\"")
	_, err := e.client.ACL().PolicyCreate(e.ctx(tok), &chainstorev1.PolicyCreateRequest{Name: "mine", Rules: `acl = "write"`})
	wantDenied(t, "PolicyCreate", err, denied("acl:write", ""))
	_, err = e.client.ACL().TokenCreate(e.ctx(tok), &chainstorev1.TokenCreateRequest{PolicyNames: []string{"global-management"}})
	wantDenied(t, "TokenCreate", err, denied("acl:write", ""))
	_, err = e.client.ACL().PolicyDelete(e.ctx(tok), &chainstorev1.PolicyDeleteRequest{Name: "p1"})
	wantDenied(t, "PolicyDelete", err, denied("acl:write", ""))
}

// TestACLSecretsNotOnDisk: no SecretID appears in any file of the data
// directory (Raft log, snapshots), only its hash.
func TestACLSecretsNotOnDisk(t *testing.T) {
	skipInShort(t)
	t.Parallel()
	// Snapshot often, so the ACL state also lands in snapshot files.
	e := startACL(t, func(c *server.Config) { c.Raft.SnapshotInterval, c.Raft.SnapshotThreshold = 50*time.Millisecond, 1 })
	secret, _ := e.token(`service "web" { policy = "read" }`)
	if _, err := e.client.Members(e.ctx(secret), &chainstorev1.MembersRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Members with a service token = %v, want PermissionDenied", err)
	}
	dir := e.dir
	hash := []byte(acl.HashSecret(secret))
	testutil.Poll(t, 10*time.Second, "a snapshot holding the new token's hash", func() bool {
		inSnap := false
		_ = filepath.WalkDir(filepath.Join(dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.Contains(path, "snapshots") {
				return err
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, hash) {
				inSnap = true
			}
			return nil
		})
		return inSnap
	})
	found := 0
	// Raft keeps taking snapshots while this walks: a file or a .tmp
	// snapshot dir that disappears mid-walk is skipped, not an error.
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		found++
		for _, s := range []string{e.root, secret} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a SecretID", path)
			}
		}
		return nil
	})
	if err != nil || found == 0 {
		t.Fatalf("walk %s: %v (%d files)", dir, err, found)
	}
}

// TestACLForwardedToken: a follower forwards the caller's token and the
// leader decides; a follower never lets a write through on its own.
func TestACLForwardedToken(t *testing.T) {
	skipInShort(t)
	t.Parallel()
	c := servertest.NewCluster(t, 3, withACLs)
	c.WaitStable(3)
	fol := c.Followers()[0]
	cl := c.Client(fol)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := cl.ACL().Bootstrap(ctx, &chainstorev1.BootstrapRequest{})
	if err != nil {
		t.Fatalf("Bootstrap via follower: %v", err)
	}
	root := boot.GetToken().GetSecretId()
	_, err = cl.Apply(api.WithToken(ctx, "wrong"), &chainstorev1.ApplyRequest{Entry: []byte(`{"Kind":"service-defaults","Name":"web"}`)})
	wantDenied(t, "Apply via follower with a wrong token", err, aclNotFound)
	_, err = cl.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(`{"Kind":"service-defaults","Name":"web"}`)})
	wantDenied(t, "Apply via follower without a token", err, denied("service:write", "web"))
	if _, err := cl.Apply(api.WithToken(ctx, root), &chainstorev1.ApplyRequest{Entry: []byte(`{"Kind":"service-defaults","Name":"web"}`)}); err != nil {
		t.Fatalf("Apply via follower with the management token: %v", err)
	}
	// A token created through the follower works there once replicated.
	tk, err := cl.ACL().TokenCreate(api.WithToken(ctx, root), &chainstorev1.TokenCreateRequest{PolicyNames: []string{"global-management"}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Poll(t, 10*time.Second, "stale read with the new token on the follower", func() bool {
		_, err := cl.Get(api.WithToken(ctx, tk.GetToken().GetSecretId()), &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
			Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}})
		return err == nil
	})
}
