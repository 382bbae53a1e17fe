package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/rpc/configpb"
)

// The in-process cluster harness: every node is a full Server (FSM, Raft
// on bbolt in t.TempDir(), memberlist, gRPC) on loopback port 0, with short
// timeouts. Raft traffic between nodes goes through one TCP proxy per
// directed link (raftnode's DialOverride), so a test can cut a node off
// before stopping it: the rest of the cluster then sees a crash, not a
// graceful leave or a leadership transfer.
//
// Set CHAINSTORE_TEST_LOG=debug (or info, ...) to stream node logs to
// stderr; otherwise they are kept in memory and printed if the test fails.

// testNode is one server of a testCluster.
type testNode struct {
	name    string
	dataDir string
	cfg     Config
	srv     *Server // nil while stopped
	logs    *syncBuffer
}

// testCluster is a set of in-process servers.
type testCluster struct {
	t      *testing.T
	links  *linkTable
	mutate func(*Config)

	mu    sync.Mutex // protects nodes
	nodes []*testNode
}

// testConfig is DefaultConfig with loopback port-0 addresses and short
// timeouts.
func testConfig(name, dataDir string) Config {
	cfg := DefaultConfig()
	cfg.NodeName, cfg.DataDir = name, dataDir
	cfg.RaftAddr, cfg.GossipAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.BootstrapExpect = 3
	cfg.GRPCStopTimeout, cfg.LeaveTimeout = 2*time.Second, 2*time.Second

	// Short enough for quick elections, long enough to ride out a loaded
	// CI machine without spurious elections.
	cfg.Raft.HeartbeatTimeout = 500 * time.Millisecond
	cfg.Raft.ElectionTimeout = 500 * time.Millisecond
	cfg.Raft.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.Raft.CommitTimeout = 5 * time.Millisecond
	cfg.Raft.ApplyTimeout = 5 * time.Second
	cfg.Raft.TransportTimeout = 2 * time.Second

	cfg.Cluster.Gossip = cluster.LocalGossipConfig()
	cfg.Cluster.JoinRetryMin = 50 * time.Millisecond
	cfg.Cluster.JoinRetryMax = 500 * time.Millisecond
	cfg.Cluster.ReconcileInterval = 500 * time.Millisecond
	cfg.Cluster.DeadServerTimeout = 30 * time.Second
	cfg.Cluster.Label = "chainstore-test"

	cfg.RPC.HoldTimeout = 7 * time.Second
	cfg.RPC.ForwardConnectTimeout = 300 * time.Millisecond
	return cfg
}

// newTestCluster starts n nodes that bootstrap together (expect n) and
// waits until they agree on a leader and all are voters. mutate, if not
// nil, adjusts every node's config.
func newTestCluster(t *testing.T, n int, mutate func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, links: newLinkTable(), mutate: mutate}
	t.Cleanup(c.shutdown)
	for i := 1; i <= n; i++ {
		c.addNode(fmt.Sprintf("n%d", i), n)
	}
	c.waitStable(n)
	return c
}

// addNode creates and starts a node that joins the nodes started before it (expect is
// its --bootstrap-expect; 0 for a node joining an existing cluster).
func (c *testCluster) addNode(name string, expect int) *testNode {
	c.t.Helper()
	nd := &testNode{name: name, dataDir: c.t.TempDir(), logs: &syncBuffer{}}
	nd.cfg = testConfig(name, nd.dataDir)
	nd.cfg.BootstrapExpect = expect
	nd.cfg.Raft.DialOverride = c.links.dialer(name)
	if c.mutate != nil {
		c.mutate(&nd.cfg)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, nd)
	c.mu.Unlock()
	c.start(nd)
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.t.Logf("=== last %d log lines of %s (all of them: %s) ===\n%s", failLogLines, nd.name,
				saveLogs(c.t, nd), tailLines(nd.logs.String(), failLogLines))
		}
	})
	return nd
}

// start builds and starts nd's server. After the first start the node
// keeps its bound addresses, so a restart looks like the same server.
func (c *testCluster) start(nd *testNode) {
	c.t.Helper()
	// Join every other node started so far, like cluster.sh does.
	c.mu.Lock()
	nd.cfg.Join = nil
	for _, other := range c.nodes {
		if other != nd && other.cfg.GossipAddr != "127.0.0.1:0" {
			nd.cfg.Join = append(nd.cfg.Join, other.cfg.GossipAddr)
		}
	}
	c.mu.Unlock()
	srv, err := NewServer(nd.cfg, testLogger(nd.name, nd.logs))
	if err != nil {
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	c.links.setOwner(srv.RaftAddr(), nd.name)
	c.links.setIsolated(nd.name, false)
	// Pin the bound ports for restarts.
	nd.cfg.RaftAddr, nd.cfg.GRPCAddr, nd.cfg.GossipAddr = srv.RaftAddr(), srv.GRPCAddr(), srv.GossipAddr()
	srv.Start()
	c.mu.Lock()
	nd.srv = srv
	c.mu.Unlock()
}

// stop stops nd gracefully (gRPC drain, leadership transfer, gossip leave).
func (c *testCluster) stop(nd *testNode) {
	c.t.Helper()
	if err := nd.srv.Stop(true); err != nil {
		c.t.Errorf("stop %s: %v", nd.name, err)
	}
	c.mu.Lock()
	nd.srv = nil
	c.mu.Unlock()
}

// crash cuts nd's Raft links and then stops it without leaving: the other
// servers see a dead peer, as after SIGKILL.
func (c *testCluster) crash(nd *testNode) {
	c.t.Helper()
	c.links.setIsolated(nd.name, true)
	_ = nd.srv.Stop(false)
	c.mu.Lock()
	nd.srv = nil
	c.mu.Unlock()
}

func (c *testCluster) shutdown() {
	c.mu.Lock()
	nodes := append([]*testNode(nil), c.nodes...)
	c.mu.Unlock()
	for _, nd := range nodes {
		if nd.srv != nil {
			_ = nd.srv.Stop(false)
		}
	}
	c.links.close()
}

// running returns the nodes that are up.
func (c *testCluster) running() []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*testNode
	for _, nd := range c.nodes {
		if nd.srv != nil {
			out = append(out, nd)
		}
	}
	return out
}

