package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// The xds commands against the fake OperatorService (entries_test.go),
// pinned in testdata/xds-*.golden, and against a real server.

func (s fakeOperator) XdsClients(_ context.Context, r *chainstorev1.XdsClientsRequest) (*chainstorev1.XdsClientsResponse, error) {
	return fakeCall[*chainstorev1.XdsClientsResponse](s.f, "XdsClients", r)
}

func (s fakeOperator) XdsChains(_ context.Context, r *chainstorev1.XdsChainsRequest) (*chainstorev1.XdsChainsResponse, error) {
	return fakeCall[*chainstorev1.XdsChainsResponse](s.f, "XdsChains", r)
}

func TestXDSCommands(t *testing.T) {
	t.Parallel()
	at := func(sec int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(1767225600+sec, 0)) }
	meta := &chainstorev1.QueryMeta{Index: 12, KnownLeader: true, ServedBy: "n1"}
	clients := &chainstorev1.XdsClientsResponse{Meta: meta, Clients: []*chainstorev1.XdsClient{
		{
			NodeId: "frontend-1", UserAgent: "gRPC Go 1.85.0", Peer: "10.0.0.7:51234", StreamId: 3, ConnectedSince: at(0),
			Refused: []string{"extra"},
			Types: []*chainstorev1.XdsTypeStatus{
				{TypeUrl: resourcev3.ClusterType, Names: []string{"a", "b", "c", "d", "e"}, SentVersion: "n1.abc.4", SentAt: at(2), AckedVersion: "n1.abc.4", AckedAt: at(3)},
				{TypeUrl: resourcev3.EndpointType, Names: []string{"a"}, SentVersion: "n1.abc.5", SentAt: at(4), AckedVersion: "n1.abc.3", AckedAt: at(1),
					Nacks: 2, LastNackError: "endpoint a: invalid weight\nsecond line", LastNackVersion: "n1.abc.5", LastNackAt: at(5)},
				{TypeUrl: resourcev3.ListenerType, Names: []string{"web", "extra"}, SentVersion: "n1.abc.2", SentAt: at(1), AckedVersion: "n1.abc.2", AckedAt: at(1)},
				{TypeUrl: resourcev3.RouteType, Names: []string{"web"}, SentVersion: "n1.abc.2", SentAt: at(1)},
				{TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"},
			},
		},
		{NodeId: "frontend-2", Peer: "10.0.0.8:40000", StreamId: 1, Delta: true, ConnectedSince: at(60)},
	}}
	chains := &chainstorev1.XdsChainsResponse{Meta: meta, Chains: []*chainstorev1.XdsChain{
		{Service: "api", Index: 9, Hash: "0123456789abcdef0123456789abcdef", PublishedHash: "fedcba9876543210fedcba9876543210",
			Error: "validate listener api:\n  route 0: unknown cluster", Services: []string{"api"}, Updated: at(30)},
		{Service: "nochain"},
		{Service: "web", Index: 7, Hash: "00112233445566778899aabbccddeeff", PublishedHash: "00112233445566778899aabbccddeeff",
			Warnings: []string{"route 1: prefix_rewrite is ignored by gRPC clients", "route 2: query parameter matches are ignored"},
			Services: []string{"web", "web-canary"}, Updated: at(10)},
	}}
	empty := map[string]proto.Message{
		"XdsClients": &chainstorev1.XdsClientsResponse{Meta: meta},
		"XdsChains":  &chainstorev1.XdsChainsResponse{Meta: meta},
	}

	cases := map[string]struct {
		args []string
		resp map[string]proto.Message
		errs map[string]error
	}{
		"clients":            {args: []string{"xds", "clients"}, resp: map[string]proto.Message{"XdsClients": clients}},
		"clients-json":       {args: []string{"xds", "clients", "--json"}, resp: map[string]proto.Message{"XdsClients": clients}},
		"clients-empty":      {args: []string{"xds", "clients"}, resp: empty},
		"clients-empty-json": {args: []string{"xds", "clients", "--json"}, resp: empty},
		"clients-extra-arg":  {args: []string{"xds", "clients", "web"}},
		// A server that predates the call answers Unimplemented.
		"clients-unimplemented": {args: []string{"xds", "clients"}},
		"chains":                {args: []string{"xds", "chains"}, resp: map[string]proto.Message{"XdsChains": chains}},
		"chains-json":           {args: []string{"xds", "chains", "--json"}, resp: map[string]proto.Message{"XdsChains": chains}},
		"chains-empty":          {args: []string{"xds", "chains"}, resp: empty},
		"chains-error": {args: []string{"xds", "chains"},
			errs: map[string]error{"XdsChains": status.Error(codes.PermissionDenied, "operator calls are not allowed")}},
		"help":               {args: []string{"xds", "--help"}},
		"no-subcommand":      {args: []string{"xds"}},
		"unknown-subcommand": {args: []string{"xds", "servers"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{reqs: map[string]proto.Message{}, resp: tc.resp, errs: tc.errs}
			addr := startFakeServer(t, f)
			code, stdout, stderr := runStorectl(t, "", append([]string{"--addr", addr}, tc.args...)...)
			var got bytes.Buffer
			fmt.Fprintf(&got, "$ storectl %s\nexit %d\n--- stdout\n%s--- stderr\n%s", joinArgs(tc.args, ""), code, stdout, stderr)
			f.mu.Lock()
			fmt.Fprintf(&got, "--- calls\n%s\n", callList(f.calls))
			f.mu.Unlock()
			testutil.Golden(t, filepath.Join("testdata", "xds-"+name+".golden"), got.Bytes())
		})
	}
}

// TestXDSClientsAgainstServer connects a raw ADS stream to a real server
// and finds its node ID in `storectl xds clients`, and the chain it asked
// for in `storectl xds chains`.
func TestXDSClientsAgainstServer(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	ctl := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runStorectl(t, "", append([]string{"--addr", srv.Addr(), "xds"}, args...)...)
		if code != 0 {
			t.Fatalf("storectl xds %v: exit %d, stderr %q", args, code, stderr)
		}
		return stdout
	}
	if out := ctl("clients", "--json"); out != "[]\n" {
		t.Fatalf("xds clients --json before any client = %q, want []", out)
	}

	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "storectl-test-node", UserAgentName: "raw test client"}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"web"}}); err != nil {
		t.Fatal(err)
	}

	var clients []xdsClientJSON
	testutil.Poll(t, 10*time.Second, "the ADS client in xds clients", func() bool {
		clients = nil
		if err := json.Unmarshal([]byte(ctl("clients", "--json")), &clients); err != nil {
			t.Fatal(err)
		}
		return len(clients) == 1 && len(clients[0].Types) == 1
	})
	c := clients[0]
	if c.NodeID != "storectl-test-node" || c.UserAgent == "" || c.Peer == "" || c.ConnectedSince.IsZero() ||
		c.Types[0].Type != "LDS" || fmt.Sprint(c.Types[0].Names) != "[web]" {
		t.Errorf("xds clients --json = %+v", c)
	}
	if out := ctl("clients"); !bytes.Contains([]byte(out), []byte("storectl-test-node")) {
		t.Errorf("xds clients table does not list the node:\n%s", out)
	}
	testutil.Poll(t, 10*time.Second, "chain web in xds chains", func() bool {
		return bytes.Contains([]byte(ctl("chains")), []byte("web"))
	})
}
