package xds

import (
	"fmt"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/xdsserver"
)

// TestGRPCClientsLaterFeatures runs stock grpc-go xDS clients against the
// translation of later Consul entry fields (docs/xds.md §4.2, §3.3): ring
// hash with a header hash policy is honoured; least_request, header
// modifiers, RetryOn and IdleTimeout are accepted (ACKed, calls succeed).
func TestGRPCClientsLaterFeatures(t *testing.T) {
	srv := servertest.StartSingle(t)
	cl := servertest.NewClient(t, srv.Addr())
	xs := srv.Server().XDS()

	t.Run("RingHashHeaderSticky", func(t *testing.T) {
		put(t, srv, grpcDefaults, "rh")
		put(t, srv, `{"Kind":"service-resolver","Name":"rh","LoadBalancer":{"Policy":"ring_hash",
		  "HashPolicies":[{"Field":"header","FieldValue":"x-user"}]}}`)
		for i := 1; i <= 3; i++ {
			register(t, cl, instance{id: fmt.Sprintf("rh-%d", i), service: "rh"})
		}
		conn := dialXDS(t, srv.Addr(), "rh-client", "rh")
		// Without the header each call gets a random hash: all answer.
		waitOnly(t, conn, "all three rh instances to answer", []string{"rh-1", "rh-2", "rh-3"})
		used := map[string]bool{}
		for u := range 20 {
			user := fmt.Sprintf("user-%d", u)
			got := tally(conn, 10, "x-user", user)
			if len(got) != 1 {
				t.Errorf("%s: calls spread over %v, want all 10 on one backend (ring hash on x-user)", user, got)
			}
			for b := range got {
				used[b] = true
			}
		}
		if len(used) < 2 {
			t.Errorf("20 users all hashed to %v, want them spread over the ring", used)
		}
		ackedWithoutNACK(t, xs, "rh-client")
	})

	t.Run("LeastRequestAndRouteModifiers", func(t *testing.T) {
		put(t, srv, grpcDefaults, "lr")
		put(t, srv, `{"Kind":"service-resolver","Name":"lr","RequestTimeout":"3s",
		  "LoadBalancer":{"Policy":"least_request","LeastRequestConfig":{"ChoiceCount":2}}}`)
		put(t, srv, `{"Kind":"service-router","Name":"lr","Routes":[{
		  "Match":{"HTTP":{"PathPrefix":"/grpc.health.v1.Health/"}},
		  "Destination":{"IdleTimeout":"30s","NumRetries":2,"RetryOn":["unavailable","5xx"],
		    "RequestHeaders":{"Add":{"x-a":"1"},"Set":{"x-b":"2"},"Remove":["x-c"]},
		    "ResponseHeaders":{"Remove":["x-d"]}}}]}`)
		register(t, cl, instance{id: "lr-1", service: "lr"})
		register(t, cl, instance{id: "lr-2", service: "lr"})
		conn := dialXDS(t, srv.Addr(), "lr-client", "lr")
		waitOnly(t, conn, "both lr instances to answer", []string{"lr-1", "lr-2"})
		if got := tally(conn, 100); got["lr-1"]+got["lr-2"] != 100 {
			t.Errorf("100 calls: %v, want all answered by lr-1 or lr-2", got)
		}
		ackedWithoutNACK(t, xs, "lr-client")
	})
}

// ackedWithoutNACK waits until the client has ACKed the latest version of
// every resource type and never NACKed one.
func ackedWithoutNACK(t *testing.T, xs *xdsserver.Server, node string) {
	t.Helper()
	testutil.Poll(t, 10*time.Second, node+" to ACK every type without a NACK", func() bool {
		st := onlyStream(t, xs, node)
		for _, ts := range st.Types {
			if ts.NACKs != 0 {
				t.Fatalf("%s NACKed: %+v", node, st.Types)
			}
			if ts.Acked == "" || ts.Acked != ts.Sent {
				return false
			}
		}
		return len(st.Types) == 4
	})
}
