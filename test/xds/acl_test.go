package xds

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// tokenNode is an xDS node presenting token in its metadata.
func tokenNode(t *testing.T, id, token string) *corev3.Node {
	t.Helper()
	md, err := structpb.NewStruct(map[string]any{"TOKEN": token})
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Node{Id: id, UserAgentName: "acl test", Metadata: md}
}

// resourceNames returns the names of the resources in resp.
func resourceNames(t *testing.T, resp *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range resp.GetResources() {
		var m interface{ GetName() string }
		switch a.GetTypeUrl() {
		case resourcev3.ListenerType:
			m = &listenerv3.Listener{}
		case resourcev3.RouteType:
			m = &routev3.RouteConfiguration{}
		case resourcev3.ClusterType:
			m = &clusterv3.Cluster{}
		default:
			t.Fatalf("unexpected resource type %s", a.GetTypeUrl())
		}
		if err := anypb.UnmarshalTo(a, m.(proto.Message), proto.UnmarshalOptions{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.GetName())
	}
	slices.Sort(out)
	return out
}

// TestXDSClientSeesOnlyReadableServices: with ACLs on, an xDS client whose
// token reads only web gets web's listener, route and cluster, never
// admin's, even when it asks for them by name; an unknown token is
// refused.
func TestXDSClientSeesOnlyReadableServices(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t, func(c *server.Config) { c.ACLEnabled = true })
	client := servertest.NewClient(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := client.ACL().Bootstrap(ctx, &chainstorev1.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rootCtx := api.WithToken(ctx, boot.GetToken().GetSecretId())
	for _, svc := range []string{"web", "admin"} {
		if _, err := client.Apply(rootCtx, &chainstorev1.ApplyRequest{Entry: fmt.Appendf(nil, grpcDefaults, svc)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.ACL().PolicyCreate(rootCtx, &chainstorev1.PolicyCreateRequest{Name: "web-read", Rules: `service "web" { policy = "read" }`}); err != nil {
		t.Fatal(err)
	}
	tk, err := client.ACL().TokenCreate(rootCtx, &chainstorev1.TokenCreateRequest{PolicyNames: []string{"web-read"}})
	if err != nil {
		t.Fatal(err)
	}
	webToken := tk.GetToken().GetSecretId()

	// The management token sees both chains; note their cluster names.
	root := adsStream(t, srv.Addr())
	rootNode := tokenNode(t, "root", boot.GetToken().GetSecretId())
	send(t, root, &discoveryv3.DiscoveryRequest{Node: rootNode, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"admin", "web"}})
	if got := resourceNames(t, recv(t, root)); !slices.Equal(got, []string{"admin", "web"}) {
		t.Fatalf("root LDS = %v, want admin and web", got)
	}
	send(t, root, &discoveryv3.DiscoveryRequest{Node: rootNode, TypeUrl: resourcev3.ClusterType, ResourceNames: nil})
	send(t, root, &discoveryv3.DiscoveryRequest{Node: rootNode, TypeUrl: resourcev3.RouteType, ResourceNames: []string{"admin", "web"}})
	var clusters []string
	for len(clusters) < 2 {
		resp := recv(t, root)
		if resp.GetTypeUrl() != resourcev3.RouteType {
			continue
		}
		for _, a := range resp.GetResources() {
			var rc routev3.RouteConfiguration
			if err := anypb.UnmarshalTo(a, &rc, proto.UnmarshalOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, vh := range rc.GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					if c := r.GetRoute().GetCluster(); c != "" && !slices.Contains(clusters, c) {
						clusters = append(clusters, c)
					}
				}
			}
		}
	}
	slices.Sort(clusters)

	// The web token asks for everything by name and gets only web's.
	st := adsStream(t, srv.Addr())
	node := tokenNode(t, "web-client", webToken)
	send(t, st, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"admin", "web"}})
	if got := resourceNames(t, recv(t, st)); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("web-token LDS = %v, want only web", got)
	}
	send(t, st, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType, ResourceNames: clusters})
	got := resourceNames(t, recv(t, st))
	if len(got) != 1 || got[0] == "" || !slices.Contains(clusters, got[0]) {
		t.Fatalf("web-token CDS = %v of %v, want exactly web's cluster", got, clusters)
	}
	for _, c := range clusters {
		if c != got[0] && slices.Contains(got, c) {
			t.Fatalf("web-token CDS includes %s", c)
		}
	}

	// An unknown token is refused.
	bad := adsStream(t, srv.Addr())
	send(t, bad, &discoveryv3.DiscoveryRequest{Node: tokenNode(t, "bad", "not-a-token"), TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"web"}})
	if _, err := bad.Recv(); status.Code(err) != codes.PermissionDenied || status.Convert(err).Message() != "ACL not found" {
		t.Fatalf("stream with an unknown token: %v, want PermissionDenied ACL not found", err)
	}
}
