package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/chainstore/chainstore/chain"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// TestStartSingle: a server with BootstrapExpect 1 elects itself, takes
// writes at increasing Raft indexes (JSON and HCL) and stops on demand.
func TestStartSingle(t *testing.T) {
	t.Parallel()
	s := StartSingle(t, func(c *server.Config) { c.Datacenter = "dc9" })
	first := s.Put(Resolver("web", 5*time.Second))
	second := s.Put("Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"http\"\n")
	if first == 0 || second <= first {
		t.Errorf("Put indexes %d then %d, want increasing Raft indexes", first, second)
	}
	st, _, _ := s.Server().FSM().Store().Get(chain.KeyOf(chain.KindServiceResolver, "web"))
	if st == nil || st.ModifyIndex != first {
		t.Errorf("store holds the resolver as %v, want ModifyIndex %d", st, first)
	}
	cl := NewClient(t, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, err := cl.Status(ctx, &chainstorev1.StatusRequest{})
	if err != nil || !status.GetIsLeader() || status.GetDatacenter() != "dc9" {
		t.Errorf("Status = %v, %v; want the leader of dc9 (mutate applied)", status, err)
	}
	s.Stop()
	if _, err := cl.Status(ctx, &chainstorev1.StatusRequest{}); err == nil {
		t.Error("Status after Stop succeeded")
	}
}