// node returns the node called name.
func (c *testCluster) node(name string) *testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// leader waits until the running nodes agree on a leader that has finished
// its start-of-term barrier, and returns it.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	var leader *testNode
	waitFor(c.t, 20*time.Second, "an agreed, ready leader", func() bool {
		leader = nil
		nodes := c.running()
		for _, nd := range nodes {
			if nd.srv.raft.IsLeader() {
				leader = nd
			}
		}
		if leader == nil {
			return false
		}
		for _, nd := range nodes {
			if id, _ := nd.srv.raft.Leader(); id != leader.srv.NodeID() {
				return false
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := leader.srv.raft.ReadIndex(ctx)
		return err == nil
	})
	return leader
}

// followers returns the running nodes other than the leader.
func (c *testCluster) followers() []*testNode {
	c.t.Helper()
	l := c.leader()
	var out []*testNode
	for _, nd := range c.running() {
		if nd != l {
			out = append(out, nd)
		}
	}
	return out
}

// waitStable waits for a ready leader whose Raft configuration has exactly
// voters voters, all of them running nodes.
func (c *testCluster) waitStable(voters int) {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, fmt.Sprintf("%d voters", voters), func() bool {
		l := c.leader()
		servers, err := l.srv.raft.Servers()
		if err != nil || len(servers) != voters {
			return false
		}
		up := map[string]bool{}
		for _, nd := range c.running() {
			up[nd.srv.NodeID()] = true
		}
		for _, s := range servers {
			if !s.Voter || !up[s.ID] {
				return false
			}
		}
		return true
	})
}

// waitConverged waits until every running node has applied the leader's
// applied index and holds the same state (fsm.Store.Hash).
func (c *testCluster) waitConverged() {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "replicas to converge", func() bool {
		nodes := c.running()
		want := nodes[0].srv.fsm.Store().Hash()
		idx := nodes[0].srv.fsm.AppliedIndex()
		for _, nd := range nodes[1:] {
			if nd.srv.fsm.AppliedIndex() != idx || nd.srv.fsm.Store().Hash() != want {
				return false
			}
		}
		return true
	})
}

