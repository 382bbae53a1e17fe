package rpc

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/xdsserver"
)

// fakeXDS is a fixed xDS server status.
type fakeXDS struct {
	clients []xdsserver.ClientStatus
	chains  []xdsserver.ChainStatus
}

func (f fakeXDS) Clients() []xdsserver.ClientStatus { return f.clients }
func (f fakeXDS) Chains() []xdsserver.ChainStatus   { return f.chains }

func TestXdsStatusWithoutXDSServer(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	cl, err := n.client.XdsClients(ctx, &chainstorev1.XdsClientsRequest{})
	if err != nil || len(cl.GetClients()) != 0 || cl.GetMeta().GetServedBy() != "node-a" {
		t.Errorf("XdsClients = %v, %v; want no client, served by node-a", cl, err)
	}
	ch, err := n.client.XdsChains(ctx, &chainstorev1.XdsChainsRequest{})
	if err != nil || len(ch.GetChains()) != 0 || ch.GetMeta().GetServedBy() != "node-a" {
		t.Errorf("XdsChains = %v, %v; want no chain, served by node-a", ch, err)
	}
}

func TestXdsStatus(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x := fakeXDS{
		clients: []xdsserver.ClientStatus{{
			NodeID: "n", UserAgent: "gRPC Go 1.85.0", Peer: "10.0.0.1:1234", StreamID: 4, Delta: true, ConnectedSince: t0,
			Refused: []string{"x"},
			Types: []xdsserver.TypeStatus{
				{TypeURL: "lds", Names: []string{"web"}, Sent: "v2", SentAt: t0.Add(time.Second), Acked: "v1", AckedAt: t0,
					NACKs: 1, LastNACK: "bad", LastNACKVersion: "v2", LastNACKAt: t0.Add(2 * time.Second)},
				{TypeURL: "rds"},
			},
		}},
		chains: []xdsserver.ChainStatus{{Name: "web", Index: 3, Hash: "h2", PublishedHash: "h1", Error: "boom",
			Warnings: []string{"w"}, Services: []string{"web"}, Updated: t0}},
	}
	op := &OperatorServer{router: n.srv.router, xds: x}
	ctx := testCtx(t)

	cl, err := op.XdsClients(ctx, &chainstorev1.XdsClientsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantClients := []*chainstorev1.XdsClient{{
		NodeId: "n", UserAgent: "gRPC Go 1.85.0", Peer: "10.0.0.1:1234", StreamId: 4, Delta: true, ConnectedSince: timestamppb.New(t0),
		Refused: []string{"x"},
		Types: []*chainstorev1.XdsTypeStatus{
			{TypeUrl: "lds", Names: []string{"web"}, SentVersion: "v2", SentAt: timestamppb.New(t0.Add(time.Second)),
				AckedVersion: "v1", AckedAt: timestamppb.New(t0),
				Nacks: 1, LastNackError: "bad", LastNackVersion: "v2", LastNackAt: timestamppb.New(t0.Add(2 * time.Second))},
			{TypeUrl: "rds"},
		},
	}}
	if diff := cmp.Diff(wantClients, cl.GetClients(), protocmp.Transform()); diff != "" {
		t.Errorf("XdsClients (-want +got):\n%s", diff)
	}
	if cl.GetMeta().GetServedBy() != "node-a" {
		t.Errorf("XdsClients meta = %v", cl.GetMeta())
	}

	ch, err := op.XdsChains(ctx, &chainstorev1.XdsChainsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantChains := []*chainstorev1.XdsChain{{Service: "web", Index: 3, Hash: "h2", PublishedHash: "h1", Error: "boom",
		Warnings: []string{"w"}, Services: []string{"web"}, Updated: timestamppb.New(t0)}}
	if diff := cmp.Diff(wantChains, ch.GetChains(), protocmp.Transform()); diff != "" {
		t.Errorf("XdsChains (-want +got):\n%s", diff)
	}
}
