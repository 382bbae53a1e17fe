package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chainstore/chainstore/chain"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
)

// TestKillAllMidWritesKeepsAcknowledgedWrites: three stored processes on
// the default Raft log store (raft-wal, one fsync per append batch) take
// writes from several clients; every process is killed with SIGKILL while
// writes are in flight, and all three are started again on their data
// dirs. Every write acknowledged before the kill is there afterwards, on
// every server (each one reads it from its own state once it has applied
// the leader's last entry).
func TestKillAllMidWritesKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts and kills real stored processes")
	}
	c := newProcCluster(t, defaultTuning)
	for _, n := range c.nodes {
		if st, err := os.Stat(filepath.Join(n.dataDir, raftnode.WALDir)); err != nil || !st.IsDir() {
			t.Fatalf("%s: no %s directory in its data dir (%v): the default log store is not the WAL", n.name, raftnode.WALDir, err)
		}
	}
	addrs := make([]string, 0, len(c.nodes))
	for _, n := range c.nodes {
		addrs = append(addrs, n.grpcAddr)
	}

	const writers = 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	acked := map[string]uint64{} // entry name -> index acknowledged
	var wg sync.WaitGroup
	for w := range writers {
		cl, err := newClient(addrs, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = cl.Close() }()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("crash-w%d-%d", w, i)
				raw, err := chain.EncodeEntry(&chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: name, Protocol: "http"})
				if err != nil {
					t.Errorf("EncodeEntry: %v", err)
					return
				}
				resp, err := cl.Apply(ctx, &chainstorev1.ApplyRequest{Entry: raw})
				if err != nil {
					continue // failed or unknown outcome: not acknowledged
				}
				mu.Lock()
				acked[name] = resp.GetIndex()
				mu.Unlock()
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	if !poll(30*time.Second, func() bool { return count() >= 300 }) {
		t.Fatalf("only %d writes acknowledged in 30 s", count())
	}
	for i := range c.nodes {
		c.signal(i, syscall.SIGKILL)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	want := acked
	acked = nil
	mu.Unlock()
	var last uint64
	for _, idx := range want {
		last = max(last, idx)
	}
	t.Logf("%d writes acknowledged before the kill (last index %d)", len(want), last)

	for i := range c.nodes {
		c.start(i)
	}
	c.waitHealthy(30 * time.Second)
	for i, n := range c.nodes {
		if !poll(15*time.Second, func() bool {
			st := c.status(i)
			return st != nil && st.GetAppliedIndex() >= last
		}) {
			t.Fatalf("%s did not apply index %d within 15 s after the restart", n.name, last)
		}
		missing := 0
		for name := range want {
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := n.client.Get(rctx, &chainstorev1.GetRequest{Kind: string(chain.KindServiceDefaults), Name: name,
				Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}})
			rcancel()
			if err != nil {
				t.Fatalf("%s: get %s: %v", n.name, name, err)
			}
			if !resp.GetFound() {
				missing++
				if missing <= 5 {
					t.Errorf("%s: acknowledged write %s (index %d) is missing after the restart", n.name, name, want[name])
				}
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged writes missing", n.name, missing, len(want))
		}
	}
}
