package raftnode

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// prod replaces a test config's settings with DefaultConfig's, keeping the
// identity fields.
func prod(c *Config) {
	id, dir, bind := c.NodeID, c.DataDir, c.BindAddr
	*c = DefaultConfig()
	c.NodeID, c.DataDir, c.BindAddr = id, dir, bind
}

// BenchmarkApply3Nodes measures Apply on the leader of a three-node cluster
// over loopback TCP with bbolt logs (fsync on) in temp dirs, with the
// production settings (DefaultConfig).
//
//	go test -run '^$' -bench BenchmarkApply3Nodes -benchtime 2000x ./raftnode/
func BenchmarkApply3Nodes(b *testing.B) {
	cmd := setCmd("key", "a-value-of-moderate-size-for-a-config-entry")

	b.Run("sequential", func(b *testing.B) {
		c := newTestCluster(b, 3, prod, testHooks{})
		l := c.waitReadyLeader()
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, _, err := l.node.Apply(ctx, cmd); err != nil {
				b.Fatalf("Apply: %v", err)
			}
		}
	})

	b.Run("parallel", func(b *testing.B) {
		c := newTestCluster(b, 3, prod, testHooks{})
		l := c.waitReadyLeader()
		ctx := context.Background()
		var seq atomic.Int64
		b.SetParallelism(16) // 16 x GOMAXPROCS concurrent writers
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			id := seq.Add(1)
			own := setCmd(fmt.Sprintf("key-%d", id), "a-value-of-moderate-size-for-a-config-entry")
			for pb.Next() {
				if _, _, err := l.node.Apply(ctx, own); err != nil {
					b.Errorf("Apply: %v", err)
					return
				}
			}
		})
	})

	b.Run("readindex-parallel", func(b *testing.B) {
		c := newTestCluster(b, 3, prod, testHooks{})
		l := c.waitReadyLeader()
		c.apply("k", "v")
		ctx := context.Background()
		st0 := l.node.Stats()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.node.ReadIndex(ctx); err != nil {
					b.Errorf("ReadIndex: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		st := l.node.Stats()
		if rounds := st.ReadIndexRounds - st0.ReadIndexRounds; rounds > 0 {
			b.ReportMetric(float64(st.ReadIndexRequests-st0.ReadIndexRequests)/float64(rounds), "reads/round")
		}
	})
}

// BenchmarkFollowerLag measures, for isolated writes (one at a time, the
// config-store norm), how long after Apply returns on the leader both
// followers have applied the entry. Followers learn the new commit index
// only from the next AppendEntries, which an idle leader sends every
// CommitTimeout (randomised up to 2x), unless the commit nudge (nudge.go)
// tells them first: this is the number behind the CommitTimeout default and
// the nudge (DESIGN.md).
//
//	go test -run '^$' -bench BenchmarkFollowerLag -benchtime 200x ./raftnode/
func BenchmarkFollowerLag(b *testing.B) {
	for _, tc := range []struct {
		ct    time.Duration
		nudge bool
	}{
		{50 * time.Millisecond, true}, {10 * time.Millisecond, true},
		{50 * time.Millisecond, false}, {10 * time.Millisecond, false}, {5 * time.Millisecond, false},
	} {
		name := fmt.Sprintf("CommitTimeout=%s/nudge=%t", tc.ct, tc.nudge)
		b.Run(name, func(b *testing.B) {
			c := newTestCluster(b, 3, func(c *Config) {
				prod(c)
				c.CommitTimeout, c.DisableCommitNudge = tc.ct, !tc.nudge
			}, testHooks{})
			l := c.waitReadyLeader()
			fs := c.followers(l)
			ctx := context.Background()
			var lag time.Duration
			n := 0
			for b.Loop() {
				_, idx, err := l.node.Apply(ctx, setCmd("k", "v"))
				if err != nil {
					b.Fatalf("Apply: %v", err)
				}
				acked := time.Now()
				for _, f := range fs {
					<-f.fsm.appliedCh(idx)
				}
				lag += time.Since(acked)
				n++
			}
			b.ReportMetric(float64(lag.Microseconds())/float64(n)/1000, "ms-follower-lag")
		})
	}
}
