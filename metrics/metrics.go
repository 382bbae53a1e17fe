// Package metrics holds one server's metrics: a Prometheus registry with
// the request latencies of the gRPC and HTTP front ends (observed by an
// interceptor and an HTTP hook), collectors that read the server's
// existing state when scraped (Raft stats, entries by kind, catalog
// instances by health, the chain hub's counters, blocked queries, xDS
// clients and NACKs), and the metrics hashicorp/raft and its log stores
// (raft-wal, raft-boltdb) emit themselves (commit and FSM apply times,
// leader changes, log store appends and write time), bridged from
// go-metrics. Handler serves them as
// GET /v1/agent/metrics: Consul's JSON form, or the Prometheus text format
// with ?format=prometheus. docs/http-api.md lists every metric.
//
// hashicorp/raft v1.7 and raft-boltdb v2 emit through
// github.com/hashicorp/go-metrics/compat, which (without the
// hashicorpmetrics build tag) forwards to armon/go-metrics' global sink.
// That sink is process-wide: the first New installs a Prometheus sink as
// the global one, and every Registry includes it. Servers sharing a
// process (tests) therefore share Raft's own metrics; everything else is
// per server.
//
// # Goroutines
//
// None. Collectors run on the scraping request's goroutine.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	gometrics "github.com/armon/go-metrics"
	gmprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/xdsserver"
)

// Namespace prefixes every metric name.
const Namespace = "chainstore"

// Sources is the server state the collectors read at scrape time. A nil
// field leaves its metrics out.
type Sources struct {
	Raft interface{ Stats() raftnode.Stats }
	// Store returns the current state store (it changes on a restore).
	Store   interface{ Store() *fsm.Store }
	Hub     interface{ Stats() chainwatch.Stats }
	Blocked func() int64
	XDS     interface {
		Clients() []xdsserver.ClientStatus
	}
}

// Registry is one server's metrics.
type Registry struct {
	reg         *prometheus.Registry
	httpLatency *prometheus.HistogramVec
	rpcLatency  *prometheus.HistogramVec
	streams     *prometheus.GaugeVec
	streamsDone *prometheus.CounterVec
}

// latencyBuckets spans a fast local read (100 µs) to a long blocking
// query (10 min).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600}

// New builds a server's registry over src and installs the process-wide
// go-metrics bridge for Raft's own metrics (once per process).
func New(src Sources) (*Registry, error) {
	bridge, err := raftBridge()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		reg: prometheus.NewRegistry(),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP API requests by route pattern, method and status code.",
			Buckets: latencyBuckets,
		}, []string{"route", "method", "code"}),
		rpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "rpc", Name: "request_duration_seconds",
			Help:    "Unary gRPC calls by full method and status code (blocking queries include their wait).",
			Buckets: latencyBuckets,
		}, []string{"method", "code"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "rpc", Name: "streams_active",
			Help: "Open gRPC streams by full method (chain watches, xDS ADS streams).",
		}, []string{"method"}),
		streamsDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "rpc", Name: "streams_closed_total",
			Help: "Closed gRPC streams by full method and status code.",
		}, []string{"method", "code"}),
	}
	for _, c := range []prometheus.Collector{
		r.httpLatency, r.rpcLatency, r.streams, r.streamsDone,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{src: src},
		bridge,
	} {
		if err := r.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return r, nil
}

// Gatherer returns the registry (for tests and other exporters).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// ObserveHTTP records one HTTP request (the httpapi Observe hook). Methods
// other than the standard ones are counted as "other", so a client cannot
// create label values at will (routes are the server's patterns).
func (r *Registry) ObserveHTTP(route, method string, code int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "other"
	}
	r.httpLatency.WithLabelValues(route, method, strconv.Itoa(code)).Observe(d.Seconds())
}

// UnaryInterceptor records the latency and status code of every unary
// gRPC call.
func (r *Registry) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		r.rpcLatency.WithLabelValues(info.FullMethod, status.Code(err).String()).Observe(time.Since(start).Seconds())
		return resp, err
	}
}

// StreamInterceptor counts open streams and closed ones by status code.
func (r *Registry) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		g := r.streams.WithLabelValues(info.FullMethod)
		g.Inc()
		defer g.Dec()
		err := handler(srv, ss)
		r.streamsDone.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		return err
	}
}

// The go-metrics bridge: one Prometheus sink, installed once as
// armon/go-metrics' global sink, shared by every Registry.
var (
	bridgeOnce sync.Once
	bridgeSink *gmprom.PrometheusSink
	errBridge  error
)

func raftBridge() (*gmprom.PrometheusSink, error) {
	bridgeOnce.Do(func() {
		// The sink registers itself; give it a registry of its own and add
		// it to each server's registry as a collector.
		bridgeSink, errBridge = gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{
			Registerer: prometheus.NewRegistry(),
			Name:       Namespace + "_go_metrics_bridge",
			// Never expire: a metric Raft emits rarely (leader changes)
			// must not vanish between scrapes.
			Expiration: 0,
		})
		if errBridge != nil {
			return
		}
		cfg := gometrics.DefaultConfig(Namespace)
		cfg.EnableHostname = false
		cfg.EnableHostnameLabel = false
		cfg.EnableRuntimeMetrics = false // the Go collector reports those; no extra goroutine
		cfg.EnableServiceLabel = false
		_, errBridge = gometrics.NewGlobal(cfg, bridgeSink)
	})
	if errBridge != nil {
		return nil, fmt.Errorf("install the go-metrics bridge: %w", errBridge)
	}
	if bridgeSink == nil {
		return nil, errors.New("install the go-metrics bridge: no sink")
	}
	return bridgeSink, nil
}

