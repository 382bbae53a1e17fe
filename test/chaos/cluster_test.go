package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// The process-level cluster of the fault suite: three stored processes on
// loopback, each with its own data dir and apply journal, and one Proxy
// per directed Raft link. Node i dials node j's Raft address through
// proxies[i][j] (stored --test-raft-dial-map). Gossip and gRPC are direct.

// defaultTuning is the Raft tuning of the fault suite: 500 ms timeouts
// (the short setting of docs/reliability.md, G6) and small snapshot settings so that
// snapshots and snapshot installs happen within a history. raft-wal (the
// default log store) truncates whole segment files only, so its segments
// are small too (64 KiB, a few hundred entries): a lagging follower then
// needs a snapshot as with bbolt, and segment rotation happens under
// every fault.
const defaultTuning = "heartbeat=500ms,election=500ms,lease=250ms,commit=5ms,snapshot-interval=1s,snapshot-threshold=256,trailing-logs=256,wal-segment-size=65536"

// electionTimeout matches defaultTuning.
const electionTimeout = 500 * time.Millisecond

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// storedBinary builds cmd/stored once per test binary (the Go build cache
// makes this cheap when `make build` just ran) and returns its path.
// CHAOS_STORED_BIN overrides it.
func storedBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHAOS_STORED_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "chaos-stored-") //nolint:usetesting // shared by every test in the binary; t.TempDir would vanish with the first test
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "stored")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/stored")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/stored: %w\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatalf("build stored: %v", buildErr)
	}
	return buildPath
}

type procNode struct {
	idx                            int
	name                           string
	dataDir, journal, logPath      string
	stall                          string   // while this file exists, the node's Raft log writes block
	failpoints                     string   // read on SIGUSR1: the failpoints to enable (crashpoint_test.go)
	env                            []string // extra environment of the next start (e.g. CHAINSTORE_FAILPOINTS)
	raftAddr, gossipAddr, grpcAddr string
	client                         *api.Client // direct to this node, for status calls

	mu      sync.Mutex // protects cmd, done, paused
	cmd     *exec.Cmd
	done    chan struct{} // closed when the running process exited
	paused  bool
	started int // number of starts (restarts show in the log)
}

type procCluster struct {
	t       *testing.T
	bin     string
	tuning  string
	nodes   []*procNode
	proxies [][]*Proxy // [from][to]; nil on the diagonal; nil in a netns cluster
	// wrap, when set, turns a node's command line into the one to run
	// (netns_test.go runs each node inside its network namespace).
	wrap    func(n *procNode, argv []string) []string
	waiters sync.WaitGroup
}

// prepareFunc adjusts a node before its first start (disk_test.go puts
// its data dir on a file system of its own).
type prepareFunc func(t *testing.T, n *procNode)

// reservePorts holds n loopback listeners on free ports; release closes
// them just before the processes bind (so proxies created meanwhile cannot
// take those ports).
func reservePorts(t *testing.T, n int) ([]string, func()) {
	t.Helper()
	var lns []net.Listener
	var addrs []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve port: %v", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
}

