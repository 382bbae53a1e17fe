package xdsserver

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/internal/testutil"
)

// harness is a real FSM driven with ApplyBatch (as Raft would), a real
// chain hub and the server under test, both running until the test ends.
type harness struct {
	t     *testing.T
	f     *fsm.FSM
	s     *Server
	index uint64
	mu    sync.Mutex
}

func newHarness(t *testing.T, hubCfg ...func(*chainwatch.Config)) *harness {
	t.Helper()
	h := &harness{t: t, f: fsm.New(nil)}
	cfg := chainwatch.DefaultConfig()
	for _, m := range hubCfg {
		m(&cfg)
	}
	hub, err := chainwatch.New(cfg, chainwatch.FSMSource(h.f), nil)
	if err != nil {
		t.Fatalf("chainwatch.New: %v", err)
	}
	h.s, err = New(DefaultConfig(), hub, FSMStore(h.f), "t1", nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = hub.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := h.s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return h
}

func (h *harness) apply(cmds ...fsm.Command) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	logs := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		data, err := fsm.EncodeCommand(c)
		if err != nil {
			h.t.Fatalf("EncodeCommand: %v", err)
		}
		h.index++
		logs[i] = &raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data}
	}
	for i, r := range h.f.ApplyBatch(logs) {
		if res, ok := r.(fsm.ApplyResult); !ok || res.Err != nil {
			h.t.Fatalf("command %d: %+v", i, r)
		}
	}
}

// put writes the entry documents in one Raft batch.
func (h *harness) put(docs ...string) {
	h.t.Helper()
	var cmds []fsm.Command
	for _, doc := range docs {
		e, err := chain.DecodeEntry([]byte(doc))
		if err != nil {
			h.t.Fatalf("DecodeEntry(%s): %v", doc, err)
		}
		if err := chain.Prepare(e); err != nil {
			h.t.Fatalf("Prepare(%s): %v", doc, err)
		}
		cmds = append(cmds, fsm.Command{Op: fsm.OpUpsert, Entry: e, Key: chain.KeyOf(e.GetKind(), e.GetName())})
	}
	h.apply(cmds...)
}

func (h *harness) register(id, service, version string) {
	h.t.Helper()
	in := &catalog.Instance{ID: id, Service: service, Address: "10.0.0." + id[len(id)-1:], Port: 8080, Datacenter: "dc1"}
	if version != "" {
		in.Meta = map[string]string{"version": version}
	}
	h.apply(fsm.Command{Op: fsm.OpRegister, Instance: in})
}

// resources returns the names in the cache of type t.
func (h *harness) resources(t string) map[string]bool {
	out := make(map[string]bool)
	for name := range h.s.caches[t].GetResources() {
		out[name] = true
	}
	return out
}

// endpoints returns the number of endpoints of the assignment name (-1:
// none).
func (h *harness) endpoints(name string) int {
	r, ok := h.s.caches[resourcev3.EndpointType].GetResources()[name]
	if !ok {
		return -1
	}
	n := 0
	for _, l := range r.(*endpointv3.ClusterLoadAssignment).GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	return n
}

func (h *harness) chainStatus(name string) ChainStatus {
	for _, c := range h.s.Chains() {
		if c.Name == name {
			return c
		}
	}
	return ChainStatus{}
}

// delta returns the counters of b minus those of a.
func delta(a, b Stats) Stats {
	d := Stats{Rounds: b.Rounds - a.Rounds, Rebuilds: b.Rebuilds - a.Rebuilds, Failures: b.Failures - a.Failures, Updates: map[string]uint64{}}
	for t, n := range b.Updates {
		d.Updates[t] = n - a.Updates[t]
	}
	return d
}

const webTarget = "web.default.dc1.internal." + chain.ValidationTrustDomain