// client returns a client for the given nodes' gRPC addresses (in order),
// closed at the end of the test.
func (c *testCluster) client(nodes ...*testNode) *rpc.Client {
	c.t.Helper()
	cfg := rpc.DefaultClientConfig()
	cfg.Addrs = nil
	for _, nd := range nodes {
		cfg.Addrs = append(cfg.Addrs, nd.cfg.GRPCAddr)
	}
	cl, err := rpc.NewClient(cfg)
	if err != nil {
		c.t.Fatalf("NewClient: %v", err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// entries returns every entry a node holds, as "kind/name@modify".
func entries(nd *testNode) []string {
	es, _, _ := nd.srv.fsm.Store().List("")
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%s@%d", e.Entry.GetKind(), e.Entry.GetName(), e.ModifyIndex))
	}
	sort.Strings(out)
	return out
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// ctxFor returns a context ending after d or with the test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// apply writes a JSON entry and fails the test unless it was applied.
func apply(t *testing.T, c *rpc.Client, entry string) uint64 {
	t.Helper()
	resp, err := c.Apply(ctxFor(t, 20*time.Second), &configpb.ApplyRequest{Entry: []byte(entry)})
	if err != nil || !resp.GetApplied() {
		t.Fatalf("Apply(%s) = %v, %v", entry, resp, err)
	}
	return resp.GetIndex()
}

// applyIdempotent writes a JSON entry with a plain upsert, retrying when
// the connection to the server it used is lost (codes.Unavailable) or a
// follower lost its connection to the leader after forwarding the write
// (an unknown outcome): a plain upsert of the same entry is idempotent, and
// a retry of one that was applied is answered as applied, so this is what
// a client does after a server crash.
func applyIdempotent(t *testing.T, c *rpc.Client, entry string) uint64 {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for {
		resp, err := c.Apply(ctx, &configpb.ApplyRequest{Entry: []byte(entry)})
		switch {
		case err == nil && resp.GetApplied():
			return resp.GetIndex()
		case ctx.Err() == nil && (status.Code(err) == codes.Unavailable || rpc.ErrorReason(err) == rpc.ReasonUnknownOutcome):
			t.Logf("Apply(%s): %v; retrying", entry, err)
			select { // back off a little before the retry
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		default:
			t.Fatalf("Apply(%s) = %v, %v", entry, resp, err)
		}
	}
}

func serviceDefaults(name, protocol string) string {
	return fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":%q}`, name, protocol)
}

// failLogLines is how many of a node's last log lines a failed test
// prints: enough to see the last elections, few enough that a CI log that
// keeps only its tail still shows the failure itself.
const failLogLines = 25

// saveLogs writes nd's whole log to a file that outlives the test and
// returns its path (or why it could not).
func saveLogs(t *testing.T, nd *testNode) string {
	dir := filepath.Join(os.TempDir(), "chainstore-test-logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + nd.name + ".log"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(nd.logs.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testLogger logs to stderr at CHAINSTORE_TEST_LOG's level, or into buf.
func testLogger(name string, buf *syncBuffer) hclog.Logger {
	var w io.Writer = buf
	level := hclog.Debug
	if l := os.Getenv("CHAINSTORE_TEST_LOG"); l != "" {
		w, level = os.Stderr, hclog.LevelFromString(l)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: w})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers, capped at
// 4 MiB (the oldest half is dropped).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 {
		rest := b.buf.Bytes()[b.buf.Len()/2:]
		b.buf = *bytes.NewBuffer(append([]byte("...\n"), rest...))
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// linkTable holds one TCP proxy per directed Raft link (source node name,
// destination Raft address) and cuts the links of isolated nodes.
type linkTable struct {
	mu       sync.Mutex // protects every field
	links    map[[2]string]*link
	owner    map[string]string // Raft address -> node name
	isolated map[string]bool
	closed   bool
}

func newLinkTable() *linkTable {
	return &linkTable{links: map[[2]string]*link{}, owner: map[string]string{}, isolated: map[string]bool{}}
}

// refused is an address nothing listens on (port 1): dialled when a link
// cannot be set up, so a failure never bypasses the proxy.
const refused = "127.0.0.1:1"

// dialer is the DialOverride of node src.
func (lt *linkTable) dialer(src string) func(string) string {
	return func(dst string) string {
		lt.mu.Lock()
		defer lt.mu.Unlock()
		if lt.closed {
			return refused
		}
		k := [2]string{src, dst}
		l, ok := lt.links[k]
		if !ok {
			var err error
			l, err = newLink(dst)
			if err != nil {
				return refused
			}
			lt.links[k] = l
		}
		l.setCut(lt.isolated[src] || lt.isolated[lt.owner[dst]])
		return l.addr()
	}
}

func (lt *linkTable) setOwner(raftAddr, name string) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.owner[raftAddr] = name
}

// setIsolated cuts (or restores) every link from or to node name.
func (lt *linkTable) setIsolated(name string, isolated bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.isolated[name] = isolated
	for k, l := range lt.links {
		if k[0] == name || lt.owner[k[1]] == name {
			l.setCut(lt.isolated[k[0]] || lt.isolated[lt.owner[k[1]]])
		}
	}
}

func (lt *linkTable) close() {
	lt.mu.Lock()
	lt.closed = true
	links := lt.links
	lt.links = map[[2]string]*link{}
	lt.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// link is a TCP proxy to one target that can drop every connection and
// refuse new ones while cut.
type link struct {
	target string
	lis    net.Listener
	wg     sync.WaitGroup // accept loop and pipes

	mu    sync.Mutex // protects cut and conns
	cut   bool
	conns map[net.Conn]struct{}
}

func newLink(target string) (*link, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{target: target, lis: lis, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *link) addr() string { return l.lis.Addr().String() }

func (l *link) acceptLoop() {
	defer l.wg.Done()
	for {
		down, err := l.lis.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", l.target, time.Second)
		if err != nil {
			down.Close()
			continue
		}
		if !l.track(down, up) {
			continue
		}
		l.wg.Add(2)
		go l.pipe(down, up)
		go l.pipe(up, down)
	}
}

// track registers a proxied connection pair unless the link is cut.
func (l *link) track(a, b net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		a.Close()
		b.Close()
		return false
	}
	l.conns[a], l.conns[b] = struct{}{}, struct{}{}
	return true
}

func (l *link) pipe(dst, src net.Conn) {
	defer l.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
	}
}

func (l *link) close() {
	l.lis.Close()
	l.setCut(true)
	l.wg.Wait()
}

// names lists node names, for messages.
func names(nodes []*testNode) string {
	var out []string
	for _, nd := range nodes {
		out = append(out, nd.name)
	}
	return strings.Join(out, ",")
}

// keyOf is chain.KeyOf for tests.
func keyOf(kind, name string) chain.Key { return chain.KeyOf(chain.Kind(kind), name) }