// newProcCluster starts three nodes and waits for a leader and three
// voters.
func newProcCluster(t *testing.T, tuning string, prepare ...prepareFunc) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: storedBinary(t), tuning: tuning}
	root := t.TempDir()
	ports, release := reservePorts(t, 9)
	for i := 0; i < 3; i++ {
		n := &procNode{
			idx: i, name: fmt.Sprintf("n%d", i+1),
			dataDir:    filepath.Join(root, fmt.Sprintf("n%d", i+1), "data"),
			journal:    filepath.Join(root, fmt.Sprintf("n%d", i+1), "journal.jsonl"),
			logPath:    filepath.Join(root, fmt.Sprintf("n%d", i+1), "stored.log"),
			stall:      filepath.Join(root, fmt.Sprintf("n%d", i+1), "disk-stall"),
			failpoints: filepath.Join(root, fmt.Sprintf("n%d", i+1), "failpoints"),
			raftAddr:   ports[3*i], gossipAddr: ports[3*i+1], grpcAddr: ports[3*i+2],
		}
		for _, p := range prepare {
			p(t, n)
		}
		if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		cl, err := newClient([]string{n.grpcAddr}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n.client = cl
		c.nodes = append(c.nodes, n)
	}
	c.proxies = make([][]*Proxy, 3)
	for i := range c.nodes {
		c.proxies[i] = make([]*Proxy, 3)
		for j := range c.nodes {
			if i == j {
				continue
			}
			p, err := NewProxy("127.0.0.1:0", c.nodes[j].raftAddr)
			if err != nil {
				t.Fatal(err)
			}
			c.proxies[i][j] = p
		}
	}
	t.Cleanup(c.close)
	release()
	for i := range c.nodes {
		c.start(i)
	}
	c.waitHealthy(30 * time.Second)
	return c
}

func newClient(addrs []string, timeout time.Duration) (*api.Client, error) {
	cfg := api.DefaultClientConfig()
	cfg.Addrs = addrs
	cfg.CallTimeout = timeout
	cfg.ConnectTimeout = time.Second
	return api.NewClient(cfg)
}

func (c *procCluster) args(n *procNode) []string {
	var join, dial []string
	for _, m := range c.nodes {
		if m == n {
			continue
		}
		join = append(join, m.gossipAddr)
		if c.proxies != nil {
			dial = append(dial, m.raftAddr+"="+c.proxies[n.idx][m.idx].Addr())
		}
	}
	a := []string{
		"--node", n.name, "--data-dir", n.dataDir,
		"--raft-addr", n.raftAddr, "--gossip-addr", n.gossipAddr, "--grpc-addr", n.grpcAddr,
		"--join", strings.Join(join, ","), "--bootstrap-expect", "3", "--log-level", "info",
		"--test-raft-dial-map", strings.Join(dial, ","),
		"--test-apply-journal", n.journal,
		"--test-disk-stall-file", n.stall,
		"--test-failpoints-file", n.failpoints,
		// The namespace tier binds non-loopback addresses; the suite tests
		// faults, not secure mode (test/security does that).
		"--insecure",
	}
	if c.tuning != "" {
		a = append(a, "--test-raft-tuning", c.tuning)
	}
	return a
}

// start launches node i (again) on its data dir.
func (c *procCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			c.t.Fatalf("%s is already running", n.name)
		}
	}
	logf, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	n.started++
	_, _ = fmt.Fprintf(logf, "==== start %d at %s\n", n.started, time.Now().Format(time.RFC3339Nano))
	argv := append([]string{c.bin}, c.args(n)...)
	if c.wrap != nil {
		argv = c.wrap(n, argv)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(n.env) > 0 {
		cmd.Env = append(os.Environ(), n.env...)
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		c.t.Fatalf("start %s: %v", n.name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.paused = cmd, done, false
	c.waiters.Add(1)
	go func() {
		defer c.waiters.Done()
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
}

// signal sends sig to node i's process; for SIGKILL and SIGTERM it waits
// for the exit (SIGTERM: up to 20 s, then SIGKILL).
func (c *procCluster) signal(i int, sig syscall.Signal) {
	c.t.Helper()
	n := c.nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return // not running
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("signal %s to %s: %v", sig, n.name, err)
	}
	switch sig {
	case syscall.SIGKILL:
		<-done
	case syscall.SIGTERM:
		t := time.NewTimer(20 * time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
	}
}

func (c *procCluster) running(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func (c *procCluster) close() {
	for i := range c.nodes {
		c.signal(i, syscall.SIGCONT)
		c.signal(i, syscall.SIGKILL)
	}
	c.waiters.Wait()
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				_ = p.Close()
			}
		}
	}
	for _, n := range c.nodes {
		_ = n.client.Close()
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			if b, err := os.ReadFile(n.logPath); err == nil {
				lines := strings.Split(string(b), "\n")
				if len(lines) > 30 {
					lines = lines[len(lines)-30:]
				}
				c.t.Logf("---- last log lines of %s (%s):\n%s", n.name, n.logPath, strings.Join(lines, "\n"))
				saveLog(c.t, n.name, b)
			}
		}
	}
}

