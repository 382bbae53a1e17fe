// Package server is chainstore's composition root: it wires the FSM, the
// Raft node, the gossip cluster, the chain hub and the gRPC services of
// one server together. cmd/stored parses flags into a Config and calls
// New and Run; tests build clusters with the same constructor
// (internal/servertest).
//
// # Goroutines
//
// Start starts six goroutines (seven with an HTTP address), all joined by
// Stop:
//
//   - the Raft failure watch: waits for raftnode's Failed channel (a
//     stalled or failing disk) and reports it to Run;
//   - the chain hub's Run: the single writer of compiled chains, ended
//     first by cancelling its context, which also ends the Watch streams;
//   - the TTL check monitor's Run (package health; it acts only while
//     this server leads), ended with the hub's context;
//   - the xDS publisher's Run (package xdsserver: it follows the chains
//     gRPC clients ask for and the catalog, and updates the xDS caches),
//     ended with the hub's context, which also ends its ADS streams;
//   - the gRPC Serve loop, ended by GracefulStop or Stop;
//   - the HTTP API's Serve (package httpapi; only with HTTPAddr), ended by
//     its Shutdown once blocked queries were released;
//   - cluster.Run (join, bootstrap, reconcile), ended by the gossip leave
//     or shutdown.
//
// raftnode, memberlist and grpc-go own their internal goroutines and stop
// them in Shutdown, Leave and Stop. Run returns after Stop, when its ctx
// is done or when one of the goroutines fails.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/health"
	"github.com/chainstore/chainstore/httpapi"
	"github.com/chainstore/chainstore/metrics"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/tlsutil"
	"github.com/chainstore/chainstore/tombgc"
	"github.com/chainstore/chainstore/xdsserver"
)

// Server is one chainstore server: FSM, Raft node, gossip cluster and gRPC
// API wired together. New opens everything and binds every listener;
// Start serves; Stop leaves and closes.
type Server struct {
	cfg    Config
	logger hclog.Logger
	nodeID string

	fsm     *fsm.FSM
	raft    *raftnode.Node
	cluster *cluster.Cluster
	hub     *chainwatch.Hub
	health  *health.Monitor
	tombgc  *tombgc.Collector
	xds     *xdsserver.Server
	rpc     *rpc.Services
	grpc    *grpc.Server
	grpcLis net.Listener
	metrics *metrics.Registry
	http    *httpapi.Server // nil without HTTPAddr
	httpLis net.Listener
	tls     *tlsutil.Configurator // nil without TLS

	mu            sync.Mutex // protects started, stopped, cancelCluster, cancelHub
	started       bool
	stopped       bool
	cancelCluster context.CancelFunc
	cancelHub     context.CancelFunc

	wg      sync.WaitGroup // the goroutines of Start
	errCh   chan error     // failures of those goroutines (one slot each); Run reads the first
	stopErr error
}

