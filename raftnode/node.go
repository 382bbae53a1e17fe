package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Node is one Raft server: hashicorp/raft wired to a bbolt log store, a file
// snapshot store and a TCP transport, plus leadership tracking and batched
// read-index support. It holds no application state: that is the FSM's.
// All methods are safe for concurrent use.
type Node struct {
	cfg    Config
	logger hclog.Logger

	raft      *raft.Raft
	transport *raft.NetworkTransport
	bolt      *raftboltdb.BoltStore
	log       *openedLog       // bolt or a raft-wal (logstore.go)
	stable    *closableStable  // bolt as Raft's stable store, closed safely at shutdown
	guard     *guardedLogStore // the log store, watched for failed and stalled writes
	logs      raft.LogStore    // guard, behind the LogCache when enabled
	stream    *streamLayer
	snaps     *raft.FileSnapshotStore
	fence     *fencedTransport // nil unless the node discarded its log (fence.go)
	nudge     *nudger          // nil when Config.DisableCommitNudge (nudge.go)
	addr      string           // advertised Raft address

	// raftNotify is raft.Config.NotifyCh; only leadershipLoop reads it.
	raftNotify chan bool
	// leaderOut is what LeadershipChanges returns; only leadershipLoop sends.
	leaderOut chan bool
	// barrierCh carries establishLeadership results to leadershipLoop.
	barrierCh chan barrierResult
	// readyTerm is the term whose start-of-term Barrier has completed on this
	// leader, or 0. Written by leadershipLoop, read by ReadIndex.
	readyTerm atomic.Uint64

	reads readState

	hooks testHooks

	// shutdownCh is closed first in shutdown: our loops stop on it.
	shutdownCh chan struct{}
	// raftDone is closed once raft.Shutdown has completed: callers waiting
	// on a future give up on it.
	raftDone     chan struct{}
	shutdownOnce sync.Once
	shutdownErr  error

	// failedCh is closed by fail, after failErr is set (see diskguard.go).
	failedCh chan struct{}
	failErr  error
	failOnce sync.Once

	wg      sync.WaitGroup // leadershipLoop, readLoop, diskWatchLoop, establishLeadership
	waiters waiterSet      // awaitFuture goroutines
}

// Server is one entry of the Raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
}

// State is the Raft role of a node, as reported by Stats.
type State string

// Raft roles.
const (
	StateFollower  State = "Follower"
	StateCandidate State = "Candidate"
	StateLeader    State = "Leader"
	StateShutdown  State = "Shutdown"
)

// Stats is a point-in-time view of a node, for metrics, health checks and
// stale-read freshness metadata.
type Stats struct {
	State State
	Term  uint64
	// CommitIndex is the highest index this node knows to be committed.
	CommitIndex uint64
	// LastLogIndex is the last index in the log (or the last snapshot).
	LastLogIndex uint64
	// AppliedIndex is the last index Raft handed to the FSM; the FSM may
	// still be applying it (use the FSM's own applied index for exact waits).
	AppliedIndex uint64
	// LastSnapshotIndex is the index of the latest snapshot, 0 if none.
	LastSnapshotIndex uint64
	// LastContact is when a follower last heard from the leader (zero if
	// never); on the leader it is the current time.
	LastContact time.Time
	// LeaderID and LeaderAddr name the known leader ("" if none).
	LeaderID   string
	LeaderAddr string
	// ReadIndexRequests counts ReadIndex calls queued for a VerifyLeader
	// round; ReadIndexRounds counts the rounds run (batching: rounds <=
	// requests).
	ReadIndexRequests uint64
	ReadIndexRounds   uint64
}

// testHooks are nil in production; internal tests set them to hold the
// background loops at exact points.
type testHooks struct {
	beforeBarrier      func()
	beforeReadRound    func()
	afterReadIndexRead func()
}

// New opens (or creates) the stores in cfg.DataDir, binds the Raft listener
// and starts Raft. A fresh node has no configuration: call BootstrapCluster
// (or be added by a leader) to join a cluster. The logger is used as is; Raft
// logs under the "raft" sub-logger.
func New(cfg Config, fsm raft.BatchingFSM, logger hclog.Logger) (*Node, error) {
	return newNode(cfg, fsm, logger, testHooks{})
}

