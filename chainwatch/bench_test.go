package chainwatch

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/fsm"
)

// BenchmarkFanout measures delivery of one write to every watcher of the
// chain it changes: 3 servers (3 FSMs applying the same batches in
// parallel, each with its own hub), 100 chains, N watchers (chain
// subscriptions) spread evenly over servers and chains. Watchers are
// direct hub subscribers: Watchers (the server side of a Watch stream,
// minus gRPC), each with a goroutine calling Next like the gRPC handler
// does, carrying subs-per-stream subscriptions each (1: one stream per
// watcher; 10: agents watching 10 upstreams each).
//
// One op is one write. Reported: latency from the start of ApplyBatch on
// the three FSMs until the last watcher of the chain has returned the new
// version from Next (p50, p99, max); compiles per write (all servers);
// chain JSON bytes encoded per write (all servers); memory per idle
// watcher (HeapAlloc+StackInuse growth while adding the watchers to warm
// chains, after GC, divided by watchers), and its stack part.
//
//	go test -run '^$' -bench Fanout -benchtime 2000x ./chainwatch/
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, subs := range []int{1, 10} {
			b.Run(fmt.Sprintf("watchers=%d/subs-per-stream=%d", n, subs), func(b *testing.B) { benchFanout(b, n, subs) })
		}
	}
}

const (
	benchServers = 3
	benchChains  = 100
)

func benchChainName(i int) string { return fmt.Sprintf("svc-%03d", i) }

// benchRound is one write's delivery: the index every watcher of the
// chain must reach, how many have not yet, and the channel the last one
// closes.
type benchRound struct {
	target  uint64
	pending atomic.Int64
	done    chan struct{}
}

func benchFanout(b *testing.B, watchers, subsPerStream int) { //nolint:thelper // the benchmark body, not a helper: failures should point into it
	var compiles atomic.Uint64
	hook := WithCompileHook(func(ChainKey) { compiles.Add(1) })
	var stores []*testStore
	var hubs []*Hub
	seed := make([]fsm.Command, benchChains)
	for i := range seed {
		seed[i] = upsert(b, resolverDoc(benchChainName(i), "5s"))
	}
	for range benchServers {
		s := newTestStore(b)
		s.apply(seed...)
		stores = append(stores, s)
		hubs = append(hubs, startHub(b, s, func(c *Config) { c.WarmTTL = time.Hour }, hook))
	}
	applyAll := func(cmds ...fsm.Command) {
		var wg sync.WaitGroup
		for _, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.apply(cmds...)
			}()
		}
		wg.Wait()
	}
	// Warm every chain on every hub so the memory figure is the watchers'.
	for _, h := range hubs {
		for c := range benchChains {
			sub, err := h.Subscribe(context.Background(), ChainKey{Service: benchChainName(c)}, 0)
			if err != nil {
				b.Fatalf("Subscribe: %v", err)
			}
			sub.Close()
		}
	}

	var rounds [benchChains]atomic.Pointer[benchRound]
	perChain := make([]int64, benchChains)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	ctx, cancel := context.WithCancel(context.Background())
	var wg, ready sync.WaitGroup
	cfg := DefaultWatcherConfig()
	streams := watchers / subsPerStream
	ws := make([]*Watcher, streams)
	for st := range streams {
		w, err := NewWatcher(hubs[st%benchServers], cfg)
		if err != nil {
			b.Fatalf("NewWatcher: %v", err)
		}
		ws[st] = w
		chainOf := make([]int, subsPerStream+1) // subscription id -> chain
		for k := range subsPerStream {
			i := st*subsPerStream + k
			c := i % benchChains
			chainOf[k+1] = c
			perChain[c]++
			if err := w.Add(ctx, uint64(k+1), ChainKey{Service: benchChainName(c)}, 0, ""); err != nil {
				b.Fatalf("Add: %v", err)
			}
		}
		ready.Add(subsPerStream)
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make([]bool, subsPerStream+1)
			for {
				ev, err := w.Next(ctx)
				if err != nil {
					return
				}
				if ev.Kind != EventUpdate {
					continue
				}
				if !seen[ev.ID] {
					seen[ev.ID] = true
					ready.Done()
					continue
				}
				c := chainOf[ev.ID]
				r := rounds[c].Load()
				if r != nil && ev.Version.Index >= r.target && r.pending.Add(-1) == 0 {
					close(r.done)
				}
			}
		}()
	}
	ready.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := func(a, b uint64) float64 { return float64(int64(a) - int64(b)) }
	memPerWatcher := grown(after.HeapAlloc+after.StackInuse, before.HeapAlloc+before.StackInuse) / float64(watchers)
	stackPerWatcher := grown(after.StackInuse, before.StackInuse) / float64(watchers)

	b.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, w := range ws {
			w.Close()
		}
	})

	encodedBefore := uint64(0)
	for _, h := range hubs {
		encodedBefore += h.Stats().BytesEncoded
	}
	compilesBefore := compiles.Load()
	lat := make([]time.Duration, 0, b.N)
	next := stores[0].index + 1
	b.ResetTimer()
	for i := range b.N {
		c := i % benchChains
		cmd := upsert(b, resolverDoc(benchChainName(c), fmt.Sprintf("%dms", 1000+i)))
		r := &benchRound{target: next, done: make(chan struct{})}
		r.pending.Store(perChain[c])
		rounds[c].Store(r)
		start := time.Now()
		applyAll(cmd)
		<-r.done
		lat = append(lat, time.Since(start))
		next++
	}
	b.StopTimer()

	encoded := uint64(0)
	for _, h := range hubs {
		encoded += h.Stats().BytesEncoded
	}
	reportLatency(b, lat)
	b.ReportMetric(float64(compiles.Load()-compilesBefore)/float64(b.N), "compiles/write")
	b.ReportMetric(float64(encoded-encodedBefore)/float64(b.N), "bytes-encoded/write")
	b.ReportMetric(memPerWatcher, "B/idle-watcher")
	b.ReportMetric(stackPerWatcher, "stack-B/idle-watcher")
}

// reportLatency reports p50, p99 and max of lat in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	b.Helper()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

// BenchmarkGlobalChange measures a proxy-defaults write that changes every
// watched chain on one server: from ApplyBatch until the hub has
// recompiled and published all of them (one op = one write).
//
//	go test -run '^$' -bench GlobalChange -benchtime 20x ./chainwatch/
func BenchmarkGlobalChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("chains=%d", n), func(b *testing.B) {
			s := newTestStore(b)
			h := startHub(b, s, nil)
			for i := range n {
				sub, err := h.Subscribe(context.Background(), ChainKey{Service: fmt.Sprintf("svc-%05d", i)}, 0)
				if err != nil {
					b.Fatalf("Subscribe: %v", err)
				}
				b.Cleanup(sub.Close)
			}
			ctx := context.Background()
			before := h.Stats()
			b.ResetTimer()
			for i := range b.N {
				protocol := "http"
				if i%2 == 1 {
					protocol = "grpc"
				}
				idx := s.apply(upsert(b, proxyDefaultsDoc(protocol)))
				if err := h.WaitIndex(ctx, idx); err != nil {
					b.Fatalf("WaitIndex: %v", err)
				}
			}
			b.StopTimer()
			st := h.Stats()
			b.ReportMetric(float64(st.Compiles-before.Compiles)/float64(b.N), "compiles/write")
			b.ReportMetric(float64(st.Publishes-before.Publishes)/float64(b.N), "publishes/write")
		})
	}
}
