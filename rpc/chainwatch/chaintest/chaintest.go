// Package chaintest runs a single-node chainstore server (entries and
// chain services on a real loopback gRPC listener, over a real fsm.FSM
// and chain hub, with a stand-in for Raft that applies each command at
// once) for the tests of the commands that talk to one: storeagent and
// storectl. It is test support only.
//
// # Goroutines
//
// Start runs the hub's Run and the gRPC server's Serve on two goroutines;
// Stop (also registered with t.Cleanup) stops both and joins them.
package chaintest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/rpc/chainwatch"
	"github.com/chainstore/chainstore/rpc/configpb"
)

// Server is one running test server.
type Server struct {
	// Addr is the gRPC address.
	Addr string
	// FSM is the server's state machine.
	FSM *fsm.FSM

	t    testing.TB
	raft *leaderRaft
	stop func()
}

// Start starts a server that lives until the test ends. hubConfig, if
// given, adjusts the hub's configuration.
func Start(t testing.TB, hubConfig ...func(*chainwatch.Config)) *Server {
	t.Helper()
	f := fsm.New(nil)
	r := &leaderRaft{fsm: f}
	cfg := rpc.DefaultServerConfig()
	cfg.NodeName, cfg.NodeID = "test", "test-id"
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := lis.Addr().String()
	entries, err := rpc.NewEntriesServer(cfg, r, f, selfCluster{id: cfg.NodeID, addr: addr}, nil)
	if err != nil {
		t.Fatalf("NewEntriesServer: %v", err)
	}
	hcfg := chainwatch.DefaultConfig()
	for _, mod := range hubConfig {
		mod(&hcfg)
	}
	hub, err := chainwatch.New(hcfg, chainwatch.FSMSource(f), nil)
	if err != nil {
		t.Fatalf("chainwatch.New: %v", err)
	}
	chains, err := rpc.NewChainServer(rpc.DefaultChainServerConfig(), hub, entries, nil)
	if err != nil {
		t.Fatalf("NewChainServer: %v", err)
	}
	g := rpc.NewGRPCServer(cfg, nil)
	configpb.RegisterEntriesServiceServer(g, entries)
	rpc.RegisterChainService(g, chains)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = hub.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = g.Serve(lis)
	}()
	var once sync.Once
	s := &Server{Addr: addr, FSM: f, t: t, raft: r}
	s.stop = func() {
		once.Do(func() {
			cancel()
			_ = entries.Close()
			g.Stop()
			wg.Wait()
		})
	}
	t.Cleanup(s.stop)
	return s
}

// Stop stops the server (clients see their connections drop).
func (s *Server) Stop() { s.stop() }

// Put writes an entry document (JSON or HCL) and returns its index. It
// fails the test if the entry is invalid or rejected.
func (s *Server) Put(doc string) uint64 {
	s.t.Helper()
	e, err := chain.DecodeEntry([]byte(doc))
	if err != nil {
		s.t.Fatalf("decode %s: %v", doc, err)
	}
	if err := chain.Prepare(e); err != nil {
		s.t.Fatalf("prepare %s: %v", doc, err)
	}
	data, err := fsm.EncodeCommand(fsm.Command{Op: fsm.OpUpsert, Entry: e, Key: chain.KeyOf(e.GetKind(), e.GetName())})
	if err != nil {
		s.t.Fatalf("encode: %v", err)
	}
	resp, idx, err := s.raft.Apply(context.Background(), data)
	if err != nil {
		s.t.Fatalf("apply: %v", err)
	}
	if res, ok := resp.(fsm.ApplyResult); ok && res.Err != nil {
		s.t.Fatalf("apply %s: %v", doc, res.Err)
	}
	return idx
}

// leaderRaft is a Raft stand-in that is always the leader and applies
// every command to the FSM at once, at the next index.
type leaderRaft struct {
	fsm *fsm.FSM

	mu    sync.Mutex // serialises Apply and protects index
	index uint64
}

var _ rpc.EntriesRaft = (*leaderRaft)(nil)

func (r *leaderRaft) Apply(_ context.Context, cmd []byte) (any, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	out := r.fsm.ApplyBatch([]*raft.Log{{Index: r.index, Term: 1, Type: raft.LogCommand, Data: cmd}})
	return out[0], r.index, nil
}

func (r *leaderRaft) ReadIndex(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.index, nil
}

func (r *leaderRaft) IsLeader() bool            { return true }
func (r *leaderRaft) Leader() (id, addr string) { return "test-id", "raft-test" }
func (r *leaderRaft) Servers() ([]raftnode.Server, error) {
	return []raftnode.Server{{ID: "test-id", Address: "raft-test", Voter: true}}, nil
}

func (r *leaderRaft) Stats() raftnode.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return raftnode.Stats{State: raftnode.StateLeader, Term: 1, CommitIndex: r.index, LastLogIndex: r.index,
		AppliedIndex: r.index, LastContact: time.Now()}
}

// selfCluster is a one-member gossip cluster.
type selfCluster struct{ id, addr string }

var _ rpc.EntriesCluster = selfCluster{}

func (c selfCluster) Members() []cluster.Member {
	return []cluster.Member{{Name: "test", ID: c.id, GRPCAddr: c.addr, Status: cluster.StatusAlive}}
}

func (c selfCluster) GRPCAddrOf(id string) (string, bool) {
	if id == c.id {
		return c.addr, true
	}
	return "", false
}

// Resolver returns a service-resolver document with a connect timeout.
func Resolver(name string, timeout time.Duration) string {
	return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":%q}`, name, timeout.String())
}