func newNode(cfg Config, fsm raft.BatchingFSM, logger hclog.Logger, hooks testHooks) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fsm == nil {
		return nil, fmt.Errorf("new raft node: fsm is nil: %w", ErrInvalidArgument)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %q: %w", cfg.DataDir, err)
	}

	n = &Node{
		cfg:        cfg,
		logger:     logger,
		raftNotify: make(chan bool, 64),
		leaderOut:  make(chan bool, leaderOutBuffer),
		barrierCh:  make(chan barrierResult),
		hooks:      hooks,
		shutdownCh: make(chan struct{}),
		raftDone:   make(chan struct{}),
		failedCh:   make(chan struct{}),
	}
	n.reads.wake = make(chan struct{}, 1)

	// Undo whatever was opened if a later step fails.
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	// Damaged snapshots are quarantined and a log that no longer continues
	// the newest usable snapshot is discarded (with a vote fence) before
	// Raft sees them; a damaged raft.db stops the start with a readable
	// error instead of a bbolt fault (datadir.go, docs/recovery.md).
	rep, err := CheckDataDir(cfg.DataDir, true, logger)
	if err != nil {
		return nil, fmt.Errorf("check data dir %s (run `stored --data-dir %s recover` for a report; docs/recovery.md): %w",
			cfg.DataDir, cfg.DataDir, err)
	}
	for _, p := range rep.Problems {
		logger.Warn("repaired raft state at start", "path", p.Path, "problem", p.What, "repair", p.Repair)
	}

	dbPath := filepath.Join(cfg.DataDir, DBFile)
	n.bolt, err = openBolt(dbPath)
	if err != nil {
		return nil, fmt.Errorf("open log store %q: %w", dbPath, err)
	}
	closers = append(closers, n.bolt.Close)

	n.log, err = openLogStore(cfg.DataDir, n.bolt, cfg.LogStore, cfg.WALSegmentSize, logger)
	if err != nil {
		return nil, fmt.Errorf("open log store in %q: %w", cfg.DataDir, err)
	}
	closers = append(closers, n.log.close)

	n.guard = &guardedLogStore{LogStore: n.log.store, fail: n.fail, beforeWrite: cfg.LogWriteHook}
	n.logs = n.guard
	if cfg.LogCacheSize > 0 {
		n.logs, err = raft.NewLogCache(cfg.LogCacheSize, n.guard)
		if err != nil {
			return nil, fmt.Errorf("create log cache: %w", err)
		}
	}

	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, logger.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store in %q: %w", cfg.DataDir, err)
	}
	// FileSnapshotStore creates the directory 0755 (perms.go).
	if err := os.Chmod(filepath.Join(cfg.DataDir, SnapshotsDir), dirMode); err != nil {
		return nil, fmt.Errorf("restrict snapshot dir: %w", err)
	}

	n.stream, err = newStreamLayer(cfg.BindAddr, cfg.AdvertiseAddr, cfg.DialOverride, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("start raft transport: %w", err)
	}
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.stream,
		MaxPool: cfg.TransportMaxPool,
		Timeout: cfg.TransportTimeout,
		Logger:  logger.Named("raft-net"),
	})
	closers = append(closers, n.transport.Close)
	n.addr = string(n.transport.LocalAddr())

	n.stable = &closableStable{StableStore: n.bolt}
	var trans raft.Transport = n.transport
	if rep.VoteFence > 0 {
		n.fence = newFencedTransport(n.transport, rep.VoteFence, func() error {
			return n.stable.SetUint64(voteFenceKey, 0)
		})
		closers = append(closers, n.fence.Close)
		trans = n.fence
		logger.Warn("this node discarded its log: it will not vote until it has caught up", "fence-index", rep.VoteFence)
	}
	if !cfg.DisableCommitNudge {
		n.nudge = newNudger(cfg, n.stream, n.logs, logger)
		closers = append(closers, n.nudge.close)
		trans = &nudgeTransport{Transport: trans, n: n.nudge}
	}
	snaps := &permSnapshotStore{FileSnapshotStore: n.snaps, dir: filepath.Join(cfg.DataDir, SnapshotsDir)}
	if _, err := n.recoverFromPeersFile(fsm, trans, snaps); err != nil {
		return nil, err
	}
	n.raft, err = raft.NewRaft(n.raftConfig(), fsm, n.logs, n.stable, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if n.fence != nil {
		n.fence.setRaft(n.raft)
		n.liftFenceIfAlone()
	}

	n.wg.Add(3)
	go n.leadershipLoop()
	go n.readLoop()
	go n.diskWatchLoop()
	return n, nil
}

