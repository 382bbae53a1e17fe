package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/acl"
)

func aclToken(id, secret string, policies ...string) *ACLToken {
	return &ACLToken{AccessorID: id, SecretHash: acl.HashSecret(secret), Policies: policies}
}

func aclPolicy(id, name, rules string) *ACLPolicy {
	return &ACLPolicy{ID: id, Name: name, Rules: rules}
}

func TestACLCommandsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []Command{
		{Op: OpACLBootstrap, ACLToken: aclToken("a", "s"), ACLResetIndex: 7},
		{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p", "n", `acl = "read"`)},
		{Op: OpACLPolicyDelete, ACLID: "p"},
		{Op: OpACLTokenSet, ACLToken: aclToken("a", "s", "p")},
		{Op: OpACLTokenDelete, ACLID: "a"},
	} {
		b := encode(t, c)
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("DecodeCommand(%s) = %v", c.Op, err)
		}
		if d := cmp.Diff(c, got, cmp.AllowUnexported(Command{})); d != "" {
			t.Fatalf("%s round trip (-want +got):\n%s", c.Op, d)
		}
	}
	for name, c := range map[string]Command{
		"bootstrap without token": {Op: OpACLBootstrap},
		"policy without name":     {Op: OpACLPolicySet, ACLPolicy: &ACLPolicy{ID: "x"}},
		"token bad hash":          {Op: OpACLTokenSet, ACLToken: &ACLToken{AccessorID: "a", SecretHash: "plain-secret"}},
		"delete without id":       {Op: OpACLTokenDelete},
		"upsert with acl fields":  {Op: OpDelete, Key: sdKey("x"), ACLID: "a"},
	} {
		if _, err := EncodeCommand(c); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("%s: EncodeCommand = %v, want ErrMalformedCommand", name, err)
		}
	}
	if _, err := DecodeCommand([]byte{byte(OpACLTokenSet), '{', '"', 'X', '"', ':', '1', '}'}); !errors.Is(err, ErrMalformedCommand) {
		t.Errorf("DecodeCommand(unknown field) = %v, want ErrMalformedCommand", err)
	}
}