func TestPublisher(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("x", 300) // longer than a service name may be
	if got := h.s.queueNames([]string{long, "web", "*", ""}); len(got) != 0 {
		t.Fatalf("refused %v", got)
	}
	testutil.Poll(t, 10*time.Second, "chain web to be published", func() bool { return h.chainStatus("web").PublishedHash != "" })
	for typ, want := range map[string]string{
		resourcev3.ListenerType: "web", resourcev3.RouteType: "web",
		resourcev3.ClusterType: webTarget, resourcev3.EndpointType: webTarget,
	} {
		if got := h.resources(typ); len(got) != 1 || !got[want] {
			t.Errorf("%s: %v, want only %s", typ, got, want)
		}
	}
	if n := h.endpoints(webTarget); n != 0 {
		t.Errorf("endpoints before any registration: %d", n)
	}
	if st := h.chainStatus(long); !strings.Contains(st.Error, "subscribe: ") || st.PublishedHash != "" {
		t.Errorf("status of an invalid name: %+v", st)
	}
	if st := h.chainStatus("web"); st.Error != "" || st.Hash != st.PublishedHash || strings.Join(st.Services, ",") != "web" {
		t.Errorf("status %+v", st)
	}

	t.Run("CatalogChangeIsEDSOnly", func(t *testing.T) {
		before := h.s.Stats()
		h.register("web-1", "web", "")
		testutil.Poll(t, 10*time.Second, "web-1 in the assignment", func() bool { return h.endpoints(webTarget) == 1 })
		h.register("other-1", "other", "") // no chain uses it: nothing rebuilt
		h.register("web-2", "web", "")
		testutil.Poll(t, 10*time.Second, "web-2 in the assignment", func() bool { return h.endpoints(webTarget) == 2 })
		d := delta(before, h.s.Stats())
		if d.Rebuilds != 2 || d.Failures != 0 || d.Updates[resourcev3.EndpointType] != 2 ||
			d.Updates[resourcev3.ListenerType]+d.Updates[resourcev3.RouteType]+d.Updates[resourcev3.ClusterType] != 0 {
			t.Errorf("counters after two web registrations and one other: %+v, want 2 rebuilds and 2 EDS updates only", d)
		}
	})

	t.Run("ChainChangeKeepsOldClusters", func(t *testing.T) {
		before := h.s.Stats()
		h.put(`{"Kind":"service-defaults","Name":"web","Protocol":"grpc"}`)
		h.put(`{"Kind":"service-resolver","Name":"web","DefaultSubset":"v1","Subsets":{
		  "v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`)
		h.put(`{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":50,"ServiceSubset":"v1"},{"Weight":50,"ServiceSubset":"v2"}]}`)
		v1, v2 := "v1."+webTarget, "v2."+webTarget
		testutil.Poll(t, 10*time.Second, "the split's clusters", func() bool {
			got := h.resources(resourcev3.ClusterType)
			return got[v1] && got[v2] && h.endpoints(v1) == 0 && h.endpoints(v2) == 0
		})
		if got := h.resources(resourcev3.ClusterType); !got[webTarget] || h.endpoints(webTarget) != 2 {
			t.Errorf("clusters %v, endpoints of %s %d: the old cluster and its endpoints must stay", got, webTarget, h.endpoints(webTarget))
		}
		d := delta(before, h.s.Stats())
		if d.Updates[resourcev3.ListenerType] != 0 || d.Updates[resourcev3.RouteType] == 0 || d.Failures != 0 {
			t.Errorf("counters %+v: the listener does not change, the routes do", d)
		}
		// The old cluster's endpoints still follow the catalog: web-1 is in
		// neither subset, but the first target keeps listing it.
		h.register("web-3", "web", "v2")
		testutil.Poll(t, 10*time.Second, "web-3 in v2", func() bool { return h.endpoints(v2) == 1 })
		if n := h.endpoints(webTarget); n != 2 {
			t.Errorf("old assignment %s has %d endpoints; it is not rebuilt once no chain uses it (want the 2 it had)", webTarget, n)
		}
	})

	t.Run("RestoreRebuildsEverything", func(t *testing.T) {
		snap := h.snapshot()
		v2 := "v2." + webTarget
		h.apply(fsm.Command{Op: fsm.OpDeregister, InstanceID: "web-3"})
		testutil.Poll(t, 10*time.Second, "web-3 gone", func() bool { return h.endpoints(v2) == 0 })
		if err := h.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		testutil.Poll(t, 10*time.Second, "web-3 back after the restore", func() bool { return h.endpoints(v2) == 1 })
	})

	if err := h.s.Run(context.Background()); err == nil {
		t.Error("a second Run returned nil")
	}
	if c := h.s.Clients(); len(c) != 0 {
		t.Errorf("clients without streams: %+v", c)
	}
}

