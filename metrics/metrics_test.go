package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// scrape GETs the Prometheus text form and returns each sample line's
// value by its series ("name" or "name{labels}").
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/v1/agent/metrics?format=prometheus", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sum adds every series of metric name whose labels contain all of
// labels (e.g. `kind="service-defaults"`).
func sum(m map[string]float64, name string, labels ...string) (float64, bool) {
	total, found := 0.0, false
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				ok = false
			}
		}
		if ok {
			total, found = total+v, true
		}
	}
	return total, found
}

func TestMetricsMoveAfterWrites(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	addr := s.HTTPAddr()
	before := scrape(t, addr)

	// Raft's own metrics, bridged from go-metrics, and the state
	// collectors are all there.
	for _, name := range []string{
		"chainstore_raft_commitTime_count", "chainstore_raft_fsm_applyBatch_count", "chainstore_raft_state_leader",
		"chainstore_raft_wal_log_appends", "chainstore_raft_is_leader", "chainstore_raft_commit_index",
		"chainstore_store_config_entries", "chainstore_catalog_instances", "chainstore_chain_compiles_total",
		"chainstore_chain_compile_seconds_count", "chainstore_chain_watchers", "chainstore_chain_deliveries_total",
		"chainstore_chain_skipped_versions_total", "chainstore_rpc_blocked_queries", "chainstore_xds_clients",
		"go_goroutines",
	} {
		if _, ok := sum(before, name); !ok {
			t.Errorf("metric %s missing from the scrape", name)
		}
	}
	if v, _ := sum(before, "chainstore_raft_is_leader"); v != 1 {
		t.Errorf("chainstore_raft_is_leader = %v, want 1", v)
	}

	// One write through HTTP, one through gRPC, a chain read, a catalog
	// registration.
	c, err := capi.NewClient(&capi.Config{Address: addr, Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ConfigEntries().Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "http"}, nil); err != nil {
		t.Fatal(err)
	}
	s.Put(`{"Kind":"service-resolver","Name":"web","ConnectTimeout":"3s"}`)
	if _, _, err := c.DiscoveryChain().Get("web", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Catalog().Register(&capi.CatalogRegistration{Address: "10.0.0.9", Service: &capi.AgentService{ID: "web-1", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	grpcClient := servertest.NewClient(t, s.Addr())
	if _, err := chainstorev1.NewEntriesServiceClient(grpcClient.Conn()).Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web"}); err != nil {
		t.Fatal(err)
	}

	after := scrape(t, addr)
	grew := func(name string, labels ...string) {
		t.Helper()
		b, _ := sum(before, name, labels...)
		a, ok := sum(after, name, labels...)
		if !ok || a <= b {
			t.Errorf("%s%v = %v after the writes, %v before: want it to grow", name, labels, a, b)
		}
	}
	grew("chainstore_raft_commitTime_count")
	grew("chainstore_raft_fsm_applyBatch_count")
	grew("chainstore_raft_wal_log_appends") // the default log store (raftnode.DefaultLogStore)
	grew("chainstore_raft_commit_index")
	grew("chainstore_store_config_entries", `kind="service-defaults"`)
	grew("chainstore_store_config_entries", `kind="service-resolver"`)
	grew("chainstore_catalog_instances", `health="passing"`)
	grew("chainstore_chain_compiles_total")
	grew("chainstore_chain_compile_seconds_sum")
	grew("chainstore_http_request_duration_seconds_count", `route="PUT /v1/config"`, `code="200"`)
	grew("chainstore_http_request_duration_seconds_count", `route="GET /v1/discovery-chain/{service...}"`)
	grew("chainstore_rpc_request_duration_seconds_count", `method="/chainstore.v1.EntriesService/Apply"`, `code="OK"`)
	grew("chainstore_rpc_request_duration_seconds_count", `method="/chainstore.v1.EntriesService/Get"`)
}

func TestMetricsWatchersAndJSON(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	s.Put(`{"Kind":"service-defaults","Name":"api","Protocol":"http"}`)

	// A watch stream shows up as a watcher, an open stream and, after a
	// change, a delivery.
	client := servertest.NewClient(t, s.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := chainstorev1.NewChainServiceClient(client.Conn()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{
		Id: 1, Chain: &chainstorev1.ChainRef{Service: "api"}}}}); err != nil {
		t.Fatal(err)
	}
	// Subscribed, then the first version.
	for range 2 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	m := scrape(t, s.HTTPAddr())
	if v, _ := sum(m, "chainstore_chain_watchers"); v != 1 {
		t.Errorf("chainstore_chain_watchers = %v, want 1", v)
	}
	if v, _ := sum(m, "chainstore_rpc_streams_active", `method="/chainstore.v1.ChainService/Watch"`); v != 1 {
		t.Errorf("chainstore_rpc_streams_active{Watch} = %v, want 1", v)
	}
	if v, _ := sum(m, "chainstore_chain_deliveries_total"); v < 1 {
		t.Errorf("chainstore_chain_deliveries_total = %v, want >= 1", v)
	}
	cancel()
	testutil.Poll(t, 10*time.Second, "the watcher to close", func() bool {
		v, _ := sum(scrape(t, s.HTTPAddr()), "chainstore_chain_watchers")
		return v == 0
	})

	// A made-up method is counted as "other": clients cannot mint labels.
	req, err := http.NewRequestWithContext(t.Context(), "BREW", "http://"+s.HTTPAddr()+"/v1/status/leader", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	m = scrape(t, s.HTTPAddr())
	if v, _ := sum(m, "chainstore_http_request_duration_seconds_count", `method="other"`, `code="405"`); v != 1 {
		t.Errorf("requests with method other and code 405 = %v, want 1", v)
	}
	if _, ok := sum(m, "chainstore_http_request_duration_seconds_count", `method="BREW"`); ok {
		t.Error("the made-up method became a label value")
	}

	// Consul's JSON form, decoded by the official client.
	c, err := capi.NewClient(&capi.Config{Address: s.HTTPAddr(), Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Agent().Metrics()
	if err != nil {
		t.Fatalf("Agent().Metrics(): %v", err)
	}
	var gotEntries, gotCommit bool
	for _, g := range info.Gauges {
		if g.Name == "chainstore_store_config_entries" && g.Labels["kind"] == "service-defaults" && g.Value == 1 {
			gotEntries = true
		}
	}
	for _, smp := range info.Samples {
		if smp.Name == "chainstore_raft_commitTime" && smp.Count > 0 && smp.Mean > 0 {
			gotCommit = true
		}
	}
	if !gotEntries || !gotCommit || info.Timestamp == "" {
		b, _ := json.Marshal(info)
		t.Fatalf("JSON metrics lack the entries gauge (%v) or the commit-time sample (%v): %.2000s", gotEntries, gotCommit, b)
	}
}