// New builds a server. It does not serve until Start.
func New(cfg Config, logger hclog.Logger) (s *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s = &Server{cfg: cfg, logger: logger, errCh: make(chan error, 7)}

	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	s.nodeID, err = cluster.LoadOrCreateNodeID(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("load node ID: %w", err)
	}
	sec, err := setupSecurity(cfg)
	if err != nil {
		return nil, err
	}
	s.tls = sec.tls

	s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on gRPC address %s: %w", cfg.GRPCAddr, err)
	}
	// The closers capture what they close: on an error return the named
	// result s is nil by the time they run.
	lis := s.grpcLis
	closers = append(closers, func() { _ = lis.Close() })
	grpcAdvertise := cfg.GRPCAdvertise
	if grpcAdvertise == "" {
		grpcAdvertise = s.grpcLis.Addr().String()
	}

	s.fsm = fsm.New(logger.Named("fsm"), cfg.FSMOptions...)

	rc := cfg.Raft
	rc.NodeID, rc.DataDir, rc.BindAddr, rc.AdvertiseAddr = s.nodeID, cfg.DataDir, cfg.RaftAddr, cfg.RaftAdvertise
	sec.raft(&rc)
	s.raft, err = raftnode.New(rc, s.fsm, logger.Named("raft"))
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	rn := s.raft
	closers = append(closers, func() { _ = rn.Shutdown() })

	cc := cfg.Cluster
	cc.NodeName, cc.NodeID, cc.Datacenter = cfg.NodeName, s.nodeID, cfg.Datacenter
	cc.BindAddr, cc.BindPort, err = splitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("--gossip-addr: %w", err)
	}
	if cfg.GossipAdvertise != "" {
		cc.AdvertiseAddr, cc.AdvertisePort, err = splitHostPort(cfg.GossipAdvertise)
		if err != nil {
			return nil, fmt.Errorf("--gossip-advertise: %w", err)
		}
	}
	cc.Join, cc.BootstrapExpect = cfg.Join, cfg.BootstrapExpect
	cc.RaftAddr, cc.GRPCAddr = s.raft.Addr(), grpcAdvertise
	sec.cluster(&cc)
	if cc.Prober == nil {
		cc.Prober = sec.prober() // probe.go
	}
	s.cluster, err = cluster.New(cc, s.raft, logger.Named("cluster"))
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	cl := s.cluster
	closers = append(closers, func() { _ = cl.Shutdown() })

	rpcCfg := cfg.RPC
	rpcCfg.NodeName, rpcCfg.NodeID, rpcCfg.Datacenter = cfg.NodeName, s.nodeID, cfg.Datacenter
	rpcCfg.ACL = aclConfig(cfg)
	sec.rpc(&rpcCfg)
	hubCfg := cfg.Hub
	hubCfg.Datacenter = cfg.Datacenter
	s.hub, err = chainwatch.New(hubCfg, chainwatch.FSMSource(s.fsm), logger)
	if err != nil {
		return nil, err
	}
	s.health, err = health.New(cfg.Health, s.raft, s.fsm, fsm.NewProposer(s.raft), logger)
	if err == nil {
		s.tombgc, err = tombgc.New(cfg.TombstoneGC, s.raft, s.fsm, fsm.NewProposer(s.raft), logger)
	}
	if err != nil {
		return nil, err
	}
	s.xds, err = xdsserver.New(cfg.XDS, s.hub, xdsserver.FSMStore(s.fsm), cfg.NodeName, logger, xdsACL(rpcCfg.ACL, s.fsm)...)
	if err != nil {
		return nil, err
	}
	s.rpc, err = rpc.NewServices(rpcCfg, cfg.Chains, s.raft, s.fsm, s.cluster, s.hub, s.xds, logger, rpc.WithKeyring(keyring{s.cluster, cfg.DataDir}), rpc.WithLogFormat(cfg.RaftLogFormat))
	if err != nil {
		return nil, err
	}
	s.metrics, err = metrics.New(metrics.Sources{Raft: s.raft, Store: s.fsm, Hub: s.hub, Blocked: s.rpc.Blocked, XDS: s.xds})
	if err != nil {
		return nil, err
	}
	grpcOpts := append(sec.grpcOptions(),
		grpc.ChainUnaryInterceptor(s.metrics.UnaryInterceptor()), grpc.ChainStreamInterceptor(s.metrics.StreamInterceptor()))
	s.grpc = rpc.NewGRPCServer(rpcCfg, logger.Named("grpc"), grpcOpts...)
	rpc.Register(s.grpc, s.rpc)
	s.xds.Register(s.grpc)
	if err := s.newHTTP(rpcCfg); err != nil {
		return nil, err
	}
	if s.httpLis != nil {
		hl := s.httpLis
		closers = append(closers, func() { _ = hl.Close() })
	}
	return s, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}

// FSM returns the server's state machine (tests read its store).
func (s *Server) FSM() *fsm.FSM { return s.fsm }

// BlockedQueries returns the number of blocking queries waiting on s.
func (s *Server) BlockedQueries() int64 { return s.rpc.Blocked() }

// Raft returns the server's Raft node (tests inspect its state).
func (s *Server) Raft() *raftnode.Node { return s.raft }

// XDS returns the server's xDS server (tests read its client and chain
// status).
func (s *Server) XDS() *xdsserver.Server { return s.xds }

// NodeID returns the persisted Raft ID of this server.
func (s *Server) NodeID() string { return s.nodeID }

// GRPCAddr returns the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// RaftAddr returns the advertised Raft address.
func (s *Server) RaftAddr() string { return s.raft.Addr() }

// GossipAddr returns the advertised gossip address.
func (s *Server) GossipAddr() string { return s.cluster.GossipAddr() }

// Start runs the Raft failure watch, the chain hub, the TTL check
// monitor, the xDS publisher, the gRPC server, the HTTP API (with an HTTP
// address) and the gossip cluster (join, bootstrap, reconcile) in
// goroutines that Stop joins (see the package documentation).
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancelCluster = cancel
	hubCtx, cancelHub := context.WithCancel(context.Background())
	s.cancelHub = cancelHub
	s.wg.Add(7)
	go func() {
		defer s.wg.Done()
		// A Raft node whose disk stalled or failed has fenced itself off;
		// the server must exit (and be restarted once the disk works).
		select {
		case <-s.raft.Failed():
			s.errCh <- &raftFailure{err: s.raft.FailErr()}
		case <-ctx.Done():
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.hub.Run(hubCtx); err != nil {
			s.errCh <- fmt.Errorf("run chain hub: %w", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		// Stopped with the hub, first in Stop: no expiry is proposed
		// while Raft shuts down.
		_ = s.health.Run(hubCtx)
	}()
	go func() {
		defer s.wg.Done()
		// Tombstone GC, leader only; stopped with the hub like health.
		_ = s.tombgc.Run(hubCtx)
	}()
	go func() {
		defer s.wg.Done()
		// Stopped with the hub, first in Stop: its ADS streams end then,
		// so the graceful gRPC stop does not wait for them.
		if err := s.xds.Run(hubCtx); err != nil {
			s.errCh <- fmt.Errorf("run xDS publisher: %w", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.grpcLis); err != nil {
			s.errCh <- fmt.Errorf("serve gRPC: %w", err)
		}
	}()
	if s.http != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.http.Serve(s.httpLis); err != nil {
				s.errCh <- fmt.Errorf("serve HTTP: %w", err)
			}
		}()
	}
	go func() {
		defer s.wg.Done()
		if err := s.cluster.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.errCh <- fmt.Errorf("run cluster: %w", err)
		}
	}()
	s.logger.Info("server started", "node_id", s.nodeID, "grpc", s.GRPCAddr(), "raft", s.RaftAddr(),
		"gossip", s.GossipAddr(), "http", s.HTTPAddr(), "bootstrap_expect", s.cfg.BootstrapExpect, "join", s.cfg.Join)
}

