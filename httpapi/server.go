package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/acl"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/rpc"
)

// Config configures the HTTP API of one server.
type Config struct {
	// Datacenter is this server's datacenter: the default compile
	// datacenter of discovery chains and the only ?dc= value accepted.
	Datacenter string
	// MaxBodySize is the largest request body (bytes) any endpoint reads;
	// larger bodies are refused with 413. It is the entry size limit
	// (rpc.DefaultMaxEntrySize by default).
	MaxBodySize int64
	// MaxSnapshotSize is the largest backup file PUT /v1/snapshot reads
	// (413 above it) and GET /v1/snapshot serves (rpc.MaxSnapshotSize by
	// default, the limit of the gRPC restore).
	MaxSnapshotSize int64
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server deadlines. WriteTimeout must leave room for the longest
	// blocking query (rpc MaxQueryWait plus its jitter).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes caps the request line and headers.
	MaxHeaderBytes int
	// ShutdownTimeout bounds the graceful shutdown (in-flight requests;
	// blocked queries are released by the rpc services first).
	ShutdownTimeout time.Duration
	// TLS, if not nil, makes the server speak HTTPS with this
	// configuration (certificates are the caller's).
	TLS *tls.Config
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Datacenter:        "dc1",
		MaxBodySize:       rpc.DefaultMaxEntrySize,
		MaxSnapshotSize:   rpc.MaxSnapshotSize,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// rpc's MaxQueryWait (10 min) + 1/16 jitter + room to answer.
		WriteTimeout:    11*time.Minute + 30*time.Second,
		IdleTimeout:     2 * time.Minute,
		MaxHeaderBytes:  64 << 10,
		ShutdownTimeout: 5 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Datacenter == "":
		return errors.New("http: Datacenter must be set")
	case c.MaxBodySize <= 0:
		return fmt.Errorf("http: MaxBodySize must be positive, got %d", c.MaxBodySize)
	case c.MaxSnapshotSize <= 0:
		return fmt.Errorf("http: MaxSnapshotSize must be positive, got %d", c.MaxSnapshotSize)
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("http: ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout must be positive")
	case c.MaxHeaderBytes <= 0:
		return fmt.Errorf("http: MaxHeaderBytes must be positive, got %d", c.MaxHeaderBytes)
	case c.ShutdownTimeout <= 0:
		return errors.New("http: ShutdownTimeout must be positive")
	}
	return nil
}

// Backend is what the handlers call: the rpc services' in-process front
// door (*rpc.Local). Errors are gRPC status errors.
type Backend interface {
	Apply(context.Context, *chainstorev1.ApplyRequest) (*chainstorev1.ApplyResponse, error)
	Get(context.Context, *chainstorev1.GetRequest) (*chainstorev1.GetResponse, error)
	List(context.Context, *chainstorev1.ListRequest) (*chainstorev1.ListResponse, error)
	Delete(context.Context, *chainstorev1.DeleteRequest) (*chainstorev1.DeleteResponse, error)
	GetChain(context.Context, *chainstorev1.GetChainRequest) (*chainstorev1.GetChainResponse, error)
	Register(context.Context, *chainstorev1.RegisterRequest) (*chainstorev1.RegisterResponse, error)
	Deregister(context.Context, *chainstorev1.DeregisterRequest) (*chainstorev1.DeregisterResponse, error)
	Instances(context.Context, *chainstorev1.InstancesRequest) (*chainstorev1.InstancesResponse, error)
	Services(context.Context, *chainstorev1.ServicesRequest) (*chainstorev1.ServicesResponse, error)
	Peers(context.Context, *chainstorev1.PeersRequest) (*chainstorev1.PeersResponse, error)
	Status(context.Context, *chainstorev1.StatusRequest) (*chainstorev1.StatusResponse, error)
	// Authorize checks the request's token for endpoints the HTTP API
	// serves itself (metrics).
	Authorize(ctx context.Context, perms ...acl.Permission) error
	ACLBackend
	SnapshotBackend
}

