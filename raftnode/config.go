package raftnode

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config holds everything a Node needs besides its collaborators (the FSM and
// the logger, which are arguments to New). Start from DefaultConfig, set the
// identity fields, and call Validate (New calls it too). A Config is copied
// into the Node and never changes afterwards. Tests may shrink the timeouts.
//
// DESIGN.md explains why each default is what it is.
type Config struct {
	// NodeID is this server's permanent Raft identity (protocol 3: IDs, not
	// addresses, identify servers). Use a persisted UUID.
	NodeID string
	// DataDir holds raft.db (stable store, and the log with LogStoreBoltDB),
	// wal/ (the log with LogStoreWAL) and snapshots/.
	DataDir string
	// BindAddr is the host:port the Raft listener binds; port 0 picks a free
	// port (tests).
	BindAddr string
	// AdvertiseAddr is the host:port other servers dial to reach this one.
	// Empty means the bound listener address, which must then be a specific
	// IP (not 0.0.0.0 or ::).
	AdvertiseAddr string

	// HeartbeatTimeout: follower time without leader contact before it
	// campaigns (raft.Config.HeartbeatTimeout).
	HeartbeatTimeout time.Duration
	// ElectionTimeout: candidate time without a result before it retries.
	// Must be >= HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader that cannot reach a quorum for this long
	// steps down. Must be <= HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: an idle leader sends an AppendEntries (carrying its
	// commit index) to each follower at least this often (randomised up to
	// 2x). It bounds how long a follower lags after the last write of a burst.
	CommitTimeout time.Duration
	// MaxAppendEntries: entries per AppendEntries RPC and the leader's
	// group-commit batch size (1..1024).
	MaxAppendEntries int
	// BatchApplyCh buffers Raft's apply channel to MaxAppendEntries so that
	// concurrent Applies are committed as one batch.
	BatchApplyCh bool
	// SnapshotInterval: how often Raft checks whether to snapshot (staggered
	// up to 2x).
	SnapshotInterval time.Duration
	// SnapshotThreshold: log entries since the last snapshot needed to take
	// a new one.
	SnapshotThreshold uint64
	// TrailingLogs: entries kept after a snapshot so that a lagging follower
	// catches up from the log instead of a snapshot install.
	TrailingLogs uint64
	// SnapshotRetain: snapshots kept on disk (>= 1).
	SnapshotRetain int
	// LogCacheSize: most recent log entries cached in memory in front of
	// the log store; 0 disables the cache.
	LogCacheSize int
	// LogStore is the Raft log store a NEW data dir gets (LogStoreWAL or
	// LogStoreBoltDB); an existing data dir keeps the one it was created
	// with (logstore.go). raft.db stays the stable store either way.
	LogStore LogStoreKind
	// WALSegmentSize is the size in bytes at which raft-wal starts a new
	// segment file. Truncation after a snapshot deletes whole segments
	// only, so it bounds the log's disk use beyond TrailingLogs. Tests
	// shrink it so that a truncated log really loses its head.
	WALSegmentSize uint64

	// ApplyTimeout bounds how long Apply, Barrier and membership changes
	// wait to be *enqueued* into Raft (not the commit). A context deadline
	// that is earlier wins.
	ApplyTimeout time.Duration
	// ReadIndexTimeout bounds one ReadIndex call (queueing + VerifyLeader). A
	// context deadline that is earlier wins.
	ReadIndexTimeout time.Duration
	// TransportTimeout is the network transport's dial timeout and per-RPC
	// I/O deadline (scaled up for InstallSnapshot by the transport).
	TransportTimeout time.Duration
	// TransportMaxPool is the number of idle connections kept per peer.
	TransportMaxPool int
	// DiskStallTimeout: a leader whose Raft log write has not finished
	// after this long fails (see Node.Failed): it fences itself off so
	// that the followers elect a leader whose disk works. At least
	// ElectionTimeout; docs/reliability.md, G9 asks for 2x ElectionTimeout.
	DiskStallTimeout time.Duration

	// DisableCommitNudge turns off the commit nudge (nudge.go): followers
	// then learn the commit index of an isolated write only from the
	// leader's CommitTimeout tick. For benchmarks that compare the two.
	DisableCommitNudge bool

	// TLS, when not nil, runs the Raft transport over mutual TLS: every
	// connection, both ways, must present a server certificate of the
	// datacenter signed by the CA (see TransportTLS).
	TLS TransportTLS

	// DialOverride is test-only: when non-nil it is called with the Raft
	// address of the peer being dialled and the connection goes to the
	// address it returns instead (an empty result means "no override"). The
	// fault suite uses it to put a TCP proxy on every directed link. It must
	// be safe for concurrent use.
	DialOverride func(addr string) string
	// LogWriteHook is test-only: when non-nil it is called before every
	// write to the Raft log; it may block (a stalled disk) or return an
	// error (a failed write), which the node then treats as the disk's.
	// It must be safe for concurrent use.
	LogWriteHook func() error
}

// DefaultConfig returns the production settings for 3-5 servers on a LAN with
// SSDs (raftnode/DESIGN.md explains each value). Identity fields (NodeID, DataDir, BindAddr,
// AdvertiseAddr) are left for the caller.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   1 * time.Second,
		ElectionTimeout:    1 * time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		MaxAppendEntries:   128,
		BatchApplyCh:       true,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		LogCacheSize:       512,
		LogStore:           DefaultLogStore,
		WALSegmentSize:     64 << 20, // raft-wal's default
		ApplyTimeout:       10 * time.Second,
		ReadIndexTimeout:   5 * time.Second,
		TransportTimeout:   10 * time.Second,
		TransportMaxPool:   3,
		DiskStallTimeout:   2 * time.Second,
	}
}