// raftFailure is the error Run returns when the Raft node failed.
type raftFailure struct{ err error }

func (f *raftFailure) Error() string { return "raft node failed: " + f.err.Error() }
func (f *raftFailure) Unwrap() error { return f.err }

// failedStopTimeout bounds Stop after the Raft node failed: with a stalled
// disk, Raft's own shutdown waits for the stuck write and may never end.
const failedStopTimeout = 10 * time.Second

// Run starts the server and blocks until ctx is done or a component
// fails, then stops it: gracefully, except after a Raft node failure
// (disk stalled or failed), when the server does not leave the cluster
// (it comes back with its data after a restart) and Stop is bounded by
// failedStopTimeout.
func (s *Server) Run(ctx context.Context) error {
	s.Start() //nolint:contextcheck // components must outlive ctx: Stop runs once it is done
	var runErr error
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down")
	case runErr = <-s.errCh:
		s.logger.Error("component failed, shutting down", "error", runErr)
	}
	var rf *raftFailure
	if !errors.As(runErr, &rf) {
		return errors.Join(runErr, s.Stop(true)) //nolint:contextcheck // Stop must run to the end after ctx is done
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(false) }() //nolint:contextcheck // as above; bounded by failedStopTimeout
	select {
	case err := <-stopped:
		return errors.Join(runErr, err)
	case <-time.After(failedStopTimeout):
		return errors.Join(runErr, fmt.Errorf("stop did not finish within %s (the disk is still stuck); exiting anyway", failedStopTimeout))
	}
}

// Stop shuts the server down and joins its goroutines. Graceful: release
// blocked queries, stop gRPC (in-flight calls finish within
// GRPCStopTimeout), hand leadership away, leave gossip, stop Raft. Not
// graceful (tests: a crash as seen from the network, as long as the test
// has cut this node's Raft links first): stop gRPC at once, stop Raft and
// gossip without leaving. Stop is idempotent; later calls return the first
// call's result.
func (s *Server) Stop(graceful bool) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return s.stopErr
	}
	s.stopped = true
	cancel, cancelHub := s.cancelCluster, s.cancelHub
	s.mu.Unlock()

	var errs []error
	s.rpc.Close()
	if s.http != nil {
		// Blocked queries were released above: in-flight requests end soon.
		var err error
		if graceful {
			err = s.http.Shutdown()
		} else {
			err = s.http.Close()
		}
		if err != nil {
			s.logger.Warn("HTTP shutdown", "error", err)
		}
	}
	if cancelHub != nil {
		// Stopping the hub ends every Watch stream (agents reconnect to
		// another server), so GracefulStop does not wait for them.
		cancelHub()
		<-s.hub.Done()
	}
	if graceful {
		s.gracefulStopGRPC()
		if s.raft.IsLeader() {
			if err := s.raft.TransferLeadership(); err != nil {
				s.logger.Warn("leadership transfer failed", "error", err)
			}
		}
		// Leave also shuts memberlist down and waits for cluster.Run.
		if err := s.cluster.Leave(s.cfg.LeaveTimeout); err != nil {
			s.logger.Warn("gossip leave failed", "error", err)
		}
	} else {
		s.grpc.Stop()
		if err := s.cluster.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("shut down gossip: %w", err))
		}
	}
	if err := s.raft.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("shut down raft: %w", err))
	}
	if cancel != nil {
		cancel()
	} else {
		// Never started: Serve never took the listeners.
		_ = s.grpcLis.Close()
		if s.httpLis != nil {
			_ = s.httpLis.Close()
		}
	}
	s.wg.Wait()
	s.stopErr = errors.Join(errs...)
	s.logger.Info("server stopped", "graceful", graceful)
	return s.stopErr
}

// gracefulStopGRPC lets in-flight calls finish, up to GRPCStopTimeout.
func (s *Server) gracefulStopGRPC() {
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(s.cfg.GRPCStopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.logger.Warn("gRPC graceful stop timed out, closing connections", "timeout", s.cfg.GRPCStopTimeout)
		s.grpc.Stop()
		<-done
	}
}
