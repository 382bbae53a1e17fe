package xds

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/xdsserver"
)

// apply writes an entry document through cl.
func apply(tb testing.TB, cl *api.Client, doc string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(doc)})
	if err != nil || !resp.GetApplied() {
		tb.Fatalf("Apply(%s) = %v, %v", doc, resp, err)
	}
}

// TestLeaderKill connects a gRPC client's xDS stream to the leader of a
// three-node cluster, crashes the leader, and checks that RPCs keep
// working, that the client's xDS stream moves to another server, and that
// a route change made after the crash reaches the client.
func TestLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	nodes := append([]*servertest.Node{leader}, c.Followers()...)
	cl := c.Client(nodes...)

	apply(t, cl, `{"Kind":"service-defaults","Name":"lk","Protocol":"grpc"}`)
	apply(t, cl, `{"Kind":"service-resolver","Name":"lk","DefaultSubset":"v1","Subsets":{
	  "v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`)
	// The route names v2 from the start, so the later change involves no
	// cluster new to the client (see RouteChangeOnSameConnection).
	apply(t, cl, `{"Kind":"service-router","Name":"lk","Routes":[
	  {"Match":{"HTTP":{"PathPrefix":"/other.Service/"}},"Destination":{"ServiceSubset":"v2"}}]}`)
	register(t, cl, instance{id: "lk-v1", service: "lk", version: "v1"})
	register(t, cl, instance{id: "lk-v2", service: "lk", version: "v2"})

	// The client's xDS channel resolves to every server, leader first;
	// pick_first moves on to the next one when its server goes away.
	mr := manual.NewBuilderWithScheme("chainstore-xds-leader-kill")
	var addrs []resolver.Address
	for _, nd := range nodes {
		addrs = append(addrs, resolver.Address{Addr: nd.GRPCAddr()})
	}
	mr.InitialState(resolver.State{Addresses: addrs})
	resolver.Register(mr)
	conn := dialXDS(t, mr.Scheme()+":///servers", "lk-client", "lk")
	waitOnly(t, conn, "v1 to answer", []string{"lk-v1"})
	onlyStream(t, leader.Server().XDS(), "lk-client")

	bg := startCaller(conn)
	start := time.Now()
	c.Crash(leader)
	var moved *servertest.Node
	testutil.Poll(t, 20*time.Second, "the client's xDS stream to move to another server", func() bool {
		for _, nd := range c.Running() {
			if slices.ContainsFunc(nd.Server().XDS().Clients(), func(s xdsserver.ClientStatus) bool { return s.NodeID == "lk-client" }) {
				moved = nd
				return true
			}
		}
		return false
	})
	t.Logf("xDS stream moved to %s %s after the crash", moved.Name(), time.Since(start).Round(time.Millisecond))

	newLeader := c.Leader()
	t.Logf("new leader %s %s after the crash", newLeader.Name(), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	apply(t, c.Client(c.Running()...), `{"Kind":"service-router","Name":"lk","Routes":[
	  {"Match":{"HTTP":{"PathPrefix":"/grpc.health.v1.Health/"}},"Destination":{"ServiceSubset":"v2"}}]}`)
	waitOnly(t, conn, "the route change made after the crash to reach the client", []string{"lk-v2"})
	t.Logf("route change followed within %s", time.Since(start).Round(time.Millisecond))
	bg.stop()
	calls, failures, _ := bg.take()
	t.Logf("%d background calls from the crash to the route change, %d failed", calls, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed, first: %s", len(failures), calls, failures[0])
	}
}
