package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/chainstore/chainstore/raftnode"
)

// Raft is what the cluster needs from the Raft node (*raftnode.Node
// implements it). Membership changes go only through AddVoter and
// RemoveServer, from the leader's reconcile loop.
type Raft interface {
	IsLeader() bool
	// LeadershipChanges delivers true on gaining leadership (after the
	// term's barrier) and false on losing it. Run is its only reader.
	LeadershipChanges() <-chan bool
	Servers() ([]raftnode.Server, error)
	// AddVoter is a no-op for a voter with the same ID and address and
	// replaces stale entries (same ID or same address).
	AddVoter(id, addr string) error
	// AddNonvoter adds a new server that does not vote yet (autopilot.go);
	// a no-op when the server is present at addr.
	AddNonvoter(id, addr string) error
	RemoveServer(id string) error
	HasExistingState() bool
	BootstrapCluster(servers []raftnode.Server) error
}

var _ Raft = (*raftnode.Node)(nil)

// Cluster is this server's gossip membership (memberlist) plus the loop
// that bootstraps Raft and, on the leader, keeps the Raft configuration in
// line with membership. Create it with New, then call Run; stop it with
// Leave (graceful) or Shutdown.
type Cluster struct {
	cfg    Config
	raft   Raft
	logger hclog.Logger
	now    func() time.Time
	table  *memberTable
	ml     *memberlist.Memberlist
	// gossipAddr is this node's advertised gossip address, fixed at New.
	gossipAddr string
	observe    func(loopEvent) // tests only; set before Run, read by the loop
	// joinFailures counts failed join rounds (every address refused).
	joinFailures atomic.Uint64

	// metaMu protects meta, the metadata this node gossips. It is read by
	// memberlist (NodeMeta) under memberlist's node lock: lock order is
	// memberlist's lock, then metaMu; never call memberlist holding it.
	metaMu sync.Mutex
	meta   nodeMeta

	// refusedMu protects refused: the members the leader's reconcile loop
	// refused (identity.go), name -> reason.
	refusedMu sync.Mutex
	refused   map[string]string

	// keyringMu serialises keyring changes with their persisting (the
	// keyring itself is memberlist's and has its own lock).
	keyringMu sync.Mutex

	// lifeMu protects closed and runDone and serialises Leave against
	// Shutdown (memberlist panics on Leave after Shutdown). It is never
	// held while waiting for Run to return.
	lifeMu     sync.Mutex
	closed     bool
	runDone    chan struct{} // non-nil once Run started; closed when it returns
	shutdownCh chan struct{} // closed by Shutdown
}

// New validates cfg and starts memberlist on BindAddr:BindPort (its
// goroutines run until Leave or Shutdown). It does not join anyone and
// changes nothing in Raft until Run is called. A nil logger discards logs.
func New(cfg Config, r Raft, logger hclog.Logger) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("cluster: nil Raft: %w", ErrInvalidConfig)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cfg.Join = append([]string(nil), cfg.Join...)
	c := &Cluster{
		cfg:        cfg,
		raft:       r,
		logger:     logger,
		now:        time.Now,
		meta:       cfg.localMeta(r.HasExistingState()),
		shutdownCh: make(chan struct{}),
	}
	c.table = newMemberTable(logger, c.now)
	mlc := cfg.memberlistConfig(logger)
	mlc.Delegate = metaDelegate{c}
	mlc.Events = c.table
	if cfg.TestGossipCut != nil {
		t, err := newCutTransport(mlc, cfg.TestGossipCut)
		if err != nil {
			return nil, err
		}
		mlc.Transport = t
	}
	ml, err := memberlist.Create(mlc)
	if err != nil {
		if mlc.Transport != nil {
			_ = mlc.Transport.Shutdown()
		}
		return nil, fmt.Errorf("create memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	c.ml = ml
	// Read once, before any goroutine can update the local node's meta:
	// memberlist's LocalNode is not safe to read while UpdateNode runs.
	c.gossipAddr = ml.LocalNode().Address()
	logger.Info("gossip started", "name", cfg.NodeName, "id", cfg.NodeID, "address", c.GossipAddr(), "label", cfg.Label)
	return c, nil
}

// Run joins the configured servers (retrying in the background) and runs
// the reconcile loop until ctx is done or the Cluster is shut down; it
// returns nil then, after its goroutines have exited. It may be called
// once: later calls return ErrAlreadyRunning, and ErrShutdown after
// Shutdown. Run does not stop memberlist: call Leave or Shutdown.
func (c *Cluster) Run(ctx context.Context) error {
	c.lifeMu.Lock()
	switch {
	case c.closed:
		c.lifeMu.Unlock()
		return ErrShutdown
	case c.runDone != nil:
		c.lifeMu.Unlock()
		return ErrAlreadyRunning
	}
	done := make(chan struct{})
	c.runDone = done
	c.lifeMu.Unlock()
	defer close(done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.joinLoop(ctx) })
	c.runLoop(ctx)
	cancel()
	wg.Wait()
	return nil
}

