package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/tlstest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// BenchmarkSecurity measures what secure mode costs: the same three-node
// in-process cluster (servertest timings) in plain mode and in secure mode
// (TLS with client certificates on gRPC, mutual TLS on Raft and on
// forwarding, encrypted gossip). put-leader is a sequential write sent to
// the leader; put-follower the same sent to a follower (forwarded over
// gRPC); watch is the time from sending a write to the leader until a
// chain watcher connected to a follower has the new version.
// docs/benchmarks.md has the figures.
//
//	go test -run '^$' -bench Security -benchtime 300x ./server/
func BenchmarkSecurity(b *testing.B) {
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) {
			var mutate func(*server.Config)
			clientTLS := api.TLSConfig{}
			if mode == "tls" {
				pki := tlstest.New(b, "dc1")
				mutate = servertest.Secure(pki, nil)
				clientTLS = servertest.ClientTLS(pki)
			}
			c := servertest.NewCluster(b, 3, mutate)
			leader, follower := c.Leader(), c.Followers()[0]
			b.Run("put-leader", func(b *testing.B) {
				benchPut(b, servertest.NewTLSClient(b, clientTLS, leader.GRPCAddr()), mode+"-l")
			})
			b.Run("put-follower", func(b *testing.B) {
				benchPut(b, servertest.NewTLSClient(b, clientTLS, follower.GRPCAddr()), mode+"-f")
			})
			b.Run("watch", func(b *testing.B) {
				benchWatch(b, servertest.NewTLSClient(b, clientTLS, leader.GRPCAddr()), follower.GRPCAddr(), clientTLS)
			})
		})
	}
}

func benchPut(b *testing.B, c *api.Client, prefix string) {
	b.Helper()
	prefix = fmt.Sprintf("%s-r%d", prefix, benchRun.Add(1)) // a new entry on every write, across -count runs
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := c.Apply(b.Context(), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults(fmt.Sprintf("%s-%d", prefix, i), "http"))}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func benchWatch(b *testing.B, writer *api.Client, watchAddr string, clientTLS api.TLSConfig) {
	b.Helper()
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = []string{watchAddr}
	cfg.TLS = clientTLS
	cfg.Chains = []api.WatchedChain{{Service: "bench-watch"}}
	wc, err := api.NewChainWatchClient(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	events := make(chan uint64, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wc.Run(ctx, func(e api.ChainEvent) { events <- e.Index })
	}()
	b.Cleanup(func() { cancel(); <-done })
	protocols := []string{"http", "grpc"}
	write := func(i int) uint64 {
		resp, err := writer.Apply(b.Context(), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults("bench-watch", protocols[i%2]))})
		if err != nil {
			b.Fatal(err)
		}
		return resp.GetIndex()
	}
	waitFor := func(idx uint64) {
		for {
			select {
			case got := <-events:
				if got >= idx {
					return
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("watcher did not see index %d", idx)
			}
		}
	}
	waitFor(write(1)) // the first version
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		waitFor(write(i))
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}