var _ Backend = (*rpc.Local)(nil)

// Server is the HTTP API of one chainstore server. Build it with New,
// add handlers with Mount (the web UI, metrics), serve with Serve and stop
// with Shutdown.
type Server struct {
	cfg     Config
	backend Backend
	logger  hclog.Logger
	mux     *http.ServeMux
	srv     *http.Server
	// observe, if set, is told about every request (metrics).
	observe func(route, method string, code int, d time.Duration)

	readiness readiness

	mu      sync.Mutex // protects mounted
	mounted map[string]bool
}

// New builds the HTTP API over backend; raft (may be nil) feeds the
// readiness endpoint. It serves nothing until Serve.
func New(cfg Config, backend Backend, raft RaftStats, logger hclog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if backend == nil {
		return nil, errors.New("http: a backend is required")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Server{cfg: cfg, backend: backend, logger: logger, mux: http.NewServeMux(), mounted: map[string]bool{}}
	s.readiness.raft = raft
	s.routes()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		TLSConfig:         cfg.TLS,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return s, nil
}

// Observe sets a function told the route pattern, method, status code and
// duration of every request once it is answered (the metrics hook). Call
// it before Serve.
func (s *Server) Observe(fn func(route, method string, code int, d time.Duration)) { s.observe = fn }

// uiPrefix is where the web UI is mounted; GET / redirects there.
const uiPrefix = "/ui/"

// Mount serves h under prefix (a path ending in "/" serves the whole
// subtree, e.g. "/ui/"), on the same listener as the API. Mounting a
// prefix twice or one that is an API path fails.
func (s *Server) Mount(prefix string, h http.Handler) error {
	if !strings.HasPrefix(prefix, "/") || h == nil {
		return fmt.Errorf("http: mount %q: the prefix must start with / and the handler must not be nil", prefix)
	}
	if strings.HasPrefix(prefix, "/v1/") {
		return fmt.Errorf("http: mount %q: /v1/ is the API's", prefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mounted[prefix] {
		return fmt.Errorf("http: %q is already mounted", prefix)
	}
	if err := s.handleChecked(prefix, h); err != nil {
		return err
	}
	if strings.HasSuffix(prefix, "/") && len(prefix) > 1 {
		// "/ui" redirects to "/ui/" (ServeMux does that only for GET).
		if err := s.handleChecked(strings.TrimSuffix(prefix, "/"), http.RedirectHandler(prefix, http.StatusMovedPermanently)); err != nil {
			return err
		}
	}
	s.mounted[prefix] = true
	return nil
}

// handleChecked registers pattern, turning ServeMux's panic on an invalid
// or conflicting pattern into an error.
func (s *Server) handleChecked(pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("http: mount %q: %v", pattern, p)
		}
	}()
	s.mux.Handle(pattern, h)
	return nil
}

// HandleMetrics serves GET /v1/agent/metrics with h (package metrics:
// Consul's JSON form, or the Prometheus text format with
// ?format=prometheus). Call it before Serve. With ACLs on, the token needs
// operator:read (Consul asks for agent:read; chainstore has no agent
// resource, and operator:read is what its other server-wide reads take).
func (s *Server) HandleMetrics(h http.Handler) {
	s.route("/v1/agent/metrics", map[string]handlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		if err := s.backend.Authorize(requestContext(r), acl.OperatorRead); err != nil {
			return err
		}
		h.ServeHTTP(w, r)
		return nil
	}})
}

// Serve serves the API on lis (HTTPS when Config.TLS is set) until
// Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	var err error
	if s.cfg.TLS != nil {
		err = s.srv.ServeTLS(lis, "", "")
	} else {
		err = s.srv.Serve(lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests,
// up to Config.ShutdownTimeout, then closes the remaining connections.
func (s *Server) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return errors.Join(err, s.srv.Close())
	}
	return nil
}