// Leave announces a graceful leave, so the leader removes this server from
// Raft at once rather than after DeadServerTimeout, then shuts down like
// Shutdown. The announcement goes three ways: "leaving" in this node's
// metadata (gossip, best effort), a leave intent sent over TCP to every
// live member (reliable; memberlist's gossip may spend all of a broadcast's
// retransmissions on one peer), then memberlist's own leave broadcast,
// waited for until timeout (a non-positive timeout does not wait). The
// intents take at most Gossip.TCPTimeout on top of timeout. Call Leave
// before shutting Raft down. It returns ErrShutdown if the Cluster is
// already shut down.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.Lock()
	if c.closed {
		c.lifeMu.Unlock()
		return ErrShutdown
	}
	deadline := time.Now().Add(max(timeout, 0))
	c.setLeaving()
	c.updateMeta(min(max(timeout/4, time.Nanosecond), metaUpdateWait)) // best effort; the intents are what count
	c.sendLeaveIntents()
	var leaveErr error
	if err := c.ml.Leave(max(time.Until(deadline), time.Nanosecond)); err != nil {
		leaveErr = fmt.Errorf("leave gossip: %w", err)
	}
	c.lifeMu.Unlock()
	return errors.Join(leaveErr, c.Shutdown())
}

// Shutdown stops memberlist without a leave (peers see a failure) and stops
// Run, waiting for it to return. It is idempotent and safe to call
// concurrently.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	var err error
	if !c.closed {
		c.closed = true
		close(c.shutdownCh)
		if e := c.ml.Shutdown(); e != nil {
			err = fmt.Errorf("shut down memberlist: %w", e)
		}
	}
	done := c.runDone
	c.lifeMu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

// Members returns every server this node knows through gossip (including
// itself and servers that left or failed recently), sorted by name.
func (c *Cluster) Members() []Member {
	snap := c.table.snapshot()
	out := make([]Member, len(snap))
	for i, m := range snap {
		out[i] = m.member()
	}
	return out
}

// GRPCAddrOf returns the gRPC address gossiped by the server with Raft ID
// nodeID, whatever its status (a live member wins if several claim the ID).
func (c *Cluster) GRPCAddrOf(nodeID string) (string, bool) {
	var found memberState
	ok := false
	for _, m := range c.table.snapshot() {
		if m.metaErr != nil || m.meta.ID != nodeID || m.meta.GRPCAddr == "" {
			continue
		}
		if !ok || m.live() && !found.live() {
			found, ok = m, true
		}
	}
	return found.meta.GRPCAddr, ok
}

// GossipAddr returns this node's advertised gossip address (host:port),
// with the bound port when BindPort was 0.
func (c *Cluster) GossipAddr() string {
	return c.gossipAddr
}

// setHasState records whether this node has Raft state; it reports whether
// that changed the gossiped metadata.
func (c *Cluster) setHasState(has bool) bool {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	if c.meta.HasState == has {
		return false
	}
	c.meta.HasState = has
	return true
}

// setBootstrapped records a successful bootstrap with configuration hash h.
func (c *Cluster) setBootstrapped(h uint64) {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	c.meta.HasState = true
	c.meta.BootstrapHash = h
}

func (c *Cluster) setLeaving() {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	c.meta.Leaving = true
}

// sendLeaveIntents tells every live member, directly over TCP and in
// parallel, that this node is leaving. It returns when every send has
// finished (each bounded by Gossip.TCPTimeout); failures are logged.
func (c *Cluster) sendLeaveIntents() {
	msg := encodeLeaveIntent(c.cfg.NodeName)
	var wg sync.WaitGroup
	for _, m := range c.table.snapshot() {
		if m.name == c.cfg.NodeName || !m.live() {
			continue
		}
		to := &memberlist.Node{Name: m.name, Addr: m.ip, Port: m.port}
		wg.Go(func() {
			if err := c.ml.SendReliable(to, msg); err != nil {
				c.logger.Warn("leave: cannot tell a member; it will see a failure instead", "member", to.Name, "error", err)
			}
		})
	}
	wg.Wait()
}

// updateMeta re-advertises this node's metadata, waiting at most wait for
// the broadcast (the update is queued either way).
func (c *Cluster) updateMeta(wait time.Duration) {
	if err := c.ml.UpdateNode(wait); err != nil {
		c.logger.Debug("metadata update queued, broadcast not yet sent", "error", err)
	}
}

// metaDelegate is memberlist's Delegate: it only supplies this node's
// metadata; the user-message hooks are unused.
type metaDelegate struct{ c *Cluster }

var _ memberlist.Delegate = metaDelegate{}

// NodeMeta implements memberlist.Delegate.
func (d metaDelegate) NodeMeta(limit int) []byte {
	d.c.metaMu.Lock()
	b := d.c.meta.encode()
	d.c.metaMu.Unlock()
	if len(b) > limit { // unreachable: Validate checks the worst case
		d.c.logger.Error("node metadata exceeds the gossip limit; sending none", "size", len(b), "limit", limit)
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate: it receives leave intents.
// It runs on memberlist's receive path and must not block.
func (d metaDelegate) NotifyMsg(b []byte) {
	name, ok := decodeLeaveIntent(b)
	if !ok {
		d.c.logger.Debug("ignoring unknown gossip user message", "size", len(b))
		return
	}
	d.c.table.markLeaving(name)
}

// GetBroadcasts implements memberlist.Delegate (unused).
func (metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate (unused).
func (metaDelegate) LocalState(bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate (unused).
func (metaDelegate) MergeRemoteState([]byte, bool) {}