// saveLog keeps a failed history's whole server log next to its saved
// history (CHAOS_ARTIFACTS, default the temp dir), since the test's own
// temp dir is deleted.
func saveLog(t *testing.T, node string, b []byte) {
	t.Helper()
	dir := os.Getenv("CHAOS_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("chaos-log-%s-%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), node, time.Now().UnixNano()))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Logf("save log of %s: %v", node, err)
		return
	}
	t.Logf("whole log of %s saved to %s", node, path)
}

// status asks node i directly (nil when it does not answer quickly).
func (c *procCluster) status(i int) *chainstorev1.StatusResponse {
	if !c.running(i) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	st, err := c.nodes[i].client.Status(ctx, &chainstorev1.StatusRequest{})
	if err != nil {
		return nil
	}
	return st
}

// leader returns the index of the node that says it leads in the highest
// term, or -1.
func (c *procCluster) leader() int {
	best, term := -1, uint64(0)
	for i := range c.nodes {
		if st := c.status(i); st != nil && st.GetIsLeader() && st.GetTerm() >= term {
			best, term = i, st.GetTerm()
		}
	}
	return best
}

// poll runs cond every 50 ms until it returns true or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

func (c *procCluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	l := -1
	if !poll(timeout, func() bool { l = c.leader(); return l >= 0 }) {
		c.t.Fatalf("no leader within %v", timeout)
	}
	return l
}

// voters returns the number of voters in the leader's configuration.
func (c *procCluster) voters(l int) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.nodes[l].client.Peers(ctx, &chainstorev1.PeersRequest{})
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range resp.GetPeers() {
		if p.GetVoter() {
			n++
		}
	}
	return n
}

// waitHealthy waits for a leader with three voters, every node answering
// and knowing the leader.
func (c *procCluster) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	ok := poll(timeout, func() bool {
		l := c.leader()
		if l < 0 || c.voters(l) != 3 {
			return false
		}
		for i := range c.nodes {
			st := c.status(i)
			if st == nil || st.GetLeaderId() == "" {
				return false
			}
		}
		return true
	})
	if !ok {
		c.t.Fatalf("cluster not healthy within %v", timeout)
	}
}

// followers returns the indexes of the nodes other than l.
func (c *procCluster) followers(l int) []int {
	var out []int
	for i := range c.nodes {
		if i != l {
			out = append(out, i)
		}
	}
	return out
}

// ---- network faults (Raft links only) ----

// cut pauses the messages from node a to node b: a's requests on its own
// connections (a->b proxy, up) and a's answers on b's connections (b->a
// proxy, down).
func (c *procCluster) cut(a, b int) {
	c.proxies[a][b].Pause(Up)
	c.proxies[b][a].Pause(Down)
}

// isolate cuts node i off both ways.
func (c *procCluster) isolate(i int) {
	for j := range c.nodes {
		if j != i {
			c.proxies[i][j].Pause(Both)
			c.proxies[j][i].Pause(Both)
		}
	}
}

// blackhole resets and refuses every Raft connection to and from node i.
func (c *procCluster) blackhole(i int) {
	for j := range c.nodes {
		if j != i {
			c.proxies[i][j].Blackhole()
			c.proxies[j][i].Blackhole()
		}
	}
}

func (c *procCluster) delayAll(fixed, jitter time.Duration) {
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.SetDelay(Both, fixed, jitter)
			}
		}
	}
}

func (c *procCluster) healAll() {
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.Heal()
			}
		}
	}
}
