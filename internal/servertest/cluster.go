// Package servertest runs real chainstore servers (server.New: FSM, Raft
// on bbolt in t.TempDir(), memberlist and gRPC on loopback port 0, with
// short timeouts) inside a test process. It is test support only: import
// it from _test.go files.
//
//   - NewCluster starts an n-node cluster and waits until it is stable.
//     Raft traffic between its nodes goes through one TCP proxy per
//     directed link (raftnode's DialOverride), so a test can cut a node
//     off before stopping it (Crash): the rest of the cluster then sees a
//     crash, not a graceful leave or a leadership transfer.
//   - StartSingle starts one server that bootstraps alone (BootstrapExpect
//     1) and waits until it leads: the server for the tests of the
//     commands that talk to one (storectl, storeagent).
//
// Set CHAINSTORE_TEST_LOG=debug (or info, ...) to stream server logs to
// stderr; otherwise they are kept in memory, and when the test fails the
// last lines of each server's log are printed and the whole log is saved
// to a file under $TMPDIR/chainstore-test-logs.
//
// # Goroutines
//
// Every server runs the goroutines of server.Server.Start; each Raft link
// proxy runs an accept loop and two copy goroutines per connection. All of
// them end in the t.Cleanup functions the constructors register (servers
// stopped, then the proxies closed and joined).
package servertest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/server"
)

// Node is one server of a Cluster.
type Node struct {
	c       *Cluster
	name    string
	dataDir string
	cfg     server.Config
	srv     *server.Server // nil while stopped; guarded by c.mu
	logs    *syncBuffer
	started bool // started once: its addresses are pinned
	// gossipCut drops all of the node's gossip traffic while set
	// (CutGossip); Raft and gRPC are untouched.
	gossipCut *cluster.GossipCut
}

// CutGossip cuts (true) or restores (false) all of nd's gossip traffic,
// in and out, leaving its Raft and gRPC traffic alone: a gossip-only
// partition of one node.
func (nd *Node) CutGossip(cut bool) { nd.gossipCut.Set(cut) }

// Name returns the node's name (n1, n2, ...).
func (nd *Node) Name() string { return nd.name }

// Server returns the node's running server, or nil while it is stopped.
func (nd *Node) Server() *server.Server {
	nd.c.mu.Lock()
	defer nd.c.mu.Unlock()
	return nd.srv
}

// GRPCAddr returns the node's gRPC address. After the first start it is
// pinned: a restarted node serves on the same address.
func (nd *Node) GRPCAddr() string { return nd.cfg.GRPCAddr }

// HTTPAddr returns the node's HTTP API address ("" when a mutate function
// turned HTTP off), pinned like GRPCAddr.
func (nd *Node) HTTPAddr() string { return nd.cfg.HTTPAddr }

// Config returns the node's configuration (its addresses pinned after the
// first start).
func (nd *Node) Config() server.Config { return nd.cfg }

// Cluster is a set of in-process servers.
type Cluster struct {
	t      testing.TB
	links  *linkTable
	mutate func(*server.Config)
	// root holds every node's data dir. It is made before the shutdown
	// cleanup is registered, so its removal runs after the servers stopped
	// (cleanups run last-registered first; a t.TempDir per node made later
	// would be removed while the servers still write snapshots).
	root string

	mu    sync.Mutex // protects nodes and every Node.srv
	nodes []*Node
}

