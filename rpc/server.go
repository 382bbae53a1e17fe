package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Limits and defaults of a chainstore gRPC server.
const (
	// DefaultMaxEntrySize is the largest entry document Apply accepts
	// (Raft's suggested maximum log entry size).
	DefaultMaxEntrySize = 512 * 1024
	// DefaultMaxRecvMsgSize is the largest request message the server
	// reads: room for one maximal entry plus framing, far below gRPC's
	// 4 MiB default.
	DefaultMaxRecvMsgSize = 3 * 512 * 1024
)

// ServerConfig configures the gRPC server and the entries service.
type ServerConfig struct {
	// NodeName, NodeID and Datacenter identify this server in responses.
	NodeName, NodeID, Datacenter string
	// MaxEntrySize is the largest entry document (bytes) Apply accepts.
	MaxEntrySize int
	// MaxRecvMsgSize is the largest request message (bytes) the server
	// reads; it must be larger than MaxEntrySize.
	MaxRecvMsgSize int
	// DefaultCallTimeout is the deadline given to every unary call that
	// arrives without one (blocking queries get their wait on top).
	DefaultCallTimeout time.Duration
	// HoldTimeout bounds how long a request waits for a leader: forwarded
	// requests are retried, while no write can have happened, until then.
	HoldTimeout time.Duration
	// ForwardConnectTimeout bounds one attempt to connect to the leader.
	ForwardConnectTimeout time.Duration
	// ForwardTLS, when not nil, is the mutual-TLS config used to forward
	// to the leader (tlsutil.Configurator.OutgoingServer: the leader must
	// present a server certificate). Nil forwards in plain text.
	ForwardTLS *tls.Config
	// DefaultQueryWait and MaxQueryWait bound blocking queries.
	DefaultQueryWait, MaxQueryWait time.Duration
	// KeepaliveMinTime is the shortest client ping interval the server
	// tolerates; clients that ping more often are disconnected.
	KeepaliveMinTime time.Duration
	// KeepaliveTime and KeepaliveTimeout: the server pings an idle client
	// after KeepaliveTime and closes the connection if no answer comes
	// within KeepaliveTimeout.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// MaxConcurrentWrites and MaxBlockingQueries cap the in-flight writes
	// (Apply, Delete) and blocking reads of this server (see limits.go).
	MaxConcurrentWrites, MaxBlockingQueries int
	// ACL configures token enforcement (acl.go).
	ACL ACLConfig
	// List bounds List responses (list.go).
	List ListLimits
}

// DefaultServerConfig returns the production defaults; identity fields are
// left empty.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Datacenter:            "dc1",
		MaxEntrySize:          DefaultMaxEntrySize,
		MaxRecvMsgSize:        DefaultMaxRecvMsgSize,
		DefaultCallTimeout:    30 * time.Second,
		HoldTimeout:           7 * time.Second,
		ForwardConnectTimeout: 1 * time.Second,
		DefaultQueryWait:      api.DefaultQueryWait,
		MaxQueryWait:          api.MaxQueryWait,
		KeepaliveMinTime:      5 * time.Second,
		KeepaliveTime:         60 * time.Second,
		KeepaliveTimeout:      20 * time.Second,
		MaxConcurrentWrites:   DefaultMaxConcurrentWrites,
		MaxBlockingQueries:    DefaultMaxBlockingQueries,
		ACL:                   DefaultACLConfig(),
		List:                  DefaultListLimits(),
	}
}

// Validate reports the first invalid field.
func (c ServerConfig) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("NodeName must be set")
	case c.NodeID == "":
		return errors.New("NodeID must be set")
	case c.MaxEntrySize <= 0:
		return fmt.Errorf("MaxEntrySize must be positive, got %d", c.MaxEntrySize)
	case c.MaxRecvMsgSize <= c.MaxEntrySize:
		return fmt.Errorf("MaxRecvMsgSize (%d) must be larger than MaxEntrySize (%d)", c.MaxRecvMsgSize, c.MaxEntrySize)
	case c.DefaultCallTimeout <= 0:
		return fmt.Errorf("DefaultCallTimeout must be positive, got %s", c.DefaultCallTimeout)
	case c.HoldTimeout <= 0:
		return fmt.Errorf("HoldTimeout must be positive, got %s", c.HoldTimeout)
	case c.ForwardConnectTimeout <= 0:
		return fmt.Errorf("ForwardConnectTimeout must be positive, got %s", c.ForwardConnectTimeout)
	case c.DefaultQueryWait <= 0 || c.MaxQueryWait < c.DefaultQueryWait:
		return fmt.Errorf("need 0 < DefaultQueryWait (%s) <= MaxQueryWait (%s)", c.DefaultQueryWait, c.MaxQueryWait)
	case c.KeepaliveMinTime <= 0 || c.KeepaliveTime <= 0 || c.KeepaliveTimeout <= 0:
		return errors.New("KeepaliveMinTime, KeepaliveTime and KeepaliveTimeout must be positive")
	case c.MaxConcurrentWrites <= 0 || c.MaxBlockingQueries <= 0:
		return fmt.Errorf("MaxConcurrentWrites (%d) and MaxBlockingQueries (%d) must be positive", c.MaxConcurrentWrites, c.MaxBlockingQueries)
	}
	if err := c.List.Validate(); err != nil {
		return err
	}
	return c.ACL.Validate()
}

