package xdsserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverconfig "github.com/envoyproxy/go-control-plane/pkg/server/config"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
)

// Hub is what the server needs from the chain hub; *chainwatch.Hub
// implements it.
type Hub interface {
	// Subscribe opens a subscription to one compiled chain.
	Subscribe(ctx context.Context, key chainwatch.ChainKey, minIndex uint64) (*chainwatch.Subscription, error)
	// Done is closed when the hub has stopped.
	Done() <-chan struct{}
}

// Store is what the server reads from the state machine: the change feed
// and consistent read views of the catalog. FSMStore adapts an *fsm.FSM.
type Store interface {
	// FeedHead returns the newest item of the change feed; the server
	// processes the items after it.
	FeedHead() *fsm.FeedItem
	// View returns a consistent read view of the current store.
	View() InstanceView
}

// InstanceView reads the catalog at one point; *fsm.View implements it.
type InstanceView interface {
	// Instances returns the instances of service (any health).
	Instances(service string) []*catalog.Stored
}

// FSMStore adapts f to Store.
func FSMStore(f *fsm.FSM) Store { return fsmStore{f: f} }

type fsmStore struct{ f *fsm.FSM }

func (s fsmStore) FeedHead() *fsm.FeedItem { return s.f.Feed().Head() }
func (s fsmStore) View() InstanceView      { return s.f.Store().View() }

// typeURLs are the four resource types served, in the order the publisher
// applies updates (§6.4: clusters, endpoints, listeners, routes).
var typeURLs = [...]string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}

// Server serves the compiled chains of one chainstore server to proxyless
// gRPC clients over ADS (see the package documentation).
type Server struct {
	cfg    Config
	logger hclog.Logger
	hub    Hub
	store  Store
	prefix string

	caches map[string]*cachev3.LinearCache // by type URL
	xds    serverv3.Server

	// streamsCtx ends every ADS stream; cancelled when Run returns.
	streamsCtx    context.Context
	cancelStreams context.CancelFunc

	started atomic.Bool
	stats   stats

	// wake tells Run that names were queued (capacity 1: a poke is never
	// lost and never blocks).
	wake chan struct{}

	mu      sync.Mutex          // protects the fields below
	wanted  map[string]struct{} // every listener name ever queued (at most MaxChains)
	pending []string            // queued names Run has not taken yet
	// deferred holds the watches guard holds back.
	deferred []*deferredWatch
	// published holds the names of the resources in the caches, per type
	// URL (written by Run).
	published map[string]map[string]struct{}
	clients   map[streamKey]*clientState
	chains    map[string]ChainStatus // written by Run after each round
	// needs records, per type URL and resource name, the services each
	// chain that published the resource reaches (acl.go); written by Run.
	needs map[string]map[string]map[string][]string

	authz Authorizer // nil: no ACL filtering; set by New's options only
}

// New builds a server that publishes the chains of hub and the instances
// of store. nodeName names this chainstore server (it seeds the version
// prefix). It serves nothing until registered on a gRPC server, and
// publishes nothing until Run.
func New(cfg Config, hub Hub, store Store, nodeName string, logger hclog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid xDS server config: %w", err)
	}
	if hub == nil || store == nil {
		return nil, errors.New("xdsserver: nil hub or store")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	prefix, err := cfg.versionPrefix(nodeName, time.Now())
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		logger:  logger.Named("xds"),
		hub:     hub,
		store:   store,
		prefix:  prefix,
		caches:  make(map[string]*cachev3.LinearCache, len(typeURLs)),
		wake:    make(chan struct{}, 1),
		wanted:  make(map[string]struct{}),
		clients: make(map[streamKey]*clientState),
		chains:  make(map[string]ChainStatus),

		published: make(map[string]map[string]struct{}, len(typeURLs)),
		needs:     make(map[string]map[string]map[string][]string, len(typeURLs)),
	}
	for _, o := range opts {
		o(s)
	}
	cpLog := cpLogger{s.logger.Named("cache")}
	mux := &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return r.GetTypeUrl() },
		Caches:        make(map[string]cachev3.Cache, len(typeURLs)),
	}
	for _, t := range typeURLs {
		s.published[t] = make(map[string]struct{})
		c := cachev3.NewLinearCache(t, cachev3.WithVersionPrefix(prefix), cachev3.WithLogger(cpLog))
		s.caches[t] = c
		mux.Caches[t] = c
	}
	s.streamsCtx, s.cancelStreams = context.WithCancel(context.Background())
	s.xds = serverv3.NewServer(s.streamsCtx, &guard{Cache: mux, s: s}, callbacks{s},
		// grpc-go never asks for a wildcard: an empty request means "none
		// of this type", not "all of them".
		serverconfig.DeactivateLegacyWildcard(),
		sotw.WithLogger(cpLogger{s.logger.Named("ads")}))
	return s, nil
}

// Register registers the Aggregated Discovery Service (state of the world
// and delta) on g. Call it before g serves.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
}

// VersionPrefix returns the prefix of every version this server sends.
func (s *Server) VersionPrefix() string { return s.prefix }

// cpLogger adapts hclog to go-control-plane's logger. The caches log every
// watch at info level: that is debug for us.
type cpLogger struct{ l hclog.Logger }

func (c cpLogger) Debugf(format string, args ...any) {
	if c.l.IsTrace() {
		c.l.Trace(fmt.Sprintf(format, args...))
	}
}

func (c cpLogger) Infof(format string, args ...any) {
	if c.l.IsDebug() {
		c.l.Debug(fmt.Sprintf(format, args...))
	}
}
func (c cpLogger) Warnf(format string, args ...any)  { c.l.Warn(fmt.Sprintf(format, args...)) }
func (c cpLogger) Errorf(format string, args ...any) { c.l.Error(fmt.Sprintf(format, args...)) }

// queueNames records the listener names a client asked for and queues the
// new ones for Run. It never blocks. It returns the names refused because
// the server already follows MaxChains names.
func (s *Server) queueNames(names []string) (refused []string) {
	queued := false
	s.mu.Lock()
	for _, n := range names {
		if n == "" || n == "*" {
			continue // wildcards: gRPC never asks for them
		}
		if _, ok := s.wanted[n]; ok {
			continue
		}
		if len(s.wanted) >= s.cfg.MaxChains {
			refused = append(refused, n)
			continue
		}
		s.wanted[n] = struct{}{}
		s.pending = append(s.pending, n)
		queued = true
	}
	s.mu.Unlock()
	if queued {
		select {
		case s.wake <- struct{}{}:
		default: // a poke is already pending
		}
	}
	if len(refused) > 0 {
		s.logger.Warn("listener names refused: the server follows its maximum number of chains",
			"names", refused, "max_chains", s.cfg.MaxChains)
	}
	return refused
}

// takePending returns the queued names and empties the queue.
func (s *Server) takePending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	s.pending = nil
	return p
}