func (h *harness) snapshot() []byte {
	h.t.Helper()
	snap, err := h.f.Snapshot()
	if err != nil {
		h.t.Fatalf("Snapshot: %v", err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		h.t.Fatalf("Persist: %v", err)
	}
	snap.Release()
	return sink.Bytes()
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestCompileErrorKeepsPublished makes the newest version of a chain fail
// (the hub's size cap turns it into a compile error): the previous version
// stays published, its endpoints still follow the catalog, and the error
// is reported.
func TestCompileErrorKeepsPublished(t *testing.T) {
	h := newHarness(t, func(c *chainwatch.Config) { c.MaxChainBytes = 1000 })
	h.s.queueNames([]string{"web"})
	testutil.Poll(t, 10*time.Second, "chain web to be published", func() bool { return h.chainStatus("web").PublishedHash != "" })
	published := h.chainStatus("web").PublishedHash
	routes := h.s.Stats().Updates[resourcev3.RouteType]

	// One batch: one new version (a 1292-byte chain, over the cap).
	h.put(`{"Kind":"service-defaults","Name":"web","Protocol":"grpc"}`,
		`{"Kind":"service-resolver","Name":"web","Subsets":{
		  "v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`,
		`{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":50,"ServiceSubset":"v1"},{"Weight":50,"ServiceSubset":"v2"}]}`)
	testutil.Poll(t, 10*time.Second, "the compile error to be reported", func() bool {
		return strings.Contains(h.chainStatus("web").Error, "over the limit")
	})
	st := h.chainStatus("web")
	if st.PublishedHash != published || st.Hash == published || !strings.HasPrefix(st.Error, "compile: ") {
		t.Errorf("status %+v, want the previous version %s still published and the compile error", st, published)
	}
	h.register("web-1", "web", "v1")
	testutil.Poll(t, 10*time.Second, "web-1 in the published chain's assignment", func() bool { return h.endpoints(webTarget) == 1 })
	if n := h.s.Stats().Updates[resourcev3.RouteType]; n != routes {
		t.Errorf("route configurations published: %d, then %d: the failing version must publish nothing", routes, n)
	}
	if strings.Contains(strings.Join(keys(h.resources(resourcev3.ClusterType)), " "), "v1.") {
		t.Errorf("clusters %v: the failing version's clusters were published", h.resources(resourcev3.ClusterType))
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMaxChains(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxChains = 2
	s := &Server{cfg: cfg, wake: make(chan struct{}, 1), wanted: map[string]struct{}{}}
	s.logger = hclog.NewNullLogger()
	if got := s.queueNames([]string{"a", "b", "a", "c"}); len(got) != 1 || got[0] != "c" {
		t.Errorf("refused %v, want [c]", got)
	}
	if got := s.takePending(); strings.Join(got, ",") != "a,b" {
		t.Errorf("pending %v, want [a b]", got)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"MaxChains":        func(c *Config) { c.MaxChains = 0 },
		"SubscribeTimeout": func(c *Config) { c.SubscribeTimeout = 0 },
		"RetryInterval":    func(c *Config) { c.RetryInterval = -1 },
		"ReconnectHold":    func(c *Config) { c.ReconnectHold = 0 },
		"VersionPrefix":    func(c *Config) { c.VersionPrefix = strings.Repeat("x", 129) },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
	start := time.UnixMilli(1_700_000_000_000)
	if p, err := DefaultConfig().versionPrefix("n1", start); err != nil || p != "n1.loyw3v28." {
		t.Errorf("derived prefix %q, %v", p, err)
	}
	c := DefaultConfig()
	c.VersionPrefix = "fixed-"
	if p, _ := c.versionPrefix("n1", start); p != "fixed-" {
		t.Errorf("configured prefix %q", p)
	}
	if _, err := DefaultConfig().versionPrefix("", start); err == nil {
		t.Error("no node name and no prefix: want an error")
	}
}