// stateCollector reads the server's existing state at scrape time.
type stateCollector struct{ src Sources }

var (
	descRaftTerm        = desc("raft", "term", "Current Raft term.")
	descRaftCommitIndex = desc("raft", "commit_index", "Highest Raft index known to be committed.")
	descRaftApplied     = desc("raft", "applied_index", "Last Raft index handed to the FSM.")
	descRaftLastLog     = desc("raft", "last_log_index", "Last index in the Raft log.")
	descRaftLeader      = desc("raft", "is_leader", "1 if this server is the Raft leader.")
	descRaftKnownLeader = desc("raft", "known_leader", "1 if this server knows a leader.")
	descRaftLastContact = desc("raft", "last_contact_seconds", "Time since this server last heard from the leader (0 on the leader).")

	descEntries   = desc("store", "config_entries", "Config entries by kind.", "kind")
	descInstances = desc("catalog", "instances", "Catalog instances by health.", "health")
	descServices  = desc("catalog", "services", "Services with at least one registered instance.")

	descCompiles      = desc("chain", "compiles_total", "Discovery-chain compiles (published or not).")
	descCompileTime   = desc("chain", "compile_seconds", "Time spent compiling discovery chains (count is the compiles).")
	descPublishes     = desc("chain", "versions_published_total", "Chain versions published (compiles whose result changed).")
	descChains        = desc("chain", "chains", "Chains the hub tracks (watched or warm).")
	descSubscriptions = desc("chain", "subscriptions", "Open chain subscriptions (watch-stream subscriptions and blocking chain reads).")
	descWatchers      = desc("chain", "watchers", "Open chain watchers (one per watch stream).")
	descDeliveries    = desc("chain", "deliveries_total", "Chain versions handed to watch streams.")
	descSkipped       = desc("chain", "skipped_versions_total", "Chain versions a watcher never delivered because a newer one came first.")
	descBlocked       = desc("rpc", "blocked_queries", "Blocking queries waiting (gRPC and HTTP).")

	descXDSClients = desc("xds", "clients", "Open xDS (ADS) streams.")
	descXDSNACKs   = desc("xds", "client_nacks", "NACKs received on the open xDS streams, by resource type.", "type_url")
)

func desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, labels, nil)
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descRaftTerm, descRaftCommitIndex, descRaftApplied, descRaftLastLog, descRaftLeader, descRaftKnownLeader, descRaftLastContact,
		descEntries, descInstances, descServices,
		descCompiles, descCompileTime, descPublishes, descChains, descSubscriptions, descWatchers, descDeliveries, descSkipped, descBlocked,
		descXDSClients, descXDSNACKs,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	if c.src.Raft != nil {
		st := c.src.Raft.Stats()
		gauge(descRaftTerm, float64(st.Term))
		gauge(descRaftCommitIndex, float64(st.CommitIndex))
		gauge(descRaftApplied, float64(st.AppliedIndex))
		gauge(descRaftLastLog, float64(st.LastLogIndex))
		gauge(descRaftLeader, boolFloat(st.State == raftnode.StateLeader))
		gauge(descRaftKnownLeader, boolFloat(st.LeaderID != ""))
		contact := 0.0
		if st.State != raftnode.StateLeader && !st.LastContact.IsZero() {
			contact = time.Since(st.LastContact).Seconds()
		}
		gauge(descRaftLastContact, contact)
	}
	if c.src.Store != nil {
		store := c.src.Store.Store()
		for _, k := range chain.Kinds {
			es, _, _ := store.List(k)
			gauge(descEntries, float64(len(es)), string(k))
		}
		services, _, _ := store.Services()
		counts := map[catalog.Health]int{catalog.Passing: 0, catalog.Warning: 0, catalog.Critical: 0}
		for _, sv := range services {
			insts, _, _ := store.Instances(sv.Name)
			for _, in := range insts {
				counts[in.Status]++
			}
		}
		for h, n := range counts {
			gauge(descInstances, float64(n), h.String())
		}
		gauge(descServices, float64(len(services)))
	}
	if c.src.Hub != nil {
		st := c.src.Hub.Stats()
		counter(descCompiles, float64(st.Compiles))
		ch <- prometheus.MustNewConstSummary(descCompileTime, st.Compiles, st.CompileTime.Seconds(), nil)
		counter(descPublishes, float64(st.Publishes))
		gauge(descChains, float64(st.Chains))
		gauge(descSubscriptions, float64(st.Subscriptions))
		gauge(descWatchers, float64(st.Watchers))
		counter(descDeliveries, float64(st.Deliveries))
		counter(descSkipped, float64(st.Skipped))
	}
	if c.src.Blocked != nil {
		gauge(descBlocked, float64(c.src.Blocked()))
	}
	if c.src.XDS != nil {
		clients := c.src.XDS.Clients()
		gauge(descXDSClients, float64(len(clients)))
		nacks := map[string]uint64{}
		for _, cl := range clients {
			for _, t := range cl.Types {
				nacks[t.TypeURL] += t.NACKs
			}
		}
		for typ, n := range nacks {
			gauge(descXDSNACKs, float64(n), typ)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