// Close closes the listener and every connection at once (a server
// stopping as if it crashed).
func (s *Server) Close() error { return s.srv.Close() }

// ServeHTTP implements http.Handler: every request goes through panic
// recovery and the metrics hook, then the route table.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	_, route := s.mux.Handler(r)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, not a returned error
				panic(p)
			}
			s.logger.Error("panic in HTTP handler", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			if !rw.wroteHeader {
				writeError(rw, http.StatusInternalServerError, "internal error")
			}
		}
		if s.observe != nil {
			if route == "" {
				route = "unmatched"
			}
			s.observe(route, r.Method, rw.code(), time.Since(start))
		}
	}()
	s.mux.ServeHTTP(rw, r)
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

// handlerFunc is an API handler: it writes a successful answer itself and
// returns an error (an *httpError or a gRPC status error) otherwise.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route registers the handlers of one path by method, and a fallback that
// answers any other method with 405 and the allowed methods.
func (s *Server) route(path string, byMethod map[string]handlerFunc) {
	allowed := make([]string, 0, len(byMethod))
	for method, h := range byMethod {
		allowed = append(allowed, method)
		s.mux.Handle(method+" "+path, s.wrap(h))
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	})
}

// wrap turns a handlerFunc into an http.Handler that writes its error.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			code, msg := s.errorResponse(err)
			writeError(w, code, msg)
		}
	})
}

// routes builds the route table.
func (s *Server) routes() {
	s.route("/v1/config", map[string]handlerFunc{http.MethodPut: s.configApply})
	s.route("/v1/config/{$}", map[string]handlerFunc{http.MethodGet: s.configMissingKind, http.MethodDelete: s.configMissingKind})
	s.route("/v1/config/{kind}", map[string]handlerFunc{http.MethodGet: s.configList, http.MethodDelete: s.configDeleteNoName})
	s.route("/v1/config/{kind}/{name...}", map[string]handlerFunc{http.MethodGet: s.configGet, http.MethodDelete: s.configDelete})
	s.route("/v1/discovery-chain/{service...}", map[string]handlerFunc{http.MethodGet: s.discoveryChain, http.MethodPost: s.discoveryChain})
	s.route("/v1/status/leader", map[string]handlerFunc{http.MethodGet: s.statusLeader})
	s.route("/v1/status/peers", map[string]handlerFunc{http.MethodGet: s.statusPeers})
	s.route("/v1/catalog/register", map[string]handlerFunc{http.MethodPut: s.catalogRegister})
	s.route("/v1/catalog/deregister", map[string]handlerFunc{http.MethodPut: s.catalogDeregister})
	s.route("/v1/catalog/services", map[string]handlerFunc{http.MethodGet: s.catalogServices})
	s.route("/v1/catalog/service/{service...}", map[string]handlerFunc{http.MethodGet: s.catalogService})
	s.route("/v1/health/service/{service...}", map[string]handlerFunc{http.MethodGet: s.healthService})
	s.route("/v1/agent/health/live", map[string]handlerFunc{http.MethodGet: s.live})
	s.route("/v1/agent/health/ready", map[string]handlerFunc{http.MethodGet: s.ready})
	s.aclRoutes()
	s.route("/v1/snapshot", map[string]handlerFunc{http.MethodGet: s.snapshotSave, http.MethodPut: s.snapshotRestore})
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// As Consul: the root goes to the web UI, when there is one.
		s.mu.Lock()
		ui := s.mounted[uiPrefix]
		s.mu.Unlock()
		if ui {
			http.Redirect(w, r, uiPrefix, http.StatusFound)
			return
		}
		writeError(w, http.StatusNotFound, "unknown endpoint: GET / (no web UI is mounted; the API is under /v1/, see docs/http-api.md)")
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown endpoint: %s %s (see docs/http-api.md for the endpoints chainstore serves)", r.Method, r.URL.Path))
	})
}
