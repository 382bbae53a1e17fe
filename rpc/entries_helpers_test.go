package rpc

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chainwatch"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
)

// esRaft is a single-process stand-in for raftnode.Node: Apply hands the
// command straight to a real FSM as the next log index. Tests flip
// leadership and inject errors.
type esRaft struct {
	fsm    *fsm.FSM
	nodeID string

	mu       sync.Mutex // protects the fields below
	index    uint64
	leader   bool
	leaderID string
	// applyErrs are returned, one per call, before Apply does anything.
	applyErrs []error
	applies   int
	reads     int
	// readErr, if set, is what ReadIndex returns: a leader that cannot
	// confirm its leadership (deposed without knowing it yet).
	readErr error
	// onLeader, if set, is called by every Leader() (under mu).
	onLeader func(r *esRaft)
	// entered, if set, receives a value when Apply starts; block, if set,
	// holds Apply until it is closed.
	entered chan struct{}
	block   chan struct{}
}

var _ Raft = (*esRaft)(nil)

func (r *esRaft) Apply(ctx context.Context, cmd []byte) (any, uint64, error) {
	r.mu.Lock()
	entered, block := r.entered, r.block
	r.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("apply: %w", raftnode.ErrUnknownOutcome)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.applyErrs) > 0 {
		err := r.applyErrs[0]
		r.applyErrs = r.applyErrs[1:]
		if err != nil {
			return nil, 0, err
		}
	}
	if !r.leader {
		return nil, 0, fmt.Errorf("apply: %w", raftnode.ErrNotLeader)
	}
	r.index++
	r.applies++
	resp := r.fsm.Apply(&raft.Log{Index: r.index, Term: 1, Type: raft.LogCommand, Data: cmd})
	return resp, r.index, nil
}

func (r *esRaft) ReadIndex(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader {
		return 0, fmt.Errorf("read index: %w", raftnode.ErrNotLeader)
	}
	if r.readErr != nil {
		return 0, r.readErr
	}
	r.reads++
	return r.index, nil
}

func (r *esRaft) IsLeader() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

func (r *esRaft) Leader() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onLeader != nil {
		r.onLeader(r)
	}
	if r.leader {
		return r.nodeID, "raft-" + r.nodeID
	}
	if r.leaderID == "" {
		return "", ""
	}
	return r.leaderID, "raft-" + r.leaderID
}

func (r *esRaft) Servers() ([]raftnode.Server, error) {
	return []raftnode.Server{{ID: r.nodeID, Address: "raft-" + r.nodeID, Voter: true}}, nil
}

func (r *esRaft) Stats() raftnode.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := raftnode.Stats{State: raftnode.StateFollower, Term: 1, CommitIndex: r.index, LastLogIndex: r.index, AppliedIndex: r.index}
	if r.leader {
		st.State, st.LastContact = raftnode.StateLeader, time.Now()
	}
	return st
}

func (r *esRaft) set(fn func(r *esRaft)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

func (r *esRaft) counts() (applies, reads int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applies, r.reads
}

// esCluster is a static membership: node ID -> gRPC address.
type esCluster struct {
	mu    sync.Mutex
	addrs map[string]string
	// lookups counts ServerGRPCAddr calls.
	lookups atomic.Int64
}

func (c *esCluster) Members() []cluster.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []cluster.Member
	for id, a := range c.addrs {
		out = append(out, cluster.Member{Name: "node-" + id, ID: id, GRPCAddr: a, Status: cluster.StatusAlive})
	}
	return out
}

func (c *esCluster) GRPCAddrOf(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[id]
	return a, ok
}

// ServerGRPCAddr ignores the Raft address: the fake has one member per ID.
func (c *esCluster) ServerGRPCAddr(id, _ string) (string, bool) {
	c.lookups.Add(1)
	return c.GRPCAddrOf(id)
}

func (c *esCluster) set(id, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addrs[id] = addr
}

func newESCluster() *esCluster { return &esCluster{addrs: map[string]string{}} }

// esNode is one entries service on a real loopback gRPC server, with a
// client connected to it.
type esNode struct {
	id     string
	grpc   *grpc.Server
	srv    *Services
	raft   *esRaft
	fsm    *fsm.FSM
	addr   string
	client *api.Client
}

// testServerConfig is DefaultServerConfig with short timeouts.
func testServerConfig(id string) ServerConfig {
	cfg := DefaultServerConfig()
	cfg.NodeName, cfg.NodeID = "node-"+id, id
	cfg.HoldTimeout = 2 * time.Second
	cfg.ForwardConnectTimeout = 200 * time.Millisecond
	return cfg
}

// startESNode starts an entries service for node id. leader makes it the
// leader; mutate adjusts its config.
func startESNode(tb testing.TB, id string, leader bool, cl *esCluster, mutate func(*ServerConfig)) *esNode {
	tb.Helper()
	cfg := testServerConfig(id)
	if mutate != nil {
		mutate(&cfg)
	}
	f := fsm.New(nil)
	r := &esRaft{fsm: f, nodeID: id, leader: leader}
	srv := newTestServices(tb, cfg, r, f, cl, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	g := NewGRPCServer(cfg, nil)
	Register(g, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	addr := lis.Addr().String()
	cl.set(id, addr)
	ccfg := api.DefaultClientConfig()
	ccfg.Addrs = []string{addr}
	client, err := api.NewClient(ccfg)
	if err != nil {
		tb.Fatalf("api.NewClient: %v", err)
	}
	tb.Cleanup(func() {
		_ = client.Close()
		srv.Close()
		g.Stop()
		<-done
	})
	return &esNode{id: id, grpc: g, srv: srv, raft: r, fsm: f, addr: addr, client: client}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// testCtx returns a context that ends with the test or after 30 s.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// put writes a JSON entry through the client and fails the test on error.
func put(t *testing.T, c *api.Client, entry string) *chainstorev1.ApplyResponse {
	t.Helper()
	return putCtx(testCtx(t), t, c, entry)
}

// putCtx is put for a caller that has a context: the write ends with ctx.
func putCtx(ctx context.Context, t *testing.T, c *api.Client, entry string) *chainstorev1.ApplyResponse {
	t.Helper()
	resp, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(entry)})
	if err != nil {
		t.Fatalf("Apply(%s): %v", entry, err)
	}
	return resp
}

// newTestServices builds the services over a fake Raft node and a chain
// hub on f (not running unless the test runs it). chains, if not nil,
// replaces the chain service config.
func newTestServices(tb testing.TB, cfg ServerConfig, r Raft, f *fsm.FSM, cl Members, hub *chainwatch.Hub, chains ...ChainServerConfig) *Services {
	tb.Helper()
	if hub == nil {
		var err error
		hub, err = chainwatch.New(chainwatch.DefaultConfig(), chainwatch.FSMSource(f), nil)
		if err != nil {
			tb.Fatalf("chainwatch.New: %v", err)
		}
	}
	ccfg := DefaultChainServerConfig()
	if len(chains) > 0 {
		ccfg = chains[0]
	}
	svc, err := NewServices(cfg, ccfg, r, f, cl, hub, nil, nil)
	if err != nil {
		tb.Fatalf("NewServices: %v", err)
	}
	return svc
}