// boltOptions are the raft-boltdb/v2 options: fsync on every commit (NoSync
// is never set), no freelist persisted per commit (it is rebuilt at open),
// the hashmap freelist (cheaper with many free pages after truncation), and
// a lock timeout so a second process on the same DataDir fails instead of
// hanging.
func boltOptions(path string) raftboltdb.Options {
	return raftboltdb.Options{
		Path: path,
		BoltOptions: &bbolt.Options{
			Timeout:        time.Second,
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		},
		NoSync: false,
	}
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.MaxAppendEntries = n.cfg.MaxAppendEntries
	rc.BatchApplyCh = n.cfg.BatchApplyCh
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.TrailingLogs = n.cfg.TrailingLogs
	// Keep the process (and its gRPC/watch service) alive when removed, as
	// Consul does; a removed node cannot campaign (not in the configuration).
	rc.ShutdownOnRemove = false
	rc.NotifyCh = n.raftNotify
	rc.Logger = n.logger.Named("raft")
	rc.NoLegacyTelemetry = true
	return rc
}

// ID returns this node's Raft server ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// Addr returns this node's advertised Raft address (the bound port when
// BindAddr used port 0).
func (n *Node) Addr() string { return n.addr }

// HasExistingState reports whether the data dir already holds Raft state (a
// log, a term or a snapshot). Such a node must never be bootstrapped again.
// If the state cannot be read it reports true, the safe answer.
func (n *Node) HasExistingState() bool {
	ok, err := raft.HasExistingState(n.log.store, n.bolt, n.snaps)
	if err != nil {
		n.logger.Error("cannot read raft state, assuming it exists", "error", err)
		return true
	}
	return ok
}

// BootstrapCluster writes the initial configuration (every server of the
// cluster, this one included) so that the nodes can elect a leader. Call it
// with the identical list on every initial server. It is a no-op, returning
// nil, on a node that already has state or was already bootstrapped.
func (n *Node) BootstrapCluster(servers []Server) error {
	if err := n.checkOpen("bootstrap cluster"); err != nil {
		return err
	}
	if err := n.checkServers(servers); err != nil {
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	if n.HasExistingState() {
		n.logger.Info("not bootstrapping: raft state already exists")
		return nil
	}
	conf := raft.Configuration{Servers: make([]raft.Server, 0, len(servers))}
	for _, s := range servers {
		suffrage := raft.Nonvoter
		if s.Voter {
			suffrage = raft.Voter
		}
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: suffrage,
			ID:       raft.ServerID(s.ID),
			Address:  raft.ServerAddress(s.Address),
		})
	}
	_, err := n.awaitFuture(context.Background(), n.raft.BootstrapCluster(conf), n.raftDone)
	if errors.Is(err, raft.ErrCantBootstrap) {
		n.logger.Info("not bootstrapping: cluster already bootstrapped")
		return nil
	}
	return n.translate("bootstrap cluster", err, false)
}

// checkServers validates a bootstrap list: non-empty IDs and addresses, no
// duplicates, and this node present as a voter.
func (n *Node) checkServers(servers []Server) error {
	ids := make(map[string]bool, len(servers))
	addrs := make(map[string]bool, len(servers))
	self := false
	for _, s := range servers {
		if s.ID == "" || s.Address == "" {
			return fmt.Errorf("server %+v has an empty ID or address: %w", s, ErrInvalidArgument)
		}
		if ids[s.ID] || addrs[s.Address] {
			return fmt.Errorf("server %s (%s) is listed twice: %w", s.ID, s.Address, ErrInvalidArgument)
		}
		ids[s.ID], addrs[s.Address] = true, true
		if s.ID == n.cfg.NodeID {
			if !s.Voter {
				return fmt.Errorf("this node %s is not a voter in the list: %w", s.ID, ErrInvalidArgument)
			}
			self = true
		}
	}
	if !self {
		return fmt.Errorf("this node %s is not in the list: %w", n.cfg.NodeID, ErrInvalidArgument)
	}
	return nil
}

