package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/testutil"
)

// This file holds the test harness: a tiny key/value FSM, a cluster of real
// nodes on loopback TCP with bbolt files in t.TempDir(), and a poll helper.
// Set RAFTNODE_TEST_LOG=debug (or info, warn...) to see the nodes' logs.

// --- test FSM ---------------------------------------------------------------

// errTestFSM is what testFSM returns (as its Apply response) for "fail".
var errTestFSM = errors.New("test fsm: command rejected")

// kvResult is testFSM's response to a "set" command.
type kvResult struct {
	Index uint64
	Prev  string
}

// testFSM is a key/value map implementing raft.BatchingFSM. Commands are
// "set\x00key\x00value" and "fail".
type testFSM struct {
	mu       sync.Mutex // protects every field below
	kv       map[string]string
	applied  uint64 // index of the last log entry seen (any type)
	restores int    // Restore calls
	batches  int    // ApplyBatch calls
	waiters  []indexWaiter
}

// indexWaiter is closed once the FSM has applied index.
type indexWaiter struct {
	index uint64
	ch    chan struct{}
}

var _ raft.BatchingFSM = (*testFSM)(nil)

func newTestFSM() *testFSM { return &testFSM{kv: map[string]string{}} }

func setCmd(k, v string) []byte { return []byte("set\x00" + k + "\x00" + v) }

func (f *testFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyLocked(l)
}

func (f *testFSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	return out
}

func (f *testFSM) applyLocked(l *raft.Log) any {
	if l.Index <= f.applied {
		panic(fmt.Sprintf("test fsm: index %d applied after %d", l.Index, f.applied))
	}
	f.applied = l.Index
	f.releaseWaitersLocked()
	if l.Type != raft.LogCommand {
		return nil
	}
	parts := bytes.SplitN(l.Data, []byte{0}, 3)
	switch {
	case string(parts[0]) == "set" && len(parts) == 3:
		k := string(parts[1])
		prev := f.kv[k]
		f.kv[k] = string(parts[2])
		return kvResult{Index: l.Index, Prev: prev}
	case string(parts[0]) == "fail":
		return errTestFSM
	default:
		return fmt.Errorf("test fsm: unknown command %q", l.Data)
	}
}

type testSnapshotData struct {
	KV      map[string]string
	Applied uint64
}

type testSnapshot struct{ data testSnapshotData }

func (f *testFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &testSnapshot{data: testSnapshotData{KV: maps.Clone(f.kv), Applied: f.applied}}, nil
}

func (s *testSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("encode test snapshot: %w", err)
	}
	return sink.Close()
}

func (s *testSnapshot) Release() {}

func (f *testFSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	var d testSnapshotData
	if err := json.NewDecoder(rc).Decode(&d); err != nil {
		return fmt.Errorf("decode test snapshot: %w", err)
	}
	if d.KV == nil {
		d.KV = map[string]string{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kv, f.applied = d.KV, d.Applied
	f.restores++
	f.releaseWaitersLocked()
	return nil
}

// appliedCh returns a channel closed once the FSM has applied index.
func (f *testFSM) appliedCh(index uint64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	if f.applied >= index {
		close(ch)
		return ch
	}
	f.waiters = append(f.waiters, indexWaiter{index: index, ch: ch})
	return ch
}

func (f *testFSM) releaseWaitersLocked() {
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= f.applied {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

func (f *testFSM) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *testFSM) get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[k]
	return v, ok
}

func (f *testFSM) restoreCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

// dump renders the map deterministically, for equality checks.
func (f *testFSM) dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := slices.Sorted(maps.Keys(f.kv))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s;", k, f.kv[k])
	}
	return b.String()
}

// --- polling ----------------------------------------------------------------

// waitTimeout is the default budget for conditions that need an election or
// replication; generous because -race on 2 shared cores is slow.
const waitTimeout = 15 * time.Second

// --- cluster ----------------------------------------------------------------

// testLogger returns a null logger unless RAFTNODE_TEST_LOG names a level.
func testLogger(name string) hclog.Logger {
	lvl := os.Getenv("RAFTNODE_TEST_LOG")
	if lvl == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(lvl), Output: os.Stderr})
}

// testConfig is a config with short timeouts, a fresh data dir and port 0.
func testConfig(tb testing.TB, id string) Config {
	tb.Helper()
	c := DefaultConfig()
	c.NodeID = id
	c.DataDir = tb.TempDir()
	c.BindAddr = "127.0.0.1:0"
	// Short enough for fast elections, long enough that a loaded 2-core
	// machine under -race does not depose leaders by mere scheduling delay.
	c.HeartbeatTimeout = 400 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotInterval = time.Hour // tests that want snapshots lower it
	c.ApplyTimeout = 5 * time.Second
	c.ReadIndexTimeout = 5 * time.Second
	c.TransportTimeout = 2 * time.Second
	return c
}

type testNode struct {
	cfg  Config
	fsm  *testFSM
	node *Node
}

type testCluster struct {
	tb    testing.TB
	nodes []*testNode
}

