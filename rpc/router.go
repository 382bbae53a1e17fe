package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
)

// Raft is what the services need from raftnode.Node.
type Raft interface {
	fsm.Applier
	ReadIndex(ctx context.Context) (uint64, error)
	IsLeader() bool
	Leader() (id, addr string)
	Servers() ([]raftnode.Server, error)
	Stats() raftnode.Stats
	// RestoreSnapshot and LastIndex serve snapshot restores (snapshot.go).
	RestoreSnapshot(ctx context.Context, index uint64, size int64, r io.Reader) error
	LastIndex() uint64
}

// FSM is what the services need from fsm.FSM.
type FSM interface {
	Store() *fsm.Store
	AppliedIndex() uint64
	WaitForIndex(ctx context.Context, idx uint64) error
}

// Members is what the services need from cluster.Cluster.
type Members interface {
	Members() []cluster.Member
	GRPCAddrOf(nodeID string) (string, bool)
	// ServerGRPCAddr returns the gRPC address of the admitted member that
	// is Raft server nodeID at Raft address raftAddr (both as Raft
	// reports them), never one a gossip claim alone supplies.
	ServerGRPCAddr(nodeID, raftAddr string) (string, bool)
}

var (
	_ Raft    = (*raftnode.Node)(nil)
	_ FSM     = (*fsm.FSM)(nil)
	_ Members = (*cluster.Cluster)(nil)
)

// router decides where a request runs and how a read is answered, for
// every service: it owns leader lookup, forwarding to the leader (handing
// the caller the leader's connection), the consistency modes, blocking
// reads and the response metadata. Its methods are safe for concurrent
// use; the services hold no routing state of their own.
type router struct {
	cfg     ServerConfig
	raft    Raft
	fsm     FSM
	members Members
	fwd     *forwarder
	acl     *aclResolver
	// leaderAddr caches the leader's gRPC address for forwarding.
	leaderAddr leaderAddrCache

	closeOnce  sync.Once
	shutdownCh chan struct{} // closed by close: blocked queries return, retries stop
	blocked    atomic.Int64  // blocking queries currently waiting
}

func newRouter(cfg ServerConfig, r Raft, f FSM, m Members) *router {
	return &router{
		cfg:        cfg,
		raft:       r,
		fsm:        f,
		members:    m,
		fwd:        newForwarder(cfg.ForwardConnectTimeout, cfg.MaxRecvMsgSize, cfg.ForwardTLS),
		acl:        newACLResolver(cfg.ACL, f),
		leaderAddr: leaderAddrCache{ttl: leaderAddrTTL},
		shutdownCh: make(chan struct{}),
	}
}

// close makes blocked queries return their current result, stops
// forwarding retries and closes the connections to the leader. It is
// idempotent.
func (r *router) close() {
	r.closeOnce.Do(func() {
		close(r.shutdownCh)
		r.fwd.close()
	})
}

// localFunc runs a request on this server. consistent is nil for a stale
// read; otherwise the request must call it before it reads (it confirms
// leadership and waits for the FSM to catch up).
type localFunc func(ctx context.Context, consistent func(context.Context) error) error

// remoteFunc runs a request on the leader through conn, a ready
// connection to it. ctx carries the forwarding header.
type remoteFunc func(ctx context.Context, conn *grpc.ClientConn) error

// read routes a read by its consistency mode:
//   - stale: this server answers from its own state;
//   - default (and unspecified) and consistent: linearizable. The leader
//     answers after a ReadIndex round (leadership confirmed by a quorum,
//     batched with concurrent reads) and after its FSM has applied that
//     index; a follower forwards the read. Unlike Consul, the default mode
//     does not skip the quorum round: a deposed leader that has not
//     noticed yet (paused, or cut off for less than its lease) would
//     otherwise answer with state that misses acknowledged writes.
func (r *router) read(ctx context.Context, mode chainstorev1.Consistency, local localFunc, remote remoteFunc) error {
	if mode == chainstorev1.Consistency_CONSISTENCY_STALE {
		return local(ctx, nil)
	}
	return r.onLeader(ctx, false, func(ctx context.Context) error { return local(ctx, r.consistentRead) }, remote)
}

// consistentRead waits until the local state reflects every write
// committed before it was called. It fails with raftnode.ErrNotLeader on
// a follower or a deposed leader.
func (r *router) consistentRead(ctx context.Context) error {
	idx, err := r.raft.ReadIndex(ctx)
	if errors.Is(err, raftnode.ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrNoQuorum, err)
	}
	if err != nil {
		return err
	}
	if err := r.fsm.WaitForIndex(ctx, idx); err != nil {
		return fmt.Errorf("wait for applied index %d: %w", idx, err)
	}
	return nil
}

// limits are this server's blocking-query limits, without the counter of
// waiting queries (blocking adds it; GetChain's wait is not counted).
func (r *router) limits() blockingLimits {
	return blockingLimits{defaultWait: r.cfg.DefaultQueryWait, maxWait: r.cfg.MaxQueryWait, shutdownCh: r.shutdownCh}
}

// blocking runs fn as a blocking query with the request's options,
// counted in blocked while it waits.
func (r *router) blocking(ctx context.Context, opts *chainstorev1.QueryOptions, consistent func(context.Context) error, fn queryFunc) error {
	lim := r.limits()
	lim.blocked = &r.blocked
	return blockingQuery(ctx, r.fsm,
		blockingOptions{MinIndex: opts.GetMinIndex(), Wait: opts.GetWait().AsDuration()},
		lim, consistent, fn)
}