func TestACLApply(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.apply(Command{Op: OpACLBootstrap, ACLToken: aclToken("root", "root-secret")})
	if !r.Applied || r.Err != nil {
		t.Fatalf("bootstrap = %+v", r)
	}
	boot := r.Index
	v := h.f.Store().View()
	if got := v.ACLTokenBySecretHash(acl.HashSecret("root-secret")); got == nil || got.AccessorID != "root" || !cmp.Equal(got.Policies, []string{acl.GlobalManagementPolicyID}) {
		t.Fatalf("bootstrap token = %+v", got)
	}
	// A second bootstrap is refused, with the reset index in the message.
	r = h.apply(Command{Op: OpACLBootstrap, ACLToken: aclToken("root2", "other")})
	var ae *ACLError
	if !errors.As(r.Err, &ae) || !ae.Bootstrapped || ae.ResetIndex != boot || r.Applied {
		t.Fatalf("second bootstrap = %+v, want refused with reset index %d", r, boot)
	}
	// A wrong reset index is refused; the right one allows one more.
	if r = h.apply(Command{Op: OpACLBootstrap, ACLToken: aclToken("root2", "other"), ACLResetIndex: boot + 100}); r.Err == nil {
		t.Fatalf("bootstrap with wrong reset index = %+v, want refused", r)
	}
	if r = h.apply(Command{Op: OpACLBootstrap, ACLToken: aclToken("root2", "other"), ACLResetIndex: boot}); !r.Applied {
		t.Fatalf("bootstrap with reset index = %+v, want applied", r)
	}
	if got := h.f.Store().View().ACLBootstrapIndex(); got != r.Index {
		t.Fatalf("bootstrap index = %d, want %d", got, r.Index)
	}

	mustACL := func(c Command) {
		t.Helper()
		if r := h.apply(c); !r.Applied || r.Err != nil {
			t.Fatalf("%s = %+v, want applied", c.Op, r)
		}
	}
	refused := func(c Command, want string) {
		t.Helper()
		before := h.f.Store().Hash()
		r := h.apply(c)
		if r.Applied || r.Err == nil || !strings.Contains(r.Err.Error(), want) {
			t.Fatalf("%s = %+v, want refused with %q", c.Op, r, want)
		}
		if h.f.Store().Hash() != before {
			t.Fatalf("%s changed the state although refused", c.Op)
		}
	}
	mustACL(Command{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p1", "web-read", `service "web" { policy = "read" }`)})
	refused(Command{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p2", "WEB-READ", `acl = "read"`)}, "already exists")
	refused(Command{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p2", "x", `node "a" { policy = "read" }`)}, "unknown rule kind")
	refused(Command{Op: OpACLPolicySet, ACLPolicy: aclPolicy(acl.GlobalManagementPolicyID, "gm", ``)}, "built-in")
	refused(Command{Op: OpACLPolicyDelete, ACLID: acl.GlobalManagementPolicyID}, "built-in")
	refused(Command{Op: OpACLTokenSet, ACLToken: aclToken("t1", "s1", "nope")}, `no policy with ID "nope"`)
	refused(Command{Op: OpACLTokenSet, ACLToken: aclToken("t1", "root-secret", "p1")}, "already exists")
	refused(Command{Op: OpACLTokenSet, ACLToken: aclToken(acl.AnonymousTokenID, "s1")}, "anonymous")
	mustACL(Command{Op: OpACLTokenSet, ACLToken: aclToken("t1", "s1", "p1")})
	// Updating a policy keeps its CreateIndex.
	created := h.f.Store().View().ACLPolicy("p1").CreateIndex
	mustACL(Command{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p1", "web-read", `service "web" { policy = "write" }`)})
	if p := h.f.Store().View().ACLPolicy("p1"); p.CreateIndex != created || p.ModifyIndex <= created {
		t.Fatalf("updated policy indexes = %d/%d, want create %d", p.CreateIndex, p.ModifyIndex, created)
	}
	aclIdx := h.f.Store().View().ACLIndex()
	mustACL(Command{Op: OpACLTokenDelete, ACLID: "t1"})
	if h.f.Store().View().ACLTokenBySecretHash(acl.HashSecret("s1")) != nil {
		t.Fatal("deleted token still found")
	}
	if h.f.Store().View().ACLIndex() <= aclIdx {
		t.Fatal("ACLIndex did not advance on delete")
	}
	mustACL(Command{Op: OpACLPolicyDelete, ACLID: "p1"})
	if h.f.Store().View().ACLPolicyByName("web-read") != nil {
		t.Fatal("deleted policy still found")
	}
}

func TestSnapshotRoundTripWithACL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("web", "http"))
	h.mustApplyAll([]Command{
		{Op: OpACLBootstrap, ACLToken: aclToken("root", "root-secret")},
		{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p1", "web", `service "web" { policy = "read" }`)},
		{Op: OpACLTokenSet, ACLToken: aclToken("t1", "the-secret-value", "p1")},
	})
	b := snapshotBytes(t, h.f)
	if _, _, counts := parseTestSnapshot(t, b); len(counts) != 8 {
		t.Fatalf("end counts = %v, want 8", counts)
	}
	for _, secret := range []string{"root-secret", "the-secret-value"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("snapshot holds the secret %q", secret)
		}
	}
	f2 := New(nil)
	if err := restore(f2, b); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if got, want := f2.Store().Hash(), h.f.Store().Hash(); got != want {
		t.Fatalf("restored hash %s, want %s", got, want)
	}
	if !bytes.Equal(snapshotBytes(t, f2), b) {
		t.Fatal("snapshot of the restored FSM differs")
	}
	v := f2.Store().View()
	if v.ACLTokenBySecretHash(acl.HashSecret("the-secret-value")) == nil || v.ACLBootstrapIndex() == 0 {
		t.Fatal("restored state lacks the token or the bootstrap")
	}
	// Corrupting an ACL count is detected.
	bad := append([]byte(nil), b...)
	f3 := New(nil)
	bad[len(bad)-7]++ // inside the end record's counts
	if err := restore(f3, bad); err == nil {
		t.Fatal("restore of a corrupted snapshot succeeded")
	}
}
