package raftnode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"
)

// diskFaults provides the LogWriteHook that stalls or fails the log writes
// of one chosen node.
type diskFaults struct {
	target  atomic.Value // node ID (string) whose writes are affected
	failErr error        // returned instead of writing, when set
	release chan struct{}
	once    sync.Once
}

func newDiskFaults() *diskFaults { return &diskFaults{release: make(chan struct{})} }

// hook returns the LogWriteHook for the node called nodeID.
func (d *diskFaults) hook(nodeID string) func() error {
	return func() error { return d.write(nodeID) }
}

func (d *diskFaults) write(nodeID string) error {
	if id, _ := d.target.Load().(string); id != nodeID {
		return nil
	}
	if d.failErr != nil {
		return d.failErr
	}
	<-d.release // a stalled disk
	return nil
}

// heal ends the stall; idempotent.
func (d *diskFaults) heal() { d.once.Do(func() { close(d.release) }) }

// newLeaderReplaced waits for a ready leader other than old and returns it.
func (c *testCluster) newLeaderReplaced(old *testNode) *testNode {
	c.tb.Helper()
	var l *testNode
	testutil.Poll(c.tb, waitTimeout, "a ready leader other than "+old.cfg.NodeID, func() bool {
		for _, tn := range c.followers(old) {
			if _, err := tn.node.readCheck("probe"); err == nil {
				l = tn
				return true
			}
		}
		return false
	})
	return l
}

func TestLeaderWithStalledDiskIsReplaced(t *testing.T) {
	faults := newDiskFaults()
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.DiskStallTimeout = time.Second
		cfg.LogWriteHook = faults.hook(cfg.NodeID)
	}, testHooks{})
	t.Cleanup(faults.heal) // before the nodes shut down: Raft's loop is stuck in the write
	c.apply("before", "1")
	old := c.waitReadyLeader()
	faults.target.Store(old.cfg.NodeID)

	start := time.Now()
	stuck := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err := old.node.Apply(ctx, setCmd("stuck", "1"))
		stuck <- err
	}()

	select {
	case <-old.node.Failed():
	case <-time.After(waitTimeout):
		t.Fatalf("the leader with a stalled disk did not fail within %s", waitTimeout)
	}
	if err := old.node.FailErr(); !errors.Is(err, ErrDiskStalled) {
		t.Errorf("FailErr = %v, want ErrDiskStalled", err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("failed after %s, before the 1s DiskStallTimeout", elapsed)
	}
	if old.node.IsLeader() {
		t.Error("a failed node still reports itself as the leader")
	}
	if _, err := old.node.ReadIndex(context.Background()); !errors.Is(err, ErrShutdown) || !errors.Is(err, ErrDiskStalled) {
		t.Errorf("ReadIndex on the failed node = %v, want ErrShutdown wrapping ErrDiskStalled", err)
	}

	nl := c.newLeaderReplaced(old)
	idx := c.applyVia(nl, "after", "1")
	t.Logf("disk stall to the next committed write on %s: %s", nl.cfg.NodeID, time.Since(start).Round(time.Millisecond))
	if idx == 0 {
		t.Fatal("no index for the write after the stall")
	}

	// The stalled write's caller learns nothing definite; once the disk
	// heals it must still get an answer rather than hang.
	faults.heal()
	select {
	case err := <-stuck:
		t.Logf("Apply on the stalled leader returned after the heal: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Apply on the stalled leader never returned")
	}
}

func TestFailedLogWriteFencesTheNode(t *testing.T) {
	faults := newDiskFaults()
	faults.failErr = errors.New("input/output error")
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.LogWriteHook = faults.hook(cfg.NodeID) }, testHooks{})
	c.apply("before", "1")
	old := c.waitReadyLeader()
	faults.target.Store(old.cfg.NodeID)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := old.node.Apply(ctx, setCmd("lost", "1")); err == nil {
		t.Fatal("Apply with a failing log write succeeded")
	}
	select {
	case <-old.node.Failed():
	case <-time.After(waitTimeout):
		t.Fatalf("the node did not fail after a failed log write")
	}
	if err := old.node.FailErr(); !errors.Is(err, ErrDiskFailed) {
		t.Errorf("FailErr = %v, want ErrDiskFailed", err)
	}
	nl := c.newLeaderReplaced(old)
	c.applyVia(nl, "after", "1")

	// Fenced: the failed node takes no part any more, so the others do
	// not see its writes and it cannot dial them.
	if _, err := old.node.stream.Dial("127.0.0.1:1", time.Second); !errors.Is(err, ErrFenced) {
		t.Errorf("Dial on a fenced node = %v, want ErrFenced", err)
	}
}

// applyVia writes k=v on the given leader.
func (c *testCluster) applyVia(l *testNode, k, v string) uint64 {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, idx, err := l.node.Apply(ctx, setCmd(k, v))
	if err != nil {
		c.tb.Fatalf("Apply(%s=%s) on %s: %v", k, v, l.cfg.NodeID, err)
	}
	return idx
}

// TestDiskWatchCountsItsOwnTicks: after a pause (SIGSTOP, VM freeze) a
// write in flight looks as if it started long ago. The watchdog must
// still see it running for a whole DiskStallTimeout of its own before it
// fails the node, so a pause shorter than that never fails a healthy node.
func TestDiskWatchCountsItsOwnTicks(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.DiskStallTimeout = time.Second }, testHooks{})
	l := c.waitReadyLeader()
	// An idle cluster writes no log entries, so nothing replaces this
	// "write" that began an hour ago.
	start := time.Now()
	l.node.guard.writeStart.Store(start.Add(-time.Hour).UnixNano())
	select {
	case <-l.node.Failed():
	case <-time.After(waitTimeout):
		t.Fatal("the leader did not fail with a write in flight for the whole timeout")
	}
	// One tick (125 ms) of slack: the first tick may come right away.
	if elapsed := time.Since(start); elapsed < time.Second-125*time.Millisecond {
		t.Errorf("failed %s after the write appeared, before its own 1s DiskStallTimeout (wall-clock age taken for a stall)", elapsed)
	}
	l.node.guard.writeStart.Store(0)
}