// Apply proposes cmd and waits until it is committed and applied by this
// (leader) node's FSM. It returns the FSM's response for the entry (raft's
// ApplyFuture.Response()) and the entry's log index. If the FSM returned an
// error value as its response, that error is also returned, wrapped; index is
// then non-zero because the entry is committed.
//
// ctx bounds the whole call. Before the command is enqueued, a done ctx or an
// enqueue timeout gives ErrTimeout (nothing proposed); after that it gives
// ErrUnknownOutcome. On a follower it fails with ErrNotLeader (never check
// IsLeader first: just call Apply and forward on ErrNotLeader).
func (n *Node) Apply(ctx context.Context, cmd []byte) (resp any, index uint64, err error) {
	if err := n.checkOpen("apply"); err != nil {
		return nil, 0, err
	}
	timeout, err := enqueueTimeout(ctx, n.cfg.ApplyTimeout)
	if err != nil {
		return nil, 0, fmt.Errorf("apply: %v before enqueue: %w", err, ErrTimeout)
	}
	f := n.raft.Apply(cmd, timeout)
	resolved, err := n.awaitFuture(ctx, f, n.raftDone)
	if !resolved {
		return nil, 0, fmt.Errorf("apply: stopped waiting for commit (%v): %w", err, ErrUnknownOutcome)
	}
	if err != nil {
		return nil, 0, n.translate("apply", err, f.Index() != 0)
	}
	if n.nudge != nil {
		n.nudge.applied(f.Index(), n.raft.LastIndex())
	}
	resp = f.Response()
	if fsmErr, ok := resp.(error); ok && fsmErr != nil {
		return resp, f.Index(), fmt.Errorf("apply: fsm returned an error: %w", fsmErr)
	}
	return resp, f.Index(), nil
}

// enqueueTimeout is limit, shortened to ctx's deadline. It fails if ctx is
// already done.
func enqueueTimeout(ctx context.Context, limit time.Duration) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return 0, context.DeadlineExceeded
		}
		if left < limit {
			return left, nil
		}
	}
	return limit, nil
}

// checkOpen returns ErrShutdown once Shutdown has started.
// A failed node (Failed) answers as if shut down: ErrShutdown wrapping the
// failure.
func (n *Node) checkOpen(op string) error {
	select {
	case <-n.shutdownCh:
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	case <-n.failedCh:
		return fmt.Errorf("%s: %w: %w", op, ErrShutdown, n.failErr)
	default:
		return nil
	}
}

// isFailed reports whether fail has run.
func (n *Node) isFailed() bool {
	select {
	case <-n.failedCh:
		return true
	default:
		return false
	}
}

// IsLeader reports whether this node currently believes it is the leader.
// Use it for routing and metrics only, never as a guard before Apply. A
// failed node is never the leader, whatever its stuck Raft loop believes.
func (n *Node) IsLeader() bool {
	return n.raft.State() == raft.Leader && !n.isFailed()
}

// Leader returns the known leader's ID and Raft address, or "", "" (always
// on a failed node: it is cut off and cannot know).
func (n *Node) Leader() (id, addr string) {
	if n.isFailed() {
		return "", ""
	}
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Servers returns the latest Raft configuration (possibly not yet committed).
func (n *Node) Servers() ([]Server, error) {
	conf, _, err := n.configuration()
	if err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

func (n *Node) configuration() (raft.Configuration, uint64, error) {
	f := n.raft.GetConfiguration()
	resolved, err := n.awaitFuture(context.Background(), f, n.raftDone)
	if !resolved || err != nil {
		if !resolved {
			err = raft.ErrRaftShutdown
		}
		return raft.Configuration{}, 0, n.translate("get raft configuration", err, false)
	}
	return f.Configuration(), f.Index(), nil
}

// AddVoter makes id at addr a voter. It is a no-op when a voter with the same
// ID and address is already present. A stale entry (same ID at another
// address, e.g. a new IP, or another ID at the same address, e.g. a wiped
// data dir) is removed first. Leader only (ErrNotLeader otherwise).
func (n *Node) AddVoter(id, addr string) error { return n.addServer(id, addr, true) }

// addServer is AddVoter (voter) or AddNonvoter (!voter): a no-op when id
// is already present at addr (for a voter: as a voter; a non-voter there
// is promoted), and a stale entry (same ID at another address, or another
// ID at the same address) is removed first.
func (n *Node) addServer(id, addr string, voter bool) error {
	op := "add non-voter"
	if voter {
		op = "add voter"
	}
	if id == "" || addr == "" {
		return fmt.Errorf("%s %q at %q: empty ID or address: %w", op, id, addr, ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return err
	}
	conf, _, err := n.configuration()
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		sameID, sameAddr := string(s.ID) == id, string(s.Address) == addr
		switch {
		case sameID && sameAddr && (!voter || s.Suffrage == raft.Voter):
			return nil
		case sameID && sameAddr:
			// A non-voter with the right address: AddVoter promotes it.
		case sameID || sameAddr:
			if string(s.ID) == n.cfg.NodeID {
				return fmt.Errorf("%s %s at %s: conflicts with this node (%s at %s): %w",
					op, id, addr, s.ID, s.Address, ErrInvalidArgument)
			}
			n.logger.Info("removing stale raft server before adding", "stale-id", s.ID, "stale-address", s.Address, "id", id, "address", addr)
			if err := n.changeConfig("remove stale server "+string(s.ID),
				n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout)); err != nil {
				return err
			}
		}
	}
	if voter {
		return n.changeConfig(op+" "+id, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.cfg.ApplyTimeout))
	}
	return n.changeConfig(op+" "+id, n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.cfg.ApplyTimeout))
}