// newTestCluster starts n nodes, bootstraps them with one identical server
// list, and waits for a ready leader. mutate adjusts every node's config.
func newTestCluster(tb testing.TB, n int, mutate func(*Config), hooks testHooks) *testCluster {
	tb.Helper()
	c := &testCluster{tb: tb}
	for i := range n {
		cfg := testConfig(tb, fmt.Sprintf("n%d", i+1))
		if mutate != nil {
			mutate(&cfg)
		}
		c.nodes = append(c.nodes, c.startNode(cfg, hooks))
	}
	servers := c.servers()
	for _, tn := range c.nodes {
		if err := tn.node.BootstrapCluster(servers); err != nil {
			tb.Fatalf("BootstrapCluster on %s: %v", tn.cfg.NodeID, err)
		}
	}
	c.waitReadyLeader()
	return c
}

// startNode starts one node with a fresh test FSM. The config's BindAddr is
// pinned to the bound address so that a restart reuses the port.
func (c *testCluster) startNode(cfg Config, hooks testHooks) *testNode {
	c.tb.Helper()
	fsm := newTestFSM()
	n, err := newNode(cfg, fsm, testLogger(cfg.NodeID), hooks)
	if err != nil {
		c.tb.Fatalf("start node %s: %v", cfg.NodeID, err)
	}
	c.tb.Cleanup(func() {
		if err := n.shutdown(false); err != nil {
			c.tb.Errorf("shutdown %s: %v", cfg.NodeID, err)
		}
	})
	cfg.BindAddr = n.Addr()
	return &testNode{cfg: cfg, fsm: fsm, node: n}
}

// restart kills node i (no leadership transfer) if it still runs and starts
// it again on the same data dir and address with an empty FSM.
func (c *testCluster) restart(i int) *testNode {
	c.tb.Helper()
	old := c.nodes[i]
	if err := old.node.shutdown(false); err != nil {
		c.tb.Fatalf("shutdown %s: %v", old.cfg.NodeID, err)
	}
	c.nodes[i] = c.startNode(old.cfg, testHooks{})
	return c.nodes[i]
}

func (c *testCluster) servers() []Server {
	out := make([]Server, 0, len(c.nodes))
	for _, tn := range c.nodes {
		out = append(out, Server{ID: tn.cfg.NodeID, Address: tn.node.Addr(), Voter: true})
	}
	return out
}

// live returns the nodes not shut down.
func (c *testCluster) live() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		select {
		case <-tn.node.shutdownCh:
		default:
			out = append(out, tn)
		}
	}
	return out
}

// readyLeader returns the live node that is leader with its term's barrier
// done, or nil.
func (c *testCluster) readyLeader() *testNode {
	for _, tn := range c.live() {
		if _, err := tn.node.readCheck("probe"); err == nil {
			return tn
		}
	}
	return nil
}

func (c *testCluster) waitReadyLeader() *testNode {
	c.tb.Helper()
	var l *testNode
	testutil.Poll(c.tb, waitTimeout, "a ready leader", func() bool {
		l = c.readyLeader()
		return l != nil
	})
	return l
}

// followers returns the live nodes other than l.
func (c *testCluster) followers(l *testNode) []*testNode {
	var out []*testNode
	for _, tn := range c.live() {
		if tn != l {
			out = append(out, tn)
		}
	}
	return out
}

// apply writes k=v through whichever node is leader, retrying while
// leadership moves. Test commands are idempotent, so retrying after an
// unknown outcome is fine here. It returns the committed index.
func (c *testCluster) apply(k, v string) uint64 {
	c.tb.Helper()
	var idx uint64
	var lastErr error
	testutil.Poll(c.tb, waitTimeout, fmt.Sprintf("a ready leader to apply %s=%s", k, v), func() bool {
		l := c.readyLeader()
		if l == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, index, err := l.node.Apply(ctx, setCmd(k, v))
		if err != nil {
			if lastErr == nil || err.Error() != lastErr.Error() {
				c.tb.Logf("apply %s=%s: %v; retrying", k, v, err) // shown if the wait fails
			}
			lastErr = err
			return false
		}
		if r, ok := resp.(kvResult); !ok || r.Index != index {
			c.tb.Fatalf("Apply response = %#v, want kvResult with index %d", resp, index)
		}
		idx = index
		return true
	})
	return idx
}

// waitConverged waits until every live node's FSM has applied at least index
// and all hold the same data.
func (c *testCluster) waitConverged(index uint64) {
	c.tb.Helper()
	testutil.Poll(c.tb, waitTimeout, fmt.Sprintf("all nodes to apply %d and agree", index), func() bool {
		live := c.live()
		want := live[0].fsm.dump()
		for _, tn := range live {
			if tn.fsm.appliedIndex() < index || tn.fsm.dump() != want {
				return false
			}
		}
		return true
	})
}

// ids returns the sorted IDs of servers, for comparisons.
func ids(servers []Server) []string {
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		out = append(out, s.ID)
	}
	sort.Strings(out)
	return out
}