// WALSegmentSize bounds: raft-wal records a segment's size limit in 32
// bits.
const (
	minWALSegmentSize = 32 << 10
	maxWALSegmentSize = 1 << 30
)

// minTimeout is hashicorp/raft's lower bound for its timeouts.
const minTimeout = 5 * time.Millisecond

// Validate reports every problem with c at once (joined), wrapped in
// ErrInvalidConfig. It never fills in defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if c.NodeID == "" {
		bad("NodeID is empty")
	}
	if c.DataDir == "" {
		bad("DataDir is empty")
	}
	bindHost, err := splitHostPort(c.BindAddr, true)
	if err != nil {
		bad("BindAddr %q: %w", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		host, err := splitHostPort(c.AdvertiseAddr, false)
		switch {
		case err != nil:
			bad("AdvertiseAddr %q: %w", c.AdvertiseAddr, err)
		case host == "" || isUnspecified(host):
			bad("AdvertiseAddr %q: host must be a reachable address", c.AdvertiseAddr)
		}
	} else if err == nil && (bindHost == "" || isUnspecified(bindHost)) {
		bad("AdvertiseAddr is empty and BindAddr %q does not name a specific host", c.BindAddr)
	}

	if c.HeartbeatTimeout < minTimeout {
		bad("HeartbeatTimeout %s is below %s", c.HeartbeatTimeout, minTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("ElectionTimeout %s is below HeartbeatTimeout %s", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout < minTimeout {
		bad("LeaderLeaseTimeout %s is below %s", c.LeaderLeaseTimeout, minTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout %s is above HeartbeatTimeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.CommitTimeout < time.Millisecond {
		bad("CommitTimeout %s is below 1ms", c.CommitTimeout)
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		bad("MaxAppendEntries %d is outside 1..1024", c.MaxAppendEntries)
	}
	if c.SnapshotInterval < minTimeout {
		bad("SnapshotInterval %s is below %s", c.SnapshotInterval, minTimeout)
	}
	if c.SnapshotThreshold == 0 {
		bad("SnapshotThreshold is 0")
	}
	if c.SnapshotRetain < 1 {
		bad("SnapshotRetain %d is below 1", c.SnapshotRetain)
	}
	if c.LogCacheSize < 0 {
		bad("LogCacheSize %d is negative", c.LogCacheSize)
	}
	if c.WALSegmentSize < minWALSegmentSize || c.WALSegmentSize > maxWALSegmentSize {
		bad("WALSegmentSize %d is outside %d..%d bytes", c.WALSegmentSize, minWALSegmentSize, maxWALSegmentSize)
	}
	if c.LogStore != LogStoreWAL && c.LogStore != LogStoreBoltDB {
		bad("LogStore %q is neither %q nor %q", c.LogStore, LogStoreWAL, LogStoreBoltDB)
	}
	if c.ApplyTimeout <= 0 {
		bad("ApplyTimeout %s is not positive", c.ApplyTimeout)
	}
	if c.ReadIndexTimeout <= 0 {
		bad("ReadIndexTimeout %s is not positive", c.ReadIndexTimeout)
	}
	if c.TransportTimeout <= 0 {
		bad("TransportTimeout %s is not positive", c.TransportTimeout)
	}
	if c.DiskStallTimeout < c.ElectionTimeout {
		bad("DiskStallTimeout %s is below ElectionTimeout %s", c.DiskStallTimeout, c.ElectionTimeout)
	}
	if c.TransportMaxPool < 1 {
		bad("TransportMaxPool %d is below 1", c.TransportMaxPool)
	}

	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// splitHostPort checks a host:port string. allowZeroPort permits port 0
// ("pick one"), which only makes sense for a bind address.
func splitHostPort(addr string, allowZeroPort bool) (host string, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("not host:port: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", fmt.Errorf("port %q is not a number in 0..65535", portStr)
	}
	if port == 0 && !allowZeroPort {
		return "", errors.New("port 0 is not a reachable port")
	}
	return host, nil
}

// isUnspecified reports whether host is a wildcard IP (0.0.0.0, ::).
func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