// onLeader runs a request where the leader can serve it: local when this
// server is the leader, otherwise forwarded over gRPC to the leader
// (remote).
//
// It retries, with jittered exponential backoff for at most HoldTimeout,
// only while the error proves that nothing was done (retrySafe: no leader,
// not the leader, leader not ready, leader unreachable before sending).
// A request another server forwarded is tried once: the forwarding server
// does the retrying. For a write, losing the connection to the leader
// after the request was sent is reported as an unknown outcome.
func (r *router) onLeader(ctx context.Context, write bool, local func(context.Context) error, remote remoteFunc) error {
	forwarded := forwardedBy(ctx) != ""
	// The hold timer runs from the first attempt, but it is only created
	// when a retry is needed: most requests succeed at once.
	start := time.Now()
	var hold *time.Timer
	defer func() {
		if hold != nil {
			hold.Stop()
		}
	}()
	delay := max(r.cfg.HoldTimeout/64, time.Millisecond)
	for {
		err := r.leaderAttempt(ctx, forwarded, write, local, remote)
		if err == nil || forwarded || !retrySafe(err) {
			return err
		}
		if hold == nil {
			hold = time.NewTimer(r.cfg.HoldTimeout - time.Since(start))
		}
		// Jitter in [delay/2, delay).
		wait := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-hold.C:
			t.Stop()
			return err
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-r.shutdownCh:
			t.Stop()
			return ErrShuttingDown
		}
		delay = min(delay*2, r.cfg.HoldTimeout/8)
	}
}

// leaderAttempt is one try of onLeader.
func (r *router) leaderAttempt(ctx context.Context, forwarded, write bool, local func(context.Context) error, remote remoteFunc) error {
	if r.raft.IsLeader() {
		return local(ctx)
	}
	if forwarded {
		return ErrNotLeaderForwarded
	}
	// The target is the leader Raft itself reports (ID and Raft address):
	// a gossip member merely claiming the leader's ID is never chosen.
	id, raftAddr := r.raft.Leader()
	if id == "" || id == r.cfg.NodeID {
		return raftnode.ErrNoLeader
	}
	addr, err := r.leaderGRPCAddr(id, raftAddr)
	if err != nil {
		return err
	}
	conn, err := r.fwd.readyConn(ctx, addr)
	if err != nil {
		r.leaderAddr.forget(addr)
		return err
	}
	ctx = metadata.AppendToOutgoingContext(withForwardedToken(ctx), forwardedHeader, r.cfg.NodeName)
	err = remote(ctx, conn)
	if err != nil && write && status.Code(err) == codes.Unavailable && !retrySafe(err) {
		return withInfo(codes.Unknown,
			fmt.Sprintf("outcome unknown: the connection to the leader %s failed after the write was sent, so it may or may not have been applied; read the entry back or write with CAS: %s",
				addr, status.Convert(err).Message()),
			api.ReasonUnknownOutcome, nil)
	}
	return err
}

// leaderGRPCAddr returns the gRPC address of the leader (id, raftAddr):
// the cached one, or the admitted member's (Members.ServerGRPCAddr).
func (r *router) leaderGRPCAddr(id, raftAddr string) (string, error) {
	now := time.Now()
	if addr, ok := r.leaderAddr.get(id, raftAddr, now); ok {
		return addr, nil
	}
	addr, ok := r.members.ServerGRPCAddr(id, raftAddr)
	if !ok {
		return "", fmt.Errorf("%w: no gRPC address known for leader %s", ErrLeaderUnreachable, id)
	}
	r.leaderAddr.put(id, raftAddr, addr, now)
	return addr, nil
}

// meta describes a result reflecting index (reported as at least 1, so a
// client that blocks on it never spins).
func (r *router) meta(index uint64) *chainstorev1.QueryMeta {
	leaderID, _ := r.raft.Leader()
	m := &chainstorev1.QueryMeta{Index: max(index, 1), KnownLeader: leaderID != "", ServedBy: r.cfg.NodeName}
	if !r.raft.IsLeader() {
		m.LastContact = durationpb.New(lastContact(r.raft.Stats()))
	}
	return m
}

// status translates err to a gRPC status with this server's leader hint.
func (r *router) status(err error) error {
	var hint leaderHint
	if errors.Is(err, raftnode.ErrNotLeader) || errors.Is(err, ErrNotLeaderForwarded) {
		var raftAddr string
		hint.id, raftAddr = r.raft.Leader()
		if hint.id != "" {
			hint.grpcAddr, _ = r.members.ServerGRPCAddr(hint.id, raftAddr)
		}
	}
	return statusOf(err, hint)
}

// memberNames maps Raft server IDs to gossip node names.
func (r *router) memberNames() map[string]string {
	names := map[string]string{r.cfg.NodeID: r.cfg.NodeName}
	for _, m := range r.members.Members() {
		names[m.ID] = m.Name
	}
	return names
}

// lastContact is the time since this server last heard from the leader.
func lastContact(st raftnode.Stats) time.Duration {
	if st.LastContact.IsZero() {
		return 0
	}
	return time.Since(st.LastContact)
}
