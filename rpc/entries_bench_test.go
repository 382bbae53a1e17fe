package rpc

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// benchApplyEntry is the JSON storebench put sends: service-defaults
// "bench-<key>" with Meta "seq" (so every write differs) and padding
// values up to size bytes.
func benchApplyEntry(key, seq, size int) []byte {
	head := fmt.Sprintf(`{"Kind":"service-defaults","Name":"bench-%d","Protocol":"http","Meta":{"seq":"%d"`, key, seq)
	b := []byte(head)
	for i := 0; len(b)+2 < size; i++ {
		n := min(500, size-len(b)-2-len(fmt.Sprintf(`,"p%d":""`, i)))
		if n < 0 {
			break
		}
		b = fmt.Appendf(b, `,"p%d":"%s"`, i, strings.Repeat("x", n))
	}
	return append(b, "}}"...)
}

// BenchmarkApply is the write path of the entries service, one write at a
// time, with -benchmem figures per write:
//   - convert: applyRequestCommand alone (size check, decode, name rules,
//     Prepare), what every receiving server does before anything else;
//   - leader: a client's Apply over loopback gRPC to the leader, through
//     the interceptors, the no-op check, fsm.Proposer and the FSM (applied
//     in-process: no Raft log, no replication);
//   - follower: the same sent to a follower, which forwards it to the
//     leader over a second gRPC hop.
//
// Client and servers share the process, so the allocations of the gRPC
// clients are counted too. cpu-ns/op is the process's user+system CPU
// time per write (getrusage), which a busy machine inflates much less
// than ns/op (wall time).
//
//	go test -run '^$' -bench 'Apply$' -benchmem ./rpc/
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{512, 4096} {
		b.Run(fmt.Sprintf("convert/size=%d", size), func(b *testing.B) {
			req := &chainstorev1.ApplyRequest{Entry: benchApplyEntry(1, 1, size)}
			b.ReportAllocs()
			cpu := startCPUClock(b)
			for b.Loop() {
				if _, err := applyRequestCommand(req, DefaultMaxEntrySize); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
	for _, target := range []string{"leader", "follower"} {
		for _, size := range []int{512, 4096} {
			b.Run(fmt.Sprintf("%s/size=%d", target, size), func(b *testing.B) {
				cl := newESCluster()
				leader := startESNode(b, "L", true, cl, nil)
				client := leader.client
				if target == "follower" {
					follower := startESNode(b, "F", false, cl, nil)
					follower.raft.set(func(r *esRaft) { r.leaderID = "L" })
					client = follower.client
				}
				ctx := context.Background()
				seq := 0
				b.ReportAllocs()
				cpu := startCPUClock(b)
				for b.Loop() {
					seq++
					resp, err := client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: benchApplyEntry(seq%1000, seq, size)})
					if err != nil || !resp.GetApplied() {
						b.Fatalf("Apply = %v, %v", resp, err)
					}
				}
				cpu.report(b)
			})
		}
	}
}

// cpuClock measures the process's CPU time (user + system) over a
// benchmark loop.
type cpuClock struct{ start time.Duration }

func startCPUClock(b *testing.B) cpuClock {
	b.Helper()
	return cpuClock{start: processCPU(b)}
}

// report adds cpu-ns/op: the CPU time since start per iteration.
func (c cpuClock) report(b *testing.B) {
	b.Helper()
	if b.N > 0 {
		b.ReportMetric(float64(processCPU(b)-c.start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
