package rpc

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/fsm"
)

// aclFSM returns an FSM holding a policy and a token with secret, and
// applies more commands with apply.
func aclFSM(tb testing.TB, secret, rules string) (f *fsm.FSM, apply func(fsm.Command)) {
	tb.Helper()
	f = fsm.New(nil)
	idx := uint64(0)
	apply = func(c fsm.Command) {
		tb.Helper()
		b, err := fsm.EncodeCommand(c)
		if err != nil {
			tb.Fatal(err)
		}
		idx++
		res, _ := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(fsm.ApplyResult)
		if !res.Applied || res.Err != nil {
			tb.Fatalf("apply %s: %+v", c.Op, res)
		}
	}
	apply(fsm.Command{Op: fsm.OpACLPolicySet, ACLPolicy: &fsm.ACLPolicy{ID: "p1", Name: "p", Rules: rules}})
	apply(fsm.Command{Op: fsm.OpACLTokenSet, ACLToken: &fsm.ACLToken{AccessorID: "t1", SecretHash: acl.HashSecret(secret), Policies: []string{"p1"}}})
	return f, apply
}

// TestACLResolverFollowsState: the cache never outlives a change of the
// token or its policy.
func TestACLResolverFollowsState(t *testing.T) {
	t.Parallel()
	f, apply := aclFSM(t, "s1", `service "web" { policy = "read" }`)
	r := newACLResolver(ACLConfig{Enabled: true, DefaultPolicy: ACLPolicyDeny}, f)
	az, err := r.resolve("s1")
	if err != nil || !az.Allowed(acl.ServiceRead("web")) || az.Allowed(acl.ServiceWrite("web")) {
		t.Fatalf("resolve = %v, %v; want web read only", az, err)
	}
	apply(fsm.Command{Op: fsm.OpACLPolicySet, ACLPolicy: &fsm.ACLPolicy{ID: "p1", Name: "p", Rules: `service "web" { policy = "write" }`}})
	if az, err := r.resolve("s1"); err != nil || !az.Allowed(acl.ServiceWrite("web")) {
		t.Fatalf("after a policy update: %v, %v; want web write", az, err)
	}
	apply(fsm.Command{Op: fsm.OpACLTokenDelete, ACLID: "t1"})
	if _, err := r.resolve("s1"); !errors.Is(err, ErrACLNotFound) {
		t.Fatalf("after the token's deletion: %v, want ErrACLNotFound", err)
	}
	if az, err := r.resolve(""); err != nil || az.Allowed(acl.ServiceRead("web")) {
		t.Fatalf("anonymous: %v, %v; want nothing allowed", az, err)
	}
	allow := newACLResolver(ACLConfig{Enabled: true, DefaultPolicy: ACLPolicyAllow}, f)
	if az, err := allow.resolve(""); err != nil || !az.Allowed(acl.OperatorWrite) {
		t.Fatalf("anonymous with the allow default: %v, %v", az, err)
	}
	off := newACLResolver(ACLConfig{DefaultPolicy: ACLPolicyDeny}, f)
	if az, err := off.resolve("anything"); err != nil || !az.Allowed(acl.ACLWrite) {
		t.Fatalf("ACLs off: %v, %v; want everything allowed", az, err)
	}
}

// BenchmarkACLResolveCheck: what every request pays with ACLs on: hash
// the secret, find the cached authorizer, check one permission.
func BenchmarkACLResolveCheck(b *testing.B) {
	f, _ := aclFSM(b, "bench-secret", "service_prefix \"\" { policy = \"write\" }\nservice \"admin\" { policy = \"deny\" }\noperator = \"read\"")
	r := newACLResolver(ACLConfig{Enabled: true, DefaultPolicy: ACLPolicyDeny}, f)
	b.ReportAllocs()
	for b.Loop() {
		az, err := r.resolve("bench-secret")
		if err != nil || !az.Allowed(acl.ServiceWrite("web")) {
			b.Fatal("denied")
		}
	}
}
