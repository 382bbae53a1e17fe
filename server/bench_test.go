package server_test

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// Write benchmarks against a three-node cluster: an in-process one (every
// node a full Server with the production Raft timings and fsync'ed bbolt
// in a temp dir), or, with CHAINSTORE_BENCH_ADDR=host:port[,...], a running
// one (e.g. scripts/cluster.sh up). Each write is a plain upsert of a new
// service-defaults entry, sent to the leader (through the client's
// address list).
//
//	go test -run '^$' -bench Write -benchtime 2000x ./server/
//	CHAINSTORE_BENCH_ADDR=127.0.0.1:8502,127.0.0.1:8512,127.0.0.1:8522 go test -run '^$' -bench Write ./server/

// benchClients returns n clients of the cluster under test, each with its
// own connection, the leader's address first.
func benchClients(b *testing.B, n int) []*api.Client {
	b.Helper()
	var addrs []string
	if env := os.Getenv("CHAINSTORE_BENCH_ADDR"); env != "" {
		addrs = api.SplitAddrs(env)
		cfg := api.DefaultClientConfig()
		cfg.Addrs = addrs
		c, err := api.NewClient(cfg)
		if err != nil {
			b.Fatal(err)
		}
		st, err := c.Status(b.Context(), &chainstorev1.StatusRequest{})
		_ = c.Close()
		if err != nil {
			b.Fatal(err)
		}
		if l := st.GetLeaderGrpcAddr(); l != "" {
			addrs = append([]string{l}, addrs...)
		}
	} else {
		addrs = []string{benchCluster(b)}
	}
	out := make([]*api.Client, n)
	for i := range out {
		cfg := api.DefaultClientConfig()
		cfg.Addrs = addrs
		c, err := api.NewClient(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		out[i] = c
	}
	return out
}

// benchCluster starts an in-process three-node cluster with production
// timings and returns the leader's gRPC address.
func benchCluster(b *testing.B) string {
	b.Helper()
	var servers []*server.Server
	b.Cleanup(func() {
		for _, s := range servers {
			_ = s.Stop(false)
		}
	})
	var join []string
	for i := 1; i <= 3; i++ {
		cfg := server.DefaultConfig()
		cfg.NodeName, cfg.DataDir = fmt.Sprintf("n%d", i), b.TempDir()
		cfg.RaftAddr, cfg.GossipAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.BootstrapExpect, cfg.Join = 3, join
		cfg.Cluster.JoinRetryMin, cfg.Cluster.JoinRetryMax = 50*time.Millisecond, 500*time.Millisecond
		cfg.Cluster.Label = "chainstore-bench"
		s, err := server.New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.Start()
		servers = append(servers, s)
		join = append(join, s.GossipAddr())
	}
	var leader string
	testutil.Poll(b, 30*time.Second, "a ready leader", func() bool {
		for _, s := range servers {
			if s.Raft().IsLeader() {
				if _, err := s.Raft().ReadIndex(b.Context()); err == nil {
					leader = s.GRPCAddr()
					return true
				}
			}
		}
		return false
	})
	return leader
}

var benchRun atomic.Int64

// BenchmarkWrite1Client measures the latency of sequential writes.
func BenchmarkWrite1Client(b *testing.B) {
	c := benchClients(b, 1)[0]
	run := benchRun.Add(1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := c.Apply(b.Context(), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults(fmt.Sprintf("b%d-s%d", run, i), "http"))}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkWrite64Clients measures the throughput of 64 concurrent
// writers (each with its own gRPC connection, as separate clients would).
func BenchmarkWrite64Clients(b *testing.B) {
	const writers = 64
	clients := benchClients(b, writers)
	run := benchRun.Add(1)
	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					break
				}
				t0 := time.Now()
				if _, err := clients[w].Apply(b.Context(), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults(fmt.Sprintf("b%d-p%d", run, i), "http"))}); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
