package rpc

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// BenchmarkWatchGRPC is BenchmarkFanout (chainwatch) over real gRPC:
// 3 servers (each an FSM, a hub and a gRPC server with the chain service
// on loopback), 100 chains, N watchers, each a real Watch stream with one
// subscription; streams share connPerServer client connections per
// server. The 3 FSMs apply each write in parallel (no Raft); latency runs
// from the start of that apply until the last watcher's client has
// received the new version. Memory per idle watcher here is client AND
// server (both live in the process), so it is an upper bound of the
// server's share.
//
//	go test -run '^$' -bench WatchGRPC -benchtime 1000x ./rpc/
func BenchmarkWatchGRPC(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) { benchWatchGRPC(b, n) })
	}
}

const (
	benchGRPCServers = 3
	benchGRPCChains  = 100
	connPerServer    = 8
)

type benchGRPCRound struct {
	target  uint64
	pending atomic.Int64
	done    chan struct{}
}

func benchWatchGRPC(b *testing.B, watchers int) { //nolint:thelper // the body of each BenchmarkWatchGRPC sub-benchmark, not a helper: b.Helper() would hide the failing line
	cl := newESCluster()
	nodes := make([]*chNode, benchGRPCServers)
	for i := range nodes {
		nodes[i] = startChainNode(b, fmt.Sprintf("n%d", i), cl, chNodeOpts{leader: true})
	}
	// index is the last Raft index given to every FSM.
	var index uint64
	applyAll := func(doc string) uint64 {
		e, err := chain.DecodeEntry([]byte(doc))
		if err != nil {
			b.Fatalf("decode: %v", err)
		}
		if err := chain.Prepare(e); err != nil {
			b.Fatalf("prepare: %v", err)
		}
		data, err := fsm.EncodeCommand(fsm.Command{Op: fsm.OpUpsert, Entry: e, Key: chain.KeyOf(e.GetKind(), e.GetName())})
		if err != nil {
			b.Fatalf("encode: %v", err)
		}
		index++
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.fsm.ApplyBatch([]*raft.Log{{Index: index, Term: 1, Type: raft.LogCommand, Data: data}})
			}()
		}
		wg.Wait()
		return index
	}
	name := func(c int) string { return fmt.Sprintf("svc-%03d", c) }
	for c := range benchGRPCChains {
		applyAll(chResolver(name(c), 5*time.Second))
	}

	conns := make([][]*grpc.ClientConn, benchGRPCServers)
	for s, n := range nodes {
		for range connPerServer {
			conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatalf("dial: %v", err)
			}
			b.Cleanup(func() { _ = conn.Close() })
			conns[s] = append(conns[s], conn)
		}
	}
	// Warm the connections and the chains.
	ctx, cancel := context.WithCancel(context.Background())
	for s := range nodes {
		for c := range benchGRPCChains {
			if _, err := chainstorev1.NewChainServiceClient(conns[s][c%connPerServer]).GetChain(ctx,
				&chainstorev1.GetChainRequest{Chain: ref(name(c))}); err != nil {
				b.Fatalf("GetChain: %v", err)
			}
		}
	}

	var rounds [benchGRPCChains]atomic.Pointer[benchGRPCRound]
	perChain := make([]int64, benchGRPCChains)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var wg, ready sync.WaitGroup
	for i := range watchers {
		c, s := i%benchGRPCChains, (i/benchGRPCChains)%benchGRPCServers
		perChain[c]++
		stream, err := chainstorev1.NewChainServiceClient(conns[s][i%connPerServer]).Watch(ctx)
		if err != nil {
			b.Fatalf("Watch: %v", err)
		}
		if err := stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{
			Subscribe: &chainstorev1.WatchSubscribe{Id: 1, Chain: ref(name(c))}}}); err != nil {
			b.Fatalf("Send: %v", err)
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				u := resp.GetUpdate()
				if u == nil {
					continue
				}
				if first {
					first = false
					ready.Done()
					continue
				}
				r := rounds[c].Load()
				if r != nil && u.GetVersion().GetIndex() >= r.target && r.pending.Add(-1) == 0 {
					close(r.done)
				}
			}
		}()
	}
	ready.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	memPerWatcher := float64(int64(after.HeapAlloc+after.StackInuse)-int64(before.HeapAlloc+before.StackInuse)) / float64(watchers)
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})

	var encodedBefore, compilesBefore uint64
	for _, n := range nodes {
		st := n.hub.Stats()
		encodedBefore, compilesBefore = encodedBefore+st.BytesEncoded, compilesBefore+st.Compiles
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		c := i % benchGRPCChains
		r := &benchGRPCRound{target: index + 1, done: make(chan struct{})}
		r.pending.Store(perChain[c])
		rounds[c].Store(r)
		start := time.Now()
		applyAll(chResolver(name(c), time.Duration(1000+i)*time.Millisecond))
		<-r.done
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()

	var encoded, compiles uint64
	for _, n := range nodes {
		st := n.hub.Stats()
		encoded, compiles = encoded+st.BytesEncoded, compiles+st.Compiles
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(compiles-compilesBefore)/float64(b.N), "compiles/write")
	b.ReportMetric(float64(encoded-encodedBefore)/float64(b.N), "bytes-encoded/write")
	b.ReportMetric(memPerWatcher, "B/idle-watcher(client+server)")
}