// NewGRPCServer returns a gRPC server with chainstore's limits: maximum
// message size, keepalive enforcement, a default deadline on every unary
// call that has none, and panic recovery. Services (entries, chains) are
// registered on it by the caller.
func NewGRPCServer(cfg ServerConfig, logger hclog.Logger, opts ...grpc.ServerOption) *grpc.Server {
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}),
		grpc.ChainUnaryInterceptor(unaryInterceptors(cfg, logger)...),
		grpc.ChainStreamInterceptor(recoverStream(logger)),
	}
	return grpc.NewServer(append(base, opts...)...)
}

// unaryInterceptors are the interceptors every unary call runs through,
// in order: panic recovery, admission control, default deadline. The gRPC
// server and the in-process front door (Local) each build their own set,
// so each has its own admission slots.
func unaryInterceptors(cfg ServerConfig, logger hclog.Logger) []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		recoverUnary(logger),
		admission(cfg),
		defaultDeadline(cfg),
	}
}

// blockingRequest is implemented by the requests that take QueryOptions.
type blockingRequest interface {
	GetOptions() *chainstorev1.QueryOptions
}

// defaultDeadline gives a call without a deadline DefaultCallTimeout, plus
// the longest possible wait for a blocking query.
func defaultDeadline(cfg ServerConfig) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, ok := ctx.Deadline(); ok {
			return handler(ctx, req)
		}
		timeout := cfg.DefaultCallTimeout
		if br, ok := req.(blockingRequest); ok && br.GetOptions().GetMinIndex() > 0 {
			timeout += cfg.MaxQueryWait + cfg.MaxQueryWait/16
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return handler(ctx, req)
	}
}

func recoverUnary(logger hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in gRPC handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in gRPC stream handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		return handler(srv, ss)
	}
}

// Services are the gRPC services of one server (entries, chains,
// operator, catalog), sharing one router. Build them with NewServices, register
// them with Register, and Close them when the gRPC server stops.
type Services struct {
	router   *router
	entries  *EntriesServer
	chains   *ChainServer
	operator *OperatorServer
	catalog  *CatalogServer
	acl      *ACLServer
}

// NewServices builds the services of one server over its Raft node, FSM,
// gossip membership and chain hub. hub must be running (its Run owned by
// the caller); stopping it ends every Watch stream with Unavailable, so
// stop it before a graceful gRPC stop. x is the server's xDS server, whose
// clients and chains the operator service reports; a nil x (no xDS
// server) reports none.
func NewServices(cfg ServerConfig, chains ChainServerConfig, r Raft, f FSM, m Members, hub *chainwatch.Hub, x XDS, logger hclog.Logger, opts ...ServicesOption) (*Services, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid rpc config: %w", err)
	}
	if err := chains.Validate(); err != nil {
		return nil, fmt.Errorf("invalid chain service config: %w", err)
	}
	if r == nil || f == nil || m == nil || hub == nil {
		return nil, errors.New("rpc services need a Raft node, an FSM, a member list and a chain hub")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	rt := newRouter(cfg, r, f, m)
	proposer := fsm.NewProposer(r)
	svc := &Services{
		router:   rt,
		entries:  &EntriesServer{router: rt, proposer: proposer, maxEntry: cfg.MaxEntrySize, list: cfg.List},
		chains:   &ChainServer{cfg: chains, hub: hub, router: rt, logger: logger.Named("chains")},
		operator: &OperatorServer{router: rt, xds: x},
		catalog:  &CatalogServer{router: rt, proposer: proposer},
		acl:      &ACLServer{router: rt, proposer: proposer, logger: logger.Named("acl")},
	}
	for _, o := range opts {
		o(svc)
	}
	return svc, nil
}

// Register registers every service on g (a server from NewGRPCServer).
func Register(g *grpc.Server, s *Services) {
	chainstorev1.RegisterEntriesServiceServer(g, s.entries)
	chainstorev1.RegisterChainServiceServer(g, s.chains)
	chainstorev1.RegisterOperatorServiceServer(g, s.operator)
	chainstorev1.RegisterCatalogServiceServer(g, s.catalog)
	chainstorev1.RegisterACLServiceServer(g, s.acl)
}

// Close makes blocked queries return their current result, stops
// forwarding retries and closes the connections to the leader. It is
// idempotent.
func (s *Services) Close() { s.router.close() }

// Blocked returns the number of blocking queries currently waiting (for
// metrics and tests).
func (s *Services) Blocked() int64 { return s.router.blocked.Load() }
