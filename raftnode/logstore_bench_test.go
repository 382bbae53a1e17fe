package raftnode

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchValue is a 512-byte value, the size of a typical config entry (the
// command is 576 bytes with its key and framing, as in docs/benchmarks.md).
var benchValue = strings.Repeat("v", 512)

// BenchmarkLogStore compares the log stores on the real write path: three
// nodes on loopback TCP, each with its own data dir (fsync on), production
// settings, Apply on the leader from 1 and 100 concurrent appliers.
// Besides ns/op (wall time per committed write: 1/throughput) it reports
// the p50 and p99 latency of one Apply and, from /proc/self/io (the three
// nodes share this process), bytes written to storage and write syscalls
// per committed write, summed over the three nodes, and the process's CPU
// time per committed write.
//
//	go test -run '^$' -bench 'BenchmarkLogStore' -benchtime 3000x -count 3 ./raftnode/
func BenchmarkLogStore(b *testing.B) {
	for _, clients := range []int{1, 100} {
		for _, kind := range []LogStoreKind{LogStoreBoltDB, LogStoreWAL} {
			b.Run(fmt.Sprintf("clients=%d/store=%s", clients, kind), func(b *testing.B) {
				benchApplyClients(b, clients, func(c *Config) { prod(c); c.LogStore = kind })
			})
		}
	}
}

// BenchmarkRaftBatching measures MaxAppendEntries and BatchApplyCh with
// the default log store at 100 concurrent appliers (DESIGN.md's table).
//
//	go test -run '^$' -bench 'BenchmarkRaftBatching' -benchtime 5000x -count 3 ./raftnode/
func BenchmarkRaftBatching(b *testing.B) {
	for _, batch := range []bool{true, false} {
		for _, mae := range []int{64, 128, 256, 512} {
			b.Run(fmt.Sprintf("BatchApplyCh=%v/MaxAppendEntries=%d", batch, mae), func(b *testing.B) {
				benchApplyClients(b, 100, func(c *Config) {
					prod(c)
					c.MaxAppendEntries = mae
					c.BatchApplyCh = batch
				})
			})
		}
	}
}

// benchApplyClients runs b.N Applies on the leader of a fresh three-node
// cluster from the given number of concurrent appliers.
func benchApplyClients(b *testing.B, clients int, mutate func(*Config)) {
	b.Helper()
	c := newTestCluster(b, 3, mutate, testHooks{})
	l := c.waitReadyLeader()
	ctx := context.Background()
	cmds := make([][]byte, clients)
	for i := range cmds {
		cmds[i] = setCmd(fmt.Sprintf("key-%03d", i), benchValue)
	}
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	var wg sync.WaitGroup
	io0 := readProcIO(b)
	cpu0 := processCPU(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				start := time.Now()
				if _, _, err := l.node.Apply(ctx, cmds[i]); err != nil {
					b.Errorf("Apply: %v", err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	io1 := readProcIO(b)
	cpu := processCPU(b) - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	if io0 != nil && io1 != nil {
		b.ReportMetric(float64(io1["write_bytes"]-io0["write_bytes"])/float64(b.N), "disk-B/op")
		b.ReportMetric(float64(io1["syscw"]-io0["syscw"])/float64(b.N), "syscw/op")
	}
}

// processCPU returns the user+system CPU time this process has used: the
// three nodes' and the appliers' (figures that a busy machine moves far less
// than wall time).
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readProcIO reads /proc/self/io (nil where it does not exist).
func readProcIO(tb testing.TB) map[string]uint64 {
	tb.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}
