package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Response headers in which a benchmark backend names itself and its
// version.
const (
	backendHeader = "backend"
	versionHeader = "version"
)

// backend is a gRPC server on loopback serving grpc.health.v1 whose every
// response carries the headers backend: <id> and version: <version>.
type backend struct {
	id, version string
	port        int
	gs          *grpc.Server
	done        chan struct{}
}

func startBackend(id, version string) (*backend, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", id, err)
	}
	b := &backend{id: id, version: version, port: lis.Addr().(*net.TCPAddr).Port, done: make(chan struct{})}
	md := metadata.Pairs(backendHeader, id, versionHeader, version)
	b.gs = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, md)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(b.gs, health.NewServer())
	go func() {
		defer close(b.done)
		_ = b.gs.Serve(lis)
	}()
	return b, nil
}

func (b *backend) stop() {
	b.gs.Stop()
	<-b.done
}

// xdsBootstrap is the xDS bootstrap of a client with node ID nodeID whose
// management server is serverURI.
func xdsBootstrap(serverURI, nodeID string) []byte {
	return fmt.Appendf(nil, `{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": %q, "locality": {}}
}`, serverURI, nodeID)
}

// applyEntries writes entries in order, each with its own deadline.
func applyEntries(ctx context.Context, c chainstorev1.EntriesServiceClient, timeout time.Duration, entries ...string) error {
	for _, e := range entries {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := c.Apply(cctx, &chainstorev1.ApplyRequest{Entry: []byte(e)})
		cancel()
		if err != nil {
			return fmt.Errorf("apply %s: %w", e, err)
		}
	}
	return nil
}

// deleteEntries deletes kind/name pairs, best effort (the first error).
func deleteEntries(ctx context.Context, c chainstorev1.EntriesServiceClient, timeout time.Duration, kindNames ...[2]string) error {
	var first error
	for _, kn := range kindNames {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := c.Delete(cctx, &chainstorev1.DeleteRequest{Kind: kn[0], Name: kn[1]})
		cancel()
		if err != nil && first == nil {
			first = fmt.Errorf("delete %s/%s: %w", kn[0], kn[1], err)
		}
	}
	return first
}

// vmRSS returns the VmRSS of process pid ("self" for this one) in KiB.
func vmRSS(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
}

// durationsMS rounds ds to milliseconds with 0.1 ms precision.
func durationsMS(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Round(100*time.Microsecond)) / 1e6
	}
	return out
}