// RemoveServer removes id from the configuration; a no-op when absent.
// Leader only. A leader may remove itself: it steps down once committed.
func (n *Node) RemoveServer(id string) error {
	if id == "" {
		return fmt.Errorf("remove server: empty ID: %w", ErrInvalidArgument)
	}
	if err := n.checkOpen("remove server"); err != nil {
		return err
	}
	conf, _, err := n.configuration()
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		if string(s.ID) == id {
			return n.changeConfig("remove server "+id, n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout))
		}
	}
	return nil
}

// changeConfig waits for a membership change future.
func (n *Node) changeConfig(op string, f raft.IndexFuture) error {
	resolved, err := n.awaitFuture(context.Background(), f, n.raftDone)
	if !resolved {
		return fmt.Errorf("%s: stopped waiting for commit (%v): %w", op, err, ErrUnknownOutcome)
	}
	return n.translate(op, err, f.Index() != 0)
}

// TransferLeadership asks Raft to hand leadership to the most up-to-date
// voter and waits for the outcome (bounded by Raft's ElectionTimeout).
func (n *Node) TransferLeadership() error {
	if err := n.checkOpen("transfer leadership"); err != nil {
		return err
	}
	_, err := n.awaitFuture(context.Background(), n.raft.LeadershipTransfer(), n.raftDone)
	return n.translate("transfer leadership", err, false)
}

// Stats returns a snapshot of this node's Raft state.
func (n *Node) Stats() Stats {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	st := Stats{
		State:             State(n.raft.State().String()),
		Term:              n.raft.CurrentTerm(),
		CommitIndex:       n.raft.CommitIndex(),
		LastLogIndex:      n.raft.LastIndex(),
		AppliedIndex:      n.raft.AppliedIndex(),
		LastContact:       n.raft.LastContact(),
		LeaderID:          string(leaderID),
		LeaderAddr:        string(leaderAddr),
		ReadIndexRequests: n.reads.requests.Load(),
		ReadIndexRounds:   n.reads.rounds.Load(),
	}
	if st.State == StateLeader {
		st.LastContact = time.Now()
	}
	if v, err := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64); err == nil {
		st.LastSnapshotIndex = v
	}
	return st
}

// Shutdown stops the node: if it is the leader it first hands leadership to
// another voter (so the cluster does not wait an election timeout), then
// stops Raft, joins every goroutine this package started and closes the
// stores. It is idempotent and safe to call concurrently; every call returns
// the first call's result.
func (n *Node) Shutdown() error {
	return n.shutdown(true)
}

// shutdown is Shutdown with the leadership transfer optional: tests call
// shutdown(false) to simulate a crash of the leader.
func (n *Node) shutdown(transfer bool) error {
	n.shutdownOnce.Do(func() {
		if transfer && n.IsLeader() {
			n.transferForShutdown()
		}
		close(n.shutdownCh)
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
		close(n.raftDone)
		n.wg.Wait()
		if stranded := n.waiters.wait(time.Second); stranded > 0 {
			// Futures Raft never answers after shutdown (see waiterSet);
			// their callers have already returned ErrUnknownOutcome.
			n.logger.Warn("raft futures left unanswered at shutdown", "count", stranded)
		}
		n.stable.close()
		if err := n.log.close(); err != nil {
			errs = append(errs, fmt.Errorf("close log store: %w", err))
		}
		if err := n.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft.db: %w", err))
		}
		n.shutdownErr = errors.Join(errs...)
	})
	return n.shutdownErr
}

// transferForShutdown hands leadership away. Raft bounds a transfer by its
// ElectionTimeout; twice that is a backstop. Failure (e.g. there is no other
// voter) is logged and ignored.
func (n *Node) transferForShutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.ElectionTimeout)
	defer cancel()
	start := time.Now()
	resolved, err := n.awaitFuture(ctx, n.raft.LeadershipTransfer(), n.raftDone)
	switch {
	case !resolved:
		n.logger.Warn("leadership transfer before shutdown did not finish", "error", err)
	case err != nil:
		n.logger.Warn("leadership transfer before shutdown failed", "error", err)
	default:
		n.logger.Info("transferred leadership before shutdown", "took", time.Since(start))
	}
}
