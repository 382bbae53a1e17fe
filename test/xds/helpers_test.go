package xds

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcxds "google.golang.org/grpc/xds"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// backendHeader is the response header in which a backend names itself.
const backendHeader = "backend"

// startBackend starts a gRPC server on 127.0.0.1:0 serving grpc.health.v1
// whose every response carries the header "backend: <name>". It stops
// when the test ends.
func startBackend(tb testing.TB, name string) int {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs(backendHeader, name))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	tb.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return lis.Addr().(*net.TCPAddr).Port
}

// instance describes one backend to register.
type instance struct {
	id, service, version string
	ttl                  time.Duration // 0: no check (always passing)
}

// register starts a backend for in and registers it in the catalog; an
// instance with a TTL check is then marked passing.
func register(tb testing.TB, cl *api.Client, in instance) {
	tb.Helper()
	port := startBackend(tb, in.id)
	pb := &chainstorev1.Instance{Id: in.id, Service: in.service, Address: "127.0.0.1", Port: uint32(port)}
	if in.version != "" {
		pb.Meta = map[string]string{"version": in.version}
	}
	if in.ttl > 0 {
		pb.Ttl = durationpb.New(in.ttl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Register(ctx, &chainstorev1.RegisterRequest{Instance: pb}); err != nil {
		tb.Fatalf("Register(%s): %v", in.id, err)
	}
	if in.ttl > 0 {
		setHealth(tb, cl, in.id, chainstorev1.HealthStatus_HEALTH_STATUS_PASSING)
	}
}

// setHealth updates the TTL check of instance id.
func setHealth(tb testing.TB, cl *api.Client, id string, st chainstorev1.HealthStatus) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: id, Status: st, Note: "set by the test"}); err != nil {
		tb.Fatalf("UpdateCheck(%s, %s): %v", id, st, err)
	}
}

// bootstrap is the xDS bootstrap of a client with node ID nodeID whose
// management server is serverURI.
func bootstrap(serverURI, nodeID string) []byte {
	return fmt.Appendf(nil, `{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": %q, "locality": {}}
}`, serverURI, nodeID)
}

// dialXDS returns a stock grpc-go client of xds:///<service> whose xDS
// client (its own, from a per-client bootstrap: no global state) talks to
// serverURI as node nodeID. Closed at the end of the test.
func dialXDS(tb testing.TB, serverURI, nodeID, service string) *grpc.ClientConn {
	tb.Helper()
	rb, err := grpcxds.NewXDSResolverWithConfigForTesting(bootstrap(serverURI, nodeID))
	if err != nil {
		tb.Fatalf("xds resolver: %v", err)
	}
	conn, err := grpc.NewClient("xds:///"+service, grpc.WithResolvers(rb), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("NewClient(xds:///%s): %v", service, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// callTimeout bounds one RPC. The first RPC of a client waits for the
// whole xDS exchange.
const callTimeout = 5 * time.Second

// who makes one Health.Check call with the metadata pairs md and returns
// the name of the backend that answered.
func who(conn *grpc.ClientConn, md ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	var hdr metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		return "", err
	}
	if v := hdr.Get(backendHeader); len(v) == 1 {
		return v[0], nil
	}
	return "", fmt.Errorf("response without a single %q header: %v", backendHeader, hdr)
}

// tally counts n calls per answering backend, made by `workers`
// goroutines; failed calls count under "error: <message>".
func tally(conn *grpc.ClientConn, n int, md ...string) map[string]int {
	const workers = 4
	var mu sync.Mutex
	counts := make(map[string]int)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := make(map[string]int)
			for i := w; i < n; i += workers {
				b, err := who(conn, md...)
				if err != nil {
					b = "error: " + err.Error()
				}
				m[b]++
			}
			mu.Lock()
			for k, v := range m {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

// waitOnly polls until a batch of `batch` calls went to backends in want
// only (none failed), and every backend of want answered at least once.
func waitOnly(tb testing.TB, conn *grpc.ClientConn, what string, want []string, md ...string) {
	tb.Helper()
	const batch = 30
	var last map[string]int
	testutil.Poll(tb, 20*time.Second, what, func() bool {
		last = tally(conn, batch, md...)
		for _, w := range want {
			if last[w] == 0 {
				return false
			}
		}
		sum := 0
		for _, w := range want {
			sum += last[w]
		}
		return sum == batch
	})
	tb.Logf("%s: %v", what, last)
}
