package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
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
	creds          credentials.TransportCredentials

	mu     sync.Mutex // protects conns and closed
	conns  map[string]*grpc.ClientConn
	closed bool
}

func newForwarder(connectTimeout time.Duration, maxMsgSize int, tlsCfg *tls.Config) *forwarder {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	return &forwarder{connectTimeout: connectTimeout, maxMsgSize: maxMsgSize, creds: creds, conns: map[string]*grpc.ClientConn{}}
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
		grpc.WithTransportCredentials(f.creds),
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

// readyConn returns the connection to the server at addr once it is
// ready. It fails with ErrLeaderUnreachable when no connection can be made
// within the connect timeout; nothing has been sent then.
func (f *forwarder) readyConn(ctx context.Context, addr string) (*grpc.ClientConn, error) {
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
			return c, nil
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

// forwardsAsIs reports whether a request in ctx that a leader must
// execute will, as far as this server knows, be forwarded to another
// server: this server is not the leader, knows who is, and the request
// came from a client (a forwarded request is never forwarded again). The
// answer is a hint for skipping work the leader repeats; onLeader still
// decides where the request runs.
func (r *router) forwardsAsIs(ctx context.Context) bool {
	if r.raft.IsLeader() || forwardedBy(ctx) != "" {
		return false
	}
	id, _ := r.raft.Leader()
	return id != "" && id != r.cfg.NodeID
}
