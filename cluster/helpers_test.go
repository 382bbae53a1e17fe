package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/raftnode"
)

// fakeRaft implements Raft in memory, recording every call. It mirrors
// raftnode's contract: AddVoter is a no-op for the same voter and replaces
// stale entries; membership changes need leadership.
type fakeRaft struct {
	leaderCh chan bool

	mu         sync.Mutex
	leader     bool
	hasState   bool
	servers    []raftnode.Server
	bootstraps [][]raftnode.Server
	changes    []change
}

// change is one AddVoter or RemoveServer call.
type change struct {
	Op   string // "add", "add-nonvoter" or "remove"
	ID   string
	Addr string
	At   time.Time
}

var _ Raft = (*fakeRaft)(nil)

func newFakeRaft() *fakeRaft { return &fakeRaft{leaderCh: make(chan bool, 16)} }

// withConfig gives the fake Raft state with servers as its configuration.
func (f *fakeRaft) withConfig(servers ...raftnode.Server) *fakeRaft {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hasState = true
	f.servers = append([]raftnode.Server(nil), servers...)
	return f
}

// setLeader changes leadership and reports it on LeadershipChanges.
func (f *fakeRaft) setLeader(v bool) *fakeRaft {
	f.mu.Lock()
	f.leader = v
	f.mu.Unlock()
	f.leaderCh <- v
	return f
}

func (f *fakeRaft) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeRaft) LeadershipChanges() <-chan bool { return f.leaderCh }

func (f *fakeRaft) Servers() ([]raftnode.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]raftnode.Server(nil), f.servers...), nil
}

func (f *fakeRaft) AddVoter(id, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, change{Op: "add", ID: id, Addr: addr, At: time.Now()})
	if !f.leader {
		return fmt.Errorf("fake add voter: %w", raftnode.ErrNotLeader)
	}
	f.servers = slices.DeleteFunc(f.servers, func(s raftnode.Server) bool { return s.ID == id || s.Address == addr })
	f.servers = append(f.servers, raftnode.Server{ID: id, Address: addr, Voter: true})
	return nil
}

func (f *fakeRaft) AddNonvoter(id, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, change{Op: "add-nonvoter", ID: id, Addr: addr, At: time.Now()})
	if !f.leader {
		return fmt.Errorf("fake add non-voter: %w", raftnode.ErrNotLeader)
	}
	for _, s := range f.servers {
		if s.ID == id && s.Address == addr {
			return nil
		}
	}
	f.servers = slices.DeleteFunc(f.servers, func(s raftnode.Server) bool { return s.ID == id || s.Address == addr })
	f.servers = append(f.servers, raftnode.Server{ID: id, Address: addr, Voter: false})
	return nil
}

func (f *fakeRaft) RemoveServer(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, change{Op: "remove", ID: id, At: time.Now()})
	if !f.leader {
		return fmt.Errorf("fake remove server: %w", raftnode.ErrNotLeader)
	}
	f.servers = slices.DeleteFunc(f.servers, func(s raftnode.Server) bool { return s.ID == id })
	return nil
}

func (f *fakeRaft) HasExistingState() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hasState
}

func (f *fakeRaft) BootstrapCluster(servers []raftnode.Server) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bootstraps = append(f.bootstraps, append([]raftnode.Server(nil), servers...))
	if f.hasState {
		return nil
	}
	f.hasState = true
	f.servers = append([]raftnode.Server(nil), servers...)
	return nil
}

func (f *fakeRaft) bootstrapCalls() [][]raftnode.Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bootstraps)
}

func (f *fakeRaft) changeCalls() []change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.changes)
}

// hasServer reports whether id is a voter at addr ("" matches any).
func (f *fakeRaft) hasServer(id, addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.servers, func(s raftnode.Server) bool {
		return s.ID == id && s.Voter && (addr == "" || s.Address == addr)
	})
}

// eventLog collects loop events.
type eventLog struct {
	mu     sync.Mutex
	events []loopEvent
}

func (e *eventLog) add(ev loopEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

func (e *eventLog) all() []loopEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

// lastBootstrap returns the most recent bootstrap decision (0 if none).
func (e *eventLog) lastBootstrap() bootstrapDecision {
	evs := e.all()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].bootstrap != 0 {
			return evs[i].bootstrap
		}
	}
	return 0
}