// Config is server.DefaultConfig with free loopback addresses below the
// kernel's ephemeral range (see ports.go) and short timeouts, for a node
// of a three-node cluster (BootstrapExpect 3).
func Config(name, dataDir string) server.Config {
	cfg := server.DefaultConfig()
	cfg.NodeName, cfg.DataDir = name, dataDir
	cfg.RaftAddr, cfg.GossipAddr, cfg.GRPCAddr = addr(), addr(), addr()
	cfg.HTTPAddr = addr()
	cfg.BootstrapExpect = 3
	cfg.GRPCStopTimeout, cfg.LeaveTimeout = 2*time.Second, 2*time.Second

	// Short enough for quick elections, long enough to ride out a loaded
	// CI machine without spurious elections.
	cfg.Raft.HeartbeatTimeout = 500 * time.Millisecond
	cfg.Raft.ElectionTimeout = 500 * time.Millisecond
	// The lease equals the heartbeat timeout: at 250 ms a leader on a
	// machine loaded by -race tests stepped down now and then (no quorum
	// contact for ~470 ms), failing writes with an unknown outcome.
	cfg.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
	cfg.Raft.CommitTimeout = 5 * time.Millisecond
	cfg.Raft.ApplyTimeout = 5 * time.Second
	cfg.Raft.TransportTimeout = 2 * time.Second

	cfg.Cluster.Gossip = cluster.LocalGossipConfig()
	cfg.Cluster.JoinRetryMin = 50 * time.Millisecond
	cfg.Cluster.JoinRetryMax = 500 * time.Millisecond
	cfg.Cluster.ReconcileInterval = 500 * time.Millisecond
	cfg.Cluster.DeadServerTimeout = 30 * time.Second
	cfg.Cluster.ServerStabilizationTime = 500 * time.Millisecond
	cfg.Cluster.Label = "chainstore-test"

	cfg.RPC.HoldTimeout = 7 * time.Second
	cfg.RPC.ForwardConnectTimeout = 300 * time.Millisecond

	// TTL checks: a short grace after a leader change, frequent ticks.
	cfg.Health.Grace = 500 * time.Millisecond
	cfg.Health.Interval = 20 * time.Millisecond
	return cfg
}

// NewCluster starts n nodes (n1 ... nn) that bootstrap together (expect
// n) and waits until they agree on a leader and all are voters. mutate,
// if not nil, adjusts every node's config (Config plus the Raft link
// proxy), also for nodes added later. Everything stops when the test
// ends.
func NewCluster(tb testing.TB, n int, mutate func(*server.Config)) *Cluster {
	tb.Helper()
	c := &Cluster{t: tb, links: newLinkTable(), mutate: mutate, root: tb.TempDir()}
	tb.Cleanup(c.shutdown)
	for i := 1; i <= n; i++ {
		c.AddNode(fmt.Sprintf("n%d", i), n)
	}
	c.WaitStable(n)
	return c
}

// AddNode creates and starts a node that joins the nodes started before
// it (expect is its BootstrapExpect; 0 for a node joining an existing
// cluster). It does not wait for the node to join.
func (c *Cluster) AddNode(name string, expect int) *Node {
	c.t.Helper()
	dataDir, err := os.MkdirTemp(c.root, name+"-")
	if err != nil {
		c.t.Fatalf("data dir of %s: %v", name, err)
	}
	nd := &Node{c: c, name: name, dataDir: dataDir, logs: &syncBuffer{}, gossipCut: &cluster.GossipCut{}}
	nd.cfg = Config(name, nd.dataDir)
	nd.cfg.Cluster.TestGossipCut = nd.gossipCut
	nd.cfg.BootstrapExpect = expect
	nd.cfg.Raft.DialOverride = c.links.dialer(name)
	if c.mutate != nil {
		c.mutate(&nd.cfg)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, nd)
	c.mu.Unlock()
	c.Start(nd)
	dumpLogsOnFailure(c.t, nd.name, nd.logs)
	return nd
}

