package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver/manual"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// DefaultAddr is the gRPC address of n1 in a local cluster.
const DefaultAddr = "127.0.0.1:8502"

// Bounds of a blocking query's wait. A server uses them as its defaults
// (rpc.DefaultServerConfig); the client uses them to give a blocking call
// a deadline that covers the longest wait the server may take.
const (
	// DefaultQueryWait is the wait of a blocking query that names none.
	DefaultQueryWait = 5 * time.Minute
	// MaxQueryWait caps the wait a blocking query may ask for.
	MaxQueryWait = 10 * time.Minute
)

// blockingRequest is implemented by the requests that take QueryOptions.
type blockingRequest interface {
	GetOptions() *chainstorev1.QueryOptions
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Addrs are the servers' gRPC addresses. The client connects to the
	// first one that accepts a connection, in order, and moves on to the
	// next when the one it uses goes down.
	Addrs []string
	// CallTimeout is the deadline given to every unary call made without
	// one; a blocking query gets its wait on top.
	CallTimeout time.Duration
	// ConnectTimeout bounds one connection attempt to one address.
	ConnectTimeout time.Duration
	// MaxRecvMsgSize is the largest response (bytes) the client reads.
	MaxRecvMsgSize int
	// KeepaliveTime and KeepaliveTimeout: the client pings the server after
	// KeepaliveTime without activity and drops the connection (then fails
	// over) when no answer comes within KeepaliveTimeout. gRPC-Go never
	// pings more often than every 10 s, so this finds dead hosts; a frozen
	// server is found sooner by the probe (ProbeAfter). KeepaliveTime must
	// not be below the servers' KeepaliveMinTime (5 s by default).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Token is the ACL token (SecretID) sent with every call (metadata
	// TokenMetadataKey); "" sends none (the anonymous token).
	Token string
	// ProbeAfter and ProbeTimeout: when a call has run for ProbeAfter, the
	// client sends a cheap probe (OperatorService.Status) to the same
	// server; if no answer comes within ProbeTimeout the server is taken
	// for frozen (a paused process keeps its connections open but answers
	// nothing), the client moves to the next address, and a read in flight
	// is retried there. ProbeAfter 0 disables probing.
	ProbeAfter, ProbeTimeout time.Duration
	// TLS configures TLS to the servers; the zero value is plain text.
	TLS TLSConfig
}

// DefaultClientConfig returns the defaults for a client of DefaultAddr.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		Addrs:            []string{DefaultAddr},
		CallTimeout:      15 * time.Second,
		ConnectTimeout:   2 * time.Second,
		MaxRecvMsgSize:   64 << 20,
		KeepaliveTime:    10 * time.Second,
		KeepaliveTimeout: 2 * time.Second,
		ProbeAfter:       time.Second,
		ProbeTimeout:     time.Second,
	}
}

// Validate reports the first invalid field.
func (c ClientConfig) Validate() error {
	if err := validateAddrs(c.Addrs); err != nil {
		return err
	}
	switch {
	case c.CallTimeout <= 0:
		return fmt.Errorf("CallTimeout must be positive, got %s", c.CallTimeout)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("ConnectTimeout must be positive, got %s", c.ConnectTimeout)
	case c.MaxRecvMsgSize <= 0:
		return fmt.Errorf("MaxRecvMsgSize must be positive, got %d", c.MaxRecvMsgSize)
	case c.KeepaliveTime <= 0 || c.KeepaliveTimeout <= 0:
		return errors.New("KeepaliveTime and KeepaliveTimeout must be positive")
	case c.ProbeAfter < 0 || (c.ProbeAfter > 0 && c.ProbeTimeout <= 0):
		return fmt.Errorf("ProbeAfter (%s) must not be negative, and ProbeTimeout (%s) must be positive when probing", c.ProbeAfter, c.ProbeTimeout)
	}
	return nil
}

// validateAddrs checks a list of server addresses: at least one, each
// host:port.
func validateAddrs(addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("at least one server address is needed")
	}
	for _, a := range addrs {
		if a == "" || !strings.Contains(a, ":") {
			return fmt.Errorf("invalid server address %q: want host:port", a)
		}
	}
	return nil
}

// SplitAddrs splits a comma-separated address list ("h:p,h:p"), dropping
// empty items and spaces.
func SplitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Client is a connection to a chainstore cluster. Its methods are those of
// chainstorev1.EntriesServiceClient, OperatorServiceClient and
// CatalogServiceClient;
// Conn gives the connection for the other services. Calls fail fast (codes.Unavailable) when no server can be
// reached. Writes are never retried by the client: a write that failed
// with codes.Unavailable after it was sent may have been applied.
type Client struct {
	chainstorev1.EntriesServiceClient
	chainstorev1.OperatorServiceClient
	chainstorev1.CatalogServiceClient
	conn  *grpc.ClientConn
	addrs *addrList // the resolver's list, minus frozen servers (liveness.go)
}

// NewClient creates a client; it connects lazily, on the first call.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid client config: %w", err)
	}
	// A manual resolver hands all addresses to the default pick_first
	// balancer, which tries them in order and fails over to the next one.
	r := manual.NewBuilderWithScheme("chainstore")
	list := newAddrList(r, cfg.Addrs)
	r.InitialState(list.initial())
	dog := newWatchdog(cfg.ProbeAfter, cfg.ProbeTimeout, list)
	creds, err := cfg.TLS.credentials()
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	conn, err := grpc.NewClient(r.Scheme()+":///chainstore",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxRecvMsgSize)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: cfg.ConnectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                cfg.KeepaliveTime,
			Timeout:             cfg.KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithChainUnaryInterceptor(clientDeadline(cfg.CallTimeout), tokenUnary(cfg.Token), dog.interceptor),
		grpc.WithChainStreamInterceptor(tokenStream(cfg.Token)),
	)
	if err != nil {
		return nil, fmt.Errorf("create client for %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	return &Client{
		EntriesServiceClient:  chainstorev1.NewEntriesServiceClient(conn),
		OperatorServiceClient: chainstorev1.NewOperatorServiceClient(conn),
		CatalogServiceClient:  chainstorev1.NewCatalogServiceClient(conn),
		conn:                  conn,
		addrs:                 list,
	}, nil
}

// Conn returns the underlying connection, for other services.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error {
	c.addrs.close()
	return c.conn.Close()
}

// clientDeadline gives a unary call without a deadline the call timeout,
// plus the requested wait for a blocking query.
func clientDeadline(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		d := timeout
		if br, ok := req.(blockingRequest); ok && br.GetOptions().GetMinIndex() > 0 {
			w := br.GetOptions().GetWait().AsDuration()
			if w <= 0 {
				w = DefaultQueryWait
			}
			w = min(w, MaxQueryWait)
			d += w + w/16
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
