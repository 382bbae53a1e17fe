package rpc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/rpc/configpb"
)

// forwardedHeader marks a request one server forwarded to the leader; its
// value is the forwarding server's node name. A server never forwards a
// request that carries it, so a request makes at most one hop.
const forwardedHeader = "chainstore-forwarded-by"

// forwardedBy returns the name of the server that forwarded the request in
// ctx, or "" for a request that came from a client.
func forwardedBy(ctx context.Context) string {
	// ValueFromIncomingContext looks the one key up without copying the
	// whole metadata map (FromIncomingContext does, on every request).
	if v := metadata.ValueFromIncomingContext(ctx, forwardedHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// forwarder keeps one client connection per leader gRPC address and hands
// out clients only for connections that are ready, so a request it
// forwards has reached (or been refused by) a live server.
type forwarder struct {
	connectTimeout time.Duration
	maxMsgSize     int

	mu     sync.Mutex // protects conns and closed
	conns  map[string]*grpc.ClientConn
	closed bool
}

func newForwarder(connectTimeout time.Duration, maxMsgSize int) *forwarder {
	return &forwarder{connectTimeout: connectTimeout, maxMsgSize: maxMsgSize, conns: map[string]*grpc.ClientConn{}}
}

// conn returns the connection to addr, creating it on first use.
func (f *forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrShuttingDown
	}
	if c, ok := f.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(f.maxMsgSize)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: f.connectTimeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("create connection to leader %s: %w", addr, err)
	}
	f.conns[addr] = c
	return c, nil
}

// client returns a client for the server at addr once its connection is
// ready. It fails with ErrLeaderUnreachable when no connection can be made
// within the connect timeout; nothing has been sent then.
func (f *forwarder) client(ctx context.Context, addr string) (configpb.EntriesServiceClient, error) {
	c, err := f.conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.connectTimeout)
	defer cancel()
	c.Connect()
	for {
		switch st := c.GetState(); st {
		case connectivity.Ready:
			return configpb.NewEntriesServiceClient(c), nil
		case connectivity.Shutdown:
			return nil, ErrShuttingDown
		default:
			if st == connectivity.TransientFailure {
				c.ResetConnectBackoff()
			}
			if !c.WaitForStateChange(ctx, st) {
				return nil, fmt.Errorf("%w: cannot connect to %s within %s", ErrLeaderUnreachable, addr, f.connectTimeout)
			}
		}
	}
}

// close closes every connection.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for addr, c := range f.conns {
		_ = c.Close()
		delete(f.conns, addr)
	}
}

// onLeader runs a request where the leader can serve it: local when this
// server is the leader, otherwise forwarded over gRPC to the leader (remote).
//
// It retries, with jittered exponential backoff for at most HoldTimeout,
// only while the error proves that nothing was done (retrySafe: no leader,
// not the leader, leader not ready, leader unreachable before sending).
// A request another server forwarded is tried once: the forwarding server
// does the retrying. For a write, losing the connection to the leader
// after the request was sent is reported as an unknown outcome.
func (s *EntriesServer) onLeader(ctx context.Context, write bool,
	local func(context.Context) error,
	remote func(context.Context, configpb.EntriesServiceClient) error) error {
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
	delay := max(s.cfg.HoldTimeout/64, time.Millisecond)
	for {
		err := s.leaderAttempt(ctx, forwarded, write, local, remote)
		if err == nil || forwarded || !retrySafe(err) {
			return err
		}
		if hold == nil {
			hold = time.NewTimer(s.cfg.HoldTimeout - time.Since(start))
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
		case <-s.shutdownCh:
			t.Stop()
			return ErrShuttingDown
		}
		delay = min(delay*2, s.cfg.HoldTimeout/8)
	}
}

// leaderAttempt is one try of onLeader.
func (s *EntriesServer) leaderAttempt(ctx context.Context, forwarded, write bool,
	local func(context.Context) error,
	remote func(context.Context, configpb.EntriesServiceClient) error) error {
	if s.raft.IsLeader() {
		return local(ctx)
	}
	if forwarded {
		return ErrNotLeaderForwarded
	}
	id, _ := s.raft.Leader()
	if id == "" || id == s.cfg.NodeID {
		return raftnode.ErrNoLeader
	}
	addr, ok := s.members.GRPCAddrOf(id)
	if !ok {
		return fmt.Errorf("%w: no gRPC address known for leader %s", ErrLeaderUnreachable, id)
	}
	client, err := s.fwd.client(ctx, addr)
	if err != nil {
		return err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, forwardedHeader, s.cfg.NodeName)
	err = remote(ctx, client)
	if err != nil && write && status.Code(err) == codes.Unavailable && !retrySafe(err) {
		return withInfo(codes.Unknown,
			fmt.Sprintf("outcome unknown: the connection to the leader %s failed after the write was sent, so it may or may not have been applied; read the entry back or write with CAS: %s",
				addr, status.Convert(err).Message()),
			ReasonUnknownOutcome, nil)
	}
	return err
}
