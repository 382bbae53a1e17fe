package security_test

import (
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// TestKeyringRotationSkipsNonServers: rotating the gossip key is how a
// leaked key is revoked, so the new key must reach the servers only. A
// gossip member holding the old key (it never became a voter: no server
// certificate) is reported as skipped and never even contacted.
func TestKeyringRotationSkipsNonServers(t *testing.T) {
	c, pki := secureCluster(t)
	grpcLn := listen(t)
	ml := attacker(t, "leaked", servertest.TestGossipKey, claim{ID: "leaked-id", Datacenter: "dc1", RaftAddr: listen(t).addr(), GRPCAddr: grpcLn.addr()})
	if _, err := ml.Join(gossipAddrs(c)); err != nil {
		t.Fatalf("join with the leaked key: %v", err)
	}
	n1 := c.Node("n1")
	testutil.Poll(t, 20*time.Second, "n1 sees the leaked-key member", func() bool { return knows(n1.Server(), "leaked") })

	const newKey = "Hkc5xtV4Wx6FMwOagaiboAzlPvJQYm/zC+Hufml5kC0="
	resp, err := clientOf(t, pki, n1).KeyringInstall(ctxFor(t, 20*time.Second), &chainstorev1.KeyringInstallRequest{Key: newKey})
	if err != nil {
		t.Fatalf("KeyringInstall: %v", err)
	}
	results := map[string]string{}
	for _, r := range resp.GetNodes() {
		results[r.GetNode()] = r.GetError()
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if e, ok := results[n]; !ok || e != "" {
			t.Errorf("%s: result %q (present %v), want success", n, e, ok)
		}
	}
	if e := results["leaked"]; e == "" {
		t.Errorf("the leaked-key member was not reported as skipped: %+v", resp.GetNodes())
	}
	if resp.GetFailed() != 1 {
		t.Errorf("failed = %d, want 1 (the skipped member)", resp.GetFailed())
	}
	if n := grpcLn.accepted.Load(); n != 0 {
		t.Fatalf("the leaked-key member's gRPC port got %d connections, want none", n)
	}
}