// testNode is one Cluster under test with its fake Raft.
type testNode struct {
	name    string
	cfg     Config
	c       *Cluster
	raft    *fakeRaft
	events  *eventLog
	runErr  chan error
	collect sync.Once
}

func raftAddr(name string) string { return name + ".raft.test:8300" }
func grpcAddr(name string) string { return name + ".grpc.test:8502" }
func nodeID(name string) string   { return "id-" + name }

// voter is the Raft server entry of test node name.
func voter(name string) raftnode.Server {
	return raftnode.Server{ID: nodeID(name), Address: raftAddr(name), Voter: true}
}

// testConfig returns a loopback config with fast gossip timings.
func testConfig(t *testing.T, name string, join ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.NodeID = nodeID(name)
	cfg.Label = "test-" + strings.ReplaceAll(t.Name(), "/", "-")
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Join = join
	cfg.JoinRetryMin = 20 * time.Millisecond
	cfg.JoinRetryMax = 200 * time.Millisecond
	cfg.RaftAddr = raftAddr(name)
	cfg.GRPCAddr = grpcAddr(name)
	cfg.ReconcileInterval = 300 * time.Millisecond
	cfg.DeadServerTimeout = time.Minute
	cfg.ServerStabilizationTime = 500 * time.Millisecond
	g := LocalGossipConfig()
	g.ProbeInterval = 250 * time.Millisecond
	g.ProbeTimeout = 150 * time.Millisecond
	g.GossipInterval = 50 * time.Millisecond
	g.PushPullInterval = 2 * time.Second
	g.GossipToTheDeadTime = 5 * time.Second
	g.SuspicionMult = 3
	cfg.Gossip = g
	return cfg
}

// startNode creates the Cluster, runs it, and stops it at cleanup.
func startNode(t *testing.T, cfg Config, r *fakeRaft) *testNode {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered first, so it runs after the node has stopped
	logger := hclog.New(&hclog.LoggerOptions{Name: cfg.NodeName, Level: testLogLevel(), Output: w})
	c, err := New(cfg, r, logger)
	if err != nil {
		t.Fatalf("New(%s) = %v", cfg.NodeName, err)
	}
	n := &testNode{name: cfg.NodeName, cfg: cfg, c: c, raft: r, events: &eventLog{}, runErr: make(chan error, 1)}
	c.observe = n.events.add
	go func() { n.runErr <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s at failure: members %+v; raft servers %+v; changes %+v", n.name, n.c.Members(), must(n.raft.Servers()), n.raft.changeCalls())
		}
		n.stop(t)
	})
	return n
}

// stop shuts the node down (no leave) and checks Run's result; idempotent.
func (n *testNode) stop(t *testing.T) {
	t.Helper()
	if err := n.c.Shutdown(); err != nil {
		t.Errorf("Shutdown(%s) = %v", n.name, err)
	}
	n.collect.Do(func() { // Shutdown waited for Run, so its result is there
		if err := <-n.runErr; err != nil {
			t.Errorf("Run(%s) = %v, want nil", n.name, err)
		}
	})
}

// status returns name's status as seen by n (0 if unknown).
func (n *testNode) status(name string) Status {
	m, ok := n.c.table.get(name)
	if !ok {
		return 0
	}
	return m.status
}

// sees reports whether n sees every name with status want.
func (n *testNode) sees(want Status, names ...string) bool {
	for _, name := range names {
		if n.status(name) != want {
			return false
		}
	}
	return true
}

// testWriter sends logs to t.Log until closed at cleanup; memberlist's
// unjoined goroutines may still log after Shutdown, and t.Log after the test
// has finished is a race.
type testWriter struct {
	t      *testing.T
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

// freePort returns a loopback port that was free for both TCP and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return 0
}

func itoa(i int) string { return fmt.Sprint(i) }

// testLogLevel is Warn unless CLUSTER_TEST_LOG names another level.
func testLogLevel() hclog.Level {
	if l := hclog.LevelFromString(os.Getenv("CLUSTER_TEST_LOG")); l != hclog.NoLevel {
		return l
	}
	return hclog.Warn
}

func must[T any](v T, _ error) T { return v }