// Start builds and starts nd's server, joining every other node started
// so far. After the first start the node keeps its bound addresses and
// data directory, so a restart looks like the same server.
func (c *Cluster) Start(nd *Node) {
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
	first := !nd.started
	srv, err := newServer(c.t, &nd.cfg, testLogger(nd.name, nd.logs), first)
	if err != nil {
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	nd.started = true
	c.links.setOwner(srv.RaftAddr(), nd.name)
	c.links.setIsolated(nd.name, false)
	// Pin the bound ports for restarts.
	nd.cfg.RaftAddr, nd.cfg.GRPCAddr, nd.cfg.GossipAddr = srv.RaftAddr(), srv.GRPCAddr(), srv.GossipAddr()
	nd.cfg.HTTPAddr = srv.HTTPAddr()
	srv.Start()
	c.mu.Lock()
	nd.srv = srv
	c.mu.Unlock()
}

// Stop stops nd gracefully (gRPC drain, leadership transfer, gossip
// leave).
func (c *Cluster) Stop(nd *Node) {
	c.t.Helper()
	if err := nd.Server().Stop(true); err != nil {
		c.t.Errorf("stop %s: %v", nd.name, err)
	}
	c.mu.Lock()
	nd.srv = nil
	c.mu.Unlock()
}

// Crash cuts nd's Raft links and then stops it without leaving: the other
// servers see a dead peer, as after SIGKILL.
func (c *Cluster) Crash(nd *Node) {
	c.t.Helper()
	c.links.setIsolated(nd.name, true)
	_ = nd.Server().Stop(false)
	c.mu.Lock()
	nd.srv = nil
	c.mu.Unlock()
}

func (c *Cluster) shutdown() {
	for _, nd := range c.Running() {
		_ = nd.Server().Stop(false)
	}
	c.links.close()
}

// Running returns the nodes that are up, in the order they were added.
func (c *Cluster) Running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, nd := range c.nodes {
		if nd.srv != nil {
			out = append(out, nd)
		}
	}
	return out
}

// Node returns the node called name, failing the test if there is none.
func (c *Cluster) Node(name string) *Node {
	c.t.Helper()
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

// Leader waits (up to 20 s) until the running nodes agree on a leader
// that has finished its start-of-term barrier, and returns it.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	var leader *Node
	testutil.Poll(c.t, 20*time.Second, "an agreed, ready leader", func() bool {
		leader = nil
		nodes := c.Running()
		for _, nd := range nodes {
			if nd.Server().Raft().IsLeader() {
				leader = nd
			}
		}
		if leader == nil {
			return false
		}
		for _, nd := range nodes {
			if id, _ := nd.Server().Raft().Leader(); id != leader.Server().NodeID() {
				return false
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := leader.Server().Raft().ReadIndex(ctx)
		return err == nil
	})
	return leader
}

// Followers returns the running nodes other than the leader (Leader).
func (c *Cluster) Followers() []*Node {
	c.t.Helper()
	l := c.Leader()
	var out []*Node
	for _, nd := range c.Running() {
		if nd != l {
			out = append(out, nd)
		}
	}
	return out
}

// WaitStable waits (up to 30 s) for a ready leader whose Raft
// configuration has exactly voters voters, all of them running nodes.
func (c *Cluster) WaitStable(voters int) {
	c.t.Helper()
	testutil.Poll(c.t, 30*time.Second, fmt.Sprintf("%d voters", voters), func() bool {
		l := c.Leader()
		servers, err := l.Server().Raft().Servers()
		if err != nil || len(servers) != voters {
			return false
		}
		up := map[string]bool{}
		for _, nd := range c.Running() {
			up[nd.Server().NodeID()] = true
		}
		for _, s := range servers {
			if !s.Voter || !up[s.ID] {
				return false
			}
		}
		return true
	})
}

// WaitConverged waits (up to 20 s) until every running node has applied
// the same index and holds the same state (fsm.Store.Hash).
func (c *Cluster) WaitConverged() {
	c.t.Helper()
	testutil.Poll(c.t, 20*time.Second, "replicas to converge", func() bool {
		nodes := c.Running()
		want := nodes[0].Server().FSM().Store().Hash()
		idx := nodes[0].Server().FSM().AppliedIndex()
		for _, nd := range nodes[1:] {
			if nd.Server().FSM().AppliedIndex() != idx || nd.Server().FSM().Store().Hash() != want {
				return false
			}
		}
		return true
	})
}

// Client returns a client for the given nodes' gRPC addresses (in order),
// closed at the end of the test.
func (c *Cluster) Client(nodes ...*Node) *api.Client {
	c.t.Helper()
	var addrs []string
	for _, nd := range nodes {
		addrs = append(addrs, nd.cfg.GRPCAddr)
	}
	return NewClient(c.t, addrs...)
}

// NewClient returns an API client of addrs, closed at the end of the test.
func NewClient(tb testing.TB, addrs ...string) *api.Client {
	tb.Helper()
	cfg := api.DefaultClientConfig()
	cfg.Addrs = addrs
	cl, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}
